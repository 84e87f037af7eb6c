"""Tags and flags on recordings, kept in the index and searchable (schema v3).

`recording_tags` holds one row per recording and tag, `recording_flags` the current flag of a
recording; both go when the recording's row goes. Every change is authorised against the
configuration (permissions `tag` and `flag`) and audited in the same transaction as the change;
a refusal changes nothing and is audited too. The result says whether to play the refusal tone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import sqlite_utils

from controller import audit
from controller.config import Config
from controller.errors import ConsentlineError
from controller.index import Index, Timestamp, timestamp
from controller.permissions import Actor, authorise
from controller.routing import normalise_number

__all__ = ["ActionResult", "TagError", "flag", "flag_of", "normalise_tag", "recordings_with", "tag", "tags_of",
           "unflag", "untag"]

_TAG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


class TagError(ConsentlineError):
    """A tag name is malformed, or the recording is not in the index."""


@dataclass(frozen=True)
class ActionResult:
    """`allowed` False: refused (play the refusal tone); `changed` False also when already so."""

    allowed: bool
    changed: bool
    audit_id: int
    reason: str


def normalise_tag(name: str) -> str:
    """Tags are case-insensitive: "Complaint " -> "complaint"; raises TagError for anything else."""
    tag_name = name.strip().lower() if isinstance(name, str) else ""
    if not _TAG.fullmatch(tag_name):
        raise TagError(f"tag: expected up to 64 letters, digits, '_', '-' or '.', got {name!r}")
    return tag_name


def tag(index: Index, config: Config, actor: Actor, recording_id: str, name: str,
        at: Timestamp | None = None) -> ActionResult:
    """Add a tag to a recording (permission `tag`)."""
    tag_name = normalise_tag(name)

    def change(db: sqlite_utils.Database, at_text: str) -> bool:
        cursor = db.execute("INSERT OR IGNORE INTO recording_tags (recording_id, tag, actor, at) VALUES (?, ?, ?, ?)",
                            [recording_id, tag_name, str(actor), at_text])
        return cursor.rowcount == 1
    return _act(index, config, actor, "tag", "tag", recording_id, {"tag": tag_name}, change, at)


def untag(index: Index, config: Config, actor: Actor, recording_id: str, name: str,
          at: Timestamp | None = None) -> ActionResult:
    """Remove a tag from a recording (permission `tag`)."""
    tag_name = normalise_tag(name)

    def change(db: sqlite_utils.Database, at_text: str) -> bool:
        cursor = db.execute("DELETE FROM recording_tags WHERE recording_id = ? AND tag = ?", [recording_id, tag_name])
        return cursor.rowcount == 1
    return _act(index, config, actor, "tag", "untag", recording_id, {"tag": tag_name}, change, at)


def flag(index: Index, config: Config, actor: Actor, recording_id: str, reason: str | None = None,
         at: Timestamp | None = None) -> ActionResult:
    """Flag a recording for review (permission `flag`); flagging a flagged recording changes nothing."""
    return _act(index, config, actor, "flag", "flag", recording_id, {"reason": reason},
                _set_flag(actor, recording_id, True, reason), at)


def unflag(index: Index, config: Config, actor: Actor, recording_id: str, reason: str | None = None,
           at: Timestamp | None = None) -> ActionResult:
    """Clear a recording's flag (permission `flag`)."""
    return _act(index, config, actor, "flag", "unflag", recording_id, {"reason": reason},
                _set_flag(actor, recording_id, False, reason), at)


def _set_flag(actor: Actor, recording_id: str, flagged: bool,
              reason: str | None) -> Callable[[sqlite_utils.Database, str], bool]:
    def change(db: sqlite_utils.Database, at_text: str) -> bool:
        row = db.execute("SELECT flagged FROM recording_flags WHERE recording_id = ?", [recording_id]).fetchone()
        if bool(row and row[0]) == flagged:
            return False
        db.execute("INSERT OR REPLACE INTO recording_flags (recording_id, flagged, actor, at, reason) "
                   "VALUES (?, ?, ?, ?, ?)", [recording_id, int(flagged), str(actor), at_text, reason])
        return True
    return change


def _act(index: Index, config: Config, actor: Actor, permission: str, action: str, recording_id: str,
         details: dict[str, Any], change: Callable[[sqlite_utils.Database, str], bool],
         at: Timestamp | None) -> ActionResult:
    """Authorise, then apply `change` and its audit row in one transaction; refusals and failures are audited."""
    at_text = timestamp(at)
    rows = index.query("SELECT call_uuid FROM recordings WHERE id = ?", [recording_id])
    where = {"call_uuid": rows[0]["call_uuid"] if rows else None, "recording_id": recording_id,
             "details": details, "at": at_text}
    decision = authorise(config, actor, permission)
    if not decision.allowed:
        audit_id = audit.append(index, audit.entry_for(decision, action=action, **where))
        return ActionResult(False, False, audit_id, decision.reason)
    if not rows:
        reason = f"no recording {recording_id} in the index"
        audit.append(index, audit.entry_for(decision, "failed", action=action, **{**where, "reason": reason}))
        raise TagError(reason)
    with index.transaction(f"{action} {recording_id}") as db:
        changed = change(db, at_text)
        # A done row's reason is the one the actor gave, if any; else why it was allowed.
        audit_id = audit.append(index, audit.entry_for(decision, action=action, **{
            **where, "reason": details.get("reason") or decision.reason,
            "details": {**details, "changed": changed}}), db=db)
    return ActionResult(True, changed, audit_id, decision.reason)


# --- reads -----------------------------------------------------------------------------------

def tags_of(index: Index, recording_id: str) -> list[str]:
    """The recording's tags, sorted."""
    rows = index.query("SELECT tag FROM recording_tags WHERE recording_id = ? ORDER BY tag", [recording_id])
    return [row["tag"] for row in rows]


def flag_of(index: Index, recording_id: str) -> dict[str, Any] | None:
    """The recording's flag (flagged, actor, at, reason), or None if never flagged."""
    rows = index.query("SELECT flagged, actor, at, reason FROM recording_flags WHERE recording_id = ?",
                       [recording_id])
    return {**rows[0], "flagged": bool(rows[0]["flagged"])} if rows else None


def recordings_with(index: Index, tag: str | Iterable[str] | None = None, flagged: bool | None = None, *,
                    phone: str | None = None, since: Timestamp | None = None, until: Timestamp | None = None,
                    limit: int | None = None) -> list[dict[str, Any]]:
    """Recordings newest first, as Index.recordings() plus `tags` (sorted) and `flagged`.

    `tag`: one name or several (a recording must have all of them); `flagged`: True only flagged,
    False only not flagged, None either. `since` is inclusive, `until` exclusive.
    """
    names = [] if tag is None else [tag] if isinstance(tag, str) else list(tag)
    clauses, params = _search_clauses(names, flagged, phone, since, until)
    sql = ("SELECT r.*, c.caller, c.dialed, c.process, c.consent_outcome, COALESCE(f.flagged, 0) AS flagged, "
           "(SELECT group_concat(tag, ' ') FROM (SELECT tag FROM recording_tags t WHERE t.recording_id = r.id "
           "ORDER BY tag)) AS tags FROM recordings r JOIN calls c ON c.uuid = r.call_uuid "
           "LEFT JOIN recording_flags f ON f.recording_id = r.id "
           + ("WHERE " + " AND ".join(clauses) + " " if clauses else "") + "ORDER BY r.opened_at DESC, r.id")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    rows = index.query(sql, params)
    for row in rows:
        row["flagged"] = bool(row["flagged"])
        row["tags"] = row["tags"].split(" ") if row["tags"] else []  # tag names hold no spaces
    return rows


def _search_clauses(names: list[str], flagged: bool | None, phone: str | None, since: Timestamp | None,
                    until: Timestamp | None) -> tuple[list[str], list[Any]]:
    clauses, params = [], []
    for tag_name in dict.fromkeys(normalise_tag(name) for name in names):
        # IN (not EXISTS) lets SQLite start from the tag index: a rare tag is found without a scan.
        clauses.append("r.id IN (SELECT recording_id FROM recording_tags WHERE tag = ?)")
        params.append(tag_name)
    if flagged is not None:
        clauses.append(("r.id IN" if flagged else "r.id NOT IN")
                       + " (SELECT recording_id FROM recording_flags WHERE flagged = 1)")
    if phone:
        clauses.append("(c.caller = ? OR c.dialed = ?)")
        params += [normalise_number(phone)] * 2
    for op, value in ((">=", since), ("<", until)):
        if value is not None:
            clauses.append(f"r.opened_at {op} ?")
            params.append(timestamp(value))
    return clauses, params
