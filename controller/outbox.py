"""The durable helpdesk outbox in the SQLite index (tables from schema v4).

An event is written in the same transaction as the change it reports (`emit` or `enqueue` with the
`db` that `Index.transaction()` yields), with one delivery row per endpoint that wants it. The
sender (webhooks.py) takes due deliveries, and marks each delivered, or failed with a next attempt,
or dead. Per endpoint, a call's events go out in order: a delivery is not due while an earlier
delivery of the same call to the same endpoint is still pending. Dead letters do not block.

Usage in the call flow, right where the change is written:

    with index.transaction(f"recording_cut {recording_id}") as db:
        ...                                   # the change itself
        outbox.emit(db, helpdesk, "recording.cut", CallFacts(call_uuid, caller, dialed, agent, process),
                    recording_id=recording_id, data={"start_sample": s, "end_sample": e, "reason": why})
    sender.wake()                             # optional: deliver now rather than at the next poll
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import sqlite_utils

from controller.errors import IndexWriteError
from controller.helpdesk import EVENT_TYPES, CallFacts, HelpdeskSettings, event_body
from controller.index import Index, timestamp

STATES = ("pending", "delivered", "dead")


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one endpoint."""

    id: int
    event_id: int
    endpoint: str
    attempts: int  # made so far
    event_key: str  # the Idempotency-Key: the same on every attempt and for every endpoint
    event_type: str
    call_uuid: str | None
    body: str  # the stored generic JSON body


def enqueue(db: sqlite_utils.Database | Index, event_type: str, call_uuid: str | None, recording_id: str | None,
            payload: Mapping[str, Any], *, endpoints: Iterable[str] = (), at_s: float | None = None,
            event_key: str | None = None) -> int:
    """Store one event and a pending delivery per endpoint; return the event id.

    Pass the `db` of an open `Index.transaction()` so the event commits (or rolls back) with the change
    it reports; given an `Index`, a transaction of its own is used."""
    if isinstance(db, Index):
        with db.transaction(f"outbox enqueue {event_type}") as inner:
            return enqueue(inner, event_type, call_uuid, recording_id, payload, endpoints=endpoints,
                           at_s=at_s, event_key=event_key)
    if event_type not in EVENT_TYPES:
        raise IndexWriteError(f"outbox: expected an event type ({', '.join(EVENT_TYPES)}), got {event_type!r}")
    at_s = time.time() if at_s is None else at_s
    key = event_key or payload.get("id") or new_event_key()
    cursor = db.execute(
        "INSERT INTO outbox_events (event_key, type, call_uuid, recording_id, created_at, body)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [key, event_type, call_uuid, recording_id, timestamp(at_s), json.dumps(payload, sort_keys=True)])
    event_id = cursor.lastrowid
    for endpoint in endpoints:
        db.execute("INSERT INTO outbox_deliveries (event_id, endpoint, state, attempts, next_attempt_at, updated_at)"
                   " VALUES (?, ?, 'pending', 0, ?, ?)", [event_id, endpoint, at_s, timestamp(at_s)])
    return event_id


def emit(db: sqlite_utils.Database | Index, settings: HelpdeskSettings, event_type: str, facts: CallFacts, *,
         recording_id: str | None = None, data: Mapping[str, Any] | None = None,
         at_s: float | None = None) -> int:
    """Build the event's body (masking numbers, signing the recording link) and enqueue it for every
    endpoint that wants this event type. Returns the event id (stored even with no endpoint)."""
    at_s = time.time() if at_s is None else at_s
    key = new_event_key()
    body = event_body(settings, event_type, facts, event_id=key, recording_id=recording_id, at_s=at_s, data=data)
    endpoints = [e.name for e in settings.endpoints if e.wants(event_type)]
    return enqueue(db, event_type, facts.call_uuid, recording_id, body, endpoints=endpoints, at_s=at_s,
                   event_key=key)


def new_event_key() -> str:
    return f"evt_{uuid.uuid4().hex}"


_DUE_SQL = """
SELECT d.id, d.event_id, d.endpoint, d.attempts, e.event_key, e.type, e.call_uuid, e.body
FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id
WHERE d.endpoint = ? AND d.state = 'pending' AND d.next_attempt_at <= ?
  AND (e.call_uuid IS NULL OR NOT EXISTS (
        SELECT 1 FROM outbox_deliveries d2 JOIN outbox_events e2 ON e2.id = d2.event_id
        WHERE d2.endpoint = d.endpoint AND d2.state = 'pending' AND e2.call_uuid = e.call_uuid
          AND d2.event_id < d.event_id))
ORDER BY d.event_id
LIMIT ?
"""


def due(index: Index, endpoint: str, now_s: float, limit: int) -> list[Delivery]:
    """Pending deliveries to `endpoint` whose time has come, oldest first, at most one per call."""
    rows = index.query(_DUE_SQL, [endpoint, now_s, int(limit)])
    return [Delivery(r["id"], r["event_id"], r["endpoint"], r["attempts"], r["event_key"], r["type"],
                     r["call_uuid"], r["body"]) for r in rows]


def next_due_at(index: Index, endpoint: str) -> float | None:
    """The earliest next_attempt_at among the endpoint's pending deliveries (ordering aside)."""
    rows = index.query("SELECT MIN(next_attempt_at) AS at FROM outbox_deliveries WHERE endpoint = ? AND "
                       "state = 'pending'", [endpoint])
    return rows[0]["at"] if rows else None


def mark_delivered(index: Index, delivery_id: int, status: int, now_s: float) -> None:
    with index.transaction(f"outbox delivered {delivery_id}") as db:
        db.execute("UPDATE outbox_deliveries SET state = 'delivered', attempts = attempts + 1, last_status = ?,"
                   " last_error = NULL, updated_at = ? WHERE id = ?", [status, timestamp(now_s), delivery_id])


def mark_failed(index: Index, delivery_id: int, error: str, status: int | None, now_s: float,
                next_attempt_at_s: float | None) -> None:
    """Count a failed attempt: retry at `next_attempt_at_s`, or None to make it a dead letter."""
    state = "dead" if next_attempt_at_s is None else "pending"
    with index.transaction(f"outbox failed {delivery_id}") as db:
        db.execute("UPDATE outbox_deliveries SET state = ?, attempts = attempts + 1, last_status = ?,"
                   " last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at), updated_at = ? WHERE id = ?",
                   [state, status, error[:500], next_attempt_at_s, timestamp(now_s), delivery_id])


def backoff_s(attempts_made: int, base_s: float, max_s: float, random01: float) -> float:
    """Full jitter: a uniform wait in [0, min(max_s, base_s * 2**(attempts_made - 1)))."""
    ceiling = min(max_s, base_s * 2 ** max(0, attempts_made - 1))
    return ceiling * random01


def deliveries(index: Index, *, states: Iterable[str] = (), limit: int | None = None) -> list[dict[str, Any]]:
    """Delivery rows with their event, newest first; `states` filters (empty: all)."""
    states = list(states)
    where = f"WHERE d.state IN ({', '.join('?' * len(states))})" if states else ""
    params: list[Any] = list(states)
    sql = ("SELECT d.id, d.event_id, e.event_key, e.type, e.call_uuid, e.recording_id, d.endpoint, d.state,"
           " d.attempts, d.next_attempt_at, d.last_status, d.last_error, e.created_at, d.updated_at"
           f" FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id {where}"
           " ORDER BY d.event_id DESC, d.endpoint")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    rows = index.query(sql, params)
    for row in rows:
        row["next_attempt_at"] = timestamp(row["next_attempt_at"]) if row["state"] == "pending" else None
    return rows


def retry(index: Index, delivery_ids: Iterable[int] = (), *, all_dead: bool = False,
          now_s: float | None = None, dry_run: bool = False) -> list[int]:
    """Make dead (or still pending) deliveries due now, with a fresh attempt count; return their ids.

    Delivered ones are left alone: a helpdesk that wants an event again can ask by idempotency key."""
    now_s = time.time() if now_s is None else now_s
    ids = sorted({int(i) for i in delivery_ids})
    with index.transaction("outbox retry") as db:
        if all_dead:
            chosen = [r[0] for r in db.execute("SELECT id FROM outbox_deliveries WHERE state = 'dead' ORDER BY id")]
        else:
            marks = ", ".join("?" * len(ids))
            chosen = [r[0] for r in db.execute(
                f"SELECT id FROM outbox_deliveries WHERE state != 'delivered' AND id IN ({marks}) ORDER BY id",
                ids)] if ids else []
        if chosen and not dry_run:
            marks = ", ".join("?" * len(chosen))
            db.execute(f"UPDATE outbox_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?,"
                       f" updated_at = ? WHERE id IN ({marks})", [now_s, timestamp(now_s), *chosen])
    return chosen


def unknown_ids(index: Index, delivery_ids: Iterable[int]) -> list[int]:
    """Those of `delivery_ids` that name no delivery at all."""
    ids = sorted({int(i) for i in delivery_ids})
    if not ids:
        return []
    found = {r["id"] for r in index.query(
        f"SELECT id FROM outbox_deliveries WHERE id IN ({', '.join('?' * len(ids))})", ids)}
    return [i for i in ids if i not in found]
