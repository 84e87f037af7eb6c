"""What a recording holds, read back through the media store's export: which marker seconds, on which side.

Marker audio (freeswitch.emulator.audio) plays a different frequency in every second since the leg answered,
one base for the caller and another for the agent, so an export tells exactly which seconds survived.
"""

from dataclasses import dataclass

import numpy as np
import soundfile

from freeswitch.emulator import audio

WINDOW_S = 0.25
SILENCE_RMS = 64.0          # marker audio is ~5800 RMS; fill and silence are a few units


@dataclass(frozen=True)
class Sides:
    """Marker seconds found on each channel of a stereo export, in the order they occur."""
    rate_hz: int
    frames: int
    caller_on_left: tuple
    agent_on_left: tuple
    caller_on_right: tuple
    agent_on_right: tuple

    @property
    def seconds(self):
        return self.frames / self.rate_hz


def marker_seconds(samples, rate_hz, base_hz, window_s=WINDOW_S):
    """Marker seconds of base `base_hz` in a mono signal, in order of appearance, each run counted once."""
    step = int(rate_hz * window_s)
    found = []
    for start in range(0, len(samples) - step + 1, step):
        window = samples[start:start + step].astype(np.float64)
        if np.sqrt(np.mean(window ** 2)) < SILENCE_RMS:
            continue
        second = audio.marker_index(base_hz, audio.dominant_frequency(window, rate_hz))
        if second is not None and (not found or found[-1] != second):
            found.append(second)
    return tuple(found)


def read_sides(wav_path):
    data, rate_hz = soundfile.read(str(wav_path), dtype="int16", always_2d=True)
    assert data.shape[1] == 2, f"expected a stereo recording, got {data.shape[1]} channel(s)"
    left, right = data[:, 0], data[:, 1]
    caller, agent = audio.CALLER_MARKER_BASE_HZ, audio.AGENT_MARKER_BASE_HZ
    return Sides(rate_hz, len(data), marker_seconds(left, rate_hz, caller), marker_seconds(left, rate_hz, agent),
                 marker_seconds(right, rate_hz, caller), marker_seconds(right, rate_hz, agent))


def export_sides(store, recording_id, directory):
    """Export a finished recording through the media store and read its marker seconds back."""
    path = directory / f"{recording_id}.wav"
    store.open(recording_id).export(path)
    return read_sides(path)


def consecutive(seconds):
    """True if the marker seconds run on without a gap or a step back."""
    return all(b == a + 1 for a, b in zip(seconds, seconds[1:]))
