"""The file layer under a recording media bug: what switch_core_file and mod_sndfile write (WAV header, buffering).

`FileSink` is the thin I/O shell: a placeholder WAV header while open, 65,536-byte write buffering, the final
header at close; headerless PCM for .raw/.r8/.r16. recorder.py's MediaBug decides what goes in.
"""

from __future__ import annotations

import os
import struct

WAV_HEADER_BYTES = 44


class RecorderError(Exception):
    """Base of this module's errors."""


class RecordOpenError(RecorderError):
    """The file cannot be created (FreeSWITCH answers `-ERR Cannot record session!`)."""


def wav_header(rate_hz: int, channels: int, data_bytes: int | None = None) -> bytes:
    """The 44-byte PCM16 header libsndfile writes; with no size, the placeholder (RIFF 8, data 0) of an open file."""
    riff_bytes, data_field = (8, 0) if data_bytes is None else (36 + data_bytes, data_bytes)
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff_bytes, b"WAVE", b"fmt ", 16, 1, channels, rate_hz,
                       rate_hz * channels * 2, channels * 2, 16, b"data", data_field)


class FileSink:
    """The core file layer for one recording: header, write buffering, final header at close.

    With buffering, bytes reach the disk in writes of exactly `buffer_bytes` (the rest at close); without, a write
    per `unit_bytes` (one mono packet's worth, as the recording thread hands them over). A WAV holds the
    placeholder header until close. Write errors are remembered, not raised, as FreeSWITCH logs them and goes on.
    """

    def __init__(self, path: str, *, channels: int, rate_hz: int, buffer_bytes: int, unit_bytes: int,
                 wav: bool, append: bool = False):
        self.path, self.channels, self.rate_hz, self.wav, self.append = path, channels, rate_hz, wav, append
        self.buffer_bytes, self.unit_bytes = buffer_bytes, unit_bytes
        self.failed = False
        self._pending = bytearray()
        self._data_bytes = 0               # audio bytes in the file, including any appended to
        self._fd: int | None = None

    def open(self) -> None:
        directory = os.path.dirname(self.path)
        try:
            if directory:
                os.makedirs(directory, exist_ok=True)
            if self.append and os.path.exists(self.path):
                self._fd = os.open(self.path, os.O_WRONLY)
                self._data_bytes = self._existing_data_bytes()
                os.lseek(self._fd, 0, os.SEEK_END)
                return
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            if self.wav:
                os.write(self._fd, wav_header(self.rate_hz, self.channels))
        except OSError as error:
            self._close_fd()
            raise RecordOpenError(f"cannot record to {self.path}: {error.strerror}") from error

    def _existing_data_bytes(self) -> int:
        size = os.fstat(self._fd).st_size
        if not self.wav:
            return size
        with open(self.path, "rb") as existing:
            header = existing.read(WAV_HEADER_BYTES)
        expected = wav_header(self.rate_hz, self.channels)
        if header[:4] != expected[:4] or header[8:40] != expected[8:40]:
            self._close_fd()
            raise RecordOpenError(f"cannot append to {self.path}: not a {self.channels}-channel PCM16 WAV")
        return size - WAV_HEADER_BYTES

    def write(self, data: bytes | memoryview) -> None:
        self._pending += data
        limit = self.buffer_bytes or self.unit_bytes
        while len(self._pending) >= limit:
            self._write_now(limit)

    def close(self) -> int | None:
        """Flush, finalise the header, close; the file's size (None if it could not be stat'ed)."""
        while self._pending:
            self._write_now(min(len(self._pending), self.buffer_bytes or len(self._pending)))
        try:
            if self.wav and self._fd is not None:
                os.pwrite(self._fd, wav_header(self.rate_hz, self.channels, self._data_bytes), 0)
            return os.fstat(self._fd).st_size if self._fd is not None else None
        except OSError:
            self.failed = True
            return None
        finally:
            self._close_fd()

    def _write_now(self, n: int) -> None:
        chunk = bytes(self._pending[:n])
        del self._pending[:n]
        try:
            written = 0
            while written < n:
                written += os.write(self._fd, chunk[written:])
            self._data_bytes += n
        except OSError:
            self.failed = True

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
