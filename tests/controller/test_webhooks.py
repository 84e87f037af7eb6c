"""The sender against a real HTTP receiver on an ephemeral loopback port.

Back-off is driven by an injected clock and `run_once()`; the started greenlets are used where the
live behaviour matters (ordering under concurrency, a hanging receiver, a restart).
"""

import time

import gevent
import pytest

from controller import outbox, webhooks
from controller.helpdesk import CallFacts, Endpoint, HelpdeskSettings
from controller.index import Index, timestamp
from tests.controller.helpdesk_receiver import HelpdeskReceiver

SECRET = "s3cret-for-tests-0123456789"
T0 = float(int(time.time()))  # the receiver checks signature times against its own clock


class Clock:
    def __init__(self, now_s=T0):
        self.now_s = now_s

    def __call__(self):
        return self.now_s


@pytest.fixture
def receiver():
    desk = HelpdeskReceiver(SECRET).start()
    yield desk
    desk.release()
    if desk._server is not None:
        desk.down()


@pytest.fixture
def index(tmp_path):
    with Index(tmp_path / "consentline.db") as idx:
        yield idx


def helpdesk(url, **endpoint):
    return HelpdeskSettings(secret=SECRET, public_base_url="http://127.0.0.1:1", backoff_base_s=2.0,
                            backoff_max_s=60.0, poll_interval_s=0.05,
                            endpoints=(Endpoint("desk", url, **{"timeout_s": 2.0, **endpoint}),))


def emit(index, settings, call_uuid, event_type, at_s=None, **data):
    with index.transaction(event_type) as db:
        return outbox.emit(db, settings, event_type, CallFacts(call_uuid, "+4930111", "+4940222", "1001", "de"),
                           recording_id=f"rec-{call_uuid}", data=data, at_s=at_s)


def states(index):
    return {row["event_id"]: (row["state"], row["attempts"]) for row in outbox.deliveries(index)}


FLOW = ("call.routed", "consent.decided", "recording.started", "recording.tagged", "recording.completed")


def test_live_delivery_is_signed_and_in_order_per_call(index, receiver):
    settings = helpdesk(receiver.url)
    calls = [f"call-{n}" for n in range(4)]
    for event_type in FLOW:  # interleaved, as concurrent calls write them
        for call_uuid in calls:
            emit(index, settings, call_uuid, event_type)
    sender = webhooks.Sender(index, settings, batch_size=3).start()
    try:
        receiver.wait_until(lambda: len(receiver.accepted) == len(FLOW) * len(calls))
    finally:
        assert sender.stop(timeout_s=2)
    assert all(r.signature_ok for r in receiver.requests)
    for call_uuid in calls:
        seen = [r.json["type"] for r in receiver.accepted if r.json["call_uuid"] == call_uuid]
        assert seen == list(FLOW)
    first = receiver.accepted[0]
    assert first.headers["X-Consentline-Event"] == first.json["type"]
    assert first.headers["Idempotency-Key"] == first.json["id"]
    assert first.headers["Content-Type"] == "application/json"
    assert len(set(receiver.accepted_keys())) == len(receiver.accepted)
    assert {s for s, _ in states(index).values()} == {"delivered"}


def test_signature_covers_the_exact_body_and_timestamp():
    body = b'{"id":"evt_1"}'
    header = webhooks.sign(SECRET, body, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert webhooks.verify_signature(SECRET, header, body, now_s=1_700_000_100)
    assert not webhooks.verify_signature(SECRET, header, body + b" ", now_s=1_700_000_100)
    assert not webhooks.verify_signature("another-secret-0123456", header, body, now_s=1_700_000_100)
    assert not webhooks.verify_signature(SECRET, header, body, now_s=1_700_001_000)  # replayed too late
    assert not webhooks.verify_signature(SECRET, "v1=abc", body, now_s=1_700_000_000)


def test_a_failing_receiver_gets_every_event_later_once_accepted(index, receiver):
    clock = Clock()
    settings = helpdesk(receiver.url)
    a1 = emit(index, settings, "A", "recording.started", at_s=T0)
    b1 = emit(index, settings, "B", "recording.started", at_s=T0)
    a2 = emit(index, settings, "A", "recording.completed", at_s=T0)
    sender = webhooks.Sender(index, settings, clock=clock, rand=lambda: 0.5)
    receiver.mode = "fail"
    assert sender.run_once() == 2  # A's second event waits behind its first
    assert states(index) == {a1: ("pending", 1), b1: ("pending", 1), a2: ("pending", 0)}
    rows = {r["event_id"]: r for r in outbox.deliveries(index)}
    assert rows[a1]["last_status"] == 500 and rows[a1]["last_error"].startswith("HTTP 500")
    assert rows[a1]["next_attempt_at"] == timestamp(T0 + 1.0)  # 0.5 x 2 s x 2**0
    assert sender.run_once() == 0  # not due yet: nothing is sent early
    clock.now_s += 1.0
    assert sender.run_once() == 2
    assert {r["next_attempt_at"] for r in outbox.deliveries(index, states=["pending"]) if r["attempts"]} == {
        timestamp(T0 + 3.0)}  # second failure: 0.5 x 2 s x 2**1 after T0 + 1
    receiver.mode = "ok"
    clock.now_s += 2.0
    assert sender.run_once() == 2
    assert sender.run_once() == 1
    assert receiver.accepted_keys() == [r.key for r in receiver.accepted]
    assert [r.json["type"] for r in receiver.accepted if r.json["call_uuid"] == "A"] == ["recording.started",
                                                                                         "recording.completed"]
    assert sorted(receiver.accepted_keys()) == sorted(set(receiver.accepted_keys()))  # each accepted once
    assert len(receiver.requests) == 7 and {r.key for r in receiver.requests} == set(receiver.accepted_keys())
    assert states(index) == {a1: ("delivered", 3), b1: ("delivered", 3), a2: ("delivered", 1)}


def test_a_receiver_that_is_down_gets_the_events_when_it_is_back(index, receiver):
    clock = Clock()
    settings = helpdesk(receiver.url)
    receiver.down()
    first = emit(index, settings, "A", "recording.started", at_s=T0)
    second = emit(index, settings, "A", "recording.deleted", at_s=T0)
    sender = webhooks.Sender(index, settings, clock=clock, rand=lambda: 1.0)
    assert sender.run_once() == 1
    row = outbox.deliveries(index, states=["pending"])[-1]
    assert row["event_id"] == first and "Connection" in row["last_error"] and row["last_status"] is None
    receiver.start()
    clock.now_s += 2.0
    assert sender.run_once() == 1 and sender.run_once() == 1
    assert [r.json["type"] for r in receiver.accepted] == ["recording.started", "recording.deleted"]
    assert states(index) == {first: ("delivered", 2), second: ("delivered", 1)}


def test_a_slow_receiver_is_timed_out_and_repeats_carry_the_same_key(index, receiver):
    clock = Clock()
    settings = helpdesk(receiver.url, timeout_s=0.2)
    event_id = emit(index, settings, "A", "recording.cut", at_s=T0, start_sample=0, end_sample=8000)
    receiver.mode, receiver.delay_s = "slow", 0.6
    sender = webhooks.Sender(index, settings, clock=clock, rand=lambda: 1.0)
    started = time.monotonic()
    sender.run_once()
    assert time.monotonic() - started < 0.5  # the sender gave up at its timeout, not at the answer
    assert "no answer within 0.2 s" in outbox.deliveries(index)[0]["last_error"]
    receiver.wait_until(lambda: len(receiver.accepted) == 1)  # the slow answer still lands, late
    receiver.mode = "ok"
    clock.now_s += 2.0
    assert sender.run_once() == 1
    assert len(receiver.accepted) == 2 and len(set(receiver.accepted_keys())) == 1
    assert states(index) == {event_id: ("delivered", 2)}


def test_dead_letter_after_max_attempts_does_not_block_the_call_and_can_be_retried(index, receiver):
    clock = Clock()
    settings = helpdesk(receiver.url, max_attempts=3)
    doomed = emit(index, settings, "A", "recording.tagged", at_s=T0, tags=["x"])
    later = emit(index, settings, "A", "recording.completed", at_s=T0)
    receiver.mode = "fail"
    sender = webhooks.Sender(index, settings, clock=clock, rand=lambda: 1.0)
    for _ in range(3):
        assert sender.run_once() == 1
        clock.now_s += 60
    assert states(index)[doomed] == ("dead", 3) and sender.counts["dead"] == 1
    receiver.mode = "ok"
    assert sender.run_once() == 1  # the later event is no longer held back by the dead one
    assert states(index)[later] == ("delivered", 1)
    revived = outbox.retry(index, all_dead=True, now_s=clock.now_s)
    assert len(revived) == 1 and sender.run_once() == 1
    assert states(index)[doomed] == ("delivered", 1)


def test_a_restart_delivers_what_was_left_undelivered(tmp_path, receiver):
    path = tmp_path / "consentline.db"
    settings = helpdesk(receiver.url)
    with Index(path) as index:
        for event_type in FLOW:
            emit(index, settings, "A", event_type)
        receiver.mode = "fail"
        sender = webhooks.Sender(index, settings, rand=lambda: 0.0)
        sender.run_once()
        sender.stop()

        def crash_after_post(url, body, headers, timeout_s):
            webhooks.http_post(url, body, headers, timeout_s)
            raise RuntimeError("controller killed before the index update")  # simulated crash

        receiver.mode = "ok"
        with pytest.raises(RuntimeError):
            webhooks.Sender(index, settings, post=crash_after_post).run_once()
    assert len(receiver.accepted) == 1  # the helpdesk has the first event; the index does not know
    with Index(path) as reopened:
        sender = webhooks.Sender(reopened, settings).start()
        try:
            receiver.wait_until(lambda: len(receiver.accepted) == len(FLOW) + 1)
        finally:
            sender.stop()
        assert {s for s, _ in states(reopened).values()} == {"delivered"}
    types = [r.json["type"] for r in receiver.accepted]
    assert types == [FLOW[0], *FLOW]  # the first again (same key), then the rest, in order
    assert receiver.accepted[0].key == receiver.accepted[1].key and len(set(receiver.accepted_keys())) == len(FLOW)


def test_calls_keep_their_timing_while_the_receiver_hangs(index, receiver):
    settings = helpdesk(receiver.url, timeout_s=5.0)
    receiver.mode = "hang"
    emit(index, settings, "stuck", "recording.started")
    sender = webhooks.Sender(index, settings).start()
    try:
        receiver.wait_until(lambda: receiver.hanging == 1)
        lateness_s = []
        for n in range(40):  # a call's rhythm: short waits, each with an outbox write
            before = time.monotonic()
            gevent.sleep(0.01)
            lateness_s.append(time.monotonic() - before - 0.01)
            emit(index, settings, "busy", "recording.tagged", tags=[f"t{n}"])
        assert receiver.hanging == 1 and not receiver.accepted  # the sender was stuck the whole time
        assert max(lateness_s) < 0.1, max(lateness_s)
        receiver.mode = "ok"
        receiver.release()
        receiver.wait_until(lambda: len({r.key for r in receiver.accepted}) == 41)
    finally:
        sender.stop()
    busy = [r.json["data"]["tags"][0] for r in receiver.accepted if r.json["call_uuid"] == "busy"]
    assert busy == [f"t{n}" for n in range(40)]


def test_zendesk_endpoint_gets_a_signed_ticket_comment(index, receiver):
    settings = helpdesk(receiver.url, format="zendesk", events=frozenset({"recording.completed"}))
    emit(index, settings, "A", "recording.tagged", tags=["ignored"])  # not subscribed: no delivery
    emit(index, settings, "A", "recording.completed", duration_s=42.0, tags=["complaint"])
    assert webhooks.Sender(index, settings).run_once() == 1
    (request,) = receiver.accepted
    assert request.signature_ok
    ticket = request.json["ticket"]
    assert ticket["external_id"] == "A" and "complaint" in ticket["tags"]
    assert "/recordings/rec-A.wav?expires=" in ticket["comment"]["body"]


def test_send_test_reports_the_receivers_answer(receiver):
    settings = helpdesk(receiver.url)
    answer = webhooks.send_test(settings.endpoints[0], settings)
    assert answer.ok and b'"status": 200' in answer.body
    assert receiver.requests[-1].headers["X-Consentline-Event"] == "webhook.test"
    receiver.mode = "fail"
    assert webhooks.send_test(settings.endpoints[0], settings).status == 500
    receiver.down()
    with pytest.raises(webhooks.DeliveryError):
        webhooks.send_test(settings.endpoints[0], settings)
