"""One recording: live ingest through the hold-back window into the chunk store, and its operations.

Thread model: call it from gevent greenlets (or plain code on the hub's thread). Every public method
takes the recording's lock with a timeout; blocking file work goes through the threadpool. See
results.py for the two timelines (input samples versus recording samples).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from . import edits, redact
from .blocks import SAMPLE_DTYPE, AudioFormat, from_bytes
from .chunkstore import ChunkWriter, RecordingFiles
from .edits import OPEN_END
from .errors import MediaError, RecordingClosed, RecordingGone
from .holdback import HoldbackWindow
from .manifest import ChunkRef, ManifestState, apply_rewrite, encode
from .offload import TimedLock
from .redact import Channels, Interval
from .results import OpResult, RecordingSettings, VerifyReport

PENDING, RECORDING, FINISHED, DELETED, DISCARDED = "pending", "recording", "finished", "deleted", "discarded"


class Recording:
    def __init__(self, directory: Path, state: ManifestState, settings: RecordingSettings, *,
                 clock: Callable[[], float], status: str, open_entry: Optional[dict] = None):
        self.recording_id = state.recording_id
        self.fmt = AudioFormat(state.rate_hz, state.channels)
        self.settings = settings
        self.status = status
        self.source = None  # a spool tailer, asked to catch up before live operations
        self._clock = clock
        self._state = state
        self._files = RecordingFiles(directory, self.fmt, settings.io_timeout_s)
        self._lock = TimedLock(settings.lock_timeout_s, state.recording_id)
        self._starts = _running_starts(state)
        self._sealed_end = self._starts[-1] + state.chunks[-1].sample_count if state.chunks else 0
        unit = self.fmt.write_unit_samples
        self._chunk_samples = max(unit, -(-self.fmt.seconds_to_samples(settings.chunk_s) // unit) * unit)
        window = OPEN_END if status == PENDING else self.fmt.seconds_to_samples(settings.holdback_s)
        self._window = HoldbackWindow(self.fmt.channels, window, unit, base_sample=self._sealed_end)
        self._writer: Optional[ChunkWriter] = None
        self._input_samples = 0
        self._pause: Optional[tuple[int, dict]] = None      # (input start, its mark)
        self._masks: dict[int, tuple[int, dict]] = {}       # channel -> (input start, its mark)
        self._marks: list[dict] = []                        # absolute marks not yet sealed
        self._pending_lines: list[dict] = []                # manifest lines held until consent
        self._open_entry = open_entry                       # the manifest's first line, written at consent

    def _create_files(self) -> None:
        """Used by MediaStore when consent is already granted at creation."""
        self._files.create(self._open_entry)

    # -- facts --------------------------------------------------------------------------------------
    @property
    def length_samples(self) -> int:
        """Current length in the recording timeline (committed plus held in memory)."""
        return self._window.end_sample

    @property
    def committed_samples(self) -> int:
        return self._window.base_sample

    @property
    def input_samples(self) -> int:
        return self._input_samples

    @property
    def window_samples(self) -> int:
        return self._window.length

    @property
    def paused(self) -> bool:
        return self._pause is not None

    @property
    def masked_channels(self) -> tuple[int, ...]:
        return tuple(sorted(self._masks))

    @property
    def directory(self) -> Path:
        return self._files.directory

    @property
    def peak_buffer_bytes(self) -> int:
        return self.fmt.samples_to_bytes(self._window.peak_samples)

    def chunk_layout(self) -> list[tuple[int, int, str]]:
        """(first_sample, sample_count, file) of each sealed chunk, in order."""
        return [(start, c.sample_count, c.file) for start, c in zip(self._starts, self._state.chunks)]

    # -- ingest ------------------------------------------------------------------------------------
    def append(self, samples: np.ndarray) -> None:
        """Append input samples (int16, shape (n, channels)) read from the spool."""
        if samples.dtype != SAMPLE_DTYPE or samples.ndim != 2 or samples.shape[1] != self.fmt.channels:
            raise ValueError(f"expected int16 samples of shape (n, {self.fmt.channels}), "
                             f"got {samples.dtype} {samples.shape}")
        self._append(np.ascontiguousarray(samples))  # chunk writes hand the blocks to writev as they are

    def append_bytes(self, data: bytes) -> None:
        """Append whole frames of spool bytes (16-bit little-endian, interleaved)."""
        self._append(from_bytes(data, self.fmt.channels))

    def _append(self, samples: np.ndarray) -> None:
        with self._locked():
            self._require(PENDING, RECORDING, error=RecordingClosed)
            start, self._input_samples = self._input_samples, self._input_samples + len(samples)
            if self._pause is not None or self._masks:
                samples = redact.render_input(
                    samples, start, self.fmt.rate_hz, gap_fill=self.settings.gap_fill,
                    pauses=[Interval(self._pause[0], OPEN_END)] if self._pause else [],
                    masks=[(Interval(s, OPEN_END), (c,)) for c, (s, _) in self._masks.items()])
            self._window.push(samples)
            if self.status == PENDING:
                if self._window.length > self.fmt.seconds_to_samples(self.settings.max_pending_s):
                    raise MediaError(f"{self.recording_id}: consent still pending after "
                                     f"{self.settings.max_pending_s} s of audio")
            else:
                self._commit_ready()

    def _commit_ready(self) -> None:
        """Write whatever has aged out of the window: one write call per chunk it lands in."""
        while pieces := self._window.pop_ready(self._chunk_room()):
            self._write(pieces)
            if self._writer is not None:  # the chunk did not fill up, so nothing aged out is left
                return

    def _chunk_room(self) -> int:
        return self._chunk_samples - (self._writer.sample_count if self._writer is not None else 0)

    def _write(self, pieces: list[np.ndarray]) -> None:
        if self._writer is None:
            self._writer = self._files.open_chunk(self._state.next_seq)
            self._state.next_seq += 1
        self._writer.write(pieces)
        if self._writer.sample_count >= self._chunk_samples:
            self._seal()

    def _seal(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None or writer.sample_count == 0:
            if writer is not None:
                writer.abandon()
            return
        start = self._sealed_end
        ref = writer.sealed_ref(edits.marks_for_chunk(self._marks, start, start + writer.sample_count))
        self._files.commit_async(writer, ref.to_entry(start, self.fmt.channels, self.fmt.rate_hz))
        self._state.chunks.append(ref)
        self._starts.append(start)
        self._sealed_end += ref.sample_count
        self._marks = edits.still_open(self._marks, self._sealed_end)

    # -- consent -----------------------------------------------------------------------------------
    def grant_consent(self, actor: str, reason: str) -> OpResult:
        """Consent given: from now on audio older than the window is committed (nothing was before)."""
        with self._locked():
            self._require(PENDING)
            self._files.create(self._open_entry)
            self.status = RECORDING
            for line in self._pending_lines:
                self._files.append_line(encode(line))
            self._pending_lines.clear()
            self._window.window_samples = self.fmt.seconds_to_samples(self.settings.holdback_s)
            result = self._record("consent", actor, reason, 0, self.length_samples)
            self._commit_ready()
            return result

    # -- live operations -----------------------------------------------------------------------------
    def pause(self, actor: str, reason: str) -> OpResult:
        with self._live():
            end, fill = self.length_samples, self.settings.gap_fill
            if self._pause is not None:
                return self._record("pause", actor, reason, end, end, changed=False, fill=fill)
            mark = {"op": "pause", "start": end, "end": end if fill == "skip" else OPEN_END, "fill": fill}
            self._pause = (self._input_samples, mark)
            self._marks.append(mark)
            return self._record("pause", actor, reason, end, end, input_start_sample=self._input_samples, fill=fill)

    def resume(self, actor: str, reason: str) -> OpResult:
        with self._live():
            end, fill = self.length_samples, self.settings.gap_fill
            if self._pause is None:
                return self._record("resume", actor, reason, end, end, changed=False, fill=fill)
            (input_start, mark), self._pause = self._pause, None
            mark["end"] = end
            return self._record("resume", actor, reason, mark["start"], end, fill=fill,
                                input_start_sample=input_start, input_end_sample=self._input_samples,
                                removed_samples=(self._input_samples - input_start) if fill == "skip" else 0)

    def mask(self, actor: str, reason: str, channels: Channels = None) -> OpResult:
        """Silence incoming audio on `channels` (all by default, 0 = caller, 1 = agent) until unmask."""
        with self._live():
            channels, end = self._channels(channels), self.length_samples
            new = tuple(c for c in channels if c not in self._masks)
            for channel in new:
                mark = {"op": "mask", "start": end, "end": OPEN_END, "channels": [channel]}
                self._marks.append(mark)
                self._masks[channel] = (self._input_samples, mark)
            return self._record("mask", actor, reason, end, end, channels=channels, changed=bool(new),
                                input_start_sample=self._input_samples)

    def unmask(self, actor: str, reason: str, channels: Channels = None) -> OpResult:
        """End masking on `channels`; the result's range is the masked span in the recording timeline."""
        with self._live():
            channels, end = self._channels(channels), self.length_samples
            channels = tuple(c for c in channels if c in self._masks) or channels  # report what was masked
            ended = [self._masks.pop(c) for c in channels if c in self._masks]
            for _, mark in ended:
                mark["end"] = end
            start = min((m["start"] for _, m in ended), default=end)
            input_start = min((s for s, _ in ended), default=None)
            return self._record("unmask", actor, reason, start, end, channels=channels, changed=bool(ended),
                                input_start_sample=input_start, input_end_sample=self._input_samples)

    def cut_last(self, seconds: float, actor: str, reason: str) -> OpResult:
        """Remove the newest `seconds` of the recording (what the agent just heard)."""
        with self._live():
            end = self.length_samples
            start = max(0, end - self.fmt.seconds_to_samples(seconds))
            return self._cut(Interval(start, end), "cut_last", actor, reason)

    # -- operations on any part -----------------------------------------------------------------------
    def cut(self, start_sample: int, end_sample: int, actor: str, reason: str) -> OpResult:
        """Remove recording samples [start_sample, end_sample); later samples move up."""
        with self._locked():
            self._require(RECORDING, FINISHED)
            return self._cut(self._interval(start_sample, end_sample), "cut", actor, reason)

    def redact(self, start_sample: int, end_sample: int, actor: str, reason: str, *, fill: str = "silence",
               channels: Channels = None) -> OpResult:
        """Replace recording samples [start_sample, end_sample) by silence or tone; the length stays."""
        if fill not in ("silence", "tone"):
            raise ValueError(f"redact fill must be silence or tone, got {fill!r}")
        with self._locked():
            self._require(RECORDING, FINISHED)
            interval, channels = self._interval(start_sample, end_sample), self._channels(channels)
            op_id = self._state.op_count + 1
            mark = {"op": "redact", "op_id": op_id, "fill": fill, "channels": list(channels)}
            rate = self.fmt.rate_hz
            in_window = self._window.edit(interval, lambda b, s: redact.replace(b, s, interval, fill, rate, channels))
            if in_window:
                self._marks.append(dict(mark, start=max(interval.start, self._window.base_sample), end=interval.end))
            rewrite = None
            committed = interval.clip(0, self._window.base_sample)
            if committed is not None:
                self._prepare_rewrite(committed)
                rewrite = edits.redact_chunks(self._files, self._starts, self._state.chunks, committed, fill,
                                              channels, mark, self._state.next_seq)
            return self._finish_edit("redact", actor, reason, interval, rewrite, in_window,
                                     channels=channels, fill=fill)

    def _cut(self, interval: Interval, op: str, actor: str, reason: str) -> OpResult:
        in_window = self._window.cut(interval) if interval.length else 0
        committed = interval.clip(0, self._window.base_sample)
        rewrite = None
        if committed is not None:
            self._prepare_rewrite(committed)
            rewrite = edits.cut_chunks(self._files, self._starts, self._state.chunks, committed,
                                       self._state.next_seq)
            self._window.base_sample -= committed.length
            self._sealed_end -= committed.length
        self._marks = edits.marks_after_cut(self._marks, interval)
        return self._finish_edit(op, actor, reason, interval, rewrite, in_window, removed_samples=interval.length)

    def _prepare_rewrite(self, committed: Interval) -> None:
        """Seal the chunk being written if the edit reaches it, and wait until every commit is durable."""
        if committed.end > self._sealed_end:
            self._seal()
        self._files.wait_pending()

    def _finish_edit(self, op: str, actor: str, reason: str, interval: Interval, rewrite, in_window: int,
                     **fields) -> OpResult:
        extra = {}
        if rewrite is not None:
            first, inserted = self._starts[rewrite.first_index], []
            for chunk in rewrite.inserted:
                inserted.append(chunk.to_entry(first, self.fmt.channels, self.fmt.rate_hz))
                first += chunk.sample_count
            extra = {"remove": [c.seq for c in rewrite.removed], "insert": inserted}
            fields["rewritten_chunks"] = tuple(c.seq for c in rewrite.removed)
        result = self._record(op, actor, reason, interval.start, interval.end, in_window_samples=in_window,
                              manifest_extra=extra, **fields)
        if rewrite is not None:  # the manifest now points at the new files: the old ones can go
            apply_rewrite(self._state, [c.seq for c in rewrite.removed], list(rewrite.inserted))
            self._starts = _running_starts(self._state)
            self._files.remove_chunks([c.file for c in rewrite.removed])
        return result

    # -- end of life ---------------------------------------------------------------------------------
    def finish(self, actor: str = "system", reason: str = "recording stopped") -> OpResult:
        """Commit everything held and seal the recording. A recording still pending consent is discarded."""
        with self._locked():
            if self.status == PENDING:
                return self._discard(actor, reason)
            self._require(RECORDING)
            end = self.length_samples
            for mark in self._marks:
                if mark["end"] >= OPEN_END:
                    mark["end"] = end
            self._pause, self._masks = None, {}
            while pieces := self._window.pop_oldest(self._chunk_room()):
                self._write(pieces)
            self._seal()
            self._files.wait_pending()
            result = self._record("finish", actor, reason, 0, end, input_end_sample=self._input_samples)
            self._files.append_durable({"t": "finish", "at": result.at, "sample_count": end,
                                        "input_samples": self._input_samples})
            self._files.close()
            self.status = FINISHED
            return result

    def delete(self, actor: str, reason: str) -> OpResult:
        """Destroy all audio (chunks, manifest, spool via the source); only a tombstone stays."""
        with self._locked():
            self._require(PENDING, RECORDING, FINISHED)
            now, end = self._clock(), self.length_samples
            if self.source is not None:
                self.source.discard()
            self._window.clear()
            if self._writer is not None:
                self._writer.abandon()
                self._writer = None
            if self.status == PENDING:
                self.status = DISCARDED
                return OpResult(self.recording_id, 0, "delete", actor, reason, now, 0, end)
            tombstone = {"recording_id": self.recording_id, "created_at": self._state.created_at,
                         "deleted_at": now, "actor": actor, "reason": reason, "op": "delete"}
            self._files.destroy(tombstone)
            self.status = DELETED
            return OpResult(self.recording_id, self._state.op_count + 1, "delete", actor, reason, now, 0, end)

    def _discard(self, actor: str, reason: str) -> OpResult:
        end = self.length_samples
        self._window.clear()
        self._pending_lines.clear()
        self.status = DISCARDED
        return OpResult(self.recording_id, 0, "discard", actor, reason, self._clock(), 0, end, removed_samples=end)

    def close(self) -> None:
        """Release the manifest file handle (a finished recording can be reopened by its store)."""
        with self._locked():
            if self.status in (RECORDING, FINISHED):
                self._files.close()

    # -- reading -----------------------------------------------------------------------------------------
    def committed_chunks(self) -> list[tuple[int, ChunkRef]]:
        """A snapshot of (first_sample, ChunkRef) for the sealed chunks, after pending commits land."""
        with self._locked():
            self._files.wait_pending()
            return list(zip(self._starts, self._state.chunks))

    def read_chunk(self, chunk) -> np.ndarray:
        return self._files.read_chunk(chunk)

    def held_samples(self) -> np.ndarray:
        """A copy of the audio still in the hold-back window (positions from committed_samples on)."""
        with self._locked():
            return self._window.snapshot().copy()

    def verify(self) -> VerifyReport:
        """Recompute every committed chunk's SHA-256 and size."""
        from .export import verify_chunks
        with self._locked():
            self._require(RECORDING, FINISHED)
            self._files.wait_pending()
            bad = verify_chunks(self._files.directory, self._state.chunks, self.fmt, self.settings.io_timeout_s)
            return VerifyReport(self.recording_id, len(self._state.chunks), self._sealed_end, tuple(bad))

    def export(self, path, *, format: Optional[str] = None, channel: Optional[int] = None):
        """Write the committed audio to WAV or FLAC, streamed chunk by chunk (see export.py)."""
        from .export import export_chunks
        with self._locked():
            self._require(RECORDING, FINISHED)
            self._files.wait_pending()
            return export_chunks(self._files.directory, list(self._state.chunks), self.fmt, path,
                                 format=format, channel=channel, timeout_s=self.settings.io_timeout_s)

    # -- helpers -----------------------------------------------------------------------------------------
    def exclusive(self):
        """Hold the recording's lock (reentrant, with its timeout) across several calls."""
        return self._locked()

    def _locked(self) -> TimedLock:
        return self._lock

    @contextmanager
    def _live(self) -> Iterator[None]:
        with self._locked():
            self._require(PENDING, RECORDING)
            if self.source is not None:
                self.source.catch_up()
            yield

    def _require(self, *allowed: str, error: type = MediaError) -> None:
        if self.status in (DELETED, DISCARDED):
            raise RecordingGone(f"{self.recording_id} was {self.status}")
        if self.status not in allowed:
            raise error(f"{self.recording_id} is {self.status}; this needs {' or '.join(allowed)}")

    def _interval(self, start_sample: int, end_sample: int) -> Interval:
        if not 0 <= start_sample <= end_sample <= self.length_samples:
            raise ValueError(f"[{start_sample}, {end_sample}) is outside the recording [0, {self.length_samples})")
        return Interval(start_sample, end_sample)

    def _channels(self, channels: Channels) -> tuple[int, ...]:
        if channels is None:
            return tuple(range(self.fmt.channels))
        channels = tuple(sorted(set(int(c) for c in channels)))
        if not channels or any(not 0 <= c < self.fmt.channels for c in channels):
            raise ValueError(f"channels {channels} invalid for a {self.fmt.channels}-channel recording")
        return channels

    def _record(self, op: str, actor: str, reason: str, start: int, end: int, *, manifest_extra: dict = None,
                **fields) -> OpResult:
        self._state.op_count += 1
        result = OpResult(self.recording_id, self._state.op_count, op, actor, reason, self._clock(), start, end,
                          **fields)
        entry = {"t": "op", **{k: v for k, v in result.as_dict().items() if k != "recording_id"},
                 **(manifest_extra or {})}
        if self.status == PENDING:
            self._pending_lines.append(entry)
        else:
            self._files.append_durable(entry)
        return result


def _running_starts(state: ManifestState) -> list[int]:
    starts, position = [], 0
    for chunk in state.chunks:
        starts.append(position)
        position += chunk.sample_count
    return starts
