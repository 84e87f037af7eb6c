"""The audit log: an append-only, hash-chained table in the index (`audit_log`, schema v3).

Every action on a recording is one row: who (actor), what (action), how it ended (`done`,
`refused`, `failed`), on which call, recording and sample range, why, and when. Each row's
`row_hash` is sha256(prev_hash + canonical JSON of its fields, id included), and `prev_hash` is
the previous row's `row_hash` (the first row chains from GENESIS_HASH). Editing, deleting,
reordering or truncating rows therefore breaks the chain; `verify` names the first broken row.

Triggers refuse UPDATE and DELETE as a first line; anyone who can write the file can drop them,
so the chain is the guarantee. A forger who rewrites every row after a change (and the
sqlite_sequence high-water mark) is caught only by an anchor kept outside the file: the head
(row id and hash) printed by `consentline audit verify`, checked later with `--anchor`.

Rows outlive erasure of the calls they describe: never put personal data (phone numbers,
names of callers) in `reason` or `details`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping

import sqlite_utils

from controller.errors import ConsentlineError
from controller.index import Index, Timestamp, timestamp
from controller.permissions import Actor, Decision

__all__ = ["GENESIS_HASH", "OUTCOMES", "AuditEntry", "AuditError", "VerifyResult", "append", "check_chain",
           "entries", "entry_for", "row_hash", "verify"]

GENESIS_HASH = hashlib.sha256(b"consentline audit log genesis v1").hexdigest()
OUTCOMES = ("done", "refused", "failed")
# The fields each row hash covers, in the order they are stored.
HASHED_FIELDS = ("id", "at", "actor_kind", "actor", "action", "outcome", "call_uuid", "recording_id",
                 "start_sample", "end_sample", "reason", "details")
GUARD_TRIGGERS = ("audit_log_no_update", "audit_log_no_delete")
_MAX_SAMPLE = 2**63 - 1  # SQLite's INTEGER range
_ACTION = re.compile(r"[a-z][a-z0-9_]{0,63}")


class AuditError(ConsentlineError):
    """An audit entry is malformed, or was appended outside a transaction."""


@dataclass(frozen=True)
class AuditEntry:
    """One action to record; `details` is any JSON-serialisable mapping (no personal data)."""

    actor: Actor
    action: str
    outcome: str
    call_uuid: str | None = None
    recording_id: str | None = None
    start_sample: int | None = None
    end_sample: int | None = None
    reason: str | None = None
    details: Mapping[str, Any] | None = None
    at: Timestamp | None = None

    def fields(self) -> dict[str, Any]:
        """The row's stored fields (without id and hashes), validated; raises AuditError."""
        if not isinstance(self.actor, Actor):
            raise AuditError(f"actor: expected an Actor, got {self.actor!r}")
        if not isinstance(self.action, str) or not _ACTION.fullmatch(self.action):
            raise AuditError(f"action: expected a lower-case name like 'tag', got {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise AuditError(f"outcome: expected one of {', '.join(OUTCOMES)}, got {self.outcome!r}")
        for name in ("call_uuid", "recording_id", "reason"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise AuditError(f"{name}: expected a string or None, got {getattr(self, name)!r}")
        _check_samples(self.start_sample, self.end_sample)
        return {"at": timestamp(self.at), "actor_kind": self.actor.kind, "actor": self.actor.name,
                "action": self.action, "outcome": self.outcome, "call_uuid": self.call_uuid,
                "recording_id": self.recording_id, "start_sample": self.start_sample,
                "end_sample": self.end_sample, "reason": self.reason, "details": _details_json(self.details)}


def entry_for(decision: Decision, outcome: str | None = None, *, action: str | None = None,
              **where: Any) -> AuditEntry:
    """The entry for an authorised or refused request: outcome `refused` unless allowed (then `done`)."""
    if outcome is None:
        outcome = "done" if decision.allowed else "refused"
    where.setdefault("reason", decision.reason)
    return AuditEntry(decision.actor, action or decision.permission, outcome, **where)


def _check_samples(start_sample: int | None, end_sample: int | None) -> None:
    for name, value in (("start_sample", start_sample), ("end_sample", end_sample)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= _MAX_SAMPLE):
            raise AuditError(f"{name}: expected a sample index from 0 to {_MAX_SAMPLE} or None, got {value!r}")
    if start_sample is not None and end_sample is not None and end_sample < start_sample:
        raise AuditError(f"end_sample {end_sample} is before start_sample {start_sample}")


def _details_json(details: Mapping[str, Any] | None) -> str | None:
    if details is None:
        return None
    if not isinstance(details, Mapping):
        raise AuditError(f"details: expected a mapping or None, got {type(details).__name__}")
    try:
        return canonical_json(dict(details))
    except (TypeError, ValueError) as exc:
        raise AuditError(f"details: expected JSON-serialisable values: {exc}") from exc


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, ASCII only, no NaN or infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """sha256 over the previous row's hash and this row's HASHED_FIELDS (hex)."""
    body = canonical_json({name: row[name] for name in HASHED_FIELDS})
    return hashlib.sha256((prev_hash + body).encode("ascii")).hexdigest()


# --- appending -------------------------------------------------------------------------------

def append(index: Index, entry: AuditEntry, db: sqlite_utils.Database | None = None) -> int:
    """Append `entry` and return its row id.

    With `db` (from `with index.transaction(...) as db`) the row commits or rolls back with the
    caller's change; without, it is written in a transaction of its own.
    """
    fields = entry.fields()
    if db is None:
        with index.transaction(f"audit {entry.action}") as own:
            return _insert(own, fields)
    if not db.conn.in_transaction:
        raise AuditError("append(db=...): expected the database of an open Index.transaction()")
    return _insert(db, fields)


def _insert(db: sqlite_utils.Database, fields: dict[str, Any]) -> int:
    # Read the head inside the write transaction: BEGIN IMMEDIATE serialises appenders.
    last = db.execute("SELECT id, row_hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    issued = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
    # Never reuse an id: after a truncated tail the gap stays visible to verify().
    row = {"id": max(last[0] if last else 0, issued[0] if issued else 0) + 1, **fields}
    row["prev_hash"] = last[1] if last else GENESIS_HASH
    row["row_hash"] = row_hash(row["prev_hash"], row)
    columns = ", ".join(row)
    db.execute(f"INSERT INTO audit_log ({columns}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    return row["id"]


# --- verifying -------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyResult:
    """`first_broken_id` is the lowest id that is not as it was written (a missing row's id too)."""

    ok: bool
    rows_checked: int
    first_broken_id: int | None = None
    problem: str | None = None
    head_id: int | None = None  # the last intact row: keep (head_id, head_hash) elsewhere as an anchor
    head_hash: str | None = None
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows_checked": self.rows_checked, "first_broken_id": self.first_broken_id,
                "problem": self.problem, "head_id": self.head_id, "head_hash": self.head_hash,
                "warnings": list(self.warnings)}


def check_chain(rows: Iterable[Mapping[str, Any]], issued_upto_id: int,
                anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Check rows (ascending id) against the chain; pure, and streams `rows`.

    `issued_upto_id` is the highest id ever handed out (sqlite_sequence): rows below it that are
    absent were deleted. `anchor` (id, row_hash) is a head recorded earlier outside the index.
    """
    expected_id, prev, checked = 1, GENESIS_HASH, 0

    def broken(row_id: int, problem: str) -> VerifyResult:
        return VerifyResult(False, checked, row_id, problem, expected_id - 1 if checked else None,
                            prev if checked else None)

    for row in rows:
        row_id = row["id"]
        if row_id > expected_id:
            missing = f"row {expected_id} is" if row_id == expected_id + 1 else \
                f"rows {expected_id} to {row_id - 1} are"
            return broken(expected_id, f"{missing} missing (row {row_id} follows row {expected_id - 1})")
        if row_id < expected_id:
            return broken(row_id, f"row id {row_id} is out of sequence (expected {expected_id})")
        if row["prev_hash"] != prev:
            return broken(row_id, f"row {row_id} does not link to row {row_id - 1} (that row's hash was "
                                  f"rewritten, or rows were reordered or replaced)")
        if _hash_or_none(prev, row) != row["row_hash"]:
            return broken(row_id, f"row {row_id} was changed: its fields do not match its hash")
        if anchor is not None and row_id == anchor[0] and row["row_hash"] != anchor[1]:
            return broken(row_id, f"row {row_id} does not match the anchor: the log was rewritten")
        prev, expected_id, checked = row["row_hash"], row_id + 1, checked + 1
    if issued_upto_id >= expected_id:
        return broken(expected_id, f"rows {expected_id} to {issued_upto_id} are missing at the end "
                                   f"(ids up to {issued_upto_id} were issued)")
    if anchor is not None and anchor[0] >= expected_id:
        return broken(expected_id, f"the anchor names row {anchor[0]} but the log ends at row {expected_id - 1}")
    return VerifyResult(True, checked, head_id=expected_id - 1 if checked else None,
                        head_hash=prev if checked else None)


def _hash_or_none(prev_hash: str, row: Mapping[str, Any]) -> str | None:
    try:
        return row_hash(prev_hash, row)
    except (TypeError, ValueError):  # a BLOB or NaN written behind our back: no hash can match
        return None


def verify(index: Index, anchor: tuple[int, str] | None = None, batch_rows: int = 1000) -> VerifyResult:
    """Check the whole audit log in the index (in batches, so appends are not held up)."""
    (bounds,) = index.query("SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'audit_log') AS issued, "
                            "(SELECT MAX(id) FROM audit_log) AS max_id")
    issued = max(bounds["issued"] or 0, bounds["max_id"] or 0)
    result = check_chain(_rows_upto(index, issued, batch_rows), issued, anchor)
    present = {row["name"] for row in index.query(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'")}
    warnings = tuple(f"trigger {name} is missing: the table accepts changes (the chain still shows them)"
                     for name in GUARD_TRIGGERS if name not in present)
    return replace(result, warnings=warnings)


def _rows_upto(index: Index, upto_id: int, batch_rows: int) -> Iterator[dict[str, Any]]:
    # Rows appended after verify() began are beyond upto_id and not checked this time.
    after = None
    while True:
        lower, params = ("", []) if after is None else ("id > ? AND ", [after])
        batch = index.query(f"SELECT * FROM audit_log WHERE {lower}id <= ? ORDER BY id LIMIT ?",
                            params + [upto_id, batch_rows])
        yield from batch
        if len(batch) < batch_rows:
            return
        after = batch[-1]["id"]


# --- reading ---------------------------------------------------------------------------------

def entries(index: Index, *, call_uuid: str | None = None, recording_id: str | None = None,
            actor: str | None = None, since: Timestamp | None = None, until: Timestamp | None = None,
            limit: int | None = None) -> list[dict[str, Any]]:
    """Rows in order (oldest first), `details` decoded; `limit` keeps the newest.

    `actor` is a name ("1001", "anna") or kind:name ("agent:1001"); `since` inclusive, `until` exclusive.
    """
    clauses, params = [], []
    for column, value in (("call_uuid", call_uuid), ("recording_id", recording_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if actor is not None:
        kind, sep, name = actor.partition(":")
        clauses.append("actor_kind = ? AND actor = ?" if sep else "actor = ?")
        params += [kind, name] if sep else [actor]
    for op, value in ((">=", since), ("<", until)):
        if value is not None:
            clauses.append(f"at {op} ?")
            params.append(timestamp(value))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = f"SELECT * FROM audit_log {where} ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    rows = index.query(f"SELECT * FROM ({sql}) ORDER BY id", params)
    for row in rows:
        row["details"] = _decoded(row["details"])
    return rows


def _decoded(details: Any) -> Any:
    """The details mapping; text that is not JSON (a tampered row) is shown as it is."""
    try:
        return json.loads(details) if details else None
    except (TypeError, ValueError):
        return details
