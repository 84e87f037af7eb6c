"""Tail the spool file FreeSWITCH is writing for a call and feed it to a Recording.

Start FreeSWITCH with spool_record_vars() so the spool stays current (no 64 KiB write buffer, no 25
pre-buffered frames): then "cut the last N seconds" cuts what the agent heard. A `.raw`/`.r8`/`.r16`
spool is headerless 16-bit PCM; a `.wav` spool has a 44-byte header whose sizes stay 0 until the
recording stops, so the reader ignores them while the file grows and treats a filled-in header (once
its data is read) as the end of the recording.

Reads come from the page cache and run inline. They are at most `max_read_bytes`, by default the
format's read_block_bytes (48 KiB for 8 kHz stereo): as large as the 64 KiB per-stream buffer bound
allows, so a backlog (a restart, a slow hub) pays the per-read work rarely; a live call yields a few
hundred bytes per poll. The tailer yields to the hub after every YIELD_EVERY_BYTES read (about a
millisecond of work) and never waits without a timeout.
"""
from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Optional

import gevent
import gevent.event

from .blocks import AudioFormat
from .errors import MediaError, MediaTimeout, RecordingGone, SpoolError
from .results import OpResult

SPOOL_RECORD_VARS = {"RECORD_STEREO": "true", "enable_file_write_buffering": "false", "RECORD_PRE_BUFFER_FRAMES": "0"}
WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
YIELD_EVERY_BYTES = 512 * 1024


def spool_record_vars(stereo: bool = True) -> str:
    """The `{k=v,...}` argument for `uuid_record <uuid> start <path> 0 {...}` that keeps the spool current."""
    variables = dict(SPOOL_RECORD_VARS, RECORD_STEREO="true" if stereo else "false")
    return "{" + ",".join(f"{k}={v}" for k, v in variables.items()) + "}"


class SpoolReader:
    """Returns the whole frames appended to the spool since the previous read; never waits."""

    def __init__(self, path, fmt: AudioFormat, *, max_read_bytes: Optional[int] = None):
        self.path = Path(path)
        self.fmt = fmt
        self.is_wav = self.path.suffix.lower() == ".wav"
        max_read_bytes = fmt.read_block_bytes if max_read_bytes is None else max_read_bytes
        self.max_read_bytes = max(fmt.frame_bytes, max_read_bytes - max_read_bytes % fmt.frame_bytes)
        self.bytes_read = 0
        self.restarts = 0
        self.finalised = False  # WAV only: the header holds its real sizes and all data was read
        self._fd: Optional[int] = None
        self._offset = 0
        self._data_start: Optional[int] = None if self.is_wav else 0
        self._data_end: Optional[int] = None
        self._backlog_end = 0  # data known to be there up to this offset, as of the last size check

    def read(self) -> bytes:
        if self._offset + self.max_read_bytes <= self._backlog_end:
            data = os.pread(self._fd, self.max_read_bytes, self._offset)
            if len(data) == self.max_read_bytes:
                self._offset += len(data)
                self.bytes_read += len(data)
                return data
            self._backlog_end = 0  # the file shrank (a restart): look at it again
        return self._read_checked()

    def _read_checked(self) -> bytes:
        """A read that asks the file's size first. Between two of them, a backlog that size showed is read
        on without asking: the audio is already there, and a restart (O_TRUNC) shows as a short read."""
        self._backlog_end = 0
        if self._fd is None and not self._open():
            return b""
        size = os.fstat(self._fd).st_size
        if size < self._offset:  # FreeSWITCH started this path again (O_TRUNC): read it from the top
            self.restarts += 1
            self._offset, self._data_end, self.finalised = 0, None, False
            self._data_start = None if self.is_wav else 0
        if self._data_start is None and not self._parse_wav_header(size):
            return b""
        limit = size if self._data_end is None else min(size, self._data_end)
        available = limit - self._offset
        available -= available % self.fmt.frame_bytes
        if available <= 0:
            if self.is_wav:
                self._check_final(size)
            return b""
        data = os.pread(self._fd, min(available, self.max_read_bytes), self._offset)
        data = data[:len(data) - len(data) % self.fmt.frame_bytes]
        self._offset += len(data)
        self.bytes_read += len(data)
        self._backlog_end = limit
        return data

    def close(self) -> None:
        self._backlog_end = 0
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> bool:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return False
        if self._data_start is not None:
            self._offset = self._data_start
        return True

    def _parse_wav_header(self, size: int) -> bool:
        header = os.pread(self._fd, min(size, 4096), 0)
        parsed = parse_wav_header(header)
        if parsed is None:
            return False
        data_start, data_size, rate_hz, channels = parsed
        if (rate_hz, channels) != (self.fmt.rate_hz, self.fmt.channels):
            raise SpoolError(f"{self.path.name}: {rate_hz} Hz x {channels} does not match the recording")
        self._data_start = self._offset = data_start
        return True

    def _check_final(self, size: int) -> None:
        """At the end of the data: a header with real sizes means FreeSWITCH closed the file."""
        parsed = parse_wav_header(os.pread(self._fd, min(size, 4096), 0))
        if parsed is None or parsed[1] in WAV_UNKNOWN_SIZES:
            return
        self._data_end = parsed[0] + parsed[1]
        self.finalised = self._offset >= self._data_end


def parse_wav_header(header: bytes) -> Optional[tuple[int, int, int, int]]:
    """(data offset, data size field, rate_hz, channels) of a 16-bit PCM WAV, None while incomplete."""
    if len(header) < 12:
        return None
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise SpoolError("spool is not a RIFF/WAVE file")
    offset, rate_hz, channels = 12, None, None
    while offset + 8 <= len(header):
        chunk_id, chunk_size = header[offset:offset + 4], struct.unpack_from("<I", header, offset + 4)[0]
        body = offset + 8
        if chunk_id == b"fmt ":
            if body + 16 > len(header):
                return None
            tag, channels, rate_hz, _, _, bits = struct.unpack_from("<HHIIHH", header, body)
            if tag not in (1, 0xFFFE) or bits != 16:
                raise SpoolError(f"spool WAV is not 16-bit PCM (format {tag}, {bits} bits)")
        elif chunk_id == b"data":
            if rate_hz is None:
                raise SpoolError("spool WAV has data before fmt")
            return body, chunk_size, rate_hz, channels
        offset = body + chunk_size + (chunk_size & 1)
    return None


class SpoolTailer:
    """A greenlet that moves a growing spool into a Recording until stop(), withdraw() or the spool ends."""

    def __init__(self, recording, spool_path, *, poll_s: float = 0.02, idle_timeout_s: Optional[float] = 300.0,
                 max_read_bytes: Optional[int] = None, stop_timeout_s: float = 30.0):
        self.recording = recording
        self.reader = SpoolReader(spool_path, recording.fmt, max_read_bytes=max_read_bytes)
        self.poll_s = poll_s
        self.idle_timeout_s = idle_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.end_reason: Optional[str] = None
        self.done = gevent.event.AsyncResult()  # the finish OpResult, or the error that ended the tailer
        self._stop = gevent.event.Event()
        self._stop_cause = ("system", "recording stopped")
        self._discarded = False
        self._greenlet: Optional[gevent.Greenlet] = None
        recording.source = self

    def start(self) -> gevent.Greenlet:
        self._greenlet = gevent.Greenlet(self._run)
        self._greenlet.name = f"spool-tailer-{self.recording.recording_id}"
        self._greenlet.start()
        return self._greenlet

    def catch_up(self) -> int:
        """Move everything the spool holds now into the recording; returns the input samples moved."""
        if self._discarded:
            return 0
        moved_bytes, since_yield = 0, 0
        with self.recording.exclusive():
            while data := self.reader.read():
                self.recording.append_bytes(data)
                moved_bytes += len(data)
                since_yield += len(data)
                if since_yield >= YIELD_EVERY_BYTES:
                    since_yield = 0
                    gevent.sleep(0)  # a long backlog must not starve the other calls' greenlets
        return moved_bytes // self.recording.fmt.frame_bytes

    def stop(self, actor: str = "system", reason: str = "RECORD_STOP", timeout_s: Optional[float] = None) -> OpResult:
        """FreeSWITCH stopped recording: read the rest, finish the recording, return the finish result."""
        self._stop_cause = (actor, reason)
        self._stop.set()
        try:
            return self.done.get(timeout=timeout_s or self.stop_timeout_s)
        except gevent.Timeout as exc:
            raise MediaTimeout(f"tailer for {self.recording.recording_id} did not stop in time") from exc

    def withdraw(self, actor: str, reason: str) -> OpResult:
        """Consent withdrawn or call abandoned: delete the recording and the spool."""
        self._stop.set()
        result = self.recording.delete(actor, reason)  # calls discard() on this tailer
        if self._greenlet is not None:
            self._greenlet.join(timeout=self.stop_timeout_s)
        return result

    def discard(self) -> None:
        """Stop reading and remove the spool file (called by Recording.delete)."""
        self._discarded = True
        self._stop.set()
        self.reader.close()
        self.reader.path.unlink(missing_ok=True)

    def _run(self) -> None:
        try:
            self._follow()
            if self._discarded:
                self.end_reason = self.end_reason or "deleted"
                self.done.set(None)
                return
            self.catch_up()
            actor, reason = self._stop_cause if self.end_reason == "stopped" else ("system", self.end_reason)
            self.done.set(self.recording.finish(actor, reason))
        except RecordingGone:
            self.end_reason = "deleted"
            self.done.set(None)
        except (MediaError, OSError) as exc:
            self.end_reason = f"error: {exc}"
            self.done.set_exception(exc)
        finally:
            self.reader.close()

    def _follow(self) -> None:
        last_growth = time.monotonic()
        while not self._stop.is_set():
            if self.catch_up():
                last_growth = time.monotonic()
            elif self.reader.finalised:
                self.end_reason = "spool finalised"
                return
            elif self.idle_timeout_s is not None and time.monotonic() - last_growth > self.idle_timeout_s:
                self.end_reason = "spool idle"
                return
            self._stop.wait(timeout=self.poll_s)
        self.end_reason = "deleted" if self._discarded else "stopped"
