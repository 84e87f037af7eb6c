"""The index's schema, as migrations: `MIGRATIONS` is an ordered tuple, and schema version N (SQLite's
`PRAGMA user_version`) means the first N have run. To add a table, append a function; never edit one that has
shipped.
"""

from __future__ import annotations

from typing import Callable

import sqlite_utils


def _v1_calls_recordings_evidence(db: sqlite_utils.Database) -> None:
    db["calls"].create({
        "uuid": str, "caller": str, "dialed": str, "started_at": str,
        "process": str, "pack": str, "config_version": str, "routing": str, "routing_conflict": int,
        "consent_outcome": str, "consent_reason": str, "consent_at": str,
        "ended_at": str, "hangup_cause": str,
    }, pk="uuid", not_null=["caller", "dialed", "started_at"])
    db["recordings"].create({
        "id": str, "call_uuid": str, "path": str, "state": str, "opened_at": str, "updated_at": str,
        "duration_s": float,
    }, pk="id", foreign_keys=[("call_uuid", "calls", "uuid")],
        not_null=["call_uuid", "path", "state", "opened_at", "updated_at"])
    db["consent_evidence"].create({
        "id": int, "call_uuid": str, "seq": int, "kind": str, "at": str,
        "prompt_id": str, "sha256": str, "digit": str,
        "outcome": str, "reason": str, "process": str, "config_version": str,
    }, pk="id", foreign_keys=[("call_uuid", "calls", "uuid")], not_null=["call_uuid", "seq", "kind", "at"])
    db["consent_evidence"].create_index(["call_uuid", "seq"], unique=True)


def _v2_customers_and_lookups(db: sqlite_utils.Database) -> None:
    db["customers"].create({
        "phone": str, "country": str, "do_not_record": int, "process": str, "imported_at": str,
    }, pk="phone", not_null=["do_not_record", "imported_at"])
    db["calls"].create_index(["caller"])
    db["calls"].create_index(["dialed"])
    db["calls"].create_index(["started_at"])
    db["recordings"].create_index(["call_uuid"])


def _v3_audit_tags_flags(db: sqlite_utils.Database) -> None:
    # controller.audit hash-chains audit_log; the triggers are a first guard, the chain the real one.
    for sql in (
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,"
        " actor_kind TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
        " outcome TEXT NOT NULL CHECK (outcome IN ('done', 'refused', 'failed')), call_uuid TEXT,"
        " recording_id TEXT, start_sample INTEGER, end_sample INTEGER, reason TEXT, details TEXT,"
        " prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL)",
        "CREATE INDEX audit_log_call_uuid ON audit_log (call_uuid)",
        "CREATE INDEX audit_log_actor ON audit_log (actor)",
        "CREATE INDEX audit_log_at ON audit_log (at)",
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
        " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be changed'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
        " BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: rows cannot be deleted'); END",
        # Tags and flags go with their recording (erasure, purge); their history stays in audit_log.
        "CREATE TABLE recording_tags (recording_id TEXT NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,"
        " tag TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (recording_id, tag))",
        "CREATE INDEX recording_tags_tag ON recording_tags (tag)",
        "CREATE TABLE recording_flags (recording_id TEXT PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,"
        " flagged INTEGER NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL, reason TEXT)",
        "CREATE INDEX recording_flags_flagged ON recording_flags (flagged)",
    ):
        db.execute(sql)


def _v4_outbox(db: sqlite_utils.Database) -> None:
    # controller.outbox: one row per helpdesk event, written in the transaction of the change it reports,
    # and one delivery row per (event, endpoint); next_attempt_at is unix seconds so back-off compares as numbers.
    for sql in (
        "CREATE TABLE outbox_events (id INTEGER PRIMARY KEY AUTOINCREMENT, event_key TEXT NOT NULL UNIQUE,"
        " type TEXT NOT NULL, call_uuid TEXT, recording_id TEXT, created_at TEXT NOT NULL, body TEXT NOT NULL)",
        "CREATE INDEX outbox_events_call_uuid ON outbox_events (call_uuid)",
        "CREATE TABLE outbox_deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " event_id INTEGER NOT NULL REFERENCES outbox_events (id), endpoint TEXT NOT NULL,"
        " state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),"
        " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, last_error TEXT,"
        " last_status INTEGER, updated_at TEXT NOT NULL, UNIQUE (event_id, endpoint))",
        "CREATE INDEX outbox_deliveries_due ON outbox_deliveries (endpoint, state, next_attempt_at)",
    ):
        db.execute(sql)


def _v5_retention_holds(db: sqlite_utils.Database) -> None:
    # controller.admin: legal holds (two-person release), tombstones of removed recordings, and the lookups
    # that keep purge and tag search fast. recording_tags.opened_at copies its recording's opened_at (filled
    # by a trigger, so writers need not know) and lets "newest 50 with tag X" read one index range.
    for sql in (
        "CREATE TABLE legal_holds (id INTEGER PRIMARY KEY AUTOINCREMENT, recording_id TEXT, phone TEXT,"
        " reason TEXT NOT NULL, applied_by TEXT NOT NULL, applied_at TEXT NOT NULL,"
        " release_requested_by TEXT, release_requested_at TEXT, released_by TEXT, released_at TEXT,"
        " CHECK ((recording_id IS NULL) <> (phone IS NULL)))",
        "CREATE INDEX legal_holds_active_recording ON legal_holds (recording_id) WHERE released_at IS NULL",
        "CREATE INDEX legal_holds_active_phone ON legal_holds (phone) WHERE released_at IS NULL",
        "CREATE TABLE recording_tombstones (recording_id TEXT PRIMARY KEY, call_uuid TEXT,"
        " removed_at TEXT NOT NULL, actor TEXT NOT NULL,"
        " cause TEXT NOT NULL CHECK (cause IN ('delete', 'erase', 'purge')), reason TEXT NOT NULL)",
        "CREATE INDEX recordings_opened_at ON recordings (opened_at DESC, id)",
        "ALTER TABLE recording_tags ADD COLUMN opened_at TEXT",
        "UPDATE recording_tags SET opened_at = (SELECT r.opened_at FROM recordings r WHERE r.id = recording_id)",
        "CREATE TRIGGER recording_tags_opened_at AFTER INSERT ON recording_tags WHEN NEW.opened_at IS NULL"
        " BEGIN UPDATE recording_tags SET opened_at = (SELECT opened_at FROM recordings WHERE id = NEW.recording_id)"
        " WHERE recording_id = NEW.recording_id AND tag = NEW.tag; END",
        "CREATE INDEX recording_tags_tag_opened_at ON recording_tags (tag, opened_at DESC, recording_id)",
    ):
        db.execute(sql)


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1_calls_recordings_evidence,
    _v2_customers_and_lookups,
    _v3_audit_tags_flags,
    _v4_outbox,
    _v5_retention_holds,
)
SCHEMA_VERSION = len(MIGRATIONS)
