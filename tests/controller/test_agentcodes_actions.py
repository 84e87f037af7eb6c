"""Agent codes on a call, against a scripted call socket, a real media recording and a real index: refusals,
read-back, failing closed, transfers and holds, the event link."""

import dataclasses
import logging
from pathlib import Path
from types import MappingProxyType, SimpleNamespace

import gevent
import gevent.event
import gevent.queue
import numpy as np
import pytest

import controller
from controller import audit, tags
from controller.agentactions import AgentCodes
from controller.agentlink import BRIDGED, AgentCodeLink
from controller.callflow import bridge_taken_over
from controller.agentcodes import Request
from controller.config import load_config
from controller.eslerrors import ESLTimeout
from controller.index import Index
from controller.indexio import OffHubIndex
from controller.permissions import Actor
from media import MediaError, MediaStore

EXAMPLE = Path(controller.__file__).parent / "examples" / "consentline.example.yaml"
CALLER, AGENT_1, AGENT_2 = "caller-1", "agent-1", "agent-2"
RATE_HZ = 8000


class Expectation:
    def __init__(self, call, predicate):
        self.call, self.predicate, self.result = call, predicate, gevent.event.AsyncResult()

    @property
    def arrived(self):
        return self.result.ready()

    def wait(self, timeout_s, what=""):
        try:
            return self.result.get(timeout=timeout_s)
        except gevent.Timeout:
            raise ESLTimeout(f"{what}: nothing within {timeout_s} s") from None

    def cancel(self):
        if self in self.call.waiters:
            self.call.waiters.remove(self)


class ScriptedCall:
    """The caller's socket: events the test fires, API answers the test scripts, commands it records."""

    uuid = CALLER
    events = None  # no helpdesk: writes go through the index worker alone

    def __init__(self, dialed_users):
        self.waiters, self.apis, self.sent = [], [], []
        self.dialed_users = dialed_users
        self.record_stop = "+OK Success\n"       # or a callable(command) -> reply
        self.bound = {}                          # agent uuid -> Event, set when its realm is selected

    def expect(self, predicate, survive_hangup=False):
        expectation = Expectation(self, predicate)
        self.waiters.append(expectation)
        return expectation

    def fire(self, **headers):
        frame = SimpleNamespace(headers=headers)
        for waiter in list(self.waiters):
            if not waiter.result.ready() and waiter.predicate(frame):
                waiter.result.set(frame)

    def api(self, command, timeout_s=None):
        self.apis.append(command)
        words = command.split()
        if words[0] == "uuid_getvar":
            return self.dialed_users.get(words[1], "_undef_")
        if words[:1] == ["uuid_record"] and words[2] == "stop":
            return self.record_stop(command) if callable(self.record_stop) else self.record_stop
        return "+OK\n"

    def send(self, command, timeout_s=None):
        self.sent.append(command)
        if "digit_action_set_realm" in command:
            self.bound.setdefault(command.split()[1], gevent.event.Event()).set()
        return SimpleNamespace(reply_text="+OK")

    def bridge_to(self, agent_uuid):
        self.bound.setdefault(agent_uuid, gevent.event.Event())
        self.fire(**{"Event-Name": "CHANNEL_BRIDGE", "Bridge-B-Unique-ID": agent_uuid})
        assert self.bound[agent_uuid].wait(timeout=2), f"codes not bound on {agent_uuid}"


class SwitchRecording:
    """What CallRecording offers the codes, over a real media recording holding 10 s of audio."""

    def __init__(self, store, spool_dir):
        self.recording = store.create(CALLER, rate_hz=RATE_HZ, channels=2, holdback_s=5, gap_fill="silence")
        self.recording.append(np.full((10 * RATE_HZ, 2), 1000, np.int16))
        self.spool_path = str(spool_dir / f"{CALLER}.raw")
        self.state, self.index_id, self.recording_id = "recording", CALLER, CALLER

    @property
    def duration_s(self):
        return self.recording.length_samples / RATE_HZ

    def finish(self, actor="system", reason="call ended", record_stop_timeout_s=5.0):
        result = self.recording.finish(actor, reason)
        self.state = "stopped"
        return result

    def withdraw(self, actor, reason, keep):
        if self.recording.status == "recording":
            self.recording.delete(actor, reason)
        self.state = "withdrawn"


class Link(AgentCodeLink):
    """The real router, with a stand-in for the inbound connection's API."""

    def __init__(self):
        super().__init__(supervisor=None)
        self.apis = []

    def api(self, command, timeout_s):
        self.apis.append(command)
        return "+OK\n"


@pytest.fixture
def world(tmp_path):
    config = load_config(EXAMPLE)
    index = Index(tmp_path / "consentline.db")
    index.call_started(CALLER, "+4915100000001", "+4930100100")
    index.recording_opened(CALLER, str(tmp_path / "rec"), recording_id=CALLER)
    index_io = OffHubIndex(index)
    made = SimpleNamespace(config=config, index=index, tmp_path=tmp_path, watchers=[])

    def start(codes=None, dialed_users=None, withdraw=None):
        process = dataclasses.replace(config.processes["de"], agent_codes=MappingProxyType(codes or {}))
        made.config = dataclasses.replace(config, processes=MappingProxyType(dict(config.processes, de=process)))
        made.link = Link()
        made.call = ScriptedCall(dialed_users or {AGENT_1: "1001"})
        made.recording = SwitchRecording(MediaStore(tmp_path / "recordings"), tmp_path)
        service = AgentCodes(made.config, index_io, made.link)
        made.codes = service.watch(made.call, process, made.recording, withdraw or (lambda: None))
        made.watchers.append(made.codes)
        made.call.bridge_to(AGENT_1)
        return made
    made.start = start
    yield made
    for watcher in made.watchers:
        watcher.stop()
    index_io.close()
    index.close()


def rows(world):
    return [(r["action"], r["outcome"], r["actor"]) for r in audit.entries(world.index)]


def tones(world, agent_uuid=AGENT_1):
    return [c.split()[2] for c in world.link.apis if c.startswith(f"uuid_broadcast {agent_uuid} ")]


def test_a_refused_stop_changes_nothing_and_only_the_agent_hears_the_refusal(world):
    w = world.start()
    assert w.codes.perform(Actor.agent("1001"), AGENT_1, Request("stop")) == "refused"
    assert w.recording.state == "recording" and w.recording.recording.status == "recording"
    assert not [c for c in w.call.apis if c.startswith("uuid_record")]
    assert rows(w) == [("stop", "refused", "1001")]
    assert audit.entries(w.index)[0]["reason"] == "agent:1001 (role agent) may not stop"
    assert tones(w) == [w.codes.settings.refusal_tone]
    assert all(c.split()[1] == AGENT_1 and c.split()[3] == "aleg" for c in w.link.apis)


def test_a_failed_pause_fails_closed_by_masking(world, monkeypatch, caplog):
    w = world.start(codes={"fail_closed": "mask"})

    def broken_pause(actor, reason):
        raise MediaError("disk full")
    monkeypatch.setattr(w.recording.recording, "pause", broken_pause)
    with caplog.at_level(logging.ERROR, logger="controller.agentactions"):
        assert w.codes.perform(Actor.agent("1001"), AGENT_1, Request("pause")) == "failed"
    assert w.recording.recording.masked_channels == (0, 1) and w.recording.state == "recording"
    assert rows(w) == [("pause", "failed", "1001"), ("fail_closed", "done", "fail-closed")]
    failed, closed = audit.entries(w.index)
    assert failed["reason"] == "not confirmed: MediaError: disk full; failed closed (mask)"
    assert closed["details"] == {"alert": True, "mode": "mask", "action": "pause"}
    assert closed["start_sample"] == 10 * RATE_HZ
    assert any("ALERT" in r.message for r in caplog.records)
    assert tones(w) == [w.codes.settings.refusal_tone]
    assert audit.verify(w.index).ok


def test_a_pause_not_confirmed_within_the_bound_masks_and_hangs_up(world):
    w = world.start(codes={"fail_closed": "hangup", "read_back_s": 0.2})
    release = gevent.event.Event()

    def hold_the_recording():
        with w.recording.recording.exclusive():
            release.wait(timeout=5)
    holder = gevent.spawn(hold_the_recording)
    gevent.spawn_later(0.4, release.set)   # the pipeline answers, but too late
    assert w.codes.perform(Actor.agent("1001"), AGENT_1, Request("pause")) == "failed"
    holder.join(timeout=5)
    assert f"uuid_kill {CALLER} NORMAL_CLEARING" in w.link.apis
    assert w.recording.recording.masked_channels == (0, 1)
    failed = audit.entries(w.index)[0]
    assert failed["reason"] == "not confirmed: not confirmed within 0.2 s; failed closed (hangup)"


def test_stop_is_confirmed_by_the_switchs_ok_and_record_stop(world):
    w = world.start(dialed_users={AGENT_1: "1002"})

    def stop(command):
        gevent.spawn(w.call.fire, **{"Event-Name": "RECORD_STOP", "Record-File-Path": w.recording.spool_path})
        return "+OK Success\n"
    w.call.record_stop = stop
    assert w.codes.perform(Actor.agent("1002"), AGENT_1, Request("stop")) == "done"
    assert w.recording.state == "stopped"
    (row,) = audit.entries(w.index)
    assert (row["action"], row["outcome"], row["start_sample"], row["end_sample"]) == ("stop", "done", 0,
                                                                                       10 * RATE_HZ)
    assert w.index.recordings()[0]["state"] == "stopped"
    assert tones(w) == [w.codes.settings.success_tone]


def test_an_ok_without_record_stop_fails_closed_by_stopping(world):
    w = world.start(codes={"read_back_s": 0.2}, dialed_users={AGENT_1: "1002"})
    assert w.codes.perform(Actor.agent("1002"), AGENT_1, Request("delete")) == "failed"
    assert w.recording.state == "stopped" and w.recording.recording.status == "finished"   # kept, but closed
    assert rows(w) == [("delete", "failed", "1002"), ("fail_closed", "done", "fail-closed")]
    assert "RECORD_STOP" in audit.entries(w.index)[0]["reason"]
    assert w.index.recordings()[0]["state"] == "stopped"


def test_a_transfer_keeps_the_recorders_state_and_the_new_agent_acts_as_itself(world):
    w = world.start(dialed_users={AGENT_1: "1001", AGENT_2: "1002"})
    w.link.route(SimpleNamespace(headers={"Unique-ID": AGENT_1, "agent_code": "pause"}))
    w.call.fire(**{"Event-Name": "CHANNEL_HOLD", "Unique-ID": CALLER})      # hold: nothing to rebind
    w.call.fire(**{"Event-Name": "CHANNEL_UNHOLD", "Unique-ID": CALLER})
    bindings_sent = len(w.call.sent)
    w.call.bridge_to(AGENT_2)                                               # attended transfer to 1002
    assert len(w.call.sent) == 2 * bindings_sent
    assert all(c.startswith(f"sendmsg {AGENT_2}\n") for c in w.call.sent[bindings_sent:])
    w.link.route(SimpleNamespace(headers={"Unique-ID": AGENT_1, "agent_code": "resume"}))   # the old leg: ignored
    w.link.route(SimpleNamespace(headers={"Unique-ID": AGENT_2, "agent_code": "cut"}))
    w.link.route(SimpleNamespace(headers={"Unique-ID": AGENT_2, "agent_code": "resume"}))
    w.codes.stop()                                                          # the bridge ends: the queue drains
    assert w.codes.outcomes == [("pause", "done"), ("cut", "done"), ("resume", "done")]
    assert rows(w) == [("pause", "done", "1001"), ("cut", "done", "1002"), ("resume", "done", "1002")]
    assert not w.recording.recording.paused
    assert tones(w, AGENT_1) == [w.codes.settings.success_tone]
    assert tones(w, AGENT_2) == [w.codes.settings.success_tone] * 2


def test_tags_and_flags_go_through_the_tags_module(world):
    w = world.start(dialed_users={AGENT_1: "1001"})
    assert w.codes.perform(Actor.agent("1001"), AGENT_1, Request("tag", "complaint")) == "done"
    assert w.codes.perform(Actor.agent("1001"), AGENT_1, Request("flag")) == "done"
    assert w.codes.perform(Actor.agent("1009"), AGENT_1, Request("tag", "sale")) == "refused"
    assert tags.tags_of(w.index, CALLER) == ["complaint"] and tags.flag_of(w.index, CALLER)["flagged"]
    assert rows(w) == [("tag", "done", "1001"), ("flag", "done", "1001"), ("tag", "refused", "1009")]
    assert tones(w) == [w.codes.settings.success_tone] * 2 + [w.codes.settings.refusal_tone]


def test_the_link_routes_by_agent_leg_and_counts_what_it_drops():
    link = Link()
    mailbox = gevent.queue.Queue(maxsize=1)
    link.register(AGENT_1, mailbox)
    for headers in ({"Unique-ID": AGENT_1, "agent_code": "pause"}, {"Unique-ID": AGENT_1, "agent_code": "cut"},
                    {"Unique-ID": AGENT_2, "agent_code": "stop"}, {"Unique-ID": AGENT_1}):
        link.route(SimpleNamespace(headers=headers))
    assert mailbox.get_nowait() == (AGENT_1, "pause") and mailbox.empty() and link.dropped == 1
    link.unregister(AGENT_1)
    link.route(SimpleNamespace(headers={"Unique-ID": AGENT_1, "agent_code": "pause"}))
    assert mailbox.empty()


def test_the_link_hands_a_watched_call_every_bridge_it_is_part_of():
    """After an attended transfer the caller's leg is the B side of the colleague's bridge (uuid_bridge)."""
    link = Link()
    mailbox = gevent.queue.Queue(maxsize=4)
    link.watch_call(CALLER, mailbox)
    for a_uuid, b_uuid in ((CALLER, AGENT_1), (AGENT_2, CALLER), (AGENT_2, "someone-else")):
        link.route(SimpleNamespace(headers={"Event-Name": "CHANNEL_BRIDGE", "Unique-ID": a_uuid,
                                            "Bridge-A-Unique-ID": a_uuid, "Bridge-B-Unique-ID": b_uuid}))
    assert [mailbox.get_nowait() for _ in range(mailbox.qsize())] == [(BRIDGED, AGENT_1), (BRIDGED, AGENT_2)]
    link.unwatch_call(CALLER)
    link.route(SimpleNamespace(headers={"Event-Name": "CHANNEL_BRIDGE", "Bridge-A-Unique-ID": AGENT_1,
                                        "Bridge-B-Unique-ID": CALLER}))
    assert mailbox.empty()


@pytest.mark.parametrize("state, taken_over", [
    ("CS_EXECUTE", False), ("CS_HANGUP", False), ("CS_RESET", True), ("CS_ROUTING", True), ("CS_HIBERNATE", True),
    ("CS_EXCHANGE_MEDIA", True), (None, False)])
def test_a_bridge_taken_over_by_another_is_told_from_one_the_agent_ended(state, taken_over):
    headers = {"Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Application": "bridge"}
    if state:
        headers["Channel-State"] = state
    assert bridge_taken_over(headers) is taken_over
