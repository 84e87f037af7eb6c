"""Properties: any sequence of appends verifies; any single-field change breaks the chain at that row."""

import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import audit
from controller.audit import AuditEntry
from controller.index import Index
from controller.permissions import ACTOR_KINDS, Actor

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12).filter(str.strip)
optional_text = st.none() | st.text(max_size=20)
samples = st.none() | st.integers(0, 2**40)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=8)
                           | st.floats(allow_nan=False, allow_infinity=False),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                         max_size=3), max_leaves=6)


@st.composite
def entries(draw):
    start, end = draw(samples), draw(samples)
    if start is not None and end is not None and end < start:
        start, end = end, start
    return AuditEntry(
        actor=Actor(draw(st.sampled_from(ACTOR_KINDS)), draw(names)),
        action=draw(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)),
        outcome=draw(st.sampled_from(audit.OUTCOMES)),
        call_uuid=draw(optional_text), recording_id=draw(optional_text), start_sample=start, end_sample=end,
        reason=draw(optional_text), details=draw(st.none() | st.dictionaries(st.text(max_size=6), json_values,
                                                                              max_size=4)),
        at=draw(st.datetimes()),
    )


# A replacement per column that always differs from the stored value (SQL over the old value `v`).
CHANGES = {
    "at": "v || 'x'", "actor_kind": "v || 'x'", "actor": "v || 'x'", "action": "v || 'x'",
    "outcome": "CASE v WHEN 'done' THEN 'failed' ELSE 'done' END",
    "call_uuid": "COALESCE(v || 'x', '')", "recording_id": "COALESCE(v || 'x', '')",
    "reason": "COALESCE(v || 'x', '')", "details": "COALESCE(v || ' ', '{}')",
    "start_sample": "COALESCE(v + 1, 0)", "end_sample": "COALESCE(v + 1, 0)",
    "prev_hash": "substr(v, 2) || substr(v, 1, 1)", "row_hash": "upper(v)",
    "id": "v + 1000000",
}


def _change(path: Path, row_id: int, column: str) -> None:
    raw = sqlite3.connect(path)
    try:
        raw.execute("DROP TRIGGER audit_log_no_update")
        expression = CHANGES[column].replace("v", column)
        raw.execute(f"UPDATE audit_log SET {column} = {expression} WHERE id = ?", [row_id])
        raw.commit()
    finally:
        raw.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entries(), min_size=1, max_size=12), st.data())
def test_appends_verify_and_any_single_change_breaks_at_that_row(batch, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "consentline.db"
        with Index(path) as index:
            ids = [audit.append(index, entry) for entry in batch]
            assert ids == list(range(1, len(batch) + 1))
            intact = audit.verify(index)
            assert (intact.ok, intact.rows_checked) == (True, len(batch))
            row_id = data.draw(st.sampled_from(ids), label="row")
            column = data.draw(st.sampled_from(sorted(CHANGES)), label="column")
            _change(path, row_id, column)
            broken = audit.verify(index)
            assert not broken.ok
            assert broken.first_broken_id == row_id, broken.problem
            assert broken.rows_checked == row_id - 1
