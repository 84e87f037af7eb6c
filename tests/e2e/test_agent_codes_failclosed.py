"""A lost or refused FreeSWITCH reply to an agent's stop: the controller cannot confirm it and fails closed."""

from controller import audit
from freeswitch.emulator.faults import delay_connections
from tests.e2e.markers import export_sides
from tests.e2e.test_agent_codes import (BOUND, REFUSAL_TONE, AgentPress, agent_call, heard, outcomes,
                                        system_factory)  # noqa: F401  (the fixture)

LOST_REPLY_S = 1.5       # the switch's answers on the call's socket come this late (real seconds); the
                         # controller confirms within 0.5 s


class LoseRepliesThenPress:
    """From now on, the call's socket hears nothing for a while; then the agent presses `digits`."""

    def __init__(self, digits):
        self.press = AgentPress(digits)

    def __call__(self, ctx):
        assert delay_connections(ctx.switch, LOST_REPLY_S, inbound=False, uuid=ctx.plan.uuid) == 1
        self.press(ctx)


def refuse_record_stop(switch):
    """The switch answers every `uuid_record ... stop` with an error and keeps recording."""
    original = switch.apis.commands["uuid_record"]

    def uuid_record(arg):
        words = arg.split()
        return "-ERR Cannot stop record session!\n" if words[1:2] == ["stop"] else original(arg)
    switch.apis.commands["uuid_record"] = uuid_record


def test_a_lost_reply_to_stop_masks_and_hangs_up(system_factory, tmp_path):
    system = system_factory(agent="1002", codes={"read_back_s": 0.5, "fail_closed": "hangup"})
    plan = agent_call("1002", hangup_after_s=30)
    plan.on(BOUND, LoseRepliesThenPress("*6"), delay_s=4)
    system.run(plan)
    (pressed_at_s,) = [second for _, second in plan.agent_pressed]
    rows = audit.entries(system.index, call_uuid=plan.uuid)
    assert [(r["action"], r["outcome"], r["actor_kind"]) for r in rows] == [
        ("stop", "failed", "agent"), ("fail_closed", "done", "system")]
    assert rows[0]["details"] == {"alert": True, "fail_closed": "hangup"} and "not confirmed" in rows[0]["reason"]
    assert rows[1]["details"] == {"alert": True, "mode": "hangup", "action": "stop"}
    recording = system.index.recordings(call_uuid=plan.uuid)[0]
    # hung up within seconds of the press (the scripted hangup is 26 s later); no tone: the agent leg is gone
    assert recording["state"] == "completed" and recording["duration_s"] < pressed_at_s + 8
    sides = export_sides(system.controller.store, recording["id"], tmp_path)
    assert sides.agent_on_right and max(sides.agent_on_right) <= pressed_at_s + 1   # masked from the failure on
    assert not heard(plan, "caller", REFUSAL_TONE)


def test_a_refused_stop_fails_closed_by_stopping_the_recording(system_factory):
    system = system_factory(agent="1002", codes={"read_back_s": 1.0})   # fail_closed defaults to stop
    refuse_record_stop(system.switch)
    (plan,) = system.run(agent_call("1002", [(4, "*6"), (6, "*3")], hangup_after_s=20))
    (_, stop_at_s), _ = plan.agent_pressed
    rows = audit.entries(system.index, call_uuid=plan.uuid)
    assert [(r["action"], r["outcome"]) for r in rows] == [("stop", "failed"), ("fail_closed", "done"),
                                                          ("pause", "refused")]
    assert "uuid_record stop answered '-ERR Cannot stop record session!'" in rows[0]["reason"]
    recording = system.index.recordings(call_uuid=plan.uuid)[0]
    assert recording["state"] == "stopped" and recording["duration_s"] < stop_at_s + 2
    assert rows[1]["end_sample"] == int(recording["duration_s"] * 8000)
    assert outcomes(system, plan)[2][1] == "refused" and len(heard(plan, "agent", REFUSAL_TONE)) == 2


class LoseRepliesAtBridge:
    """The call's socket hears nothing for LOST_BIND_S from the bridge on: the codes cannot be bound in time."""

    def __call__(self, ctx):
        assert delay_connections(ctx.switch, LOST_BIND_S, inbound=False, uuid=ctx.plan.uuid) == 1


LOST_BIND_S = 5.0        # longer than the 2 s the controller gives the agent leg's lookup and each binding


def test_codes_that_cannot_be_bound_fail_closed(system_factory, tmp_path):
    """Unbound codes would reach the caller and the recording as tones: the call fails closed (here: masked and
    stopped), with the alert in the audit log."""
    system = system_factory(agent="1002", codes={"read_back_s": 1.0})   # fail_closed defaults to stop
    plan = agent_call("1002", hangup_after_s=20)
    plan.reactions = [r for r in plan.reactions if r[0] != BOUND]
    plan.on("bridged", LoseRepliesAtBridge())
    plan.hangup(after="bridged", delay_s=25)
    system.run(plan)
    rows = audit.entries(system.index, call_uuid=plan.uuid)
    assert [(r["action"], r["outcome"], r["actor_kind"]) for r in rows][:2] == [
        ("bind_codes", "failed", "agent"), ("fail_closed", "done", "system")], rows
    assert "agent codes not bound" in rows[0]["reason"] and rows[0]["details"]["alert"] is True
    recording = system.index.recordings(call_uuid=plan.uuid)[0]
    assert recording["state"] == "stopped", recording
    assert plan.count(BOUND) == 0, "binding stops at the first command FreeSWITCH does not confirm"
