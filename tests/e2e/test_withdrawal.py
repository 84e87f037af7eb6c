"""Mid-call withdrawal (*9): the recording stops at once, is purged (de) or kept up to the withdrawal (uk), and is
never resumed. The kept audio is checked second by second through marker audio and the media store's export."""

import pytest

from tests.e2e.choreography import MENU, CallPlan
from tests.e2e.markers import consecutive, export_sides

TALK_BEFORE_WITHDRAWAL_S = 30.0   # past the 20 s hold-back of `de`: chunks are on disk when the caller withdraws
TALK_AFTER_WITHDRAWAL_S = 12.0
STOP_WITHIN_S = 3.0               # virtual seconds from *9 (both keys go in together) to the switch's RECORD_STOP


@pytest.fixture(scope="module")
def batch(module_system):
    system = module_system
    on_disk_at_withdrawal = {}

    def snapshot(ctx):
        on_disk_at_withdrawal[ctx.plan.id] = system.audio_of(ctx.plan.uuid)

    purge = CallPlan("de-purge", "+4915110000001", "+4930100100").press("1", after=MENU)
    keep = CallPlan("uk-keep", "+447700900001", "+442070100100")
    for plan in (purge, keep):
        plan.press("*9", after="bridged", delay_s=TALK_BEFORE_WITHDRAWAL_S)
        plan.on("bridged", snapshot, delay_s=TALK_BEFORE_WITHDRAWAL_S - 0.5)
        plan.hangup(after="bridged", delay_s=TALK_BEFORE_WITHDRAWAL_S + TALK_AFTER_WITHDRAWAL_S)
    system.run(purge, keep)
    return system, {"de-purge": purge, "uk-keep": keep}, on_disk_at_withdrawal


def withdrawal_press(plan):
    digits, at_s, caller_second = plan.pressed[-1]
    assert digits == "*9"
    return at_s, caller_second


@pytest.mark.parametrize("call", ["de-purge", "uk-keep"])
def test_withdrawal_stops_the_switch_at_once_and_for_good(batch, call):
    _, plans, _ = batch
    plan = plans[call]
    pressed_at, _ = withdrawal_press(plan)
    assert plan.count("record_start") == 1 and plan.count("record_stop") == 1, "resumed after withdrawal"
    assert pressed_at <= plan.first("record_stop") <= pressed_at + STOP_WITHIN_S
    assert plan.count("api:uuid_record start") == 1
    assert plan.first("hangup") - pressed_at > TALK_AFTER_WITHDRAWAL_S - 1, "the call itself goes on"


def test_purge_leaves_nothing_on_disk_and_the_index_says_purged(batch):
    system, plans, on_disk = batch
    plan = plans["de-purge"]
    assert any(p.suffix == ".pcm" for p in on_disk["de-purge"]), "no chunks on disk before withdrawal: test is void"
    assert system.audio_of(plan.uuid) == []            # chunks, manifest (audio refs) and spool all gone
    tombstone = system.controller.store.tombstone(plan.uuid)
    assert tombstone is not None and tombstone["actor"] == "caller"
    call = system.index.call(plan.uuid)
    assert call["consent_outcome"] == "withdrawn" and "purged" in call["consent_reason"]
    assert [r["state"] for r in system.index.recordings(call_uuid=plan.uuid)] == ["purged"]
    outcomes = [row["outcome"] for row in system.index.evidence(plan.uuid) if row["kind"] == "outcome"]
    assert outcomes == ["agreed", "withdrawn"]


def test_keep_holds_the_audio_up_to_the_withdrawal_and_nothing_after(batch, tmp_path):
    system, plans, _ = batch
    plan = plans["uk-keep"]
    _, withdrawn_second = withdrawal_press(plan)
    sides = export_sides(system.controller.store, plan.uuid, tmp_path)
    assert consecutive(sides.caller_on_left) and consecutive(sides.agent_on_right)
    assert withdrawn_second - 1 <= sides.caller_on_left[-1] <= withdrawn_second + 1
    assert sides.caller_on_left[-1] < withdrawn_second + TALK_AFTER_WITHDRAWAL_S - 2
    recording = system.index.recordings(call_uuid=plan.uuid)[0]
    assert recording["state"] == "withdrawn"
    assert recording["duration_s"] == pytest.approx(sides.seconds, abs=0.05)
    assert system.index.call(plan.uuid)["consent_outcome"] == "withdrawn"
    assert not (system.dirs["spool"] / f"{plan.uuid}.raw").exists()


def test_a_withdrawal_under_legal_hold_stops_the_recording_but_keeps_it(system):
    """Purge on withdrawal gives way to a legal hold on the caller's number: stopped at once, kept, and said why."""
    plan = CallPlan("de-held", "+4915110000009", "+4930100100").press("1", after=MENU)
    plan.press("*9", after="bridged", delay_s=8.0)
    plan.hangup(after="bridged", delay_s=14.0)
    with system.index.transaction("hold") as db:
        db.execute("INSERT INTO legal_holds (phone, reason, applied_by, applied_at) VALUES (?, ?, ?, ?)",
                   [plan.caller, "litigation", "user:compliance-officer", "2026-01-01T00:00:00.000Z"])
    system.run(plan)
    call = system.index.call(plan.uuid)
    assert call["consent_outcome"] == "withdrawn" and "legal hold" in call["consent_reason"]
    assert [r["state"] for r in system.index.recordings(call_uuid=plan.uuid)] == ["withdrawn"]
    assert system.audio_of(plan.uuid)
