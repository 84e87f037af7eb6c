"""`consentline erase`: GDPR Art. 17, checked against what the index and the disk hold afterwards."""

import json

import pytest

from controller import audit
from controller.customers import CustomerRecord
from test_admin_support import add_call, audio_on_disk, audit_rows, make_world, tombstone

SUBJECT, OTHER = "+4915100000001", "+4915100000002"


@pytest.fixture
def world(tmp_path):
    world = make_world(tmp_path)
    add_call(world, "a1", SUBJECT, opened_at="2024-05-01T10:00:00Z")
    add_call(world, "a2", SUBJECT, opened_at="2024-05-02T10:00:00Z")
    add_call(world, "a3", SUBJECT, opened_at="2024-05-03T10:00:00Z", seconds=None)  # declined: no recording
    add_call(world, "b1", OTHER, opened_at="2024-05-02T11:00:00Z")
    with world.index() as index:
        index.import_customers([CustomerRecord(SUBJECT, "DE", False, "de"), CustomerRecord(OTHER, "DE", True)])
        with index.transaction("outbox") as db:
            db.execute("INSERT INTO outbox_events (event_key, type, call_uuid, recording_id, created_at, body) "
                       "VALUES ('k1', 'recording.completed', 'a1', 'a1', 'now', ?)",
                       [json.dumps({"caller": SUBJECT, "call_uuid": "a1"})])
    world.cli("recordings", "tag", "a1", "complaint", user="sam")
    return world


def test_dry_run_shows_exactly_what_would_go_and_changes_nothing(world):
    before = world.dump()
    result = world.cli("erase", "--phone", SUBJECT, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(r["what"], r["id"]) for r in rows} == {
        ("recording", "a1"), ("recording", "a2"), ("call", "a1"), ("call", "a2"), ("call", "a3"),
        ("customer", None), ("outbox", None)}
    assert all(r["result"].startswith("would go") for r in rows)
    assert audio_on_disk(world, "a1") and audio_on_disk(world, "a2")
    after = world.dump()
    assert SUBJECT in after and after.count(SUBJECT) == before.count(SUBJECT)
    assert audit_rows(world)[-1]["details"] == {"dry_run": True, "recordings": 2, "calls": 3}


def test_a_refused_user_learns_nothing_about_the_number(world):
    for args in (("--dry-run",), ("--yes",)):
        result = world.cli("erase", "--phone", "+4915199999999", *args, user="sam")
        assert result.exit_code == 1 and result.stdout == "" and "may not erase" in result.stderr


def test_erase_removes_the_number_everywhere_and_leaves_tombstones(world):
    result = world.cli("erase", "--phone", "0049 151 00000001", "--reason", "ticket 42", "--yes")
    assert result.exit_code == 0, result.output
    dump = world.dump()
    assert SUBJECT not in dump and "[erased]" in dump
    assert OTHER in dump and audio_on_disk(world, "b1")
    for rec in ("a1", "a2"):
        assert not audio_on_disk(world, rec)
        assert tombstone(world, rec)["reason"] == "erasure (GDPR Art. 17): ticket 42"
    with world.index() as index:
        assert index.customer(SUBJECT) is None and index.customer(OTHER) is not None
        assert index.calls(phone=SUBJECT) == []
        assert {r["id"]: r["state"] for r in index.recordings()} == {"a1": "purged", "a2": "purged", "b1": "completed"}
        assert [r["kind"] for r in index.evidence("a1")] == ["digit", "outcome"]  # no personal data: kept
        stones = index.query("SELECT recording_id, cause FROM recording_tombstones ORDER BY recording_id")
        assert [(s["recording_id"], s["cause"]) for s in stones] == [("a1", "erase"), ("a2", "erase")]
        assert index.query("SELECT * FROM recording_tags") == []
        assert audit.verify(index).ok
    erase_rows = [r for r in audit_rows(world) if r["action"] == "erase"]
    assert [r["recording_id"] for r in erase_rows] == ["a1", "a2", None]
    assert erase_rows[-1]["details"]["calls"] == 3
    again = world.cli("erase", "--phone", SUBJECT, "--yes")
    assert again.exit_code == 0 and again.stdout == "Nothing about this number in the index.\n"


def test_a_held_recording_and_its_call_are_kept(world):
    assert world.cli("hold", "apply", "--recording", "a2", "--reason", "court case").exit_code == 0
    result = world.cli("erase", "--phone", SUBJECT, "--yes", "--json")
    assert result.exit_code == 0, result.output
    kept = [r for r in json.loads(result.stdout) if r["result"].startswith("kept")]
    assert [(r["id"], r["result"]) for r in kept] == [("a2", "kept: legal hold")]
    assert audio_on_disk(world, "a2") and not audio_on_disk(world, "a1")
    with world.index() as index:
        assert [c["uuid"] for c in index.calls(phone=SUBJECT)] == ["a2"]


def test_a_hold_on_the_number_stops_the_erasure(world):
    assert world.cli("hold", "apply", "--phone", SUBJECT, "--reason", "court case").exit_code == 0
    before = world.dump()
    result = world.cli("erase", "--phone", SUBJECT, "--yes")
    assert result.exit_code == 1 and "under legal hold" in result.stderr and "nothing erased" in result.stderr
    assert audio_on_disk(world, "a1") and world.dump().count(SUBJECT) == before.count(SUBJECT)


@pytest.mark.parametrize("number", ["abc", "0151 000001", "+0049151", "+49 (0) 30 1234-5678x"])
def test_unknown_number_formats_are_refused(world, number):
    before = world.dump()
    result = world.cli("erase", "--phone", number, "--yes")
    assert result.exit_code == 1 and result.stderr.startswith("Error: phone: expected an international number")
    assert world.dump() == before


def test_a_damaged_recording_stops_the_erasure_before_any_change(world):
    (world.recordings / "a2" / "manifest.jsonl").write_text('{"t": "open"\n{"t": "chunk"}\n')
    before = world.dump()
    result = world.cli("erase", "--phone", SUBJECT, "--yes")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")
    assert audio_on_disk(world, "a1") and world.dump().count(SUBJECT) == before.count(SUBJECT)


def test_erase_needs_the_erase_permission_and_confirmation(world):
    refused = world.cli("erase", "--phone", SUBJECT, "--yes", user="sam")
    assert refused.exit_code == 1 and "may not erase" in refused.stderr and audio_on_disk(world, "a1")
    assert audit_rows(world)[-1]["outcome"] == "refused"
    unconfirmed = world.cli("erase", "--phone", SUBJECT, input="n\n")
    assert unconfirmed.exit_code == 1 and audio_on_disk(world, "a1")
    assert world.cli("erase", "--yes").exit_code == 2
