#!/usr/bin/env python3
"""Write the example prompt files: 8 kHz mono 16-bit WAV, a short tone melody each.

The melodies stand in for recorded speech; each prompt has its own so a listener
can tell them apart. The output is byte-for-byte deterministic, so the committed
files (and the SHA-256 kept as consent evidence) can be checked against this script.

    python scripts/make_prompts.py [OUT_DIR]   (default: controller/examples/prompts)
"""

import sys
import wave
from pathlib import Path

import numpy as np

RATE_HZ = 8000
NOTE_S = 0.4
GAP_S = 0.1
AMPLITUDE = 0.3 * 32767
FADE_S = 0.01  # short ramps so notes start and stop without clicks

# prompt file -> (what the spoken prompt would say, notes in Hz; 0 is a rest)
PROMPTS = {
    "de_consent.wav": ("Wir moechten dieses Gespraech aufzeichnen. Druecken Sie 1 fuer Ja, 2 fuer Nein.",
                       [523, 659, 784, 0, 880, 0, 880, 880]),
    "de_agreed.wav": ("Danke, das Gespraech wird aufgezeichnet.", [784, 0, 784, 1047]),
    "de_declined.wav": ("Das Gespraech wird nicht aufgezeichnet.", [784, 0, 784, 523]),
    "de_withdrawn.wav": ("Die Aufzeichnung wurde beendet.", [659, 0, 659, 523, 392]),
    "de_optout.wav": ("Druecken Sie 1, wenn Sie keine Aufzeichnung wuenschen.", [523, 659, 784, 0, 440]),
    "uk_notice.wav": ("This call is recorded for quality and training purposes.", [440, 554, 659, 880]),
    "uk_withdrawn.wav": ("Recording has stopped.", [659, 0, 659, 440]),
    "us_notice.wav": ("This call may be recorded.", [392, 494, 587, 784]),
    "us_consent.wav": ("Press 1 to allow recording, 2 to refuse.", [392, 494, 587, 0, 880, 0, 880, 880]),
    "us_withdrawn.wav": ("Recording has stopped.", [587, 0, 587, 392]),
}


def melody(notes_hz: list[int]) -> np.ndarray:
    """The notes as int16 samples, each NOTE_S long and followed by GAP_S of silence."""
    note_samples = int(NOTE_S * RATE_HZ)
    t_s = np.arange(note_samples) / RATE_HZ
    ramp = np.minimum(1.0, np.minimum(t_s, t_s[::-1]) / FADE_S)
    parts = []
    for freq_hz in notes_hz:
        parts.append(np.sin(2 * np.pi * freq_hz * t_s) * ramp * AMPLITUDE if freq_hz else np.zeros(note_samples))
        parts.append(np.zeros(int(GAP_S * RATE_HZ)))
    return np.round(np.concatenate(parts)).astype("<i2")


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE_HZ)
        out.writeframes(samples.tobytes())


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "controller/examples/prompts"
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename, (_words, notes_hz) in PROMPTS.items():
        write_wav(out_dir / filename, melody(notes_hz))
        print(out_dir / filename)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
