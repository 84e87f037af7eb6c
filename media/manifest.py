"""The manifest: an append-only JSON-lines log per recording, and the pure replay that rebuilds state.

Line kinds ("t"):
  open    recording id, format, settings, created_at
  extent  progress of the chunk being written: seq, sample_count so far, SHA-256 of that prefix
  chunk   a sealed chunk appended at the end: seq, first_sample, sample_count, channels, rate_hz,
          sha256, file, marks (chunk-relative [start, end) ranges with the op that made them)
  op      an operation: op_id, op, actor, reason, at, sample ranges; when it rewrote committed audio,
          also "remove" (seqs, contiguous) and "insert" (chunk entries that take their place)
  finish  the recording is complete
The order of chunks is the order of the log; a chunk's first_sample is where it started when written,
and positions are recomputed as running sums, since later cuts move everything after them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import ManifestError


@dataclass(frozen=True)
class ChunkRef:
    seq: int
    sample_count: int
    sha256: str
    file: str
    marks: tuple = ()

    @classmethod
    def from_entry(cls, entry: dict) -> "ChunkRef":
        try:
            return cls(int(entry["seq"]), int(entry["sample_count"]), str(entry["sha256"]), str(entry["file"]),
                       tuple(entry.get("marks", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"bad chunk entry {entry!r}: {exc}") from exc

    def to_entry(self, first_sample: int, channels: int, rate_hz: int) -> dict:
        return {"t": "chunk", "seq": self.seq, "first_sample": first_sample, "sample_count": self.sample_count,
                "channels": channels, "rate_hz": rate_hz, "sha256": self.sha256, "file": self.file,
                "marks": list(self.marks)}


@dataclass
class ManifestState:
    recording_id: str
    rate_hz: int
    channels: int
    created_at: float
    settings: dict
    chunks: list[ChunkRef] = field(default_factory=list)
    next_seq: int = 0
    extents: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    op_count: int = 0
    finished: Optional[dict] = None

    @property
    def committed_samples(self) -> int:
        return sum(chunk.sample_count for chunk in self.chunks)


def encode(entry: dict) -> bytes:
    return (json.dumps(entry, separators=(",", ":"), sort_keys=False) + "\n").encode()


def encode_extent(seq: int, sample_count: int, sha256_hex: str) -> bytes:
    """Hot path (one per write unit): formatted by hand, same JSON as encode() would give."""
    return f'{{"t":"extent","seq":{seq},"sample_count":{sample_count},"sha256":"{sha256_hex}"}}\n'.encode()


def parse(data: bytes) -> tuple[list[dict], int]:
    """Entries of a manifest and the byte length of its valid prefix.

    A last line without its newline or not valid JSON is a torn write and ends the valid prefix; a bad
    line followed by good ones is corruption and raises ManifestError.
    """
    entries: list[dict] = []
    offset = 0
    lines = data.split(b"\n")
    for index, line in enumerate(lines):
        is_last = index >= len(lines) - 2
        if index == len(lines) - 1:  # text after the final newline: torn, or empty
            break
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or "t" not in entry:
                raise ValueError("not a manifest entry")
        except ValueError as exc:
            if is_last:
                break
            raise ManifestError(f"corrupt manifest line {index + 1}: {exc}") from exc
        entries.append(entry)
        offset += len(line) + 1
    return entries, offset


def replay(entries: list[dict]) -> ManifestState:
    if not entries or entries[0].get("t") != "open":
        raise ManifestError("manifest does not start with an open entry")
    state = _open_state(entries[0])
    for entry in entries[1:]:
        apply_entry(state, entry)
    return state


def apply_entry(state: ManifestState, entry: dict) -> None:
    kind = entry.get("t")
    if kind == "extent":
        state.extents.setdefault(int(entry["seq"]), []).append((int(entry["sample_count"]), str(entry["sha256"])))
    elif kind == "chunk":
        chunk = ChunkRef.from_entry(entry)
        state.extents.pop(chunk.seq, None)
        state.chunks.append(chunk)
        state.next_seq = max(state.next_seq, chunk.seq + 1)
    elif kind == "op":
        state.op_count = max(state.op_count, int(entry.get("op_id", 0)))
        if "remove" in entry or "insert" in entry:
            apply_rewrite(state, entry.get("remove", []), [ChunkRef.from_entry(e) for e in entry.get("insert", [])])
    elif kind == "finish":
        state.finished = entry
    elif kind == "open":
        raise ManifestError("second open entry in manifest")
    else:
        raise ManifestError(f"unknown manifest entry kind {kind!r}")


def apply_rewrite(state: ManifestState, remove: list[int], insert: list[ChunkRef]) -> None:
    """Replace the contiguous run of chunks `remove` by `insert`, in place."""
    seqs = [chunk.seq for chunk in state.chunks]
    if not remove:
        raise ManifestError("rewrite without chunks to replace")
    try:
        at = seqs.index(remove[0])
    except ValueError as exc:
        raise ManifestError(f"rewrite names unknown chunk {remove[0]}") from exc
    if seqs[at:at + len(remove)] != list(remove):
        raise ManifestError(f"rewrite run {remove} is not contiguous in the manifest")
    state.chunks[at:at + len(remove)] = insert
    for chunk in insert:
        state.next_seq = max(state.next_seq, chunk.seq + 1)


def _open_state(entry: dict[str, Any]) -> ManifestState:
    try:
        return ManifestState(recording_id=str(entry["recording_id"]), rate_hz=int(entry["rate_hz"]),
                             channels=int(entry["channels"]), created_at=float(entry["created_at"]),
                             settings=dict(entry.get("settings", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"bad open entry: {exc}") from exc
