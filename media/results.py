"""Settings and the values that operations return (what the controller writes to its audit log).

Timelines: "input" samples count frames read from the spool since the recording started (they never
move); "recording" samples are positions in the recording as it stands at that moment, after pauses
with `skip` and after earlier cuts. Each result gives its range in the recording timeline as it was
when the operation ran, half-open [start_sample, end_sample); pause and resume also give input samples.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Optional

from .redact import GAP_FILLS


@dataclass(frozen=True)
class RecordingSettings:
    holdback_s: float = 10.0      # newest audio kept in memory before it is committed
    gap_fill: str = "skip"        # what a pause leaves: skip | silence | tone | noise
    chunk_s: float = 30.0         # a chunk file's length; bounds what a cut or redact rewrites
    max_pending_s: float = 120.0  # audio held while consent is pending; beyond it append fails
    io_timeout_s: float = 30.0    # any single fsync, close, read or write
    lock_timeout_s: float = 60.0  # waiting for another greenlet's operation on the same recording

    def __post_init__(self) -> None:
        if self.gap_fill not in GAP_FILLS:
            raise ValueError(f"gap_fill must be one of {GAP_FILLS}, got {self.gap_fill!r}")
        if self.holdback_s < 0 or self.chunk_s <= 0 or self.max_pending_s < 0:
            raise ValueError("holdback_s and max_pending_s must be >= 0, chunk_s > 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class OpResult:
    recording_id: str
    op_id: int
    op: str
    actor: str
    reason: str
    at: float
    start_sample: int
    end_sample: int
    channels: Optional[tuple[int, ...]] = None  # None: every channel
    input_start_sample: Optional[int] = None
    input_end_sample: Optional[int] = None
    removed_samples: int = 0       # how many samples the recording lost (cuts, skipped pauses)
    in_window_samples: int = 0     # of the affected samples, how many were still only in memory
    rewritten_chunks: tuple[int, ...] = ()  # seqs of committed chunks replaced or removed
    fill: Optional[str] = None
    changed: bool = True           # False for a repeated pause, an unmask with nothing masked, ...

    def as_dict(self) -> dict:
        """Shallow: every field is a scalar or a tuple of ints (dataclasses.asdict deep-copies, slowly)."""
        return {name: getattr(self, name) for name in _OP_RESULT_FIELDS}


_OP_RESULT_FIELDS = tuple(f.name for f in fields(OpResult))


@dataclass(frozen=True)
class VerifyReport:
    recording_id: str
    chunks_checked: int
    samples: int
    bad_chunks: tuple[tuple[int, str], ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.bad_chunks


@dataclass(frozen=True)
class ExportResult:
    path: str
    format: str
    samples: int
    rate_hz: int
    channels: int
