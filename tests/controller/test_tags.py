"""Tags and flags: authorised and audited changes, refusals that change nothing, the search, the CLI filter."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import controller
from controller import audit, tags
from controller.cli import cli
from controller.config import load_config
from controller.errors import IndexWriteError
from controller.index import Index
from controller.permissions import Actor
from controller.tags import TagError

EXAMPLE = Path(controller.__file__).parent / "examples" / "consentline.example.yaml"
AGENT, SUPERVISOR, STAFF = Actor.agent("1001"), Actor.agent("1002"), Actor.user("compliance-officer")


@pytest.fixture(scope="module")
def config():
    return load_config(EXAMPLE)


@pytest.fixture
def index(tmp_path):
    with Index(tmp_path / "data" / "consentline.db") as opened:
        yield opened


def recording(index: Index, n: int, opened_at: str = "2024-05-01T10:00:00Z", caller="+4915100000000") -> str:
    index.call_started(f"call-{n}", caller, "+4930100100", opened_at)
    return index.recording_opened(f"call-{n}", f"/rec/{n}.raw", opened_at, recording_id=f"rec-{n}")


def test_tag_is_stored_normalised_and_audited(index, config):
    rec = recording(index, 1)
    result = tags.tag(index, config, AGENT, rec, " Complaint ")
    assert (result.allowed, result.changed) == (True, True)
    assert tags.tags_of(index, rec) == ["complaint"]
    (row,) = audit.entries(index)
    assert row["id"] == result.audit_id
    assert (row["actor_kind"], row["actor"], row["action"], row["outcome"]) == ("agent", "1001", "tag", "done")
    assert (row["call_uuid"], row["recording_id"]) == ("call-1", rec)
    assert row["details"] == {"tag": "complaint", "changed": True}


def test_tagging_twice_changes_nothing_but_is_audited(index, config):
    rec = recording(index, 1)
    tags.tag(index, config, AGENT, rec, "complaint")
    again = tags.tag(index, config, SUPERVISOR, rec, "COMPLAINT")
    assert (again.allowed, again.changed) == (True, False)
    assert tags.tags_of(index, rec) == ["complaint"]
    assert [r["details"]["changed"] for r in audit.entries(index)] == [True, False]


def test_untag(index, config):
    rec = recording(index, 1)
    tags.tag(index, config, AGENT, rec, "b-tag")
    tags.tag(index, config, AGENT, rec, "a.tag")
    assert tags.tags_of(index, rec) == ["a.tag", "b-tag"]
    assert tags.untag(index, config, AGENT, rec, "b-tag").changed is True
    assert tags.untag(index, config, AGENT, rec, "b-tag").changed is False
    assert tags.tags_of(index, rec) == ["a.tag"]
    assert [r["action"] for r in audit.entries(index)] == ["tag", "tag", "untag", "untag"]


def test_a_refused_tag_changes_nothing_and_is_audited(index, config):
    rec = recording(index, 1)
    result = tags.tag(index, config, STAFF, rec, "complaint")  # compliance may not tag
    assert (result.allowed, result.changed) == (False, False)
    assert result.reason == "user:compliance-officer (role compliance) may not tag"
    assert tags.tags_of(index, rec) == []
    (row,) = audit.entries(index)
    assert (row["outcome"], row["actor"], row["reason"], row["call_uuid"]) == (
        "refused", "compliance-officer", result.reason, "call-1")
    assert audit.verify(index).ok


def test_an_unknown_extension_is_refused_and_audited(index, config):
    rec = recording(index, 1)
    assert not tags.flag(index, config, Actor.agent("1003"), rec, reason="x").allowed
    assert tags.flag_of(index, rec) is None
    assert audit.entries(index)[0]["reason"] == "agent:1003 is not a configured extension"


def test_an_unknown_recording_fails_audited(index, config):
    with pytest.raises(TagError, match="no recording rec-404"):
        tags.tag(index, config, AGENT, "rec-404", "complaint")
    (row,) = audit.entries(index)
    assert (row["outcome"], row["recording_id"], row["call_uuid"]) == ("failed", "rec-404", None)


def test_a_refusal_is_checked_before_existence(index, config):
    result = tags.tag(index, config, STAFF, "rec-404", "complaint")  # no hint whether it exists
    assert not result.allowed and audit.entries(index)[0]["outcome"] == "refused"


@pytest.mark.parametrize("bad", ["", "two words", "x" * 65, "-lead", "tag/", None])
def test_malformed_tags_are_refused_before_anything_is_written(index, config, bad):
    rec = recording(index, 1)
    with pytest.raises(TagError, match="tag: expected"):
        tags.tag(index, config, AGENT, rec, bad)
    assert audit.entries(index) == []


def test_flag_and_unflag(index, config):
    rec = recording(index, 1)
    flagged = tags.flag(index, config, AGENT, rec, reason="caller abusive", at="2024-05-01T10:05:00Z")
    assert flagged.changed
    assert tags.flag_of(index, rec) == {"flagged": True, "actor": "agent:1001", "at": "2024-05-01T10:05:00.000Z",
                                        "reason": "caller abusive"}
    assert tags.flag(index, config, SUPERVISOR, rec).changed is False
    assert tags.unflag(index, config, SUPERVISOR, rec, reason="reviewed").changed is True
    assert tags.flag_of(index, rec)["flagged"] is False
    rows = audit.entries(index)
    assert [(r["action"], r["details"]["changed"]) for r in rows] == [("flag", True), ("flag", False),
                                                                      ("unflag", True)]
    assert rows[0]["reason"] == "caller abusive"  # the actor's reason, when given
    assert rows[1]["reason"] == "agent:1002 (role supervisor) may flag"


def test_the_change_and_its_audit_row_commit_together(index, config, monkeypatch):
    rec = recording(index, 1)

    def failing_append(*args, **kwargs):
        raise IndexWriteError("disk full")
    monkeypatch.setattr(audit, "_insert", failing_append)
    with pytest.raises(IndexWriteError):
        tags.tag(index, config, AGENT, rec, "complaint")
    assert tags.tags_of(index, rec) == []  # no tag without its audit row


def test_tags_and_flags_go_with_their_recording(index, config):
    rec = recording(index, 1)
    tags.tag(index, config, AGENT, rec, "complaint")
    tags.flag(index, config, AGENT, rec)
    with index.transaction("erase") as db:
        db.execute("DELETE FROM recordings WHERE id = ?", [rec])
    assert tags.tags_of(index, rec) == [] and tags.flag_of(index, rec) is None
    assert len(audit.entries(index)) == 2 and audit.verify(index).ok  # the history stays


def _searchable(index, config):
    a, b, c, d = (recording(index, n, f"2024-05-0{n}T10:00:00Z", caller=f"+491510000000{n}") for n in range(1, 5))
    tags.tag(index, config, AGENT, a, "complaint")
    tags.tag(index, config, AGENT, a, "sale")
    tags.tag(index, config, AGENT, b, "complaint")
    tags.tag(index, config, AGENT, c, "sale")
    tags.flag(index, config, AGENT, b)
    tags.flag(index, config, AGENT, d)
    tags.flag(index, config, AGENT, c)
    tags.unflag(index, config, AGENT, c)
    return a, b, c, d


def test_recordings_with(index, config):
    a, b, c, d = _searchable(index, config)

    def ids(**query):
        return [row["id"] for row in tags.recordings_with(index, **query)]
    assert ids() == [d, c, b, a]
    assert ids(tag="complaint") == [b, a]
    assert ids(tag=["complaint", "Sale"]) == [a]
    assert ids(tag="nothing") == []
    assert ids(flagged=True) == [d, b]
    assert ids(flagged=False) == [c, a]
    assert ids(tag="complaint", flagged=True) == [b]
    assert ids(tag="sale", limit=1) == [c]
    assert ids(since="2024-05-02", until="2024-05-04") == [c, b]
    assert ids(phone="+4915100000001") == [a]
    rows = {row["id"]: row for row in tags.recordings_with(index)}
    assert rows[a]["tags"] == ["complaint", "sale"] and rows[a]["flagged"] is False
    assert rows[d]["tags"] == [] and rows[d]["flagged"] is True
    assert rows[a]["call_uuid"] == "call-1" and rows[a]["caller"] == "+4915100000001"


def test_recordings_list_cli_filters_by_tag_and_flag(index, config):
    a, b, c, d = _searchable(index, config)
    data = str(index.path.parent)

    def listed(*args):
        result = CliRunner().invoke(cli, ["recordings", "list", "--data", data, "--json", *args])
        assert result.exit_code == 0, result.output
        return [row["id"] for row in json.loads(result.stdout)]
    assert listed("--tag", "complaint", "--flagged") == [b]
    assert listed("--tag", "complaint", "--tag", "sale") == [a]
    assert listed("--not-flagged") == [c, a]
    assert listed() == [d, c, b, a]
    table = CliRunner().invoke(cli, ["recordings", "list", "--data", data, "--tag", "sale"])
    assert table.exit_code == 0 and a in table.stdout and c in table.stdout and b not in table.stdout
    bad = CliRunner().invoke(cli, ["recordings", "list", "--data", data, "--tag", "two words"])
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: tag: expected")


def test_tagging_through_the_off_hub_index_worker(index, config):
    """How the feature codes call it from a call greenlet: in the index worker thread, bounded."""
    from controller.indexio import OffHubIndex
    rec = recording(index, 1)
    off_hub = OffHubIndex(index, timeout_s=10)
    try:
        result = off_hub.run(tags.tag, config, AGENT, rec, "complaint")
        refused = off_hub.run(tags.flag, config, STAFF, rec)
    finally:
        off_hub.close()
    assert result.allowed and result.changed and not refused.allowed
    assert tags.tags_of(index, rec) == ["complaint"] and tags.flag_of(index, rec) is None
    assert [r["outcome"] for r in audit.entries(index)] == ["done", "refused"]
