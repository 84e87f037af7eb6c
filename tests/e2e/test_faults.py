"""Fail closed: every fault at every step of the consent flow leaves the call unrecorded and with its agent.

For each fault (faultkit.FAULTS) one batch runs a call per step together with an unfaulted control call, all on
the strict us-all-party process (notice, then opt-in menu: every step exists), the caller agreeing with 1.
Without the fault each call would be recorded (the control call shows it). After the fault:

- the call ended, and the caller was bridged to the agent the process names (by the controller, or by the
  dialplan's fallback after the socket app, as in freeswitch/conf/dialplan/public.xml);
- no audio of the call is anywhere on disk: media store, spool, the switch's recordings directory;
- nothing in the index claims the call was recorded, and unless the index itself failed it says why not.
"""

import contextlib

import pytest

import controller.callrecording
from tests.e2e import faultkit
from tests.e2e.choreography import MENU, CallPlan
from tests.e2e.conftest import System

US = "+14155550100"
RECORDED_STATES = {"opened", "recording", "paused", "stopped", "completed", "withdrawn"}
CASES = [(fault, step) for fault in faultkit.FAULTS for step in faultkit.STEPS
         if faultkit.applies(fault, step) and (fault, step) not in faultkit.WAITED_FOR]


def caller_plan(id_, number):
    return (CallPlan(id_, f"+1415555{number:04d}", US)
            .press("1", after=MENU, delay_s=2.0)
            .hangup(after="bridged", delay_s=6.0))


@contextlib.contextmanager
def shortened_timeouts(system):
    """The delay batch: controller timeouts of about a second, so a 3 s delay is past every one of them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(system.controller.server, "command_timeout_s", faultkit.SHORT_COMMAND_TIMEOUT_S)
        patch.setattr(controller.callrecording, "CONFIRM_TIMEOUT_S", faultkit.SHORT_COMMAND_TIMEOUT_S)
        patch.setattr(system.taps, "execute_timeout_scale", faultkit.EXECUTE_TIMEOUT_SCALE)
        yield


def run_batch(fault, tmp_path):
    system = System(tmp_path)
    plans = {"control": caller_plan("control", 0)}
    for number, step in enumerate(faultkit.STEPS, start=1):
        if faultkit.applies(fault, step):
            plans[step] = faultkit.arm(caller_plan(f"{fault}-{step}", number), fault, step, system.taps)
    with shortened_timeouts(system) if fault == "delay" else contextlib.nullcontext():
        system.run(*plans.values())
    return system, plans


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    done = {}

    def batch(fault):
        if fault not in done:
            done[fault] = run_batch(fault, tmp_path_factory.mktemp(fault))
        return done[fault]
    yield batch
    for system, _ in reversed(list(done.values())):
        system.close()


def claims_recorded(system, call_uuid):
    return [r["state"] for r in system.index.recordings(call_uuid=call_uuid) if r["state"] in RECORDED_STATES]


@pytest.mark.parametrize("fault", faultkit.FAULTS)
def test_the_control_call_of_each_batch_is_recorded(batches, fault):
    system, plans = batches(fault)
    control = plans["control"]
    assert system.index.call(control.uuid)["consent_outcome"] == "agreed"
    assert [r["state"] for r in system.index.recordings(call_uuid=control.uuid)] == ["completed"]
    assert system.audio_of(control.uuid)


@pytest.mark.parametrize("fault,step", CASES, ids=[f"{f}-{s}" for f, s in CASES])
def test_fault_leaves_the_call_unrecorded_and_with_its_agent(batches, fault, step):
    system, plans = batches(fault)
    plan = plans[step]
    fired = [name for name, _ in plan.moments]
    assert plan.count("action-failed") == 0, fired
    assert plan.count("bridged") >= 1, f"the caller never reached the agent: {fired}"
    assert system.audio_of(plan.uuid) == [], f"audio of an unrecorded call left on disk ({fired})"
    for path in plan.summary["recordings"]:
        assert not (system.tmp_path / path["path"]).exists()
    assert claims_recorded(system, plan.uuid) == [], "the index claims an unrecorded call was recorded"


@pytest.mark.parametrize("fault,step", [c for c in CASES if c[0] != "index"],
                         ids=[f"{f}-{s}" for f, s in CASES if f != "index"])
def test_the_index_says_why_the_faulted_call_was_not_recorded(batches, fault, step):
    system, plans = batches(fault)
    plan = plans[step]
    call = system.index.call(plan.uuid)
    states = [r["state"] for r in system.index.recordings(call_uuid=plan.uuid)]
    evidence = system.index.evidence(plan.uuid)
    # the caller never hung up here: the evidence must name the fault, not blame the caller
    assert call["consent_outcome"] == "error", (call["consent_outcome"], call["consent_reason"], evidence)
    assert states in ([], ["failed"])
    assert "not recorded" in call["consent_reason"] or "recording deleted" in call["consent_reason"]
    assert evidence and evidence[-1]["kind"] == "outcome" and evidence[-1]["reason"] == call["consent_reason"]


