"""Edits of committed audio: plan and rewrite only the chunks an interval overlaps.

The pure part decides which chunks an interval touches and where their marks go; the rewrite part reads
those chunks, writes their replacements as new files and reports what to put in the manifest. The
caller makes the manifest line durable before removing the old files.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import redact
from .chunkstore import RecordingFiles
from .manifest import ChunkRef
from .redact import Channels, Interval

OPEN_END = 1 << 62  # the end of a mark that is still running (live mask, pause)


@dataclass(frozen=True)
class Rewrite:
    first_index: int            # index in the chunk list of the first replaced chunk
    removed: tuple[ChunkRef, ...]
    inserted: tuple[ChunkRef, ...]
    next_seq: int


def overlapping(starts: list[int], chunks: list[ChunkRef], interval: Interval) -> range:
    """Indices of the chunks that share at least one sample with a non-empty interval."""
    first = bisect_right(starts, interval.start) - 1
    last = bisect_right(starts, interval.end - 1) - 1
    while last > first and chunks[last].sample_count == 0:
        last -= 1
    return range(max(first, 0), last + 1)


def cut_chunks(files: RecordingFiles, starts: list[int], chunks: list[ChunkRef], interval: Interval,
               next_seq: int) -> Rewrite:
    """Remove `interval`: fully covered chunks just go, the one or two partial ones are rewritten."""
    span = overlapping(starts, chunks, interval)
    first, last = span[0], span[-1]
    pieces: list[tuple[np.ndarray, list[dict]]] = []
    head = interval.start - starts[first]
    tail_from = interval.end - starts[last]
    cut_mark = {"op": "cut", "start": head, "end": head}
    if first == last:
        if head > 0 or tail_from < chunks[last].sample_count:
            samples = files.read_chunk(chunks[first])
            marks = shift_marks(chunks[first].marks, Interval(head, tail_from)) + [cut_mark]
            pieces.append((np.concatenate((samples[:head], samples[tail_from:])), marks))
    else:
        if head > 0:
            samples = files.read_chunk(chunks[first])
            pieces.append((samples[:head], clip_marks(chunks[first].marks, 0, head) + [cut_mark]))
        if tail_from < chunks[last].sample_count:
            samples = files.read_chunk(chunks[last])
            marks = clip_marks(chunks[last].marks, tail_from, chunks[last].sample_count, -tail_from)
            pieces.append((samples[tail_from:], [{"op": "cut", "start": 0, "end": 0}] + marks))
    inserted = files.write_chunks(next_seq, pieces)
    return Rewrite(first, tuple(chunks[first:last + 1]), tuple(inserted), next_seq + len(inserted))


def redact_chunks(files: RecordingFiles, starts: list[int], chunks: list[ChunkRef], interval: Interval,
                  fill: str, channels: Channels, mark: dict, next_seq: int) -> Rewrite:
    """Replace the samples of `interval` by `fill` in every chunk it overlaps, keeping lengths."""
    span = overlapping(starts, chunks, interval)
    every_channel = channels is None or len(channels) == files.fmt.channels
    pieces = []
    for index in span:
        chunk, start = chunks[index], starts[index]
        local = interval.clip(start, start + chunk.sample_count)
        if every_channel and local.length == chunk.sample_count:  # wholly replaced: no need to read it
            samples = redact.fill_block(fill, start, chunk.sample_count, files.fmt.channels, files.fmt.rate_hz)
        else:
            samples = redact.replace(files.read_chunk(chunk), start, interval, fill, files.fmt.rate_hz, channels)
        pieces.append((samples, list(chunk.marks) + [dict(mark, start=local.start - start, end=local.end - start)]))
    inserted = files.write_chunks(next_seq, pieces)
    return Rewrite(span[0], tuple(chunks[span[0]:span[-1] + 1]), tuple(inserted), next_seq + len(inserted))


def clip_marks(marks, lo: int, hi: int, shift: int = 0) -> list[dict]:
    """Marks (chunk-relative) that fall in [lo, hi), clipped and moved by `shift`."""
    out = []
    for mark in marks:
        start, end = max(mark["start"], lo), min(mark["end"], hi)
        if start < end or (mark["start"] == mark["end"] and lo <= mark["start"] < hi):
            out.append(dict(mark, start=start + shift, end=max(start, end) + shift))
    return out


def shift_marks(marks, removed: Interval) -> list[dict]:
    """Chunk-relative marks after `removed` is cut out of the chunk."""
    return [dict(mark, start=redact.position_after_cut(mark["start"], removed),
                 end=redact.position_after_cut(mark["end"], removed)) for mark in marks]


def marks_after_cut(marks: list[dict], removed: Interval) -> list[dict]:
    """Absolute marks (recording timeline) after a cut; a running mark keeps its open end."""
    out = []
    for mark in marks:
        end = mark["end"] if mark["end"] >= OPEN_END else redact.position_after_cut(mark["end"], removed)
        out.append(dict(mark, start=redact.position_after_cut(mark["start"], removed), end=end))
    return out


def marks_for_chunk(marks: list[dict], lo: int, hi: int) -> list[dict]:
    """Absolute marks overlapping [lo, hi) as chunk-relative marks."""
    return clip_marks(marks, lo, hi, -lo)


def still_open(marks: list[dict], sealed_end: int) -> list[dict]:
    """Drop marks that lie wholly inside sealed chunks."""
    return [m for m in marks if m["end"] > sealed_end or (m["start"] == m["end"] and m["start"] >= sealed_end)]


def optional_interval(start: int, end: int) -> Optional[Interval]:
    return Interval(start, end) if start < end else None
