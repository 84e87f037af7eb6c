"""Deletions, erasures, purges and cuts by staff reach the helpdesk: their events are queued in the same transaction."""

import json
import time

from controller.admin import removal
from controller.admin.cli_recordings import _report_cut
from controller.helpdesk import parse_helpdesk
from controller.index import Index

SETTINGS = parse_helpdesk({"secret": "s" * 20, "endpoints": [{"name": "hd", "url": "http://127.0.0.1:9/h",
                                                              "events": ["*"]}]})


def index_with_recording(tmp_path):
    index = Index(tmp_path / "i.db")
    index.call_started("c1", "+4915112345678", "+4930100100", time.time())
    index.recording_opened("c1", "/x", time.time(), recording_id="c1")
    return index, {"id": "c1", "call_uuid": "c1"}


def events(index):
    return [(r["type"], json.loads(r["body"])) for r in index.query("SELECT type, body FROM outbox_events")]


def test_a_deletion_is_reported_with_the_call_and_an_erasure_without_the_number(tmp_path):
    index, row = index_with_recording(tmp_path)
    with index.transaction("delete") as db:
        removal.mark_removed(db, row, "delete", "user:anna", "wrong customer", helpdesk=SETTINGS)
    (kind, body), = events(index)
    assert kind == "recording.deleted" and body["caller"] == "+4915112345678"
    assert body["data"] == {"cause": "delete", "reason": "wrong customer"}
    with index.transaction("erase") as db:
        removal.mark_removed(db, row, "erase", "user:anna", "erasure", helpdesk=SETTINGS)
    _, erased = events(index)[-1]
    assert erased["caller"] is None and erased["dialed"] is None


def test_nothing_is_queued_without_endpoints_or_when_the_transaction_fails(tmp_path):
    index, row = index_with_recording(tmp_path)
    with index.transaction("delete") as db:
        removal.mark_removed(db, row, "delete", "user:anna", "x", helpdesk=parse_helpdesk({}))
    assert events(index) == []
    try:
        with index.transaction("cut") as db:
            _report_cut(db, SETTINGS, row, 0, 8000, 12.5)
            raise RuntimeError("the cut's index update failed")
    except RuntimeError:
        pass
    assert events(index) == []
    with index.transaction("cut") as db:
        _report_cut(db, SETTINGS, row, 0, 8000, 12.5)
    (kind, body), = events(index)
    assert kind == "recording.cut" and body["data"]["end_sample"] == 8000


def test_staff_tags_flags_cuts_and_deletes_reach_the_outbox_and_failures_stay_audited(tmp_path):
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from test_admin_support import add_call, audit_rows, make_world

    world = make_world(tmp_path)
    text = world.config.read_text().replace(
        "helpdesk: {}", 'helpdesk: {secret: "' + "s" * 20 + '", endpoints: [{name: hd, url: "http://127.0.0.1:9/h"}]}')
    world.config.write_text(text)
    add_call(world, "c1", "+4915100000001", process="de", seconds=4.0)
    assert world.cli("recordings", "tag", "c1", "complaint", user="sam").exit_code == 0
    assert world.cli("recordings", "flag", "c1", "--reason", "check", user="sam").exit_code == 0
    assert world.cli("recordings", "cut", "c1", "--start-s", "1", "--end-s", "2", "--reason", "card", "--yes",
                     user="sam").exit_code == 0
    assert world.cli("recordings", "delete", "c1", "--reason", "wrong number", "--yes", user="sam").exit_code == 0
    with world.index() as index:
        kinds = [kind for kind, _ in events(index)]
    assert kinds == ["recording.tagged", "recording.flagged", "recording.cut", "recording.deleted"]
    missing = world.cli("recordings", "tag", "nope", "x", user="sam")
    assert missing.exit_code == 1
    assert any(r["action"] == "tag" and r["outcome"] == "failed" and r["recording_id"] == "nope"
               for r in audit_rows(world))
