"""Export a recording to WAV or FLAC (soundfile) and verify its chunks; streamed one chunk at a time.

The chunk list already reflects every operation in the manifest (cuts and redactions rewrote the chunks
they touched), so exporting means concatenating chunks in order. Each chunk read and write, the open and
the close run in the threadpool with the recording's I/O timeout; at most one chunk is in memory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import soundfile

from .blocks import AudioFormat, from_bytes
from .chunkstore import chunk_problem, read_verified
from .manifest import ChunkRef
from .offload import run_blocking
from .results import ExportResult

FORMATS = {".wav": "WAV", ".flac": "FLAC"}


def export_chunks(directory: Path, chunks: list[ChunkRef], fmt: AudioFormat, path, *, format: Optional[str] = None,
                  channel: Optional[int] = None, timeout_s: float) -> ExportResult:
    path = Path(path)
    container = _container(path, format)
    if channel is not None and not 0 <= channel < fmt.channels:
        raise ValueError(f"channel {channel} invalid for a {fmt.channels}-channel recording")
    out_channels = 1 if channel is not None else fmt.channels
    temp = path.with_name(f".{path.name}.partial")
    sink = run_blocking(_open_sink, temp, fmt.rate_hz, out_channels, container, timeout_s=timeout_s)
    written = 0
    try:
        for chunk in chunks:
            written += run_blocking(_copy_chunk, directory, chunk, fmt, sink, channel, timeout_s=timeout_s)
        run_blocking(_close_and_publish, sink, temp, path, timeout_s=timeout_s)
    except BaseException:
        run_blocking(_abandon, sink, temp, timeout_s=timeout_s)
        raise
    return ExportResult(str(path), container, written, fmt.rate_hz, out_channels)


def verify_chunks(directory: Path, chunks: list[ChunkRef], fmt: AudioFormat, timeout_s: float) -> list[tuple[int, str]]:
    """(seq, problem) for every chunk whose file is missing, has the wrong size or the wrong SHA-256."""
    bad = []
    for chunk in chunks:
        problem = run_blocking(_chunk_file_problem, directory, chunk, fmt.frame_bytes, timeout_s=timeout_s)
        if problem:
            bad.append((chunk.seq, problem))
    return bad


def _container(path: Path, format: Optional[str]) -> str:
    if format is not None:
        container = format.upper()
        if container not in FORMATS.values():
            raise ValueError(f"format must be wav or flac, got {format!r}")
        return container
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"cannot tell the format from {path.name!r}: use .wav, .flac or format=") from None


def _open_sink(temp: Path, rate_hz: int, channels: int, container: str) -> soundfile.SoundFile:
    return soundfile.SoundFile(temp, "w", samplerate=rate_hz, channels=channels, format=container, subtype="PCM_16")


def _copy_chunk(directory: Path, chunk: ChunkRef, fmt: AudioFormat, sink: soundfile.SoundFile,
                channel: Optional[int]) -> int:
    samples = from_bytes(read_verified(directory, chunk, fmt.frame_bytes), fmt.channels)
    if channel is not None:
        samples = np.ascontiguousarray(samples[:, channel])
    sink.write(samples)
    return len(samples)


def _close_and_publish(sink: soundfile.SoundFile, temp: Path, path: Path) -> None:
    sink.close()
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)


def _abandon(sink: soundfile.SoundFile, temp: Path) -> None:
    try:
        sink.close()
    except (RuntimeError, soundfile.SoundFileError):
        pass
    temp.unlink(missing_ok=True)


def _chunk_file_problem(directory: Path, chunk: ChunkRef, frame_bytes: int) -> Optional[str]:
    try:
        return chunk_problem((Path(directory) / chunk.file).read_bytes(), chunk, frame_bytes)
    except FileNotFoundError:
        return "file is missing"

