"""Agent feature codes end to end: the agent presses codes on its own leg; the switch matches them, the controller
authorises, acts, reads back, audits and confirms with a tone only the agent hears."""

import dataclasses
import json
import logging
from types import MappingProxyType

import pytest

from controller import audit, tags
from controller.config import load_config
from tests.e2e.choreography import MENU, CallPlan, Hangup
from tests.e2e.conftest import EXAMPLE_CONFIG, System
from tests.e2e.markers import consecutive, export_sides

SUCCESS_TONE = "tone_stream://%(120,60,1400)"
REFUSAL_TONE = "tone_stream://%(250,100,480,620);loops=2"
BOUND = "agent:digit_action_set_realm"   # the moment the codes are bound on the agent leg
_counter = iter(range(10**6))


class AgentPress:
    """The agent's phone sends digits (RFC 2833) on the agent leg; notes which agent marker second was playing."""

    def __init__(self, digits):
        self.digits = digits

    def __call__(self, ctx):
        session = ctx.agent_session
        if session is None or not session.channel.up:
            return
        second = ctx.switch.clock.now() - session.channel.media_started_at
        ctx.plan.agent_pressed.append((self.digits, second))
        ctx.plan.caller_second_at_agent_press.append(ctx.caller_second())
        session.receive_dtmf(self.digits, source="RTP", duration=1600)


def agent_codes_system(tmp_path, agent="1001", codes=None, extra_agents=None):
    """The example system with process `de` dialling `agent`, with these agent_codes and extra extensions."""
    config = load_config(EXAMPLE_CONFIG)
    de = dataclasses.replace(config.processes["de"], agent=f"user/{agent}",
                             agent_codes=MappingProxyType(dict(codes or {})))
    agents = dict(config.agents, **(extra_agents or {}))
    config = dataclasses.replace(config, processes=MappingProxyType(dict(config.processes, de=de)),
                                 agents=MappingProxyType(agents))
    system = System(tmp_path, config=config)
    system.switch.observers.append(lambda kind, session, **info: _agent_moment(system, kind, session, info))
    return system


def _agent_moment(system, kind, session, info):
    """agent:<app> moments for applications the agent leg runs (the stage reports caller legs only)."""
    if kind == "execute" and session.uuid in system.stage._caller_of:
        plan = system.stage.plan_for_uuid(session.uuid)
        if plan is not None:
            system.stage.emit(plan, f"agent:{info['app']}")


def agent_call(agent="1001", presses=(), hangup_after_s=None):
    """A German call that agrees, is bridged to `agent`, who presses `presses` [(seconds after bound, digits)]."""
    n = next(_counter)
    plan = CallPlan(f"codes-{n}", f"+49151{n:08d}", "+4930100100", agent=agent)
    plan.agent_pressed = []
    plan.caller_second_at_agent_press = []
    plan.press("1", after=MENU, delay_s=2.0)
    for at_s, digits in presses:
        plan.on(BOUND, AgentPress(digits), delay_s=at_s)
    last = max((at_s for at_s, _ in presses), default=0.0)
    plan.hangup(after=BOUND, delay_s=hangup_after_s or last + 6.0)
    return plan


def heard(plan, leg, what=None):
    return [h for h in plan.summary["heard"] if h["leg"] == leg and (what is None or h.get("path") == what)]


def outcomes(system, plan):
    return [(r["action"], r["outcome"], r["actor"]) for r in audit.entries(system.index, call_uuid=plan.uuid)]


@pytest.fixture
def system_factory(tmp_path):
    made = []

    def make(**kwargs):
        made.append(agent_codes_system(tmp_path / f"s{len(made)}", **kwargs))
        return made[-1]
    yield make
    for system in made:
        system.close()


def test_supervisor_tags_flags_pauses_resumes_cuts_and_stops(system_factory, caplog):
    system = system_factory(agent="1002", codes={"cut_seconds": 3})
    presses = [(2, "*13"), (4, "*2"), (6, "*3"), (9, "*4"), (14, "*5"), (17, "*6")]
    with caplog.at_level(logging.DEBUG, logger="controller"):
        (plan,) = system.run(agent_call("1002", presses))
    assert not [r for r in caplog.records for _, digits in presses if digits in r.getMessage()]
    recording = system.index.recordings(call_uuid=plan.uuid)[0]
    assert tags.tags_of(system.index, recording["id"]) == ["complaint"]
    assert tags.flag_of(system.index, recording["id"])["flagged"] is True
    entries = audit.entries(system.index, call_uuid=plan.uuid)
    assert [(r["action"], r["outcome"], r["actor"]) for r in entries] == [
        ("tag", "done", "1002"), ("flag", "done", "1002"), ("pause", "done", "1002"), ("resume", "done", "1002"),
        ("cut", "done", "1002"), ("stop", "done", "1002")]
    assert recording["state"] == "stopped"
    assert len(heard(plan, "agent", SUCCESS_TONE)) == 6 and not heard(plan, "agent", REFUSAL_TONE)
    assert not heard(plan, "caller", SUCCESS_TONE) and not [h for h in heard(plan, "caller") if h["what"] == "dtmf"]
    assert audit.verify(system.index).ok
    events = system.index.query("SELECT type, body FROM outbox_events WHERE call_uuid = ? ORDER BY id", [plan.uuid])
    assert [e["type"] for e in events][-6:] == ["recording.tagged", "recording.flagged", "recording.paused",
                                                "recording.resumed", "recording.cut", "recording.completed"]
    cut = json.loads(events[-2]["body"])["data"]
    assert cut["end_sample"] - cut["start_sample"] == 3 * 8000 and cut["by"] == "agent:1002"


def test_the_right_audio_survives_pause_resume_and_cut(tmp_path):
    """Agent marker seconds in the recording: a gap where paused, the cut seconds gone, everything else kept."""
    system = agent_codes_system(tmp_path, codes={"cut_seconds": 5})
    system.emulator.switch.clock.set_speed(10.0)  # the spool follows the call in 0.5 s steps, not 1 s
    try:
        (plan,) = system.run(agent_call("1001", [(4, "*3"), (10, "*4"), (24, "*5")], hangup_after_s=30))
        recording_id = system.index.recordings(call_uuid=plan.uuid)[0]["id"]
        sides = export_sides(system.controller.store, recording_id, tmp_path)
    finally:
        system.close()
    (_, paused), (_, resumed), (_, cut) = plan.agent_pressed
    kept = set(sides.agent_on_right)
    before = {s for s in range(1, int(paused) - 1)}
    gap = set(range(int(paused) + 2, int(resumed) - 1))
    between = set(range(int(resumed) + 2, int(cut) - 5 - 1))
    removed = set(range(int(cut) - 5 + 2, int(cut) - 1))
    after = set(range(int(cut) + 2, int(cut) + 5))
    assert before <= kept and between <= kept and after <= kept, (sorted(kept), paused, resumed, cut)
    assert not gap & kept and not removed & kept, (sorted(kept), paused, resumed, cut)
    assert consecutive([s for s in sides.agent_on_right if s > cut + 1])


ALL_CODES = [(2, "*13"), (4, "*2"), (6, "*3"), (8, "*4"), (10, "*5"), (12, "*6"), (14, "*7"), (16, "*8")]


def test_codes_an_agent_may_not_use_change_nothing_and_are_audited(system_factory):
    """1001 (role agent) may not stop or delete; 1009 is no configured extension: every code is refused."""
    system = system_factory(extra_agents={})
    agent = agent_call("1001", [(2, "*6"), (4, "*7")])
    (agent,) = system.run(agent)
    stranger_system = system_factory(agent="1009")
    (stranger,) = stranger_system.run(agent_call("1009", ALL_CODES))
    for sys_, plan, refused in ((system, agent, 2), (stranger_system, stranger, 8)):
        recording = sys_.index.recordings(call_uuid=plan.uuid)[0]
        assert recording["state"] == "completed" and recording["duration_s"] > 10
        assert all(outcome == "refused" for _, outcome, _ in outcomes(sys_, plan))
        assert len(outcomes(sys_, plan)) == refused
        assert len(heard(plan, "agent", REFUSAL_TONE)) == refused and not heard(plan, "agent", SUCCESS_TONE)
        assert not heard(plan, "caller", REFUSAL_TONE) and not [h for h in heard(plan, "caller") if h["what"] == "dtmf"]
        assert tags.tags_of(sys_.index, recording["id"]) == [] and tags.flag_of(sys_.index, recording["id"]) is None
    assert [a for a, _, _ in outcomes(stranger_system, stranger)] == [
        "tag", "flag", "pause", "resume", "cut", "stop", "delete", "withdraw"]
    assert "agent:1001 (role agent) may not stop" in [r["reason"] for r in audit.entries(system.index)]
    assert system.index.call(agent.uuid)["consent_outcome"] == "agreed"


def test_delete_destroys_the_audio_now_and_later_codes_are_refused(system_factory):
    """1003 has the compliance role: it may delete, but not tag."""
    system = system_factory(agent="1003", extra_agents={"1003": "compliance"})
    (plan,) = system.run(agent_call("1003", [(3, "*7"), (6, "*2"), (8, "*3")]))
    recording = system.index.recordings(call_uuid=plan.uuid)[0]
    assert recording["state"] == "purged"
    assert system.audio_of(plan.uuid) == [], system.audio_of(plan.uuid)
    assert system.controller.store.tombstone(recording["id"])["actor"] == "agent:1003"
    assert outcomes(system, plan) == [("delete", "done", "1003"), ("flag", "refused", "1003"),
                                      ("pause", "refused", "1003")]
    delete = audit.entries(system.index, call_uuid=plan.uuid)[0]
    assert delete["start_sample"] == 0 and delete["end_sample"] > 8000


def test_agent_relays_the_callers_withdrawal(system_factory):
    system = system_factory()
    (plan,) = system.run(agent_call("1001", [(3, "*8"), (5, "*3")]))
    assert system.index.call(plan.uuid)["consent_outcome"] == "withdrawn"
    assert system.index.recordings(call_uuid=plan.uuid)[0]["state"] == "purged"   # pack de purges
    assert system.audio_of(plan.uuid) == []
    assert outcomes(system, plan) == [("withdraw", "done", "1001"), ("pause", "refused", "1001")]
    assert len(heard(plan, "agent", SUCCESS_TONE)) == 1 and len(heard(plan, "agent", REFUSAL_TONE)) == 1


def test_notices_tell_both_parties_of_a_pause_and_a_resume(system_factory):
    """The notices go to both legs as displace media bugs (the caller's leg is event-locked in the bridge, so a
    broadcast would wait for the bridge to end). The emulator has no uuid_displace: a stand-in notes the requests."""
    notices = {"pause": "tone_stream://%(400,0,600)", "resume": "tone_stream://%(400,0,900)"}
    system = system_factory(codes={"notices": notices})
    displaced = []

    def uuid_displace(arg):
        displaced.append((arg.split()[0], arg.split()[2], system.switch.clock.now()))
        return "+OK\n"
    system.switch.apis.commands["uuid_displace"] = uuid_displace
    (plan,) = system.run(agent_call("1001", [(3, "*3"), (6, "*4")]))
    agent_uuid = plan.summary["agent_uuid"]
    assert [(uuid, notice) for uuid, notice, _ in displaced] == [
        (plan.uuid, notices["pause"]), (agent_uuid, notices["pause"]),
        (plan.uuid, notices["resume"]), (agent_uuid, notices["resume"])]
    assert outcomes(system, plan) == [("pause", "done", "1001"), ("resume", "done", "1001")]
    assert not heard(plan, "caller", SUCCESS_TONE) and len(heard(plan, "agent", SUCCESS_TONE)) == 2


def test_tampering_with_an_agent_codes_audit_row_is_detected(system_factory):
    system = system_factory(agent="1002")
    (plan,) = system.run(agent_call("1002", [(2, "*13"), (4, "*3"), (6, "*4")]))
    assert audit.verify(system.index).ok
    pause = next(r for r in audit.entries(system.index, call_uuid=plan.uuid) if r["action"] == "pause")
    db = system.index.db
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET actor = '1001' WHERE id = ?", [pause["id"]])
    db.conn.commit()
    result = audit.verify(system.index)
    assert not result.ok and result.first_broken_id == pause["id"]


def test_a_legal_hold_refuses_an_agents_cut_and_delete(system_factory):
    """A hold on the caller's number (later calls included) forbids destroying audio, by DTMF as by the CLI."""
    system = system_factory(agent="1003", extra_agents={"1003": "compliance"})
    plan = agent_call("1003", [(3, "*7")])
    with system.index.transaction("hold") as db:
        db.execute("INSERT INTO legal_holds (phone, reason, applied_by, applied_at) VALUES (?, ?, ?, ?)",
                   [plan.caller, "litigation", "user:compliance-officer", "2026-01-01T00:00:00.000Z"])
    system.run(plan)
    assert outcomes(system, plan) == [("delete", "refused", "1003")]
    assert audit.entries(system.index, call_uuid=plan.uuid)[0]["reason"] == "the recording is under legal hold"
    assert [r["state"] for r in system.index.recordings(call_uuid=plan.uuid)] == ["completed"]
    assert system.audio_of(plan.uuid)


def test_codes_keep_their_state_across_a_hold(system_factory):
    """The agent pauses, puts the caller on hold (the phone's hold key), flags during the hold, takes the call
    back and resumes: every code works and the pause spans the hold."""
    system = system_factory()
    plan = agent_call("1001", [(2, "*3"), (6, "*2"), (12, "*4")])
    plan.spec["agent"]["hold"] = [{"at_s": 4.0, "for_s": 5.0}]
    system.run(plan)
    assert outcomes(system, plan) == [("pause", "done", "1001"), ("flag", "done", "1001"),
                                      ("resume", "done", "1001")]
    entries = audit.entries(system.index, call_uuid=plan.uuid)
    pause, resume = entries[0], entries[2]
    assert resume["start_sample"] >= pause["start_sample"]
    holds = [(h["leg"], h["what"]) for h in plan.summary["heard"] if h["what"] in ("hold", "unhold")]
    assert holds == [("agent", "hold"), ("agent", "unhold")]
    assert [r["state"] for r in system.index.recordings(call_uuid=plan.uuid)] == ["completed"]


@pytest.mark.parametrize("link_sees_bridges", [True, False], ids=["link", "call-socket-only"])
def test_codes_keep_their_state_across_an_attended_transfer(tmp_path, link_sees_bridges):
    """1001 pauses and tags, then transfers the caller to 1003 (hold, consult call, REFER with Replaces). The
    pause holds across the transfer; the codes move to 1003's leg, whose call it now is: 1003 flags, resumes and
    pauses again (pause_own), and the recording has the caller and then 1003 again only after 1003's resume.
    1003's keys during the consult call, before the transfer, do nothing. The codes move even when the agent-code
    link misses the colleague's CHANNEL_BRIDGE: the call's own socket names the new partner too."""
    system = agent_codes_system(tmp_path, extra_agents={"1003": "agent"})
    system.emulator.switch.clock.set_speed(10.0)
    if not link_sees_bridges:
        link, route = system.controller.agent_link, system.controller.agent_link.route
        link.route = lambda frame: None if frame.headers.get("Event-Name") == "CHANNEL_BRIDGE" else route(frame)
    try:
        plan = agent_call("1001", [(2, "*3"), (4, "*13")])
        plan.reactions = [r for r in plan.reactions if not isinstance(r[3], Hangup)]  # 1003 hangs up, below
        plan.spec["agent"]["transfer"] = {"at_s": 7.0, "consult_s": 2.0, "to": {
            "extension": "1003", "answer_after_s": 1.0, "audio": "marker", "dtmf": [{"at_s": 0.5, "digits": "*6"}]}}
        for at_s, digits in ((1, "*2"), (3, "*4"), (9, "*3")):
            plan.on(BOUND, AgentPress(digits), delay_s=at_s, occurrence=2)
        plan.on(BOUND, Hangup("agent"), delay_s=12, occurrence=2)
        system.run(plan)
        recording = system.index.recordings(call_uuid=plan.uuid)[0]
        sides = export_sides(system.controller.store, recording["id"], tmp_path)
        assert outcomes(system, plan) == [("pause", "done", "1001"), ("tag", "done", "1001"),
                                          ("flag", "done", "1003"), ("resume", "done", "1003"),
                                          ("pause", "done", "1003")]
        assert tags.tags_of(system.index, recording["id"]) == ["complaint"]
        assert tags.flag_of(system.index, recording["id"])["flagged"] is True
    finally:
        system.close()
    assert [h["to"] for h in plan.summary["heard"] if h["what"] == "transfer"] == ["1003"]
    assert plan.count(BOUND) == 2 and recording["state"] == "completed"
    assert plan.summary["hangup_cause"] == "NORMAL_CLEARING"  # the caller went when 1003 hung up

    c_pause, _, _, c_resume, c_pause_again = plan.caller_second_at_agent_press
    caller = set(sides.caller_on_left)
    assert set(range(c_pause - 3, c_pause)) <= caller, (sorted(caller), c_pause)
    assert not caller & set(range(c_pause + 2, c_resume - 1)), "recorded while paused, across the transfer"
    assert set(range(c_resume + 2, c_pause_again - 1)) <= caller, (sorted(caller), c_resume, c_pause_again)
    (_, b1_pause), _, _, (_, b2_resume), (_, b2_pause) = plan.agent_pressed
    agent = set(sides.agent_on_right)
    assert set(range(int(b2_resume) + 2, int(b2_pause) - 1)) <= agent, (sorted(agent), b2_resume)
    assert max(s for s in agent if s < int(b2_resume)) <= int(b1_pause) + 1, "1001 recorded only before the pause"


def test_codes_follow_a_blind_transfer_and_the_call_is_not_handed_over_twice(tmp_path):
    """1001 pauses and blind-transfers the caller to 1002 (REFER without Replaces). public.xml's
    force_transfer_context sends the caller to the agents' extensions, so the controller keeps its one flow: the
    recording stays paused until 1002 resumes, and the caller goes when 1002 hangs up."""
    system = agent_codes_system(tmp_path)
    try:
        plan = agent_call("1001", [(2, "*3")])
        plan.reactions = [r for r in plan.reactions if not isinstance(r[3], Hangup)]
        plan.spec["agent"]["transfer"] = {"at_s": 5.0, "blind": True, "to": {
            "extension": "1002", "answer_after_s": 1.0, "audio": "marker"}}
        plan.on(BOUND, AgentPress("*4"), delay_s=2, occurrence=2)
        plan.on(BOUND, Hangup("agent"), delay_s=5, occurrence=2)
        system.run(plan)
        assert outcomes(system, plan) == [("pause", "done", "1001"), ("resume", "done", "1002")]
        evidence = system.index.evidence(plan.uuid)
        assert [e["kind"] for e in evidence].count("outcome") == 1, "one consent flow for the call"
        (recording,) = system.index.recordings(call_uuid=plan.uuid)
        assert recording["state"] == "completed"
    finally:
        system.close()
    assert [(h["to"], h["how"]) for h in plan.summary["heard"] if h["what"] == "transfer"] == [("1002", "blind")]
    assert plan.count("app:socket") == 1 and plan.count(BOUND) == 2
    assert plan.summary["hangup_cause"] == "NORMAL_CLEARING"
