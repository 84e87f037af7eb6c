"""Removing a recording for good (delete, erase, purge): the audio goes, a tombstone stays.

The audio is destroyed first (the media store leaves its own tombstone.json with the reason), then the
index row becomes state `purged` with a `recording_tombstones` row (who, when, why, which cause) and
loses its tags and flag. If the process stops in between, the next run finds the audio already gone
and only finishes the index: every step can be repeated.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from controller.index import timestamp
from media import MediaStore, RecordingGone

__all__ = ["check_audio", "destroy_audio", "mark_removed"]


def check_audio(store: MediaStore, recording_id: str) -> int | None:
    """The committed length in samples, or None when no audio is left; raises MediaError when damaged."""
    try:
        recording = store.open(recording_id)
    except RecordingGone:
        return None
    try:
        return recording.length_samples
    finally:
        store.forget(recording_id)


def destroy_audio(store: MediaStore, recording_id: str, actor: str, reason: str) -> bool:
    """Delete the recording's audio; False when there was none left (already deleted, or never kept)."""
    try:
        store.delete(recording_id, actor, reason)
    except RecordingGone:
        return False
    finally:
        store.forget(recording_id)
    return True


def mark_removed(db: sqlite_utils.Database, recording: dict[str, Any], cause: str, actor: str, reason: str,
                 at: str | None = None, helpdesk=None) -> None:
    """The index side of a removal, inside the caller's transaction; with `helpdesk` settings, the
    `recording.deleted` event for the helpdesk goes into the outbox in the same transaction (copies follow)."""
    report_removal(db, helpdesk, recording, cause, reason)
    at = at or timestamp()
    db.execute("UPDATE recordings SET state = 'purged', updated_at = ? WHERE id = ?", [at, recording["id"]])
    db.execute("INSERT OR REPLACE INTO recording_tombstones (recording_id, call_uuid, removed_at, actor, cause,"
               " reason) VALUES (?, ?, ?, ?, ?, ?)", [recording["id"], recording["call_uuid"], at, actor, cause,
                                                      reason])
    db.execute("DELETE FROM recording_tags WHERE recording_id = ?", [recording["id"]])
    db.execute("DELETE FROM recording_flags WHERE recording_id = ?", [recording["id"]])


def report_removal(db: sqlite_utils.Database, helpdesk, recording: dict[str, Any], cause: str, reason: str) -> None:
    """Queue `recording.deleted` for the helpdesk. An erasure's event names no number: it is being erased."""
    report(db, helpdesk, recording, "recording.deleted", {"cause": cause, "reason": reason},
           name_numbers=cause != "erase")


def report(db: sqlite_utils.Database, helpdesk, recording: dict[str, Any], event_type: str, data: dict,
           name_numbers: bool = True) -> None:
    """A helpdesk event about a recording, queued in the caller's transaction (nothing without endpoints)."""
    if helpdesk is None or not helpdesk.endpoints:
        return
    from controller import outbox
    from controller.helpdesk import CallFacts
    row = db.execute("SELECT caller, dialed, process FROM calls WHERE uuid = ?", [recording["call_uuid"]]).fetchone()
    caller, dialed, process = row if row else (None, None, None)
    if not name_numbers:
        caller = dialed = None
    outbox.emit(db, helpdesk, event_type, CallFacts(recording["call_uuid"], caller, dialed, process=process),
                recording_id=recording["id"], data=data)
