"""Pure signal operations over blocks: mute, fill (silence, tone, noise), cut, and the live ingest render.

Every function takes the block's absolute start position, so processing a recording block by block gives
exactly the same samples as processing it whole. Nothing here touches files or the clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Optional, Sequence

import numpy as np

from .blocks import SAMPLE_DTYPE

FILL_KINDS = ("silence", "tone", "noise")
GAP_FILLS = ("skip",) + FILL_KINDS
TONE_HZ = 1000
TONE_AMPLITUDE = 8000  # about -12 dBFS: clearly audible, never clipping
NOISE_AMPLITUDE = 300  # about -40 dBFS comfort noise
NOISE_SEED = 20240601

Channels = Optional[tuple[int, ...]]  # None means every channel


@dataclass(frozen=True, order=True)
class Interval:
    """Half-open sample range [start, end) in one timeline."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"bad interval [{self.start}, {self.end})")

    @property
    def length(self) -> int:
        return self.end - self.start

    def clip(self, lo: int, hi: int) -> Optional["Interval"]:
        """The part inside [lo, hi), or None when they do not overlap."""
        start, end = max(self.start, lo), min(self.end, hi)
        return Interval(start, end) if start < end else None


def position_after_cut(position: int, cut: Interval) -> int:
    """Where a sample index lands once `cut` is removed from its timeline."""
    if position <= cut.start:
        return position
    if position >= cut.end:
        return position - cut.length
    return cut.start


@lru_cache(maxsize=None)
def tone_table(rate_hz: int) -> np.ndarray:
    """One second of a 1 kHz sine; 1 kHz divides every supported rate, so the table tiles seamlessly."""
    t = np.arange(rate_hz) / rate_hz
    table = np.round(TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(SAMPLE_DTYPE)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=None)
def noise_table(rate_hz: int) -> np.ndarray:
    """One second of low-level white noise, seeded so that a gap renders the same every time."""
    rng = np.random.default_rng(NOISE_SEED)
    table = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=rate_hz).astype(SAMPLE_DTYPE)
    table.setflags(write=False)
    return table


def fill_signal(kind: str, start_pos: int, count: int, rate_hz: int) -> np.ndarray:
    """Mono fill of `count` samples; tone and noise are indexed by absolute position (phase-continuous)."""
    if kind == "silence":
        return np.zeros(count, dtype=SAMPLE_DTYPE)
    if kind == "tone":
        table = tone_table(rate_hz)
    elif kind == "noise":
        table = noise_table(rate_hz)
    else:
        raise ValueError(f"fill must be one of {FILL_KINDS}, got {kind!r}")
    offset = start_pos % len(table)
    repeats = -(-(offset + count) // len(table))
    return np.tile(table, repeats)[offset:offset + count]


def fill_block(kind: str, start_pos: int, count: int, channels: int, rate_hz: int) -> np.ndarray:
    mono = fill_signal(kind, start_pos, count, rate_hz)
    return np.repeat(mono[:, None], channels, axis=1)


def replace(samples: np.ndarray, block_start: int, interval: Interval, kind: str, rate_hz: int,
            channels: Channels = None) -> np.ndarray:
    """A copy of the block with the part inside `interval` replaced by `kind`; the input is left alone."""
    local = interval.clip(block_start, block_start + len(samples))
    if local is None:
        return samples
    lo, hi = local.start - block_start, local.end - block_start
    mono = fill_signal(kind, local.start, hi - lo, rate_hz)
    out = samples.copy()
    for channel in _channel_list(channels, samples.shape[1]):
        out[lo:hi, channel] = mono
    return out


def mute(samples: np.ndarray, block_start: int, interval: Interval, channels: Channels = None) -> np.ndarray:
    """Silence inside `interval` (all channels or the given ones); same length, everything else untouched."""
    return replace(samples, block_start, interval, "silence", 8000, channels)


def cut(samples: np.ndarray, block_start: int, interval: Interval) -> np.ndarray:
    """The block without the samples inside `interval`."""
    local = interval.clip(block_start, block_start + len(samples))
    if local is None:
        return samples
    lo, hi = local.start - block_start, local.end - block_start
    return np.concatenate((samples[:lo], samples[hi:]), axis=0)


def render_input(samples: np.ndarray, input_start: int, rate_hz: int, *, pauses: Sequence[Interval] = (),
                 gap_fill: str = "skip", masks: Iterable[tuple[Interval, Channels]] = ()) -> np.ndarray:
    """Turn spool samples into recording samples: masks zero in place, pauses are dropped or filled.

    `pauses` and `masks` are in the input (spool) timeline; pauses must not overlap each other. A fill's
    phase follows the input position. Returns the input object itself when nothing applies (no copy).
    """
    out = samples
    for interval, channels in masks:
        out = mute(out, input_start, interval, channels)
    if gap_fill != "skip":
        for interval in pauses:
            out = replace(out, input_start, interval, gap_fill, rate_hz)
        return out
    for interval in sorted(pauses, reverse=True):  # from the end, so earlier positions stay valid
        out = cut(out, input_start, interval)
    return out


def _channel_list(channels: Channels, count: int) -> Sequence[int]:
    if channels is None:
        return range(count)
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise ValueError(f"channel {bad[0]} out of range for {count} channel(s)")
    return channels
