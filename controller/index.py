"""The SQLite index: calls, recordings, consent evidence and customers (sqlite-utils, WAL).

The schema version lives in `PRAGMA user_version`; the migrations are in controller.indexschema.

Every write is one transaction (`BEGIN IMMEDIATE` ... `COMMIT`); any failure rolls it back and
raises IndexWriteError, so the call flow can fail closed. Times are stored as ISO 8601 UTC
strings with milliseconds ("2024-05-01T12:00:00.000Z"), which sort as text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid as uuid_module
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import greenlet
import sqlite_utils
from sqlite_utils.db import NotFoundError

from controller.customers import CustomerRecord
from controller.errors import IndexSchemaError, IndexStoreError, IndexWriteError
from controller.indexschema import MIGRATIONS, SCHEMA_VERSION
from controller.routing import RoutingDecision, normalise_number


def _current_task():
    """The greenlet running now (each thread has its own hub and greenlets)."""
    return greenlet.getcurrent()


RECORDING_STATES = ("opened", "recording", "paused", "stopped", "completed", "withdrawn", "purged", "failed")
Timestamp = datetime | float | int | str


def timestamp(at: Timestamp | None = None) -> str:
    """ISO 8601 UTC with milliseconds; `at` is a datetime (naive means UTC), epoch seconds or such a string."""
    if at is None:
        at = datetime.now(timezone.utc)
    elif isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    elif isinstance(at, (int, float)):
        at = datetime.fromtimestamp(at, timezone.utc)
    elif isinstance(at, date) and not isinstance(at, datetime):
        at = datetime(at.year, at.month, at.day)
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Index:
    """One SQLite index file. Safe to share between greenlets and threads (one lock)."""

    def __init__(self, path: str | Path, *, create: bool = True, busy_timeout_s: float = 5.0,
                 upto_version: int = SCHEMA_VERSION):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise IndexStoreError(f"{self.path}: no index here (nothing has been recorded or imported yet)")
        self._lock = threading.RLock()
        self._tx_depth = 0
        self._tx_owner = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, check_same_thread=False)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA synchronous = FULL")  # evidence must survive a power cut
            if self.db.journal_mode != "wal":
                self.db.enable_wal()
            self._migrate(upto_version)
        except sqlite3.DatabaseError as exc:
            raise IndexSchemaError(f"{self.path}: expected a Consentline index, got {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            raise IndexStoreError(f"{self.path}: cannot open the index: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self, upto_version: int) -> None:
        current = self.version
        if current > len(MIGRATIONS):
            raise IndexSchemaError(f"{self.path}: schema version {current} is newer than this program's "
                                   f"{len(MIGRATIONS)}; upgrade Consentline")
        for number in range(current, upto_version):
            with self._transaction(f"migration to schema version {number + 1}"):
                MIGRATIONS[number](self.db)
                self.db.execute(f"PRAGMA user_version = {number + 1}")

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite_utils.Database]:
        """One write transaction; any error rolls it back and becomes IndexWriteError.

        Re-entrant: a write inside `transaction()` joins it, so a change and the outbox event that reports it
        commit together."""
        with self._lock:
            if self._tx_depth and self._tx_owner is not _current_task():
                # another greenlet on this thread, inside someone else's open transaction: never join it
                raise IndexWriteError(f"{what}: the index is in another greenlet's transaction; "
                                      "index writes must go through one worker (controller.indexio)")
            if self._tx_depth:
                self._tx_depth += 1
                try:
                    yield self.db
                finally:
                    self._tx_depth -= 1
                return
            self._tx_depth = 1
            self._tx_owner = _current_task()
            try:
                self.db.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
                try:
                    yield self.db
                    self.db.execute("COMMIT")
                except BaseException:
                    if self.db.conn.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, NotFoundError, ValueError) as exc:
                raise IndexWriteError(f"{what}: {exc}") from exc
            finally:
                self._tx_depth = 0
                self._tx_owner = None

    def _update_call(self, db: sqlite_utils.Database, call_uuid: str, values: dict) -> None:
        try:
            db["calls"].update(call_uuid, values)
        except NotFoundError:
            raise IndexWriteError(f"no call {call_uuid} in the index") from None

    def _add_evidence(self, db: sqlite_utils.Database, call_uuid: str, kind: str, at: Timestamp, **fields) -> None:
        (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM consent_evidence WHERE call_uuid = ?",
                            [call_uuid]).fetchone()
        db["consent_evidence"].insert({"call_uuid": call_uuid, "seq": seq, "kind": kind, "at": timestamp(at),
                                       **fields})

    # --- writes used by the call flow -------------------------------------------------------

    def call_started(self, call_uuid: str, caller: str, dialed: str, at: Timestamp | None = None) -> None:
        with self._transaction(f"call_started {call_uuid}") as db:
            db["calls"].insert({"uuid": call_uuid, "caller": normalise_number(caller),
                                "dialed": normalise_number(dialed), "started_at": timestamp(at)})

    def routing_decided(self, call_uuid: str, decision: RoutingDecision | dict) -> None:
        data = decision.to_dict() if isinstance(decision, RoutingDecision) else dict(decision)
        with self._transaction(f"routing_decided {call_uuid}") as db:
            self._update_call(db, call_uuid, {
                "process": data["process"], "pack": data["pack"], "config_version": data["config_version"],
                "routing_conflict": int(bool(data["conflict"])), "routing": json.dumps(data, sort_keys=True)})

    def evidence_prompt(self, call_uuid: str, prompt_id: str, sha256: str, at: Timestamp | None = None,
                        cut_short: bool = False) -> None:
        """A prompt played to the caller; `cut_short`: the flow ended inside it (kind `prompt-cut-short`)."""
        kind = "prompt-cut-short" if cut_short else "prompt"
        with self._transaction(f"evidence_prompt {call_uuid}") as db:
            self._add_evidence(db, call_uuid, kind, at, prompt_id=prompt_id, sha256=sha256)

    def evidence_digit(self, call_uuid: str, digit: str, at: Timestamp | None = None) -> None:
        with self._transaction(f"evidence_digit {call_uuid}") as db:
            self._add_evidence(db, call_uuid, "digit", at, digit=digit)

    def consent_decided(self, call_uuid: str, outcome: str, reason: str, process: str, config_version: str,
                        at: Timestamp | None = None) -> None:
        """The consent outcome, on the call row and as the last evidence item, in one transaction."""
        with self._transaction(f"consent_decided {call_uuid}") as db:
            self._update_call(db, call_uuid, {"consent_outcome": outcome, "consent_reason": reason,
                                              "consent_at": timestamp(at)})
            self._add_evidence(db, call_uuid, "outcome", at, outcome=outcome, reason=reason, process=process,
                               config_version=config_version)

    def recording_opened(self, call_uuid: str, path: str | Path, at: Timestamp | None = None,
                         recording_id: str | None = None) -> str:
        recording_id = recording_id or str(uuid_module.uuid4())
        with self._transaction(f"recording_opened {call_uuid}") as db:
            db["recordings"].insert({"id": recording_id, "call_uuid": call_uuid, "path": str(path),
                                     "state": "opened", "opened_at": timestamp(at), "updated_at": timestamp(at)})
        return recording_id

    def recording_state(self, recording_id: str, state: str, at: Timestamp | None = None,
                        duration_s: float | None = None) -> None:
        if state not in RECORDING_STATES:
            raise IndexWriteError(f"recording_state {recording_id}: expected one of "
                                  f"{', '.join(RECORDING_STATES)}, got {state!r}")
        values = {"state": state, "updated_at": timestamp(at)}
        if duration_s is not None:
            values["duration_s"] = float(duration_s)
        with self._transaction(f"recording_state {recording_id}") as db:
            db["recordings"].update(recording_id, values)

    def call_ended(self, call_uuid: str, cause: str, at: Timestamp | None = None) -> None:
        with self._transaction(f"call_ended {call_uuid}") as db:
            self._update_call(db, call_uuid, {"hangup_cause": cause, "ended_at": timestamp(at)})

    def import_customers(self, records: list[CustomerRecord], replace_all: bool = False) -> int:
        """Upsert the records by phone (or replace the whole table) in one transaction."""
        now = timestamp()
        rows = [{"phone": r.phone, "country": r.country, "do_not_record": int(r.do_not_record),
                 "process": r.process, "imported_at": now} for r in records]
        with self._transaction("customers import") as db:
            if replace_all:
                db.execute("DELETE FROM customers")
            db["customers"].upsert_all(rows, pk="phone")
        return len(rows)

    # --- reads ------------------------------------------------------------------------------

    def _rows(self, sql: str, params: list) -> list[dict[str, Any]]:
        with self._lock:
            try:
                return list(self.db.query(sql, params))
            except sqlite3.Error as exc:
                raise IndexStoreError(f"{self.path}: read failed: {exc}") from exc

    def customer(self, phone: str) -> CustomerRecord | None:
        rows = self._rows("SELECT * FROM customers WHERE phone = ?", [normalise_number(phone)])
        if not rows:
            return None
        row = rows[0]
        return CustomerRecord(row["phone"], row["country"], bool(row["do_not_record"]), row["process"])

    def call(self, call_uuid: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM calls WHERE uuid = ?", [call_uuid])
        return _decode_call(rows[0]) if rows else None

    def evidence(self, call_uuid: str) -> list[dict[str, Any]]:
        """The call's evidence items in order, each without its empty fields."""
        rows = self._rows("SELECT * FROM consent_evidence WHERE call_uuid = ? ORDER BY seq", [call_uuid])
        return [{k: v for k, v in row.items() if v is not None and k != "id"} for row in rows]

    def calls(self, phone: str | None = None, since: Timestamp | None = None, until: Timestamp | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        """Calls newest first; `phone` matches caller or dialed, `since` is inclusive, `until` exclusive."""
        where, params = _filters("c", phone, since, until, "c.started_at")
        sql = (f"SELECT c.*, (SELECT COUNT(*) FROM recordings r WHERE r.call_uuid = c.uuid) AS recordings "
               f"FROM calls c {where} ORDER BY c.started_at DESC, c.uuid{_limit(limit, params)}")
        return [_decode_call(row) for row in self._rows(sql, params)]

    def recordings(self, phone: str | None = None, since: Timestamp | None = None, until: Timestamp | None = None,
                   limit: int | None = None, call_uuid: str | None = None) -> list[dict[str, Any]]:
        """Recordings newest first, with their call's caller, dialed and process; filters as calls()."""
        where, params = _filters("c", phone, since, until, "r.opened_at")
        if call_uuid is not None:
            where = (where + " AND" if where else "WHERE") + " r.call_uuid = ?"
            params.append(call_uuid)
        sql = (f"SELECT r.*, c.caller, c.dialed, c.process, c.consent_outcome FROM recordings r "
               f"JOIN calls c ON c.uuid = r.call_uuid {where} ORDER BY r.opened_at DESC, r.id"
               f"{_limit(limit, params)}")
        return self._rows(sql, params)

    # --- for modules that own tables in the index (audit log, tags) ---------------------------

    @contextmanager
    def transaction(self, what: str) -> Iterator[sqlite_utils.Database]:
        """One write transaction for changes that must commit together (a tag and its audit row).

        The index stays locked until the block ends: no network I/O or waiting inside it."""
        with self._transaction(what) as db:
            yield db

    def query(self, sql: str, params: list | tuple = ()) -> list[dict[str, Any]]:
        """The rows of one read-only query, under the index lock; failures raise IndexStoreError."""
        return self._rows(sql, list(params))

    @contextmanager
    def one_fsync(self) -> Iterator[None]:
        """Group commit: the transactions inside commit without fsync; one WAL fsync at the end covers them all.

        Holds the index lock throughout, so no other commit slips in unsynced. Until the block has returned,
        nothing written inside it may be reported as written (a power cut can still take it)."""
        import os
        with self._lock:
            self.db.execute("PRAGMA synchronous = NORMAL")  # WAL stays consistent; only the commit fsync goes
            try:
                yield
            finally:
                self.db.execute("PRAGMA synchronous = FULL")
            try:
                fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            except FileNotFoundError:
                return  # nothing was written through the WAL
            try:
                os.fsync(fd)
            except OSError as exc:
                raise IndexWriteError(f"{self.path}: the write-ahead log could not be made durable: {exc}") from exc
            finally:
                os.close(fd)


def _filters(alias: str, phone, since, until, time_column: str) -> tuple[str, list]:
    clauses, params = [], []
    if phone:
        clauses.append(f"({alias}.caller = ? OR {alias}.dialed = ?)")
        params += [normalise_number(phone)] * 2
    if since is not None:
        clauses.append(f"{time_column} >= ?")
        params.append(timestamp(since))
    if until is not None:
        clauses.append(f"{time_column} < ?")
        params.append(timestamp(until))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _limit(limit: int | None, params: list) -> str:
    if limit is None:
        return ""
    params.append(int(limit))
    return " LIMIT ?"


def _decode_call(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["routing"] = json.loads(row["routing"]) if row.get("routing") else None
    if row.get("routing_conflict") is not None:
        row["routing_conflict"] = bool(row["routing_conflict"])
    return row
