"""Audio blocks: int16 numpy arrays of shape (samples, channels), and the format that sizes them.

A "sample" here is one frame: one int16 value per channel. Every position in the package is a sample
index; bytes appear only at the file boundary (spool, chunk files).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_DTYPE = np.dtype("<i2")
SAMPLE_WIDTH_BYTES = 2
SUPPORTED_RATES_HZ = (8000, 16000)
WRITE_UNIT_BYTES = 32 * 1024


@dataclass(frozen=True)
class AudioFormat:
    """Headerless 16-bit little-endian PCM, interleaved (FreeSWITCH RECORD_STEREO: caller left, agent right)."""

    rate_hz: int
    channels: int

    def __post_init__(self) -> None:
        if self.rate_hz not in SUPPORTED_RATES_HZ:
            raise ValueError(f"rate_hz must be one of {SUPPORTED_RATES_HZ}, got {self.rate_hz}")
        if self.channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {self.channels}")

    @property
    def frame_bytes(self) -> int:
        return SAMPLE_WIDTH_BYTES * self.channels

    @property
    def write_unit_samples(self) -> int:
        """Samples per chunk-file write: 32 KiB, which is 0.5 s to 2 s for every supported format."""
        return max(self.rate_hz // 2, WRITE_UNIT_BYTES // self.frame_bytes)

    def seconds_to_samples(self, seconds: float) -> int:
        return int(round(seconds * self.rate_hz))

    def samples_to_bytes(self, samples: int) -> int:
        return samples * self.frame_bytes


def empty(channels: int) -> np.ndarray:
    return np.zeros((0, channels), dtype=SAMPLE_DTYPE)


def from_bytes(data: bytes | bytearray | memoryview, channels: int) -> np.ndarray:
    """A read-only view of whole frames; the caller must pass a multiple of the frame size."""
    return np.frombuffer(data, dtype=SAMPLE_DTYPE).reshape(-1, channels)


def to_bytes(samples: np.ndarray) -> bytes:
    return np.ascontiguousarray(samples, dtype=SAMPLE_DTYPE).tobytes()


def concat(pieces: list[np.ndarray], channels: int) -> np.ndarray:
    if not pieces:
        return empty(channels)
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces, axis=0)
