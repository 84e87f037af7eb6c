"""MediaStore: the recordings under one directory; create, reopen, recover after a crash.

Layout: <root>/<recording_id>/manifest.jsonl and <seq>.pcm chunk files; after delete only
<root>/<recording_id>/tombstone.json stays.
"""
from __future__ import annotations

import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Callable, Optional

from . import manifest
from .chunkstore import MANIFEST_NAME, TOMBSTONE_NAME, check_recording_id, read_tombstone, require_live
from .errors import MediaError
from .offload import run_blocking
from .recording import DELETED, DISCARDED, FINISHED, PENDING, RECORDING, Recording
from .recovery import RecoveryReport, recover_directory
from .results import OpResult, RecordingSettings


class MediaStore:
    def __init__(self, root_dir, *, settings: RecordingSettings = RecordingSettings(),
                 clock: Callable[[], float] = time.time):
        self.root = Path(root_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.clock = clock
        self._open: dict[str, Recording] = {}

    def create(self, recording_id: str, *, rate_hz: int, channels: int, consent_granted: bool = True,
               meta: Optional[dict] = None, **overrides) -> Recording:
        """A new recording. Overrides are RecordingSettings fields (holdback_s, gap_fill, ...) per process.

        With consent_granted=False nothing is written at all (no directory, no manifest) until
        grant_consent(); finish() or delete() before that leaves no trace on disk.
        """
        check_recording_id(recording_id)
        directory = self.root / recording_id
        if recording_id in self._open or directory.exists():
            raise MediaError(f"recording {recording_id} already exists")
        settings = replace(self.settings, **overrides)
        state = manifest.ManifestState(recording_id, rate_hz, channels, self.clock(), settings.to_dict())
        open_entry = {"t": "open", "recording_id": recording_id, "rate_hz": rate_hz, "channels": channels,
                      "sample_width_bytes": 2, "created_at": state.created_at, "settings": settings.to_dict(),
                      "meta": meta or {}}
        recording = Recording(directory, state, settings, clock=self.clock,
                              status=RECORDING if consent_granted else PENDING, open_entry=open_entry)
        if consent_granted:
            recording._create_files()
        self._open[recording_id] = recording
        return recording

    def open(self, recording_id: str) -> Recording:
        """The live recording of that id, or a finished one rebuilt from its manifest."""
        check_recording_id(recording_id)
        live = self._open.get(recording_id)
        if live is not None and live.status not in (DELETED, DISCARDED):
            return live
        directory = self.root / recording_id
        require_live(directory)
        data = run_blocking((directory / MANIFEST_NAME).read_bytes, timeout_s=self.settings.io_timeout_s)
        entries, valid_bytes = manifest.parse(data)
        state = manifest.replay(entries)
        if state.finished is None or valid_bytes != len(data) or state.extents:
            raise MediaError(f"recording {recording_id} was not finished cleanly: run recover() first")
        recording = Recording(directory, state, _settings_from(state.settings, self.settings),
                              clock=self.clock, status=FINISHED)
        self._open[recording_id] = recording
        return recording

    def recover(self) -> list[RecoveryReport]:
        """After a restart: check and repair every recording on disk that this process has not opened."""
        reports = []
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if directory.name in self._open:
                continue
            if not (directory / MANIFEST_NAME).exists() and not (directory / TOMBSTONE_NAME).exists():
                continue
            _, report = run_blocking(recover_directory, directory, self.clock,
                                     timeout_s=self.settings.io_timeout_s * 10)
            reports.append(report)
        return reports

    def delete(self, recording_id: str, actor: str, reason: str) -> OpResult:
        return self.open(recording_id).delete(actor, reason)

    def recording_ids(self) -> list[str]:
        """Ids with audio on disk (deleted recordings, which keep only a tombstone, are left out)."""
        return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST_NAME).exists())

    def tombstone(self, recording_id: str) -> Optional[dict]:
        return read_tombstone(self.root / check_recording_id(recording_id))

    def forget(self, recording_id: str) -> None:
        """Drop a finished recording from this store's cache, closing its manifest handle."""
        recording = self._open.pop(recording_id, None)
        if recording is not None and recording.status in (FINISHED, RECORDING):
            recording.close()


def _settings_from(saved: dict, defaults: RecordingSettings) -> RecordingSettings:
    known = {f.name for f in fields(RecordingSettings)}
    return replace(defaults, **{k: v for k, v in saved.items() if k in known})
