"""Rebuild a recording after a crash: verify committed chunks, salvage or drop the torn last chunk.

Runs as plain blocking code (call it through the threadpool). Order of trust:
  1. a tombstone means the recording is deleted: anything else left in the directory is removed;
  2. the manifest's valid prefix is kept, a torn last line is truncated away;
  3. every sealed chunk is checked against its size and SHA-256 (a mismatch is reported, not hidden);
  4. chunks that were still being written are kept up to their longest prefix whose extent hash
     matches; the first torn or empty one ends salvage and later unsealed chunks are dropped, so no
     audio is spliced across a hole;
  5. chunk files that no manifest entry references (a rewrite cut short, a torn chunk) are deleted.
A recovered recording is finished: a "recover" op and a "finish" line are appended.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from . import manifest
from .chunkstore import (MANIFEST_NAME, chunk_file_name, chunk_problem, fsync_dir, purge_all_but_tombstone,
                         read_tombstone)
from .manifest import ManifestState


@dataclass
class RecoveryReport:
    recording_id: str
    status: str = "ok"  # ok | deleted | damaged
    chunks_verified: int = 0
    bad_chunks: list[tuple[int, str]] = field(default_factory=list)
    salvaged_samples: int = 0
    dropped_files: list[str] = field(default_factory=list)
    torn_manifest_bytes: int = 0
    committed_samples: int = 0


def recover_directory(directory: Path, clock: Callable[[], float]) -> tuple[Optional[ManifestState], RecoveryReport]:
    directory = Path(directory)
    report = RecoveryReport(recording_id=directory.name)
    if read_tombstone(directory) is not None:
        report.status = "deleted"
        report.dropped_files = purge_all_but_tombstone(directory)
        return None, report
    state, report.torn_manifest_bytes = _read_and_truncate_manifest(directory)
    frame_bytes = 2 * state.channels
    _verify_sealed(directory, state, frame_bytes, report)
    lines = _salvage_unsealed(directory, state, frame_bytes, report)
    if state.finished is None:
        lines.append(_recover_op(state, report, clock()))
        lines.append({"t": "finish", "at": clock(), "reason": "recovered after restart",
                      "sample_count": state.committed_samples})
    _append_durably(directory / MANIFEST_NAME, lines, state)
    report.dropped_files += _remove_unreferenced(directory, state)
    report.committed_samples = state.committed_samples
    if report.bad_chunks:
        report.status = "damaged"
    return state, report


def _read_and_truncate_manifest(directory: Path) -> tuple[ManifestState, int]:
    path = directory / MANIFEST_NAME
    data = path.read_bytes()
    entries, valid_bytes = manifest.parse(data)
    torn = len(data) - valid_bytes
    if torn:
        os.truncate(path, valid_bytes)
        _fsync_path(path)
    return manifest.replay(entries), torn


def _verify_sealed(directory: Path, state: ManifestState, frame_bytes: int, report: RecoveryReport) -> None:
    for chunk in state.chunks:
        try:
            problem = chunk_problem((directory / chunk.file).read_bytes(), chunk, frame_bytes)
        except FileNotFoundError:
            problem = "file is missing"
        if problem:
            report.bad_chunks.append((chunk.seq, problem))
        else:
            report.chunks_verified += 1


def _salvage_unsealed(directory: Path, state: ManifestState, frame_bytes: int, report: RecoveryReport) -> list[dict]:
    lines: list[dict] = []
    for seq in sorted(state.extents):
        path = directory / chunk_file_name(seq)
        data = path.read_bytes() if path.exists() else b""
        samples, sha = _longest_verified_prefix(data, state.extents[seq], frame_bytes)
        if samples == 0:
            break
        os.truncate(path, samples * frame_bytes)
        _fsync_path(path)
        entry = manifest.ChunkRef(seq, samples, sha, path.name, ({"op": "salvage"},)).to_entry(
            state.committed_samples, state.channels, state.rate_hz)
        entry["salvaged"] = True
        manifest.apply_entry(state, entry)
        lines.append(entry)
        report.salvaged_samples += samples
        if samples * frame_bytes != len(data):
            break  # torn here: anything written after it would follow a hole
    state.extents.clear()
    return lines


def _longest_verified_prefix(data: bytes, extents: list[tuple[int, str]], frame_bytes: int) -> tuple[int, str]:
    hasher, hashed, best = hashlib.sha256(), 0, (0, "")
    for sample_count, sha in sorted(extents):
        end = sample_count * frame_bytes
        if end > len(data):
            break
        hasher.update(data[hashed:end])
        hashed = end
        if hasher.hexdigest() != sha:
            break
        best = (sample_count, sha)
    return best


def _recover_op(state: ManifestState, report: RecoveryReport, now: float) -> dict:
    return {"t": "op", "op_id": state.op_count + 1, "op": "recover", "actor": "system",
            "reason": "restart after an unclean stop", "at": now, "salvaged_samples": report.salvaged_samples,
            "bad_chunks": [seq for seq, _ in report.bad_chunks], "torn_manifest_bytes": report.torn_manifest_bytes}


def _append_durably(path: Path, entries: list[dict], state: ManifestState) -> None:
    if not entries:
        return
    with open(path, "ab") as handle:
        for entry in entries:
            handle.write(manifest.encode(entry))
            if entry["t"] != "chunk":
                manifest.apply_entry(state, entry)
        handle.flush()
        os.fdatasync(handle.fileno())


def _remove_unreferenced(directory: Path, state: ManifestState) -> list[str]:
    referenced = {chunk.file for chunk in state.chunks} | {MANIFEST_NAME}
    dropped = []
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.name not in referenced:
            path.unlink()
            dropped.append(path.name)
    if dropped:
        fsync_dir(directory)
    return dropped


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
