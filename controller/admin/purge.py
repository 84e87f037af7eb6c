"""The retention purge: delete every expired recording that is not under legal hold.

Safe from cron: each recording is removed on its own (audio, then its index rows and audit row), so an
interrupted run leaves finished removals done and the rest untouched, and the next run picks up where
it stopped. Candidates are preselected in SQL by the shortest retention their process could have; the
exact expiry (tags included) is then computed by controller.admin.retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from controller.admin import removal, retention
from controller.legalholds import ACTIVE_HOLD_SQL, held_among
from controller.admin.session import AdminSession
from controller.config import Config
from controller.index import Index, timestamp
from media import MediaError

__all__ = ["PurgeItem", "expired_recordings", "purge"]

BATCH_SIZE = 100  # recordings per index transaction
LIVE_STATES = ("opened", "recording", "paused")  # never purged while the call may still be writing


@dataclass(frozen=True)
class PurgeItem:
    recording_id: str
    call_uuid: str
    process: str
    opened_at: str
    retention_days: int
    expired_at: str
    held: bool

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.recording_id, "call_uuid": self.call_uuid, "process": self.process,
                "opened_at": self.opened_at, "retention_days": self.retention_days,
                "expired_at": self.expired_at, "held": self.held}


def expired_recordings(index: Index, config: Config, rules: retention.RetentionRules,
                       now: datetime) -> Iterator[PurgeItem]:
    """Every recording whose retention has run out at `now`, held ones included (marked), oldest first."""
    for name, process in sorted(config.processes.items()):
        base = retention.retention_days(process.retention_days, process.purpose, (), rules)
        if base is None:  # no retention limit for this process
            continue
        cutoff = timestamp(now - timedelta(days=rules.shortest_possible_days(base)))
        rows = index.query(
            f"SELECT r.id, r.call_uuid, r.opened_at, {ACTIVE_HOLD_SQL} AS held, (SELECT group_concat(tag, ' ') "
            f"FROM recording_tags t WHERE t.recording_id = r.id) AS tags FROM recordings r "
            f"JOIN calls c ON c.uuid = r.call_uuid WHERE r.opened_at <= ? AND c.process = ? "
            f"AND r.state NOT IN ('purged', {', '.join(repr(s) for s in LIVE_STATES)}) ORDER BY r.opened_at, r.id",
            [cutoff, name])
        for row in rows:
            days = retention.retention_days(process.retention_days, process.purpose,
                                            (row["tags"] or "").split(), rules)
            expiry = retention.expires_at(datetime.fromisoformat(row["opened_at"].replace("Z", "+00:00")), days)
            if expiry is not None and expiry <= now:
                yield PurgeItem(row["id"], row["call_uuid"], name, row["opened_at"], days, timestamp(expiry),
                                bool(row["held"]))


def purge(session: AdminSession, items: list[PurgeItem], rules: retention.RetentionRules, now: datetime,
          advance: Callable[[int], None] = lambda steps=1: None, batch_size: int = BATCH_SIZE) -> list[dict[str, Any]]:
    """Remove every item not held; one row per item with `result`: purged, kept: legal hold, or failed: why."""
    decision = session.require("purge", "purge", details={"candidates": len(items)})
    results = []
    for start in range(0, len(items), batch_size):
        results += _purge_batch(session, decision, items[start:start + batch_size], rules, now)
        advance(min(batch_size, len(items) - start))
    return results


def _purge_batch(session: AdminSession, decision, items: list[PurgeItem], rules: retention.RetentionRules,
                 now: datetime) -> list[dict[str, Any]]:
    """Audio first, item by item; then the batch's index rows and audit rows in one transaction."""
    actor, results, removed = str(session.actor), [], []
    held_now = held_among(session.index, [item.recording_id for item in items])  # holds applied meanwhile
    for item in items:
        reason = f"retention: {item.retention_days} days ({item.process}) expired {item.expired_at}"
        if item.held or item.recording_id in held_now:
            results.append({**item.to_dict(), "held": True, "result": "kept: legal hold"})
            continue
        try:
            removal.destroy_audio(session.store, item.recording_id, actor, reason)
        except MediaError as exc:  # a damaged recording: report it, keep going with the others
            session.record(decision, "failed", action="purge", call_uuid=item.call_uuid,
                           recording_id=item.recording_id, reason=f"{reason}: {exc}")
            results.append({**item.to_dict(), "result": f"failed: {exc}"})
            continue
        removed.append((item, reason))
        results.append({**item.to_dict(), "result": "purged"})
    if removed:
        at = timestamp()
        with session.index.transaction("purge") as db:
            for item, reason in removed:
                removal.mark_removed(db, {"id": item.recording_id, "call_uuid": item.call_uuid}, "purge", actor,
                                     reason, at, helpdesk=session.helpdesk)
                session.record(decision, action="purge", db=db, at=at, call_uuid=item.call_uuid,
                               recording_id=item.recording_id, reason=reason,
                               details={"now": timestamp(now), **rules.describe()})
    return results
