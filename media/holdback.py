"""The hold-back window: the newest audio of a recording, kept in memory before it is committed.

Positions are recording-timeline sample indices. Audio leaves the window oldest first, in whole write
units, only once more than `window_samples` are held, so an edit inside the window never touches a file.
It leaves as a list of the held blocks (views, not copies): the chunk writer hands them to one writev.
"""
from __future__ import annotations

from collections import deque
from typing import Callable

import numpy as np

from . import redact
from .blocks import concat
from .redact import Interval

BlockEdit = Callable[[np.ndarray, int], np.ndarray]  # (samples, block_start) -> new samples


class HoldbackWindow:
    def __init__(self, channels: int, window_samples: int, unit_samples: int, base_sample: int = 0):
        if window_samples < 0 or unit_samples <= 0:
            raise ValueError("window_samples must be >= 0 and unit_samples > 0")
        self.channels = channels
        self.window_samples = window_samples
        self.unit_samples = unit_samples
        self.base_sample = base_sample
        self.length = 0
        self.peak_samples = 0
        self._blocks: deque[np.ndarray] = deque()

    @property
    def end_sample(self) -> int:
        return self.base_sample + self.length

    def push(self, samples: np.ndarray) -> None:
        if len(samples):
            self._blocks.append(samples)
            self.length += len(samples)
            self.peak_samples = max(self.peak_samples, self.length)

    def pop_ready(self, max_samples: int) -> list[np.ndarray]:
        """The oldest audio that has aged out of the window, in whole write units and at most `max_samples`
        of it, as a list of blocks; empty while less than one unit has aged out."""
        aged_units = (self.length - self.window_samples) // self.unit_samples
        count = min(aged_units * self.unit_samples, max_samples)
        return self._pop(count) if count > 0 else []

    def pop_oldest(self, max_samples: int) -> list[np.ndarray]:
        """Up to `max_samples` of the oldest audio, aged out or not (the drain when a recording finishes)."""
        return self._pop(min(self.length, max_samples))

    def snapshot(self) -> np.ndarray:
        return concat(list(self._blocks), self.channels)

    def edit(self, interval: Interval, edit: BlockEdit) -> int:
        """Apply a same-length edit to the held blocks inside `interval`; returns the samples covered."""
        covered = interval.clip(self.base_sample, self.end_sample)
        if covered is None:
            return 0
        start = self.base_sample
        for index, block in enumerate(self._blocks):
            if covered.clip(start, start + len(block)) is not None:
                self._blocks[index] = edit(block, start)
            start += len(block)
        return covered.length

    def cut(self, interval: Interval) -> int:
        """Remove the held samples inside `interval`; later samples move up. Returns how many went."""
        covered = interval.clip(self.base_sample, self.end_sample)
        if covered is None:
            return 0
        kept: deque[np.ndarray] = deque()
        start = self.base_sample
        for block in self._blocks:
            rest = redact.cut(block, start, covered)
            if len(rest):
                kept.append(rest)
            start += len(block)
        self._blocks = kept
        self.length -= covered.length
        return covered.length

    def clear(self) -> None:
        self._blocks.clear()
        self.length = 0

    def _pop(self, count: int) -> list[np.ndarray]:
        pieces, needed = [], count
        while needed:
            block = self._blocks[0]
            if len(block) <= needed:
                pieces.append(self._blocks.popleft())
                needed -= len(block)
            else:
                pieces.append(block[:needed])
                self._blocks[0] = block[needed:]
                needed = 0
        self.length -= count
        self.base_sample += count
        return pieces
