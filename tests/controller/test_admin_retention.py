"""Retention rules (pure) and `consentline purge` with a clock override."""

import json
import pytest

from controller.admin.retention import (RetentionError, RetentionRules, TagRule, parse_purpose_rule, parse_tag_rule,
                                        retention_days)
from test_admin_support import add_call, audio_on_disk, audit_rows, make_world, tombstone


def test_tag_rules_set_or_move_the_days_and_the_longest_wins():
    rules = RetentionRules({"training": 30}, (parse_tag_rule("complaint=+365"), parse_tag_rule("Test=-80"),
                                              parse_tag_rule("vip=20")))
    assert retention_days(90, "quality", [], rules) == 90
    assert retention_days(90, "training", [], rules) == 30
    assert retention_days(90, "quality", ["complaint"], rules) == 455
    assert retention_days(90, "quality", ["test"], rules) == 10
    assert retention_days(30, "quality", ["test"], rules) == 0  # never below 0
    assert retention_days(90, "quality", ["test", "complaint"], rules) == 455
    assert retention_days(90, "quality", ["vip", "test"], rules) == 20
    assert retention_days(None, "quality", ["complaint"], rules) is None
    assert rules.shortest_possible_days(90) == 10
    assert parse_tag_rule("a=7") == TagRule("a", 7) and str(parse_tag_rule("a=-7")) == "a=-7"
    assert parse_purpose_rule("quality assurance and training=30") == ("quality assurance and training", 30)


@pytest.mark.parametrize("text", ["complaint", "complaint=x", "two words=3", "a=999999", "=5", "a=+-3"])
def test_bad_tag_rules(text):
    with pytest.raises(RetentionError):
        parse_tag_rule(text)


@pytest.fixture
def world(tmp_path):
    world = make_world(tmp_path)  # de keeps 90 days, uk 365
    add_call(world, "old-de", "+4915100000001", process="de", opened_at="2024-01-01T00:00:00Z")
    add_call(world, "new-de", "+4915100000002", process="de", opened_at="2024-03-25T00:00:00Z")
    add_call(world, "old-uk", "+4915100000003", process="uk", opened_at="2024-01-01T00:00:00Z")
    add_call(world, "held-de", "+4915100000004", process="de", opened_at="2024-01-02T00:00:00Z")
    add_call(world, "live-de", "+4915100000005", process="de", opened_at="2024-01-02T00:00:00Z", state="recording")
    assert world.cli("hold", "apply", "--recording", "held-de", "--reason", "case").exit_code == 0
    return world


NOW = "2024-04-15T00:00:00Z"  # 105 days after 2024-01-01


def purge(world, *args, user="compliance-officer"):
    return world.cli("purge", "--now", NOW, "--json", *args, user=user)


def test_purge_deletes_expired_unheld_recordings_and_is_idempotent(world):
    dry = purge(world, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert {r["id"]: r["result"] for r in json.loads(dry.stdout)} == {"old-de": "would purge",
                                                                      "held-de": "kept: legal hold"}
    assert audio_on_disk(world, "old-de")
    done = purge(world, "--yes")
    assert done.exit_code == 0, done.output
    rows = {r["id"]: r for r in json.loads(done.stdout)}
    assert {k: r["result"] for k, r in rows.items()} == {"old-de": "purged", "held-de": "kept: legal hold"}
    assert rows["old-de"]["expired_at"] == "2024-03-31T00:00:00.000Z" and rows["old-de"]["retention_days"] == 90
    assert not audio_on_disk(world, "old-de") and tombstone(world, "old-de")["reason"].startswith("retention: 90 days")
    for kept in ("new-de", "old-uk", "held-de", "live-de"):
        assert audio_on_disk(world, kept)
    purged = [r for r in audit_rows(world) if r["action"] == "purge"]
    assert [(r["recording_id"], r["outcome"], r["details"].get("dry_run")) for r in purged] == [
        (None, "done", True), ("old-de", "done", None)]
    again = purge(world, "--yes")
    assert again.exit_code == 0 and [r["result"] for r in json.loads(again.stdout)] == ["kept: legal hold"]


def test_a_changed_retention_setting_applies_on_the_next_purge(world):
    text = world.config.read_text().replace("retention_days: 365", "retention_days: 30")
    world.config.write_text(text)
    result = purge(world, "--yes")
    assert {r["id"] for r in json.loads(result.stdout) if r["result"] == "purged"} == {"old-de", "old-uk"}


def test_tag_and_purpose_rules_from_options(world):
    world.cli("recordings", "tag", "old-de", "complaint", user="sam")
    world.cli("recordings", "tag", "new-de", "test", user="sam")
    result = purge(world, "--yes", "--tag-days", "complaint=+365", "--tag-days", "test=-80",
                   "--purpose-days", "regulatory-compliance=100")
    assert result.exit_code == 0, result.output
    results = {r["id"]: r["result"] for r in json.loads(result.stdout)}
    assert results == {"new-de": "purged", "old-uk": "purged", "held-de": "kept: legal hold"}
    assert audio_on_disk(world, "old-de")
    assert purge(world, "--tag-days", "nonsense").exit_code == 2


def test_purge_needs_permission_and_reports_nothing_to_do(world):
    refused = purge(world, "--yes", user="sam")
    assert refused.exit_code == 1 and "may not purge" in refused.stderr and audio_on_disk(world, "old-de")
    quiet = world.cli("purge", "--now", "2024-01-15", "--yes")
    assert quiet.exit_code == 0 and quiet.stdout == "Nothing expired as of 2024-01-15T00:00:00.000Z.\n"
    assert quiet.stderr == ""  # no progress bar in a pipe


def test_a_damaged_recording_is_reported_and_the_others_purged(world):
    add_call(world, "bad-de", "+4915100000009", process="de", opened_at="2024-01-03T00:00:00Z")
    (world.recordings / "bad-de" / "manifest.jsonl").write_text('{"t": "open"\nbroken\n{"t": "x"}\n')
    result = purge(world, "--yes")
    assert result.exit_code == 1 and "1 expired recordings could not be purged" in result.stderr
    results = {r["id"]: r["result"] for r in json.loads(result.stdout)}
    assert results["old-de"] == "purged" and results["bad-de"].startswith("failed: ")
    assert (world.recordings / "bad-de" / "manifest.jsonl").exists()


def test_expiry_uses_the_clock_override(world):
    early = world.cli("purge", "--now", "2024-03-30T23:59:59Z", "--dry-run", "--json")
    assert [r["id"] for r in json.loads(early.stdout)] == []
    # old-de expires exactly 90 days after it opened
    on_time = world.cli("purge", "--now", "2024-03-31T00:00:00Z", "--dry-run", "--json")
    assert [r["id"] for r in json.loads(on_time.stdout)] == ["old-de"]


def test_the_configurations_retention_rules_apply_without_options(world):
    world.cli("recordings", "tag", "old-de", "complaint", user="sam")  # the example keeps complaints +365 days
    kept = purge(world, "--yes")
    assert kept.exit_code == 0, kept.output
    assert "old-de" not in {r["id"] for r in json.loads(kept.stdout) if r["result"] == "purged"}
    assert audio_on_disk(world, "old-de")
    world.config.write_text(world.config.read_text().replace('tag_days: {complaint: "+365"}', "tag_days: {}"))
    gone = purge(world, "--yes")
    assert "old-de" in {r["id"] for r in json.loads(gone.stdout) if r["result"] == "purged"}


def test_a_bad_retention_section_is_an_error_naming_the_key(world):
    world.config.write_text(world.config.read_text().replace('tag_days: {complaint: "+365"}',
                                                             'tag_days: {complaint: "soon"}'))
    result = purge(world, "--yes")
    assert result.exit_code == 1 and "retention.tag_days.complaint" in result.stderr
    assert audio_on_disk(world, "old-de")
