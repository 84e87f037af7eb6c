"""Reading recordings from the index: the filtered search behind `recordings list`, and one in full.

With a tag filter the search reads `recording_tags (tag, opened_at)` newest first, so a page of 50
costs the same however many recordings the index holds; otherwise it reads `recordings (opened_at)`.
"""

from __future__ import annotations

from typing import Any, Iterable

from controller.legalholds import ACTIVE_HOLD_SQL
from controller.errors import ConsentlineError
from controller.index import RECORDING_STATES, Index, Timestamp, timestamp
from controller.routing import normalise_number
from controller.tags import normalise_tag

__all__ = ["LIST_COLUMNS", "SearchError", "recording", "recordings_of_number", "search_recordings"]

LIST_COLUMNS = ("opened_at", "id", "call_uuid", "caller", "dialed", "process", "state", "duration_s", "tags",
                "flagged", "held")
_SELECT = ("SELECT r.*, c.caller, c.dialed, c.process, c.consent_outcome, COALESCE(f.flagged, 0) AS flagged, "
           "(SELECT group_concat(tag, ' ') FROM (SELECT tag FROM recording_tags t WHERE t.recording_id = r.id "
           f"ORDER BY tag)) AS tags, {ACTIVE_HOLD_SQL} AS held ")


class SearchError(ConsentlineError):
    """A filter value is not one the index can hold."""


def search_recordings(index: Index, *, phone: str | None = None, since: Timestamp | None = None,
                      until: Timestamp | None = None, process: str | None = None, tags: Iterable[str] = (),
                      flagged: bool | None = None, state: str | None = None,
                      limit: int | None = None) -> list[dict[str, Any]]:
    """Recordings newest first, each with caller, dialed, process, tags (sorted), flagged and held.

    Several tags: a recording must have all of them. `since` is inclusive, `until` exclusive.
    """
    names = list(dict.fromkeys(normalise_tag(name) for name in tags))
    if state is not None and state not in RECORDING_STATES:
        raise SearchError(f"state: expected one of {', '.join(RECORDING_STATES)}, got {state!r}")
    time_column = "t0.opened_at" if names else "r.opened_at"
    clauses, params = [], []
    if names:
        clauses.append("t0.tag = ?")
        params.append(names[0])
    for name in names[1:]:
        clauses.append("EXISTS (SELECT 1 FROM recording_tags t WHERE t.recording_id = r.id AND t.tag = ?)")
        params.append(name)
    for sql, value in (("(c.caller = ? OR c.dialed = ?)", phone), ("c.process = ?", process),
                       ("r.state = ?", state), ("COALESCE(f.flagged, 0) = ?", flagged),
                       (f"{time_column} >= ?", since), (f"{time_column} < ?", until)):
        if value is None:
            continue
        clauses.append(sql)
        if sql.startswith("(c.caller"):
            params += [normalise_number(value)] * 2
        else:
            params.append(int(value) if isinstance(value, bool) else
                          timestamp(value) if "opened_at" in sql else value)
    source = ("recording_tags t0 JOIN recordings r ON r.id = t0.recording_id" if names else "recordings r")
    order = "t0.opened_at DESC, t0.recording_id" if names else "r.opened_at DESC, r.id"
    sql = (f"{_SELECT}FROM {source} JOIN calls c ON c.uuid = r.call_uuid "
           f"LEFT JOIN recording_flags f ON f.recording_id = r.id "
           + ("WHERE " + " AND ".join(clauses) + " " if clauses else "") + f"ORDER BY {order}")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [_decoded(row) for row in index.query(sql, params)]


def recording(index: Index, recording_id: str) -> dict[str, Any] | None:
    rows = index.query(f"{_SELECT}FROM recordings r JOIN calls c ON c.uuid = r.call_uuid "
                       f"LEFT JOIN recording_flags f ON f.recording_id = r.id WHERE r.id = ?", [recording_id])
    return _decoded(rows[0]) if rows else None


def recordings_of_number(index: Index, phone: str) -> list[dict[str, Any]]:
    """Every recording of a call from or to `phone` (E.164), with held, oldest first."""
    return [_decoded(row) for row in index.query(
        f"{_SELECT}FROM calls c JOIN recordings r ON r.call_uuid = c.uuid "
        f"LEFT JOIN recording_flags f ON f.recording_id = r.id WHERE c.caller = ? OR c.dialed = ? "
        f"ORDER BY r.opened_at, r.id", [phone, phone])]


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    row["flagged"], row["held"] = bool(row["flagged"]), bool(row["held"])
    row["tags"] = row["tags"].split(" ") if row["tags"] else []  # tag names hold no spaces
    return row
