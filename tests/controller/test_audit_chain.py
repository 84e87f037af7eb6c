"""The audit log: appends chain, triggers refuse changes, tampering by raw SQL is found at the right row."""

import sqlite3
import threading
from pathlib import Path

import gevent
import pytest

import controller
from controller import audit
from controller.audit import GENESIS_HASH, AuditEntry, AuditError
from controller.config import load_config
from controller.errors import IndexWriteError
from controller.index import Index
from controller.permissions import Actor, authorise

AGENT = Actor.agent("1001")


@pytest.fixture
def index(tmp_path):
    with Index(tmp_path / "consentline.db") as opened:
        yield opened


def entry(n: int, **overrides) -> AuditEntry:
    fields = dict(actor=AGENT, action="cut", outcome="done", call_uuid=f"call-{n % 3}", recording_id=f"rec-{n}",
                  start_sample=n * 8000, end_sample=n * 8000 + 160, reason=f"step {n}", details={"n": n})
    return AuditEntry(**{**fields, **overrides})


def fill(index: Index, count: int) -> list[int]:
    return [audit.append(index, entry(n)) for n in range(count)]


def tamper(index: Index, *statements: str) -> None:
    """What someone with the file does: a second connection, triggers dropped first."""
    raw = sqlite3.connect(index.path)
    try:
        raw.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        raw.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
        for statement in statements:
            raw.execute(statement)
        raw.commit()
    finally:
        raw.close()


def test_appends_chain_from_genesis_and_verify(index):
    assert fill(index, 5) == [1, 2, 3, 4, 5]
    rows = audit.entries(index)
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert [r["prev_hash"] for r in rows[1:]] == [r["row_hash"] for r in rows[:-1]]
    assert rows[2]["details"] == {"n": 2} and rows[2]["start_sample"] == 16000
    result = audit.verify(index)
    assert (result.ok, result.rows_checked, result.first_broken_id, result.problem) == (True, 5, None, None)
    assert (result.head_id, result.head_hash) == (5, rows[-1]["row_hash"])
    assert result.warnings == ()


def test_empty_log_verifies(index):
    result = audit.verify(index)
    assert result.ok and result.rows_checked == 0 and result.head_id is None


def test_triggers_refuse_update_and_delete(index):
    fill(index, 2)
    for statement in ("UPDATE audit_log SET reason = 'x' WHERE id = 1", "DELETE FROM audit_log WHERE id = 2"):
        with pytest.raises(IndexWriteError, match="append-only"):
            with index.transaction("tamper") as db:
                db.execute(statement)
    assert audit.verify(index).ok and len(audit.entries(index)) == 2


@pytest.mark.parametrize("column,value", [
    ("reason", "'nothing to see'"), ("actor", "'1002'"), ("actor_kind", "'user'"), ("action", "'tag'"),
    ("outcome", "'refused'"), ("call_uuid", "NULL"), ("recording_id", "'rec-99'"), ("start_sample", "0"),
    ("end_sample", "end_sample + 1"), ("at", "'2020-01-01T00:00:00.000Z'"), ("details", "'{\"n\":99}'"),
    ("row_hash", "'" + "0" * 64 + "'"), ("prev_hash", "'" + "1" * 64 + "'"),
])
def test_an_edited_field_is_found_at_its_row(index, column, value):
    fill(index, 8)
    tamper(index, f"UPDATE audit_log SET {column} = {value} WHERE id = 5")
    result = audit.verify(index)
    assert not result.ok
    assert result.first_broken_id == 5
    assert result.rows_checked == 4 and result.head_id == 4
    assert "row 5" in result.problem


def test_a_deleted_row_is_found_by_its_id(index):
    fill(index, 8)
    tamper(index, "DELETE FROM audit_log WHERE id = 3")
    result = audit.verify(index)
    assert (result.ok, result.first_broken_id) == (False, 3)
    assert result.problem == "row 3 is missing (row 4 follows row 2)"


def test_a_deleted_first_row_is_found(index):
    fill(index, 3)
    tamper(index, "DELETE FROM audit_log WHERE id = 1")
    assert audit.verify(index).first_broken_id == 1


def test_deleted_rows_with_ids_renumbered_are_found(index):
    fill(index, 6)
    tamper(index, "DELETE FROM audit_log WHERE id = 3", "UPDATE audit_log SET id = id - 1 WHERE id > 3")
    result = audit.verify(index)
    assert result.first_broken_id == 3  # renumbered row 4 no longer links to row 2


def test_swapped_rows_are_found_at_the_first(index):
    fill(index, 8)
    tamper(index, "UPDATE audit_log SET id = -1 WHERE id = 2", "UPDATE audit_log SET id = 2 WHERE id = 6",
           "UPDATE audit_log SET id = 6 WHERE id = -1")
    result = audit.verify(index)
    assert (result.ok, result.first_broken_id) == (False, 2)
    assert "does not link to row 1" in result.problem


def test_a_truncated_tail_is_found(index):
    fill(index, 10)
    tamper(index, "DELETE FROM audit_log WHERE id > 7")
    result = audit.verify(index)
    assert (result.ok, result.first_broken_id, result.rows_checked) == (False, 8, 7)
    assert result.problem == "rows 8 to 10 are missing at the end (ids up to 10 were issued)"


def test_appends_after_a_truncated_tail_leave_the_gap_visible(index):
    fill(index, 5)
    tamper(index, "DELETE FROM audit_log WHERE id > 3")
    assert audit.append(index, entry(9)) == 6  # ids are never reused
    result = audit.verify(index)
    assert result.first_broken_id == 4 and "rows 4 to 5 are missing" in result.problem


def test_one_row_rewritten_with_a_fresh_hash_breaks_the_next_link(index):
    fill(index, 6)
    row = audit.entries(index)[3]  # id 4
    forged = {**row, "reason": "forged", "details": audit.canonical_json(row["details"])}
    forged_hash = audit.row_hash(row["prev_hash"], forged)
    tamper(index, f"UPDATE audit_log SET reason = 'forged', row_hash = '{forged_hash}' WHERE id = 4")
    result = audit.verify(index)
    assert result.first_broken_id == 5 and "does not link to row 4" in result.problem


def test_an_anchor_catches_a_fully_recomputed_rewrite(index):
    fill(index, 6)
    before = audit.verify(index)
    anchor = (before.head_id, before.head_hash)
    assert audit.verify(index, anchor=anchor).ok
    # rewrite row 2 and recompute every hash after it: the chain alone cannot tell
    rows = audit.entries(index)
    prev, statements = rows[0]["row_hash"], []
    for row in rows[1:]:
        row = {**row, "details": audit.canonical_json(row["details"])}
        if row["id"] == 2:
            row["reason"] = "forged"
        new_hash = audit.row_hash(prev, row)
        statements.append(f"UPDATE audit_log SET reason = '{row['reason']}', prev_hash = '{prev}', "
                          f"row_hash = '{new_hash}' WHERE id = {row['id']}")
        prev = new_hash
    tamper(index, *statements)
    assert audit.verify(index).ok
    result = audit.verify(index, anchor=anchor)
    assert (result.ok, result.first_broken_id) == (False, 6)
    assert "anchor" in result.problem


def test_an_anchor_beyond_the_end_is_reported(index):
    fill(index, 3)
    result = audit.verify(index, anchor=(5, "a" * 64))
    assert (result.ok, result.first_broken_id) == (False, 4)


def test_dropped_triggers_are_a_warning_not_a_break(index):
    fill(index, 2)
    tamper(index)
    result = audit.verify(index)
    assert result.ok
    assert len(result.warnings) == 2 and all("is missing" in w for w in result.warnings)


def test_verify_in_small_batches_checks_every_row(index):
    fill(index, 25)
    assert audit.verify(index, batch_rows=4).rows_checked == 25
    tamper(index, "UPDATE audit_log SET reason = 'x' WHERE id = 17")
    assert audit.verify(index, batch_rows=4).first_broken_id == 17


def test_append_inside_the_callers_transaction_rolls_back_with_it(index):
    with pytest.raises(IndexWriteError):
        with index.transaction("tag and audit") as db:
            assert audit.append(index, entry(0), db=db) == 1
            db.execute("INSERT INTO no_such_table VALUES (1)")  # the change fails: nothing is kept
    assert audit.entries(index) == []
    assert audit.append(index, entry(1)) == 1  # no gap left behind
    assert audit.verify(index).ok


def test_append_with_a_db_outside_a_transaction_is_refused(index):
    with pytest.raises(AuditError, match="open Index.transaction"):
        audit.append(index, entry(0), db=index.db)
    assert audit.entries(index) == []


@pytest.mark.parametrize("overrides,message", [
    ({"outcome": "ok"}, "outcome"), ({"action": "Tag!"}, "action"), ({"actor": "agent:1001"}, "actor"),
    ({"start_sample": -1}, "start_sample"), ({"end_sample": True}, "end_sample"),
    ({"start_sample": 10, "end_sample": 9}, "before start_sample"), ({"details": {"x": float("nan")}}, "details"),
    ({"details": {"x": object()}}, "details"), ({"details": [1]}, "details"), ({"reason": 5}, "reason"),
])
def test_malformed_entries_are_refused_before_writing(index, overrides, message):
    with pytest.raises(AuditError, match=message):
        audit.append(index, entry(0, **overrides))
    assert audit.entries(index) == []


def test_entries_filters(index):
    audit.append(index, entry(0, at="2024-05-01T10:00:00Z"))
    audit.append(index, entry(1, actor=Actor.user("1001"), at="2024-05-02T10:00:00Z"))
    audit.append(index, entry(3, at="2024-05-03T10:00:00Z"))
    assert [r["id"] for r in audit.entries(index, call_uuid="call-0")] == [1, 3]
    assert [r["id"] for r in audit.entries(index, actor="1001")] == [1, 2, 3]
    assert [r["id"] for r in audit.entries(index, actor="user:1001")] == [2]
    assert [r["id"] for r in audit.entries(index, since="2024-05-02", until="2024-05-03")] == [2]
    assert [r["id"] for r in audit.entries(index, limit=2)] == [2, 3]
    assert [r["id"] for r in audit.entries(index, recording_id="rec-3")] == [3]


def test_many_greenlets_appending_keep_one_chain(index):
    def appender(worker: int) -> None:
        for n in range(20):
            audit.append(index, entry(n, details={"worker": worker, "n": n}))
            gevent.sleep(0)  # let the others interleave
    workers = [gevent.spawn(appender, w) for w in range(15)]
    done = gevent.joinall(workers, timeout=30, raise_error=True)
    assert len(done) == 15
    result = audit.verify(index)
    assert result.ok and result.rows_checked == 300
    seen = {(r["details"]["worker"], r["details"]["n"]) for r in audit.entries(index)}
    assert len(seen) == 300


def test_appenders_on_separate_connections_keep_one_chain(tmp_path):
    """Two processes (here: threads with their own connection) serialise on the write lock."""
    path = tmp_path / "consentline.db"
    Index(path).close()
    errors = []

    def appender(worker: int) -> None:
        try:
            with Index(path) as own:
                for n in range(30):
                    audit.append(own, entry(n, details={"worker": worker}))
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)
    threads = [threading.Thread(target=appender, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    with Index(path) as index:
        result = audit.verify(index)
    assert result.ok and result.rows_checked == 120


def test_values_no_writer_of_ours_stores_are_a_break_not_a_crash(index):
    fill(index, 3)
    tamper(index, "UPDATE audit_log SET details = x'00ff' WHERE id = 2",
           "UPDATE audit_log SET details = 'not json' WHERE id = 3")
    assert audit.verify(index).first_broken_id == 2
    assert audit.entries(index)[2]["details"] == "not json"


def test_entry_for_a_refused_and_an_allowed_pause(index):
    """The agent feature codes' pattern: authorise, audit the refusal, or act and audit what was done."""
    config = load_config(Path(controller.__file__).parent / "examples" / "consentline.example.yaml")
    refused = authorise(config, AGENT, "pause", call_owner_extension="1002")
    allowed = authorise(config, AGENT, "pause", call_owner_extension="1001")
    audit.append(index, audit.entry_for(refused, action="pause", call_uuid="c1", start_sample=48000))
    audit.append(index, audit.entry_for(allowed, action="pause", call_uuid="c2", start_sample=96000))
    audit.append(index, audit.entry_for(allowed, "failed", action="pause", call_uuid="c2",
                                        reason="the recorder did not confirm the pause"))
    rows = audit.entries(index)
    assert [(r["action"], r["outcome"], r["call_uuid"]) for r in rows] == [
        ("pause", "refused", "c1"), ("pause", "done", "c2"), ("pause", "failed", "c2")]
    assert rows[0]["reason"] == "agent:1001 (role agent) may not pause_others"
    assert rows[1]["start_sample"] == 96000 and rows[2]["reason"].startswith("the recorder")
    assert audit.verify(index).ok
