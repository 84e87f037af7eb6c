"""Files of one recording: headerless PCM chunk files, the append-only manifest, the tombstone.

No signal logic here. Small manifest appends happen inline (page cache); fsync, close, whole-chunk reads
and writes and unlinks run in gevent's threadpool. A chunk is committed once its data is fdatasync'ed
and its manifest line is durable.

While a chunk is being written, every write call (one writev of one or more whole write units: all the
audio that aged out of the hold-back window in one append, up to the chunk's end) is followed by one
"extent" line with the chunk's length and the SHA-256 of that prefix. Why that is enough: when append()
returns, every whole unit that aged out is written and covered by an extent line, so a SIGKILL then
loses at most the hold-back window plus the part of one unit not yet aged out; a SIGKILL inside
append() loses that append's audio only (the caller never saw it acknowledged). Recovery keeps the
longest prefix whose extent hash matches, so a torn or garbled tail is still detected and dropped.
One extent per write call instead of one per unit changes only how many lines a long backlog writes.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from . import manifest
from .blocks import AudioFormat, from_bytes
from .errors import IntegrityError, RecordingGone
from .manifest import ChunkRef
from .offload import run_blocking, spawn_blocking, wait

MANIFEST_NAME = "manifest.jsonl"
TOMBSTONE_NAME = "tombstone.json"
CHUNK_SUFFIX = ".pcm"
WRITEV_MAX_PIECES = 16  # far below IOV_MAX (1024 on Linux)
RECORDING_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_recording_id(recording_id: str) -> str:
    if not RECORDING_ID_RE.match(recording_id or ""):
        raise ValueError(f"recording id {recording_id!r} must match {RECORDING_ID_RE.pattern}")
    return recording_id


def chunk_file_name(seq: int) -> str:
    return f"{seq:08d}{CHUNK_SUFFIX}"


def sha256_hex(data: Any) -> str:
    return hashlib.sha256(data).hexdigest()


class ChunkWriter:
    """The chunk being appended: one writev and one extent line per write call."""

    def __init__(self, files: "RecordingFiles", seq: int):
        self.seq = seq
        self.file = chunk_file_name(seq)
        self.sample_count = 0
        self._files = files
        self._frame_bytes = files.fmt.frame_bytes
        self._hash = hashlib.sha256()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        self._fd: Optional[int] = os.open(files.directory / self.file, flags, 0o640)

    def write(self, pieces: list[np.ndarray]) -> None:
        """Append C-contiguous int16 blocks in one system call, then record the new length and prefix hash."""
        if len(pieces) > WRITEV_MAX_PIECES:  # many small live reads: one copy beats a long iovec
            pieces = [np.concatenate(pieces)]
        size_bytes = 0
        for piece in pieces:
            size_bytes += piece.nbytes
        written = os.writev(self._fd, pieces)
        if written != size_bytes:  # regular files only write short on a full disk or a signal
            raise OSError(f"short write to {self.file}: {written} of {size_bytes} bytes")
        for piece in pieces:
            self._hash.update(piece)
        self.sample_count += size_bytes // self._frame_bytes
        self._files.append_line(manifest.encode_extent(self.seq, self.sample_count, self._hash.hexdigest()))

    def sealed_ref(self, marks: Iterable[dict] = ()) -> ChunkRef:
        return ChunkRef(self.seq, self.sample_count, self._hash.hexdigest(), self.file, tuple(marks))

    def detach_fd(self) -> int:
        fd, self._fd = self._fd, None
        return fd

    def abandon(self) -> None:
        if self._fd is not None:
            os.close(self.detach_fd())


class RecordingFiles:
    """The directory of one recording. Not safe for concurrent use: the Recording serialises calls."""

    def __init__(self, directory: Path, fmt: AudioFormat, timeout_s: float):
        self.directory = Path(directory)
        self.fmt = fmt
        self.timeout_s = timeout_s
        self._manifest_fd: Optional[int] = None
        self._pending = None  # at most one chunk commit in flight

    # -- manifest -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST_NAME

    @property
    def tombstone_path(self) -> Path:
        return self.directory / TOMBSTONE_NAME

    def create(self, open_entry: dict) -> None:
        run_blocking(_create_dir_and_manifest, self.directory, manifest.encode(open_entry), timeout_s=self.timeout_s)
        self._open_manifest()

    def append_line(self, line: bytes) -> None:
        if self._manifest_fd is None:  # reopened after close, e.g. a cut on a finished recording
            self._open_manifest()
        os.write(self._manifest_fd, line)  # O_APPEND: one write per line keeps lines whole across threads

    def append_durable(self, entry: dict) -> None:
        self.append_line(manifest.encode(entry))
        run_blocking(os.fdatasync, self._manifest_fd, timeout_s=self.timeout_s)

    def _open_manifest(self) -> None:
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._manifest_fd = os.open(self.manifest_path, flags)

    # -- chunk writing and commit --------------------------------------------------------------
    def open_chunk(self, seq: int) -> ChunkWriter:
        return ChunkWriter(self, seq)

    def commit_async(self, writer: ChunkWriter, chunk_entry: dict) -> None:
        """Seal a chunk off the hub: fdatasync and close it, then append its line and sync the manifest."""
        self.wait_pending()
        line = manifest.encode(chunk_entry)
        self._pending = spawn_blocking(_seal_chunk, writer.detach_fd(), self._manifest_fd, line)

    def wait_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            wait(pending, timeout_s=self.timeout_s, what="chunk commit")

    def write_chunks(self, first_seq: int, pieces: list[tuple[np.ndarray, list[dict]]]) -> list[ChunkRef]:
        """New whole chunk files (used by rewrites), all durable when this returns."""
        refs, blobs = [], []
        for offset, (samples, marks) in enumerate(pieces):
            data = np.ascontiguousarray(samples).tobytes()
            refs.append(ChunkRef(first_seq + offset, len(samples), sha256_hex(data),
                                 chunk_file_name(first_seq + offset), tuple(marks)))
            blobs.append(data)
        if refs:
            run_blocking(_write_files_durably, self.directory, [r.file for r in refs], blobs, timeout_s=self.timeout_s)
        return refs

    def read_chunk(self, ref: ChunkRef) -> np.ndarray:
        """The chunk's samples, checked against its size and SHA-256."""
        data = run_blocking(read_verified, self.directory, ref, self.fmt.frame_bytes, timeout_s=self.timeout_s)
        return from_bytes(data, self.fmt.channels)

    def remove_chunks(self, files: Iterable[str]) -> None:
        run_blocking(_unlink_all, self.directory, list(files), timeout_s=self.timeout_s)

    # -- end of life ------------------------------------------------------------------------------
    def close(self) -> None:
        self.wait_pending()
        if self._manifest_fd is not None:
            fd, self._manifest_fd = self._manifest_fd, None
            run_blocking(_sync_and_close, fd, timeout_s=self.timeout_s)

    def destroy(self, tombstone: dict) -> None:
        """Leave only the tombstone: it is made durable first, then every chunk and the manifest go."""
        try:
            self.wait_pending()
        finally:
            fd, self._manifest_fd = self._manifest_fd, None
            if fd is not None:
                os.close(fd)
        run_blocking(write_tombstone_and_purge, self.directory, tombstone, timeout_s=self.timeout_s)


# -- blocking helpers (run on worker threads or during recovery) --------------------------------------
def _create_dir_and_manifest(directory: Path, first_line: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=False)
    _write_file_durably(directory / MANIFEST_NAME, first_line)
    fsync_dir(directory.parent)


def _seal_chunk(chunk_fd: int, manifest_fd: int, line: bytes) -> None:
    try:
        os.fdatasync(chunk_fd)
    finally:
        os.close(chunk_fd)
    os.write(manifest_fd, line)
    os.fdatasync(manifest_fd)


def _write_files_durably(directory: Path, names: list[str], blobs: list[bytes]) -> None:
    """Write every file, then sync them all and the directory once: one wait instead of one per file."""
    fds = []
    try:
        for name, data in zip(names, blobs):
            fds.append(os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                               0o640))
            view, offset = memoryview(data), 0
            while offset < len(data):
                offset += os.write(fds[-1], view[offset:])
        for fd in fds:
            os.fdatasync(fd)
    finally:
        for fd in fds:
            os.close(fd)
    fsync_dir(directory)


def _write_file_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o640)
    try:
        view, offset = memoryview(data), 0
        while offset < len(data):
            offset += os.write(fd, view[offset:])
        os.fdatasync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def _sync_and_close(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _unlink_all(directory: Path, names: list[str]) -> None:
    for name in names:
        try:
            os.unlink(directory / name)
        except FileNotFoundError:
            pass
    fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_verified(directory: Path, ref: ChunkRef, frame_bytes: int) -> bytes:
    try:
        data = (Path(directory) / ref.file).read_bytes()
    except FileNotFoundError as exc:
        raise IntegrityError(f"chunk {ref.seq}: file {ref.file} is missing") from exc
    problem = chunk_problem(data, ref, frame_bytes)
    if problem:
        raise IntegrityError(f"chunk {ref.seq}: {problem}")
    return data


def chunk_problem(data: bytes, ref: ChunkRef, frame_bytes: int) -> Optional[str]:
    if len(data) != ref.sample_count * frame_bytes:
        return f"size {len(data)} bytes, manifest says {ref.sample_count * frame_bytes}"
    if sha256_hex(data) != ref.sha256:
        return "SHA-256 mismatch"
    return None


def write_tombstone_and_purge(directory: Path, tombstone: dict) -> None:
    directory = Path(directory)
    temp = directory / (TOMBSTONE_NAME + ".tmp")
    temp.unlink(missing_ok=True)
    _write_file_durably(temp, (json.dumps(tombstone, sort_keys=True) + "\n").encode())
    os.replace(temp, directory / TOMBSTONE_NAME)
    fsync_dir(directory)
    purge_all_but_tombstone(directory)


def purge_all_but_tombstone(directory: Path) -> list[str]:
    removed = []
    for path in sorted(Path(directory).iterdir()):
        if path.name != TOMBSTONE_NAME and path.is_file():
            path.unlink()
            removed.append(path.name)
    fsync_dir(directory)
    return removed


def read_tombstone(directory: Path) -> Optional[dict]:
    path = Path(directory) / TOMBSTONE_NAME
    if not path.exists():
        return None
    return json.loads(path.read_text())


def require_live(directory: Path) -> None:
    if (Path(directory) / TOMBSTONE_NAME).exists():
        raise RecordingGone(f"recording {Path(directory).name} was deleted")
    if not (Path(directory) / MANIFEST_NAME).exists():
        raise RecordingGone(f"recording {Path(directory).name} does not exist")
