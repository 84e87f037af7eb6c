"""Child process for the crash tests: ingests known audio at a steady pace until it is killed.

Usage: python -m tests.media.crash_writer <root_dir> <seed>
Prints the input samples appended so far after every block; at 10 s it cuts the last 0.5 s.
"""
import sys

import gevent
import numpy as np

from media import MediaStore, RecordingSettings

RATE_HZ, BLOCK, SECONDS = 8000, 800, 30
CUT_AT, CUT_S = 10 * RATE_HZ, 0.5
HOLDBACK_S, CHUNK_S = 1.0, 2.0


def crash_audio(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-20000, 20000, size=(SECONDS * RATE_HZ, 2)).astype("<i2")


def expected_recording(audio: np.ndarray) -> np.ndarray:
    cut_samples = int(CUT_S * RATE_HZ)
    return np.concatenate((audio[:CUT_AT - cut_samples], audio[CUT_AT:]))


def main() -> None:
    root, seed = sys.argv[1], int(sys.argv[2])
    store = MediaStore(root, settings=RecordingSettings(holdback_s=HOLDBACK_S, chunk_s=CHUNK_S))
    recording = store.create("crash", rate_hz=RATE_HZ, channels=2)
    audio = crash_audio(seed)
    for start in range(0, len(audio), BLOCK):
        recording.append(audio[start:start + BLOCK])
        if recording.input_samples == CUT_AT:
            recording.cut_last(CUT_S, "agent", "crash test")
        print(recording.input_samples, flush=True)
        gevent.sleep(0.002)
    recording.finish()
    print("done", flush=True)


if __name__ == "__main__":
    main()
