"""What is under legal hold: the one query the call flow, the agent codes and the staff commands share.

Applying and releasing holds is staff work (controller.admin.holds); anything that would destroy audio asks
here first.
"""

from __future__ import annotations

from typing import Iterable

from controller.index import Index

# An active hold on the recording itself or on a number of its call; `r` and `c` are the query's aliases.
# Three probes rather than one OR, so each reads its partial index.
ACTIVE_HOLD_SQL = "(" + " OR ".join(
    f"EXISTS (SELECT 1 FROM legal_holds h WHERE h.released_at IS NULL AND h.{column} = {value})"
    for column, value in (("recording_id", "r.id"), ("phone", "c.caller"), ("phone", "c.dialed"))) + ")"


def held_among(index: Index, recording_ids: Iterable[str]) -> set[str]:
    """Which of these recordings are under an active hold (on themselves or on a number of their call)."""
    ids = list(recording_ids)
    held: set[str] = set()
    for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
        batch = ids[start:start + 500]
        rows = index.query(f"SELECT r.id FROM recordings r JOIN calls c ON c.uuid = r.call_uuid WHERE r.id IN "
                           f"({', '.join('?' * len(batch))}) AND {ACTIVE_HOLD_SQL}", batch)
        held.update(row["id"] for row in rows)
    return held
