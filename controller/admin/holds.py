"""Legal holds: a held recording cannot be deleted, cut or redacted by anyone, nor purged or erased.

A hold names one recording, or a phone number (then it covers every recording of a call from or to
that number, later ones included). Applying needs `legal_hold_apply`. Releasing needs two different
users with `legal_hold_release`: the first asks, the second confirms; both steps are audited. Audit
rows carry the hold id, never the phone number (audit rows outlive erasure).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from controller.admin.session import AdminSession
from controller.errors import ConsentlineError
from controller.index import Index, Timestamp, timestamp
from controller.routing import normalise_number

__all__ = ["HoldError", "ReleaseStep", "apply_holds", "check_phone", "holds", "release_hold"]

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
HOLD_COLUMNS = ("id", "state", "recording_id", "phone", "reason", "applied_by", "applied_at",
                "release_requested_by", "released_by", "released_at")


class HoldError(ConsentlineError):
    """A hold cannot be applied or released as asked; nothing changed."""


@dataclass(frozen=True)
class ReleaseStep:
    hold_id: int
    step: str  # "requested" (first user) or "released" (second user)
    audit_id: int


def check_phone(raw: str) -> str:
    """The E.164 form of a number ("+49 151 1234-5678" -> "+4915112345678"); anything else is refused."""
    number = normalise_number(raw)
    if not E164.fullmatch(number):
        raise ConsentlineError(f"phone: expected an international number like +4915112345678, got {raw!r}")
    return number


def apply_holds(session: AdminSession, reason: str, recording_ids: Iterable[str] = (),
                phone: str | None = None, at: Timestamp | None = None) -> list[dict[str, Any]]:
    """Hold each recording and/or the number; returns one row per target with the hold id and `changed`."""
    recording_ids, at_text = list(dict.fromkeys(recording_ids)), timestamp(at)
    number = check_phone(phone) if phone else None
    decision = session.require("legal_hold_apply", "hold_apply", details={"recordings": len(recording_ids),
                                                                          "phone": number is not None})
    if not reason.strip():
        raise HoldError("a legal hold needs a reason (--reason)")
    known = _recordings(session.index, recording_ids)
    missing = [rid for rid in recording_ids if rid not in known]
    if missing:
        raise HoldError(f"no recording {', '.join(missing)} in the index: nothing held")
    results = []
    with session.index.transaction("hold apply") as db:
        targets = [("recording_id", rid, known[rid]) for rid in recording_ids]
        targets += [("phone", number, None)] if number else []
        for column, value, call_uuid in targets:
            existing = db.execute(f"SELECT id FROM legal_holds WHERE {column} = ? AND released_at IS NULL",
                                  [value]).fetchone()
            if existing:
                results.append({"hold_id": existing[0], column: value, "changed": False})
                continue
            cursor = db.execute(f"INSERT INTO legal_holds ({column}, reason, applied_by, applied_at) "
                                "VALUES (?, ?, ?, ?)", [value, reason, str(session.actor), at_text])
            session.record(decision, action="hold_apply", db=db, at=at_text, call_uuid=call_uuid,
                           recording_id=value if column == "recording_id" else None, reason=reason,
                           details={"hold_id": cursor.lastrowid, "scope": column.split("_")[0]})
            results.append({"hold_id": cursor.lastrowid, column: value, "changed": True})
    return results


def release_hold(session: AdminSession, hold_id: int, reason: str, at: Timestamp | None = None) -> ReleaseStep:
    """First call asks for the release, a second by another user releases; the same user twice is refused."""
    at_text = timestamp(at)
    rows = session.index.query("SELECT * FROM legal_holds WHERE id = ?", [hold_id])
    where = {"recording_id": rows[0]["recording_id"] if rows else None, "at": at_text,
             "details": {"hold_id": hold_id}}
    decision = session.require("legal_hold_release", "hold_release", **where)
    if not rows or rows[0]["released_at"] is not None:
        raise HoldError(f"no active legal hold {hold_id}" + (" (already released)" if rows else ""))
    hold, me = rows[0], str(session.actor)
    if hold["release_requested_by"] == me:
        session.record(decision, "refused", action="hold_release", **{
            **where, "reason": "a release needs a second, different user with legal_hold_release"})
        raise HoldError(f"hold {hold_id}: {me} already asked for its release; a second, different user "
                        f"with legal_hold_release must confirm it")
    step = "released" if hold["release_requested_by"] else "requested"
    with session.index.transaction(f"hold release {hold_id}") as db:
        if step == "requested":
            db.execute("UPDATE legal_holds SET release_requested_by = ?, release_requested_at = ? WHERE id = ?",
                       [me, at_text, hold_id])
        else:
            db.execute("UPDATE legal_holds SET released_by = ?, released_at = ? WHERE id = ?",
                       [me, at_text, hold_id])
        audit_id = session.record(decision, action="hold_release_request" if step == "requested" else
                                  "hold_release", db=db, **{**where, "reason": reason or decision.reason})
    return ReleaseStep(hold_id, step, audit_id)


def holds(index: Index, active_only: bool = True) -> list[dict[str, Any]]:
    sql = "SELECT * FROM legal_holds" + (" WHERE released_at IS NULL" if active_only else "") + " ORDER BY id"
    rows = index.query(sql)
    for row in rows:
        row["state"] = ("released" if row["released_at"] else
                        "release-requested" if row["release_requested_by"] else "active")
    return rows


def _recordings(index: Index, recording_ids: list[str]) -> dict[str, str]:
    """recording id -> call uuid, for those in the index."""
    found: dict[str, str] = {}
    for start in range(0, len(recording_ids), 500):
        batch = recording_ids[start:start + 500]
        rows = index.query(f"SELECT id, call_uuid FROM recordings WHERE id IN ({', '.join('?' * len(batch))})",
                           batch)
        found.update((row["id"], row["call_uuid"]) for row in rows)
    return found
