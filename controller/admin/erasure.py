"""GDPR Art. 17 erasure of everything about one phone number.

What goes: the audio of every recording of a call from or to the number (the media store keeps a
tombstone with the reason), those recordings' tags and flags, the number in their call rows (caller or
dialed, the routing inputs, helpdesk outbox bodies) and the customer record. What stays: call rows without
the number, consent evidence (no personal data), tombstones with the reason, and the audit log.

A recording under legal hold is kept together with its call row (Art. 17(3)(e)); a hold on the number
itself stops the whole erasure. A damaged recording stops it before anything changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from controller.admin import removal
from controller.admin.holds import HoldError, check_phone
from controller.admin.queries import recordings_of_number
from controller.admin.session import AdminSession
from controller.index import Index, Timestamp, timestamp

__all__ = ["ERASED", "ErasurePlan", "erase", "plan_erasure"]

ERASED = "[erased]"


@dataclass(frozen=True)
class ErasurePlan:
    phone: str
    calls: list[str] = field(default_factory=list)  # call uuids whose personal fields go
    recordings: list[dict[str, Any]] = field(default_factory=list)  # id, call_uuid, state: audio and rows go
    kept: list[dict[str, Any]] = field(default_factory=list)  # id, call_uuid, why: under legal hold
    customer: bool = False
    outbox_events: int = 0
    number_holds: list[int] = field(default_factory=list)  # active holds on the number itself

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def empty(self) -> bool:
        return not (self.calls or self.recordings or self.customer or self.kept)


def decide(phone: str, call_uuids: list[str], recordings: list[dict[str, Any]], customer: bool,
           outbox_events: int, number_holds: list[int]) -> ErasurePlan:
    """Pure: which recordings and calls go; a call with a held recording is kept whole."""
    held_calls = {row["call_uuid"] for row in recordings if row["held"]}
    gone = [{"id": r["id"], "call_uuid": r["call_uuid"], "state": r["state"]} for r in recordings
            if r["call_uuid"] not in held_calls and r["state"] != "purged"]
    kept = [{"id": r["id"], "call_uuid": r["call_uuid"], "why": "legal hold" if r["held"] else
             "another recording of its call is under legal hold"} for r in recordings
            if r["call_uuid"] in held_calls]
    return ErasurePlan(phone, [uuid for uuid in call_uuids if uuid not in held_calls], gone, kept, customer,
                       outbox_events, number_holds)


def plan_erasure(index: Index, raw_phone: str) -> ErasurePlan:
    """Exactly what `erase` would remove for this number (reads only)."""
    phone = check_phone(raw_phone)
    calls = [row["uuid"] for row in index.query(
        "SELECT uuid FROM calls WHERE caller = ? OR dialed = ? ORDER BY started_at, uuid", [phone, phone])]
    customer = bool(index.query("SELECT 1 FROM customers WHERE phone = ?", [phone]))
    outbox = index.query("SELECT COUNT(*) AS n FROM outbox_events WHERE call_uuid IN "
                         "(SELECT uuid FROM calls WHERE caller = ? OR dialed = ?) AND instr(body, ?) > 0",
                         [phone, phone, phone])[0]["n"]
    number_holds = [row["id"] for row in index.query(
        "SELECT id FROM legal_holds WHERE phone = ? AND released_at IS NULL ORDER BY id", [phone])]
    return decide(phone, calls, recordings_of_number(index, phone), customer, outbox, number_holds)


def erase(session: AdminSession, plan: ErasurePlan, reason: str, at: Timestamp | None = None,
          advance=lambda steps=1: None) -> ErasurePlan:
    """Carry out `plan` (from plan_erasure in the same run); returns it. Raises before any change on refusal,
    a hold on the number, or damaged audio."""
    at_text, actor = timestamp(at), str(session.actor)
    decision = session.require("erase", "erase", at=at_text, details={"recordings": len(plan.recordings)})
    if plan.number_holds:
        raise HoldError(f"the number is under legal hold {', '.join(map(str, plan.number_holds))}: nothing erased")
    for row in plan.recordings:  # every recording must be readable (or already gone) before anything goes
        removal.check_audio(session.store, row["id"])
    why = f"erasure (GDPR Art. 17): {reason}"
    for row in plan.recordings:
        removal.destroy_audio(session.store, row["id"], actor, why)
        advance(1)
    with session.index.transaction("erase") as db:
        for row in plan.recordings:
            removal.mark_removed(db, row, "erase", actor, why, at_text, helpdesk=session.helpdesk)
            session.record(decision, action="erase", db=db, at=at_text, call_uuid=row["call_uuid"],
                           recording_id=row["id"], reason=why)
        _scrub_number(db, plan)
        session.record(decision, action="erase", db=db, at=at_text, reason=why, details={
            "calls": len(plan.calls), "recordings": len(plan.recordings), "kept_under_hold": len(plan.kept),
            "customer_record": plan.customer, "outbox_events": plan.outbox_events})
    return plan


def _scrub_number(db, plan: ErasurePlan) -> None:
    phone = plan.phone
    for start in range(0, len(plan.calls), 400):
        batch = plan.calls[start:start + 400]
        marks = ", ".join("?" * len(batch))
        db.execute(f"UPDATE calls SET caller = CASE WHEN caller = ? THEN ? ELSE caller END, "
                   f"dialed = CASE WHEN dialed = ? THEN ? ELSE dialed END, routing = replace(routing, ?, ?), "
                   f"consent_reason = replace(consent_reason, ?, ?) WHERE uuid IN ({marks})",
                   [phone, ERASED, phone, ERASED, phone, ERASED, phone, ERASED, *batch])
        db.execute(f"UPDATE outbox_events SET body = replace(body, ?, ?) WHERE call_uuid IN ({marks})",
                   [phone, ERASED, *batch])
    db.execute("DELETE FROM customers WHERE phone = ?", [phone])
    db.execute("UPDATE legal_holds SET phone = ? WHERE phone = ? AND released_at IS NOT NULL", [ERASED, phone])
