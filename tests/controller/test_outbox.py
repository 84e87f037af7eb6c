"""The outbox tables and the helpdesk settings and bodies: storage, ordering, back-off, retry, mappings."""

import json

import pytest

from controller import outbox
from controller.errors import ConfigError, IndexWriteError
from controller.helpdesk import (EVENT_TYPES, CallFacts, Endpoint, HelpdeskSettings, event_body, mask_number,
                                 parse_helpdesk, register_format, render)
from controller.index import Index
from controller.links import verify_link

SECRET = "s3cret-for-tests-0123456789"
FACTS = CallFacts("call-a", "+4930123456789", "+4940999", agent="1001", process="de")


def settings(**overrides):
    base = dict(secret=SECRET, public_base_url="http://links.test:8090",
                endpoints=(Endpoint("desk", "http://127.0.0.1:9/hook"),
                           Endpoint("ends", "http://127.0.0.1:9/ends", events=frozenset({"recording.completed"}))))
    return HelpdeskSettings(**{**base, **overrides})


@pytest.fixture
def index(tmp_path):
    with Index(tmp_path / "consentline.db") as idx:
        yield idx


def call_row(index, call_uuid):
    index.call_started(call_uuid, "+4930123456789", "+4940999", at=1_700_000_000)


# --- configuration ---------------------------------------------------------------------------


def test_parse_full_section_into_frozen_settings():
    parsed = parse_helpdesk({
        "secret_env": "HOOK_SECRET", "mask_numbers": "last4", "link_ttl_s": 3600, "links_listen": "127.0.0.1:8090",
        "endpoints": [{"name": "zd", "url": "https://example.zendesk.test/api", "events": ["recording.completed",
                                                                                         "recording.deleted"],
                       "timeout_s": 2, "max_attempts": 3, "format": "zendesk"},
                      {"name": "all", "url": "http://127.0.0.1:5000/x"}]},
        environ={"HOOK_SECRET": SECRET})
    assert parsed.secret == SECRET and parsed.mask_numbers == "last4" and parsed.link_ttl_s == 3600
    assert parsed.links_listen == ("127.0.0.1", 8090)
    assert parsed.public_base_url == "http://127.0.0.1:8090"  # derived from links_listen when not given
    zd, every = parsed.endpoints
    assert zd.events == {"recording.completed", "recording.deleted"} and zd.format == "zendesk"
    assert zd.timeout_s == 2.0 and zd.max_attempts == 3
    assert every.events == set(EVENT_TYPES) and every.format == "generic"
    assert SECRET not in repr(parsed)
    with pytest.raises(AttributeError):
        parsed.secret = "x"


def test_empty_section_means_no_webhooks():
    assert parse_helpdesk({}).endpoints == ()
    assert parse_helpdesk(None).secret is None


@pytest.mark.parametrize("raw, expected", [
    ({"secret": SECRET, "endpoints": [{"name": "a", "url": "ftp://x"}]},
     "helpdesk.endpoints[0].url: expected an http:// or https:// URL, got 'ftp://x'"),
    ({"secret": SECRET, "endpoints": [{"name": "a"}]},
     "helpdesk.endpoints[0].url: expected an http:// or https:// URL, got nothing"),
    ({"secret": SECRET, "endpoints": [{"name": "a", "url": "http://h/", "events": ["recording.exploded"]}]},
     "helpdesk.endpoints[0].events[0]: expected one of call.routed,"),
    ({"secret": SECRET, "endpoints": [{"name": "a", "url": "http://h/", "format": "jira"}]},
     "helpdesk.endpoints[0].format: expected one of generic, zendesk"),
    ({"secret": SECRET, "endpoints": [{"name": "a", "url": "http://h/", "max_attempts": 0}]},
     "helpdesk.endpoints[0].max_attempts: expected a whole number from 1 to 100, got 0"),
    ({"secret": SECRET, "endpoints": [{"name": "a", "url": "http://h/"}, {"name": "a", "url": "http://i/"}]},
     "helpdesk.endpoints[1].name: expected a unique name, got 'a' again"),
    ({"secret": SECRET, "endpoints": [{"name": "a", "url": "http://h/", "retries": 3}]},
     "helpdesk.endpoints[0].retries: expected no such key"),
    ({"endpoints": [{"name": "a", "url": "http://h/"}]},
     "helpdesk.secret_env: expected the name of an environment variable"),
    ({"secret_env": "NOT_SET_ANYWHERE", "endpoints": []},
     "helpdesk.secret_env: expected the environment variable NOT_SET_ANYWHERE to hold 16 or more characters, "
     "got nothing"),
    ({"mask_numbers": "yes"}, "helpdesk.mask_numbers: expected true, false or \"last4\", got 'yes'"),
    ({"link_ttl_s": 0}, "helpdesk.link_ttl_s: expected a whole number of seconds from 1 to"),
    ({"backoff_base_s": 10, "backoff_max_s": 5}, "helpdesk.backoff_max_s: expected at least backoff_base_s (10)"),
])
def test_bad_settings_name_the_dotted_path(raw, expected):
    with pytest.raises(ConfigError) as caught:
        parse_helpdesk(raw, environ={})
    assert any(problem.startswith(expected) for problem in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        parse_helpdesk({"mask_numbers": 3,
                        "endpoints": [{"url": "x"}, {"name": "b", "url": "http://h", "timeout_s": -1}]}, environ={})
    paths = [p.split(":")[0] for p in caught.value.problems]
    assert {"helpdesk.mask_numbers", "helpdesk.endpoints[0].name", "helpdesk.endpoints[0].url",
            "helpdesk.endpoints[1].timeout_s"} <= set(paths)


# --- bodies and mappings ---------------------------------------------------------------------


@pytest.mark.parametrize("mode, expected", [
    (False, "+4930123456789"), (True, "+*************"), ("last4", "+*********6789")])
def test_mask_number(mode, expected):
    assert mask_number("+4930123456789", mode) == expected
    assert mask_number(None, mode) is None


def test_completed_body_carries_facts_and_a_signed_expiring_link():
    body = event_body(settings(mask_numbers="last4", link_ttl_s=600), "recording.completed", FACTS,
                      event_id="evt_1", recording_id="rec-1", at_s=1_700_000_000.25,
                      data={"duration_s": 61.5, "tags": ["complaint"]})
    assert body["caller"] == "+*********6789" and body["dialed"] == "+***0999"
    assert (body["call_uuid"], body["recording_id"], body["agent"], body["process"]) == ("call-a", "rec-1",
                                                                                         "1001", "de")
    assert body["timestamp"] == "2023-11-14T22:13:20.250Z"
    assert body["data"]["duration_s"] == 61.5 and body["data"]["tags"] == ["complaint"]
    url = body["data"]["link"]["url"]
    assert url.startswith("http://links.test:8090/recordings/rec-1.wav?expires=1700000600&sig=")
    verify_link("rec-1", 1_700_000_600, url.rsplit("sig=", 1)[1], SECRET, now_s=1_700_000_599)
    assert body["data"]["link"]["expires_at"] == "2023-11-14T22:23:20.000Z"


def test_other_events_carry_no_link_and_unknown_types_are_refused():
    body = event_body(settings(), "recording.cut", FACTS, event_id="e", recording_id="rec-1", at_s=0,
                      data={"start_sample": 8000, "end_sample": 16000})
    assert "link" not in body["data"]
    with pytest.raises(ValueError):
        event_body(settings(), "recording.exploded", FACTS, event_id="e", recording_id=None, at_s=0)


def test_zendesk_mapping_is_a_private_ticket_comment_with_link_and_tags():
    body = event_body(settings(), "recording.completed", FACTS, event_id="e", recording_id="rec-1", at_s=0,
                      data={"duration_s": 12, "tags": ["Complaint", "VIP customer"]})
    ticket = render("zendesk", body)["ticket"]
    assert ticket["external_id"] == "call-a"
    assert ticket["comment"]["public"] is False
    assert body["data"]["link"]["url"] in ticket["comment"]["body"]
    assert "Duration: 12.0 s" in ticket["comment"]["body"]
    assert ticket["tags"] == ["complaint", "consentline", "recording_completed", "vip_customer"]
    assert render("generic", body) == body


def test_register_format_extends_the_mappings_and_refuses_duplicates():
    register_format("test-minimal", lambda body: {"text": body["type"]})
    parsed = parse_helpdesk({"secret": SECRET, "endpoints": [{"name": "m", "url": "http://h/", "format":
                                                              "test-minimal"}]})
    assert render(parsed.endpoints[0].format, {"type": "recording.cut"}) == {"text": "recording.cut"}
    with pytest.raises(ValueError):
        register_format("zendesk", lambda body: body)


# --- the outbox tables -----------------------------------------------------------------------


def test_emit_commits_with_the_change_and_fans_out_by_event_filter(index):
    call_row(index, "call-a")
    with index.transaction("completed") as db:
        db.execute("UPDATE calls SET hangup_cause = 'NORMAL_CLEARING' WHERE uuid = 'call-a'")
        completed = outbox.emit(db, settings(), "recording.completed", FACTS, recording_id="rec-1", at_s=100.0)
        cut = outbox.emit(db, settings(), "recording.cut", FACTS, recording_id="rec-1", at_s=101.0)
    rows = outbox.deliveries(index)
    assert sorted((r["event_id"], r["endpoint"]) for r in rows) == [(completed, "desk"), (completed, "ends"),
                                                                   (cut, "desk")]
    assert all(r["state"] == "pending" and r["attempts"] == 0 for r in rows)
    stored = json.loads(index.query("SELECT body FROM outbox_events WHERE id = ?", [cut])[0]["body"])
    assert stored["type"] == "recording.cut" and stored["id"].startswith("evt_")


def test_an_event_rolls_back_with_a_failed_change(index):
    call_row(index, "call-a")
    with pytest.raises(IndexWriteError):
        with index.transaction("doomed") as db:
            outbox.emit(db, settings(), "recording.tagged", FACTS, recording_id="rec-1")
            db.execute("INSERT INTO calls (uuid) VALUES ('no-caller')")  # violates NOT NULL
    assert index.query("SELECT COUNT(*) AS n FROM outbox_events")[0]["n"] == 0
    assert outbox.deliveries(index) == []


def test_enqueue_refuses_unknown_event_types(index):
    with pytest.raises(IndexWriteError):
        outbox.enqueue(index, "recording.exploded", "c", None, {}, endpoints=["desk"])


def enqueue_plain(index, call_uuid, at_s, endpoints=("desk",)):
    return outbox.enqueue(index, "recording.tagged", call_uuid, None, {"n": at_s}, endpoints=endpoints, at_s=at_s)


def test_due_gives_one_delivery_per_call_in_event_order(index):
    a1, b1, a2, b2, a3 = (enqueue_plain(index, c, t) for c, t in
                          (("A", 1), ("B", 2), ("A", 3), ("B", 4), ("A", 5)))
    first = outbox.due(index, "desk", now_s=10, limit=10)
    assert [d.event_id for d in first] == [a1, b1]
    outbox.mark_delivered(index, first[0].id, 200, now_s=10)
    outbox.mark_failed(index, first[1].id, "HTTP 500", 500, now_s=10, next_attempt_at_s=50)
    # A's next event is due; B's is held back behind B's failed (not yet due) first event
    assert [d.event_id for d in outbox.due(index, "desk", now_s=11, limit=10)] == [a2]
    assert [d.event_id for d in outbox.due(index, "desk", now_s=50, limit=10)] == [b1, a2]
    outbox.mark_failed(index, first[1].id, "HTTP 500", 500, now_s=50, next_attempt_at_s=None)  # dead
    assert [d.event_id for d in outbox.due(index, "desk", now_s=50, limit=10)] == [a2, b2]
    assert outbox.due(index, "desk", now_s=50, limit=1)[0].event_id == a2
    outbox.mark_delivered(index, outbox.due(index, "desk", now_s=50, limit=1)[0].id, 200, now_s=50)
    assert [d.event_id for d in outbox.due(index, "desk", now_s=50, limit=10)] == [b2, a3]


def test_due_is_per_endpoint(index):
    first = enqueue_plain(index, "A", 1, endpoints=("desk", "crm"))
    second = enqueue_plain(index, "A", 2, endpoints=("desk", "crm"))
    outbox.mark_delivered(index, outbox.due(index, "crm", 5, 10)[0].id, 200, 5)
    assert [d.event_id for d in outbox.due(index, "crm", 5, 10)] == [second]
    assert [d.event_id for d in outbox.due(index, "desk", 5, 10)] == [first]


@pytest.mark.parametrize("attempts, rand, expected", [
    (1, 0.5, 1.0), (2, 0.5, 2.0), (3, 1.0, 8.0), (4, 0.25, 4.0), (12, 1.0, 600.0), (30, 0.0, 0.0)])
def test_backoff_is_full_jitter_under_a_doubling_cap(attempts, rand, expected):
    assert outbox.backoff_s(attempts, base_s=2.0, max_s=600.0, random01=rand) == expected


def test_retry_revives_dead_letters_only_when_asked(index):
    ids = [enqueue_plain(index, f"C{i}", i) for i in range(3)]
    deliveries = {d.event_id: d.id for d in outbox.due(index, "desk", 10, 10)}
    outbox.mark_failed(index, deliveries[ids[0]], "refused", None, 10, None)
    outbox.mark_failed(index, deliveries[ids[1]], "refused", None, 10, None)
    outbox.mark_delivered(index, deliveries[ids[2]], 200, 10)
    assert outbox.retry(index, all_dead=True, now_s=20, dry_run=True) == [deliveries[ids[0]], deliveries[ids[1]]]
    assert {r["state"] for r in outbox.deliveries(index, states=["dead"])} == {"dead"}
    assert outbox.retry(index, [deliveries[ids[1]], deliveries[ids[2]]], now_s=20) == [deliveries[ids[1]]]
    revived = outbox.deliveries(index, states=["pending"])
    assert [(r["id"], r["attempts"]) for r in revived] == [(deliveries[ids[1]], 0)]
    assert outbox.unknown_ids(index, [deliveries[ids[0]], 999]) == [999]
