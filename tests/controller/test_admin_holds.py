"""Legal holds: apply on recordings or a number, the two-person release, both steps audited."""

import json

import pytest

from test_admin_support import add_call, audio_on_disk, audit_rows, make_world

NUMBER = "+4915100000001"


@pytest.fixture
def world(tmp_path):
    world = make_world(tmp_path)
    add_call(world, "r1", NUMBER)
    add_call(world, "r2", "+4915100000002")
    return world


def hold_id(result) -> int:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)[0]["hold_id"]


def test_two_person_release(world):
    held = hold_id(world.cli("hold", "apply", "--recording", "r1", "--reason", "case 7", "--json"))
    first = world.cli("hold", "release", str(held), "--reason", "case closed")
    assert first.exit_code == 0 and "release requested" in first.stdout
    assert world.cli("recordings", "delete", "r1", "--reason", "x", "--yes", user="sam").exit_code == 1
    same = world.cli("hold", "release", str(held))
    assert same.exit_code == 1 and "a second, different user" in same.stderr
    refused = world.cli("hold", "release", str(held), user="sam")  # supervisor lacks legal_hold_release
    assert refused.exit_code == 1 and "may not legal_hold_release" in refused.stderr
    second = world.cli("hold", "release", str(held), "--json", user="second-officer")
    assert second.exit_code == 0 and json.loads(second.stdout)[0]["step"] == "released"
    rows = [(r["action"], r["actor"], r["outcome"]) for r in audit_rows(world) if r["action"].startswith("hold")]
    assert rows == [("hold_apply", "compliance-officer", "done"),
                    ("hold_release_request", "compliance-officer", "done"),
                    ("hold_release", "compliance-officer", "refused"), ("hold_release", "sam", "refused"),
                    ("hold_release", "second-officer", "done")]
    assert world.cli("recordings", "delete", "r1", "--reason", "x", "--yes", user="sam").exit_code == 0
    again = world.cli("hold", "release", str(held), user="second-officer")
    assert again.exit_code == 1 and "already released" in again.stderr


def test_a_hold_on_a_number_covers_its_later_recordings(world):
    hold_id(world.cli("hold", "apply", "--phone", "+49 151 00000001", "--reason", "case 8", "--json"))
    add_call(world, "r3", NUMBER, opened_at="2024-06-01T00:00:00Z")
    listing = world.cli("recordings", "list", "--json", "--phone", NUMBER, user=None)
    assert {r["id"]: r["held"] for r in json.loads(listing.stdout)} == {"r1": True, "r3": True}
    assert world.cli("recordings", "delete", "r3", "--reason", "x", "--yes", user="sam").exit_code == 1
    assert audio_on_disk(world, "r3")
    assert NUMBER not in json.dumps(audit_rows(world))


def test_apply_is_idempotent_and_checks_its_input(world):
    first = hold_id(world.cli("hold", "apply", "--recording", "r1", "--reason", "a", "--json"))
    again = world.cli("hold", "apply", "--recording", "r1", "--reason", "b", "--json")
    assert json.loads(again.stdout) == [{"changed": False, "hold_id": first, "recording_id": "r1",
                                         "result": "already held"}]
    missing = world.cli("hold", "apply", "--recording", "r2", "--recording", "nope", "--reason", "c")
    assert missing.exit_code == 1 and "no recording nope" in missing.stderr
    assert world.cli("hold", "apply", "--reason", "c").exit_code == 2
    assert world.cli("hold", "apply", "--phone", "12ab", "--reason", "c").exit_code == 1
    refused = world.cli("hold", "apply", "--recording", "r2", "--reason", "c", user="sam")
    assert refused.exit_code == 1 and "may not legal_hold_apply" in refused.stderr
    listing = world.cli("hold", "list", "--json")
    assert [(h["id"], h["recording_id"], h["state"]) for h in json.loads(listing.stdout)] == [(first, "r1", "active")]
    assert world.cli("hold", "release", "99").exit_code == 1
    assert world.cli("hold", "list", user="sam").exit_code == 1
