"""`consentline access`: the GDPR Art. 15 export, checked against the index and the disk."""

import json

import pytest
import soundfile

from test_admin_support import RATE_HZ, add_call, audit_rows, make_world

SUBJECT = "+4915100000001"


@pytest.fixture
def world(tmp_path):
    world = make_world(tmp_path)
    add_call(world, "s1", SUBJECT, opened_at="2024-05-01T10:00:00Z", seconds=2.0)
    add_call(world, "s2", SUBJECT, opened_at="2024-05-02T10:00:00Z", seconds=1.0)
    add_call(world, "s3", SUBJECT, opened_at="2024-05-03T10:00:00Z", seconds=None)
    add_call(world, "o1", "+4915100000002", opened_at="2024-05-02T11:00:00Z")
    assert world.cli("recordings", "delete", "s2", "--reason", "agent request", "--yes", user="sam").exit_code == 0
    return world


def test_export_holds_what_the_index_and_store_hold(world, tmp_path):
    out = tmp_path / "subject"
    result = world.cli("access", "--phone", SUBJECT, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert summary["audio_files"] == ["recordings/s1.wav"] and summary["calls"] == 3
    data = json.loads((out / "data.json").read_text())
    with world.index() as index:
        assert [c["uuid"] for c in data["calls"]] == [c["uuid"] for c in reversed(index.calls(phone=SUBJECT))]
        assert data["calls"][0]["evidence"] == index.evidence("s1")
    recs = {r["id"]: r for r in data["recordings"]}
    assert set(recs) == {"s1", "s2"} and recs["s2"]["removed"]["reason"] == "agent request"
    audio, rate = soundfile.read(out / "recordings" / "s1.wav", dtype="int16")
    assert rate == RATE_HZ and len(audio) == 2 * RATE_HZ
    assert sorted(p.name for p in (out / "recordings").iterdir()) == ["s1.wav"]
    index_md = (out / "index.md").read_text()
    assert f"# Your data: {SUBJECT}" in index_md and "[recordings/s1.wav]" in index_md and "agent request" in index_md
    assert "+4915100000002" not in (out / "data.json").read_text() + index_md
    row = audit_rows(world)[-1]
    assert (row["action"], row["details"]["audio_files"]) == ("access_export", 1)
    assert SUBJECT not in json.dumps(row)


def test_refusals_and_bad_input_leave_no_folder(world, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    busy = world.cli("access", "--phone", SUBJECT, "--out", tmp_path / "full")
    assert busy.exit_code == 1 and "expected a new or empty folder" in busy.stderr
    refused = world.cli("access", "--phone", SUBJECT, "--out", tmp_path / "a", user="nobody")
    assert refused.exit_code == 1 and not (tmp_path / "a").exists()
    bad = world.cli("access", "--phone", "call me", "--out", tmp_path / "b")
    assert bad.exit_code == 1 and not (tmp_path / "b").exists()
    (world.recordings / "s1" / "manifest.jsonl").write_text("garbage\n{}\n")
    damaged = world.cli("access", "--phone", SUBJECT, "--out", tmp_path / "c")
    assert damaged.exit_code == 1 and not (tmp_path / "c").exists()
    assert not list(tmp_path.glob(".*partial"))
