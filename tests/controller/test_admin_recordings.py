"""`consentline recordings ...` as a configured user: filters, show, export, tags, cut, redact, delete."""

import json

import numpy as np
import pytest
import soundfile

from controller.admin import output
from test_admin_support import RATE_HZ, add_call, audio_on_disk, audit_rows, make_world, tombstone


@pytest.fixture
def world(tmp_path):
    world = make_world(tmp_path)
    add_call(world, "c1", "+4915100000001", process="de", opened_at="2024-05-01T10:00:00Z")
    add_call(world, "c2", "+4915100000002", process="uk", opened_at="2024-05-02T10:00:00Z")
    add_call(world, "c3", "+4915100000001", process="de", opened_at="2024-05-03T10:00:00Z", state="withdrawn")
    return world


def listed(world, *args, user=None):
    result = world.cli("recordings", "list", "--json", *args, user=user)
    assert result.exit_code == 0, result.output
    return [row["id"] for row in json.loads(result.stdout)]


def test_list_filters(world):
    assert listed(world) == ["c3", "c2", "c1"]
    assert listed(world, "--process", "de") == ["c3", "c1"]
    assert listed(world, "--state", "withdrawn") == ["c3"]
    assert listed(world, "--phone", "0049 151 0000 0001") == ["c3", "c1"]
    assert listed(world, "--since", "2024-05-02", "--until", "2024-05-02") == ["c2"]
    assert world.cli("recordings", "tag", "c1", "complaint", user="sam").exit_code == 0
    assert world.cli("recordings", "tag", "c2", "complaint", "sale", user="sam").exit_code == 0
    assert world.cli("recordings", "flag", "c2", "--reason", "check", user="sam").exit_code == 0
    assert listed(world, "--tag", "complaint") == ["c2", "c1"]
    assert listed(world, "--tag", "complaint", "--tag", "sale") == ["c2"]
    assert listed(world, "--tag", "complaint", "--not-flagged") == ["c1"]
    assert listed(world, "--flagged", "--limit", "1") == ["c2"]


def test_list_outputs_and_errors(world):
    nl = world.cli("recordings", "list", "--nl", "--process", "de", user=None)
    assert [json.loads(line)["id"] for line in nl.stdout.splitlines()] == ["c3", "c1"]
    table = world.cli("recordings", "list", user=None).stdout.splitlines()
    assert table[0].split()[:3] == ["opened_at", "id", "call_uuid"] and len(table) == 5
    assert world.cli("recordings", "list", "--state", "gone", user=None).exit_code == 2
    assert world.cli("recordings", "list", "--process", "fr", user=None).stdout == "No recordings.\n"


def test_list_as_a_user_is_checked_and_audited(world):
    assert listed(world, "--phone", "+4915100000001", user="compliance-officer") == ["c3", "c1"]
    (row,) = audit_rows(world)
    assert (row["action"], row["outcome"], row["details"]["rows"]) == ("list", "done", 2)
    assert "+4915100000001" not in json.dumps(row)
    refused = world.cli("recordings", "list", user="nobody")
    assert refused.exit_code == 1 and refused.stderr.startswith("Error: refused: user:nobody (role agent) may not")
    assert audit_rows(world)[-1]["outcome"] == "refused"


def test_show_has_evidence_manifest_and_audit_trail(world):
    world.cli("recordings", "tag", "c1", "complaint", user="sam")
    result = world.cli("recordings", "show", "c1", "--json")
    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.stdout)
    assert shown["recording"]["tags"] == ["complaint"] and shown["call"]["caller"] == "+4915100000001"
    assert [e["kind"] for e in shown["evidence"]] == ["digit", "outcome"]
    assert shown["manifest"]["length_samples"] == 3 * RATE_HZ
    assert sum(c["samples"] for c in shown["manifest"]["chunks"]) == 3 * RATE_HZ
    assert [a["action"] for a in shown["audit"]] == ["tag", "show"]
    text = world.cli("recordings", "show", "c1").stdout
    assert "evidence:" in text and "manifest:    24000 samples at 8000 Hz" in text and "audit:" in text


def test_show_errors(world):
    missing = world.cli("recordings", "show", "nope")
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: no recording nope in ")
    manifest = world.recordings / "c1" / "manifest.jsonl"
    lines = manifest.read_bytes().split(b"\n")
    manifest.write_bytes(b"\n".join([lines[0], b"{not json", *lines[1:]]))
    damaged = world.cli("recordings", "show", "c1")
    assert damaged.exit_code == 1 and "manifest is damaged" in damaged.stderr
    assert world.cli("recordings", "show", "c1", user="nobody").exit_code == 1
    assert world.cli("recordings", "show").exit_code == 2


def test_export_wav_and_flac(world, tmp_path):
    wav = world.cli("recordings", "export", "c1", "--out", tmp_path / "c1.wav")
    assert wav.exit_code == 0, wav.output
    audio, rate = soundfile.read(tmp_path / "c1.wav", dtype="int16")
    assert rate == RATE_HZ and audio.shape == (3 * RATE_HZ, 2) and audio[0].tolist() == [1000, -1000]
    flac = world.cli("recordings", "export", "c1", "--out", tmp_path / "agent.x", "--format", "flac", "--channel", "1")
    assert flac.exit_code == 0, flac.output
    assert soundfile.info(str(tmp_path / "agent.x")).format == "FLAC"
    assert soundfile.read(tmp_path / "agent.x", dtype="int16")[0][:2].tolist() == [-1000, -1000]
    assert [r["action"] for r in audit_rows(world)] == ["export", "export"]
    assert world.cli("recordings", "export", "c1", "--out", tmp_path / "x.mp3").exit_code == 2
    refused = world.cli("recordings", "export", "c1", "--out", tmp_path / "n.wav", user="nobody")
    assert refused.exit_code == 1 and not (tmp_path / "n.wav").exists()
    assert world.cli("recordings", "export", "zz", "--out", tmp_path / "z.wav").exit_code == 1


def test_tag_untag_flag_unflag(world):
    assert world.cli("recordings", "tag", "c1", "Complaint", "sale", user="sam").stdout == \
        "c1: tag complaint\nc1: tag sale\n"
    assert world.cli("recordings", "untag", "c1", "sale", user="sam").exit_code == 0
    assert world.cli("recordings", "flag", "c1", "--reason", "review", user="sam").exit_code == 0
    assert world.cli("recordings", "unflag", "c1", user="sam").exit_code == 0
    refused = world.cli("recordings", "tag", "c1", "x")  # compliance may not tag
    assert refused.exit_code == 1 and "may not tag" in refused.stderr
    assert listed(world, "--tag", "complaint") == ["c1"] and listed(world, "--flagged") == []
    assert world.cli("recordings", "tag", "nope", "x", user="sam").exit_code == 1
    assert world.cli("recordings", "tag", "c1", user="sam").exit_code == 2


def test_cut_a_finished_recording(world):
    dry = world.cli("recordings", "cut", "c1", "--start-s", "1", "--end-s", "2", "--reason", "card", "--dry-run",
                    user="sam")
    assert dry.exit_code == 0 and "Would cut samples [8000, 16000)" in dry.stdout
    no = world.cli("recordings", "cut", "c1", "--start-s", "1", "--end-s", "2", "--reason", "card", user="sam",
                   input="n\n")
    assert no.exit_code == 1 and "nothing changed" in no.stderr
    assert listed(world, "--process", "de", "--state", "completed") == ["c1"]
    done = world.cli("recordings", "cut", "c1", "--start-s", "1", "--end-s", "2", "--reason", "card", "--yes",
                     user="sam")
    assert done.exit_code == 0, done.output
    with world.index() as index:
        assert index.recordings(call_uuid="c1")[0]["duration_s"] == 2.0
    row = audit_rows(world)[-1]
    assert (row["action"], row["start_sample"], row["end_sample"], row["reason"]) == ("cut", 8000, 16000, "card")
    outside = world.cli("recordings", "cut", "c1", "--start-s", "1", "--end-s", "9", "--reason", "x", "--yes",
                        user="sam")
    assert outside.exit_code == 1 and "outside it; nothing changed" in outside.stderr
    assert world.cli("recordings", "cut", "c1", "--start-s", "2", "--end-s", "1", "--reason", "x",
                     user="sam").exit_code == 2
    assert world.cli("recordings", "cut", "c1", "--start-s", "0", "--end-s", "1", "--reason", "x", "--yes",
                     user="nobody").exit_code == 0  # agents may cut


def test_redact_keeps_the_length_and_silences_the_range(world, tmp_path):
    result = world.cli("recordings", "redact", "c2", "--start-s", "0.5", "--end-s", "1", "--channel", "0",
                       "--reason", "card", "--yes", user="sam")
    assert result.exit_code == 0, result.output
    world.cli("recordings", "export", "c2", "--out", tmp_path / "c2.wav")
    audio, _ = soundfile.read(tmp_path / "c2.wav", dtype="int16")
    assert len(audio) == 3 * RATE_HZ
    assert not audio[4000:8000, 0].any() and (audio[4000:8000, 1] == -1000).all()
    assert (audio[:4000, 0] == 1000).all() and (audio[8000:, 0] == 1000).all()


def test_delete_leaves_a_tombstone(world):
    refused = world.cli("recordings", "delete", "c1", "--reason", "x", "--yes", user="nobody")
    assert refused.exit_code == 1 and audio_on_disk(world, "c1")
    dry = world.cli("recordings", "delete", "c1", "--reason", "asked", "--dry-run", user="sam")
    assert dry.exit_code == 0 and "Would delete c1 (24000 samples)" in dry.stdout and audio_on_disk(world, "c1")
    done = world.cli("recordings", "delete", "c1", "--reason", "asked", "--yes", user="sam")
    assert done.exit_code == 0, done.output
    assert not audio_on_disk(world, "c1") and tombstone(world, "c1")["reason"] == "asked"
    assert listed(world, "--state", "purged") == ["c1"]
    with world.index() as index:
        (stone,) = index.query("SELECT * FROM recording_tombstones")
    assert (stone["cause"], stone["actor"], stone["reason"]) == ("delete", "user:sam", "asked")
    again = world.cli("recordings", "delete", "c1", "--reason", "asked", "--yes", user="sam")
    assert again.exit_code == 1 and "already removed" in again.stderr


def test_held_recordings_cannot_be_deleted_cut_or_redacted(world):
    assert world.cli("hold", "apply", "--recording", "c1", "--reason", "case 7").exit_code == 0
    for args in (("delete", "c1"), ("cut", "c1", "--start-s", "0", "--end-s", "1"),
                 ("redact", "c1", "--start-s", "0", "--end-s", "1")):
        result = world.cli("recordings", *args, "--reason", "x", "--yes", user="sam")
        assert result.exit_code == 1 and "under legal hold; nothing changed" in result.stderr
    assert audio_on_disk(world, "c1")
    assert [r["outcome"] for r in audit_rows(world)][-3:] == ["refused"] * 3


def test_ctrl_c_exits_130(world, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("controller.admin.queries.search_recordings", interrupted)
    result = world.cli("recordings", "list", user=None)
    assert result.exit_code == output.EXIT_INTERRUPTED == 130 and "Interrupted" in result.stderr


def test_stored_samples_are_untouched_outside_a_cut(world, tmp_path):
    store = world.store()
    before = np.concatenate([store.open("c2").read_chunk(c) for _, c in store.open("c2").committed_chunks()])
    store.forget("c2")
    world.cli("recordings", "cut", "c2", "--start-s", "0", "--end-s", "0.5", "--reason", "x", "--yes", user="sam")
    after = np.concatenate([store.open("c2").read_chunk(c) for _, c in store.open("c2").committed_chunks()])
    assert np.array_equal(after, before[4000:])
