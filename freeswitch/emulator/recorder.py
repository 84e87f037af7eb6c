"""The recording media bug: the file FreeSWITCH 1.10.12 writes for record_session and uuid_record.

Four parts. `RecordSettings` reads the channel and recording variables as FreeSWITCH does. `MediaBug` is the pure
core of switch_core_media_bug_read and record_callback: the pre-buffer, the read/write pairing, mono mix or stereo,
mask. `FileSink` (recordfile.py) is the thin I/O shell of the core file layer: WAV header, 65,536-byte write
buffering, final header.
`Recorder` ties them together for the emulator.

What the traces show and this reproduces (tests/traces, recordings/):
  * The bug holds back RECORD_PRE_BUFFER_FRAMES packets (25). The first packet is written at once, the next 25
    are held, and while FreeSWITCH sends the caller nothing the lag never drains: the file trails the call by 25
    packets, and they are lost at stop or hangup. When both legs carry audio the backlog is paired off at once.
  * drop_pre_buffer() (bridge and unbridge) discards the backlog and starts the hold-back again.
  * Mask zeroes what leaves the buffer: while the lag lasts it covers the caller's audio from 25 packets earlier
    and leaves the last 25 packets before unmask unmasked (uuid_record.wav: zeros from 1.29 s for a mask at 2.04 s).
  * A side with no audio is filled with -1 (0xFFFF); an idle mono call therefore records caller - 1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from freeswitch.emulator.audio import FILL_SAMPLE, LinearResampler
from freeswitch.emulator.recordfile import FileSink, RecorderError, RecordOpenError
from freeswitch.emulator.tonestream import atoi

DEFAULT_PRE_BUFFER_FRAMES = 25
DEFAULT_FILE_BUFFER_BYTES = 65536
VALID_RATES_HZ = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000})
RAW_EXTENSIONS = frozenset({".raw", ".r8", ".r16"})   # headerless 16-bit LE at the channel's rate
MAX_BUG_BUFFER_BYTES = 512 * 1024     # a media bug's buffer refuses writes past this


class RecordStateError(RecorderError):
    """A call that does not fit the recorder's state (feed before open or after close)."""


def switch_true(value: str | None) -> bool:
    """FreeSWITCH's switch_true: yes/on/true/t/enabled/active/allow, or a non-zero number."""
    if value is None:
        return False
    text = str(value).strip()
    if text.lower() in ("yes", "on", "true", "t", "enabled", "active", "allow"):
        return True
    digits = text[1:] if text[:1] in "+-" else text
    return bool(digits) and all(c == "." or "0" <= c <= "9" for c in digits) and atoi(text) != 0


@dataclass(frozen=True)
class RecordSettings:
    """The recording variables, read as switch_ivr_record_session reads them."""

    stereo: bool = False
    swap: bool = False
    read_stream: bool = True           # audio from the caller
    write_stream: bool = True          # audio sent to the caller
    pre_buffer_frames: int = DEFAULT_PRE_BUFFER_FRAMES
    file_buffer_bytes: int = DEFAULT_FILE_BUFFER_BYTES     # 0: a write per packet
    min_sec: int = 0
    append: bool = False
    file_rate_hz: int | None = None    # record_sample_rate, when valid
    hangup_on_error: bool = False

    @classmethod
    def from_variables(cls, variables: Mapping[str, str], *, stereo: bool | None = None) -> RecordSettings:
        get = variables.get
        swap = switch_true(get("RECORD_STEREO_SWAP"))
        read_stream = write_stream = True
        if switch_true(get("RECORD_WRITE_ONLY")):
            read_stream = False
        if switch_true(get("RECORD_READ_ONLY")):         # checked second, so it wins when both are set
            read_stream, write_stream = True, False
        pre_buffer = DEFAULT_PRE_BUFFER_FRAMES
        if get("RECORD_PRE_BUFFER_FRAMES") is not None:
            pre_buffer = max(0, atoi(get("RECORD_PRE_BUFFER_FRAMES")))
        buffering = get("enable_file_write_buffering")
        file_buffer = DEFAULT_FILE_BUFFER_BYTES
        if buffering is not None:
            file_buffer = atoi(buffering) if atoi(buffering) > 0 else (
                DEFAULT_FILE_BUFFER_BYTES if switch_true(buffering) else 0)
        append = switch_true(get("RECORD_APPEND"))
        min_sec = 3 if append else 0
        if get("RECORD_MIN_SEC") is not None and atoi(get("RECORD_MIN_SEC")) >= 0:
            min_sec = atoi(get("RECORD_MIN_SEC"))
        rate = atoi(get("record_sample_rate") or "")
        return cls(stereo=(switch_true(get("RECORD_STEREO")) or swap) if stereo is None else stereo, swap=swap,
                   read_stream=read_stream, write_stream=write_stream, pre_buffer_frames=pre_buffer,
                   file_buffer_bytes=file_buffer, min_sec=min_sec, append=append,
                   file_rate_hz=rate if rate in VALID_RATES_HZ else None,
                   hangup_on_error=switch_true(get("RECORD_HANGUP_ON_ERROR")))


class _SampleQueue:
    """A bounded FIFO of int16 samples over one array; pop() returns a view valid until the next append."""

    def __init__(self, max_samples: int):
        self.max_samples = max_samples
        self.dropped_samples = 0
        self._buffer = np.empty(8192, np.int16)
        self._start = self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def clear(self) -> None:
        self._start = self._end = 0

    def append(self, samples: np.ndarray) -> None:
        n, held = samples.shape[0], self._end - self._start
        if held + n > self.max_samples:    # FreeSWITCH's bug buffer refuses a write past its maximum
            self.dropped_samples += n
            return
        if self._end + n > self._buffer.shape[0]:
            buffer = self._buffer if held + n <= self._buffer.shape[0] // 2 else np.empty(2 * (held + n), np.int16)
            buffer[:held] = self._buffer[self._start:self._end]
            self._buffer, self._start, self._end = buffer, 0, held
        self._buffer[self._end:self._end + n] = samples
        self._end += n

    def pop(self, n: int) -> np.ndarray:
        n = min(n, self._end - self._start)   # never past what is held (an append can be refused when full)
        view = self._buffer[self._start:self._start + n]
        self._start += n
        return view


class MediaBug:
    """switch_core_media_bug_read at packet granularity, for aligned read and write streams.

    `push(read, write)` takes whole packets of the caller's audio and of what was sent to the caller (None: nothing
    was sent, FreeSWITCH's empty write buffer) and returns the samples that leave the bug for the file (1-D mono,
    or frames x 2 stereo). During the hold-back it runs FreeSWITCH's algorithm packet by packet; once settled,
    every packet yields exactly one frame and whole blocks go through vectorised.
    """

    def __init__(self, settings: RecordSettings, packet_samples: int):
        self.settings = settings
        self.packet_samples = packet_samples
        self.masked = False
        self._read_queue = _SampleQueue(MAX_BUG_BUFFER_BYTES // 2)
        self._write_queue = _SampleQueue(MAX_BUG_BUFFER_BYTES // 2)
        self._fills: dict[int, np.ndarray] = {}
        self.flush()

    def flush(self) -> None:
        """Drop everything held back and start the pre-buffer again (switch_core_media_bug_flush)."""
        self._read_queue.clear()
        self._write_queue.clear()
        self._frame_size_known = False
        self._pre_count = 0
        self._settled = False

    @property
    def held_frames(self) -> int:
        return len(self._read_queue) // self.packet_samples

    def push(self, read: np.ndarray, write: np.ndarray | None) -> np.ndarray:
        if self._settled:
            return self._settled_block(read, write)
        step, n = self.packet_samples, read.shape[0]
        out, start = [], 0
        while start < n and not self._settled:
            end = start + step
            if self.settings.read_stream:
                self._read_queue.append(read[start:end])
            if self.settings.write_stream and write is not None:
                self._write_queue.append(write[start:end])
            out.extend(self._ping())
            self._settled = self._is_settled()
            start = end
        if start < n:
            out.append(self._settled_block(read[start:], None if write is None else write[start:]))
        if not out:
            return np.zeros((0, 2) if self.settings.stereo else 0, np.int16)
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _is_settled(self) -> bool:
        """From here on each ping reads exactly one frame: the pre-buffer is done and the paired side is empty."""
        if not self._frame_size_known or self._pre_count < self.settings.pre_buffer_frames:
            return False
        return not len(self._write_queue if self.settings.write_stream else self._read_queue)

    def _ping(self) -> list[np.ndarray]:
        """One READ_PING: read frames until a side runs dry (record_callback's loop over the bug)."""
        step, settings, frames = self.packet_samples, self.settings, []
        while True:
            held_read, held_write = len(self._read_queue) // step, len(self._write_queue) // step
            if (self._frame_size_known and settings.pre_buffer_frames and (held_read or held_write)
                    and self._pre_count < settings.pre_buffer_frames):
                self._pre_count += 1
                return frames
            self._frame_size_known = True
            if held_write > held_read and held_write > 2:
                self._write_queue.pop(step)
                held_write -= 1
            fill_read = settings.read_stream and not held_read
            fill_write = settings.write_stream and not held_write
            if (fill_read and fill_write) or (frames and (fill_read or fill_write)):
                return frames
            read = self._read_queue.pop(step) if held_read else (self._fill(step) if fill_read else None)
            write = self._write_queue.pop(step) if held_write else (self._fill(step) if fill_write else None)
            frames.append(self._combine(read, write, step))

    def _fill(self, n: int) -> np.ndarray:
        fill = self._fills.get(n)
        if fill is None:
            fill = self._fills[n] = np.full(n, FILL_SAMPLE, np.int16)
            fill.flags.writeable = False
        return fill

    def _settled_block(self, read: np.ndarray, write: np.ndarray | None) -> np.ndarray:
        """Settled: each packet's ping pairs the oldest held read frame with this packet's write (or the fill)."""
        n = read.shape[0]
        delayed = None
        if self.settings.read_stream:
            delayed = read
            if len(self._read_queue):
                self._read_queue.append(read)
                delayed = self._read_queue.pop(n)
                if delayed.shape[0] < n:   # the bug buffer overflowed: FreeSWITCH fills what it lacks
                    delayed = np.concatenate([delayed, self._fill(n - delayed.shape[0])])
        if not self.settings.write_stream:
            write = None
        elif write is None:
            if not self.settings.stereo and delayed is not None and not self.masked:
                mixed = np.maximum(delayed, -32767)              # saturating delayed + FILL_SAMPLE
                mixed -= 1
                return mixed
            write = self._fill(n)
        return self._combine(delayed, write, n)

    def _combine(self, read: np.ndarray | None, write: np.ndarray | None, n: int) -> np.ndarray:
        """Mono: saturating sum. Stereo: read left, write right (swapped with RECORD_STEREO_SWAP). Mask: zeros."""
        if self.settings.stereo:
            if self.masked:
                return np.zeros((n, 2), np.int16)
            out = np.empty((n, 2), np.int16)
            left, right = (write, read) if self.settings.swap else (read, write)
            out[:, 0] = 0 if left is None else left
            out[:, 1] = 0 if right is None else right
            return out
        if self.masked:
            return np.zeros(n, np.int16)
        if read is None or write is None:
            return (write if read is None else read).copy()
        total = np.add(read, write, dtype=np.int32)
        np.minimum(total, 32767, out=total)           # in-place min/max: np.clip costs twice as much
        np.maximum(total, -32768, out=total)
        return total.astype(np.int16)


@dataclass(frozen=True)
class RecordResult:
    """How a recording ended, and the channel variables FreeSWITCH sets before RECORD_STOP."""

    path: str
    record_samples: int
    record_seconds: int
    record_ms: int
    completion_cause: str
    discarded: bool
    file_size: int | None              # bytes on disk after close; None once the file is deleted

    def channel_variables(self) -> dict[str, str]:
        """In the order FreeSWITCH sets them (RECORD_STOP and later events carry them as variable_*)."""
        variables = {"RECORD_DISCARDED": "true"} if self.discarded else {}
        if self.file_size is not None:
            variables["record_file_size"] = str(self.file_size)
        variables.update(record_samples=str(self.record_samples), record_seconds=str(self.record_seconds),
                         record_ms=str(self.record_ms), record_completion_cause=self.completion_cause)
        return variables


class Recorder:
    """One recording on one channel, fed by the emulator's media ticker.

    `variables` are the channel's variables merged with the per-recording ones (strings). `stereo` overrides
    RECORD_STEREO when given. Feed aligned blocks of whole packets: `read` is the caller's audio, `write` what the
    switch sent to the caller, or None when it sent nothing (parked, idle, between prompts): that difference decides
    the fill samples and whether the pre-buffer lag persists, as in FreeSWITCH.
    """

    def __init__(self, path: str, rate_hz: int, *, packet_samples: int | None = None, stereo: bool | None = None,
                 variables: Mapping[str, str] | None = None):
        self.path, self.rate_hz = path, rate_hz
        self.packet_samples = packet_samples or rate_hz // 50
        self.settings = RecordSettings.from_variables(variables or {}, stereo=stereo)
        self.channels = 2 if self.settings.stereo else 1
        self.file_rate_hz = self.settings.file_rate_hz or rate_hz
        self.samples_written = 0           # frames handed to the file layer, at the channel rate (samples_out)
        self.paused = False
        self.result: RecordResult | None = None
        self._bug = MediaBug(self.settings, self.packet_samples)
        self._resampler = LinearResampler(rate_hz, self.file_rate_hz) if self.file_rate_hz != rate_hz else None
        extension = os.path.splitext(path)[1].lower()
        self._format = "wav" if extension == ".wav" else "raw" if extension in RAW_EXTENSIONS else None
        unit_bytes = max(2, self.packet_samples * 2 * self.file_rate_hz // rate_hz)
        self._sink = FileSink(path, channels=self.channels, rate_hz=self.file_rate_hz, wav=self._format == "wav",
                              buffer_bytes=self.settings.file_buffer_bytes, unit_bytes=unit_bytes,
                              append=self.settings.append)
        self._opened = False

    @property
    def seconds(self) -> float:
        return self.samples_written / self.rate_hz

    @property
    def masked(self) -> bool:
        return self._bug.masked

    @property
    def write_failed(self) -> bool:
        return self._sink.failed

    @property
    def held_back_frames(self) -> int:
        """Packets of the caller's audio in the pre-buffer: not yet in the file, and lost if it stops now."""
        return self._bug.held_frames

    def open(self) -> None:
        """Create the file (and missing directories); a WAV's placeholder header is on disk at once."""
        if self._opened:
            raise RecordStateError(f"{self.path} is already open")
        if self._format is None:
            raise RecordOpenError(f"cannot record to {self.path}: only .wav, .raw, .r8 and .r16 are emulated")
        self._sink.open()
        self._opened = True

    def feed(self, read: np.ndarray, write: np.ndarray | None = None) -> None:
        """One block of whole packets of both streams. Ignored while paused: a paused span is left out."""
        if not self._opened or self.result is not None:
            raise RecordStateError(f"{self.path} is not open")
        if read.shape[0] % self.packet_samples or (write is not None and write.shape != read.shape):
            raise ValueError("feed whole packets, read and write of the same length")
        if read.dtype != np.int16 or (write is not None and write.dtype != np.int16):
            raise ValueError("feed int16 samples")
        if self.paused:
            return
        out = self._bug.push(read, write)
        if out.shape[0]:
            self.samples_written += out.shape[0]
            if self._resampler is not None:
                out = self._resampler.process(out)
            self._sink.write(out.astype("<i2", copy=False).data)

    def mask(self) -> None:
        self._bug.masked = True

    def unmask(self) -> None:
        self._bug.masked = False

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def drop_pre_buffer(self) -> None:
        """What FreeSWITCH does to every media bug at bridge and unbridge: the held-back audio is lost."""
        self._bug.flush()

    def close(self, reason: str = "stop") -> RecordResult:
        """`stop` (explicit stop or limit, channel up) or `hangup`. Held-back frames are lost, as in FreeSWITCH:
        its final drain reads only while both sides hold audio, which never happens once the lag has settled."""
        if reason not in ("stop", "hangup"):
            raise ValueError("reason is 'stop' or 'hangup'")
        if self.result is not None:
            return self.result
        if not self._opened:
            raise RecordStateError(f"{self.path} was never opened")
        file_size = self._sink.close()
        samples, cause = self.samples_written, "uri-failure" if self._sink.failed else None
        discarded = samples == 0 or samples < self.file_rate_hz * self.settings.min_sec
        if discarded:
            cause = cause or ("empty-file" if samples == 0 else "input-too-short")
            file_size = None
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        cause = cause or ("success-silence" if reason == "hangup" else "success-maxtime")
        self.result = RecordResult(self.path, samples, samples // self.rate_hz,
                                   samples // max(1, self.rate_hz // 1000), cause, discarded, file_size)
        return self.result
