"""What a recorded call holds, read back through the media store's export: caller left, agent right, every
second in order, nothing from before the caller's consent; and routing conflicts, where the strictest wins."""

import numpy as np
import pytest
import soundfile

from controller.customers import CustomerRecord
from tests.e2e.choreography import MENU, CallPlan
from tests.e2e.markers import SILENCE_RMS, consecutive, export_sides

TALK_S = 25.0
CONFLICT_CUSTOMER = "+447700900123"      # a UK mobile whose customer record says US-CA


@pytest.fixture(scope="module")
def batch(module_system):
    system = module_system
    system.index.import_customers([CustomerRecord(CONFLICT_CUSTOMER, "US-CA", False)])
    plans = {
        "de-8k": CallPlan("de-8k", "+4915120000001", "+4930100100", agent_answer_s=3.0).press("1", after=MENU),
        "us-16k": CallPlan("us-16k", "+14155550123", "+14155550100", rate_hz=16000).press("1", after=MENU),
        "conflict": CallPlan("conflict", CONFLICT_CUSTOMER, "+4930100100").press("1", after=MENU),
        "conflict-declines": CallPlan("conflict-declines", "+4915120000002", "+442070100100")
        .press("2", after=MENU),
    }
    for plan in plans.values():
        plan.hangup(after="bridged", delay_s=TALK_S)
    system.run(*plans.values())
    return system, plans


@pytest.mark.parametrize("call", ["de-8k", "us-16k"])
def test_caller_left_agent_right_in_order_from_the_consent_on(batch, call, tmp_path):
    system, plans = batch
    plan = plans[call]
    sides = export_sides(system.controller.store, plan.uuid, tmp_path)
    assert sides.rate_hz == plan.spec["rate_hz"]
    assert sides.caller_on_right == () and sides.agent_on_left == (), "legs swapped or mixed"
    assert consecutive(sides.caller_on_left) and consecutive(sides.agent_on_right)
    _, _, consent_second = plan.pressed[0]
    assert sides.caller_on_left[0] >= consent_second, "audio from before the caller agreed was kept"
    assert sides.caller_on_left[0] <= consent_second + 1
    assert sides.agent_on_right[0] == 0, "the agent's first second is missing"
    assert sides.agent_on_right[-1] >= TALK_S - 2
    duration_s = system.index.recordings(call_uuid=plan.uuid)[0]["duration_s"]
    assert duration_s == pytest.approx(sides.seconds, abs=0.05)
    assert sides.caller_on_left[-1] - sides.caller_on_left[0] == pytest.approx(duration_s, abs=2)


def test_nothing_played_before_the_consent_is_in_the_recording(batch, tmp_path):
    """The menu went to the caller (the right channel) before consent; the right channel is quiet until the
    agent answers, so none of the menu was kept."""
    system, plans = batch
    plan = plans["de-8k"]
    assert plan.first("record_start") > plan.pressed[0][1], "recording started before the agree key"
    path = tmp_path / "de.wav"
    system.controller.store.open(plan.uuid).export(path)
    data, rate_hz = soundfile.read(str(path), dtype="int16", always_2d=True)
    before_agent = int((plan.first("bridged") - plan.first("record_start") - 0.5) * rate_hz)
    assert before_agent > rate_hz // 2, "too short a span to look at"
    right = data[:before_agent, 1].astype(np.float64)
    assert np.sqrt(np.mean(right ** 2)) < SILENCE_RMS


def test_routing_conflict_strictest_wins_and_the_conflict_is_recorded(batch):
    system, plans = batch
    call = system.index.call(plans["conflict"].uuid)
    assert call["routing_conflict"] is True
    routing = call["routing"]
    assert {s["jurisdiction"] for s in routing["signals"] if s["process"]} == {"DE", "GB", "US-CA"}
    assert routing["process"] == "de" and "strictest wins" in routing["reason"]
    assert call["consent_outcome"] == "agreed"          # de asked, and the caller agreed
    assert [r["state"] for r in system.index.recordings(call_uuid=plans["conflict"].uuid)] == ["completed"]


def test_a_german_caller_on_a_uk_number_gets_the_german_opt_in(batch):
    """uk would record after a notice; de needs the agree key. The caller declined: nothing is kept."""
    system, plans = batch
    plan = plans["conflict-declines"]
    call = system.index.call(plan.uuid)
    assert call["routing_conflict"] is True and call["process"] == "de"
    assert call["consent_outcome"] == "declined"
    assert system.index.recordings(call_uuid=plan.uuid) == [] and system.audio_of(plan.uuid) == []
    assert plan.count("record_start") == 0
