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
PAGE_BYTES = 4096
MIN_WRITE_SECONDS = 0.5
BUFFER_BYTES_PER_STREAM = 64 * 1024  # what a stream may hold beyond its hold-back window


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
        """The step in which audio leaves the hold-back window: the fewest whole 4 KiB pages holding 0.5 s
        (0.512 s for every supported format). Page multiples keep chunk writes page-aligned, which costs
        the kernel a third less than writing 0.5 s as is; a small unit bounds what a crash can lose."""
        min_bytes = self.samples_to_bytes(int(self.rate_hz * MIN_WRITE_SECONDS))
        return -(-min_bytes // PAGE_BYTES) * PAGE_BYTES // self.frame_bytes

    @property
    def read_block_bytes(self) -> int:
        """The largest spool read that keeps a stream within BUFFER_BYTES_PER_STREAM beyond its window:
        before a read the window may hold almost one write unit that has aged out but is not written yet."""
        return BUFFER_BYTES_PER_STREAM - self.samples_to_bytes(self.write_unit_samples)

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
