"""Consentline media pipeline: spool tailing, chunk store, hold-back window, redaction, export.

Typical use by the controller, once consent is decided:

    store = MediaStore(recordings_dir, settings=RecordingSettings(holdback_s=10, gap_fill="skip"))
    recording = store.create(call_uuid, rate_hz=8000, channels=2)
    # uuid_record <uuid> start <spool_dir>/<uuid>.raw 0 + spool_record_vars()
    tailer = SpoolTailer(recording, spool_path)
    tailer.start()
    recording.cut_last(20, actor="agent:1001", reason="card number")   # -> OpResult
    tailer.stop()            # on RECORD_STOP: reads the rest, commits, finishes
    # or tailer.withdraw(actor, reason) to delete everything, spool included
"""
from .blocks import AudioFormat
from .errors import (IntegrityError, ManifestError, MediaError, MediaTimeout, RecordingClosed, RecordingGone,
                     SpoolError)
from .recording import Recording
from .recovery import RecoveryReport
from .results import ExportResult, OpResult, RecordingSettings, VerifyReport
from .spool import SpoolReader, SpoolTailer, spool_record_vars
from .store import MediaStore

__all__ = [
    "AudioFormat", "ExportResult", "IntegrityError", "ManifestError", "MediaError", "MediaStore", "MediaTimeout",
    "OpResult", "Recording", "RecordingClosed", "RecordingGone", "RecordingSettings", "RecoveryReport",
    "SpoolError", "SpoolReader", "SpoolTailer", "VerifyReport", "spool_record_vars",
]
