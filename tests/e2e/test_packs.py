"""Every policy pack and outcome, end to end: the switch, the controller, the media store and the index.

All calls of the table run together through one system (a busy minute on a small contact centre); each test
then checks one call: the outcome and its reason in the index, the evidence rows, whether the switch was ever
asked to record, the audio on disk, and whether the caller reached the agent.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from controller.customers import CustomerRecord
from tests.e2e.choreography import MENU, NOTICE, CallPlan
from tests.e2e.conftest import EXAMPLE_CONFIG

DE, DE_OPTOUT, UK, US, NONE = "+4930100100", "+4930100200", "+442070100100", "+14155550100", "+4930100900"
DNR_CUSTOMER = "+4915200000001"
PROMPTS_DIR = EXAMPLE_CONFIG.parent / "prompts"
PROMPT_FILES = {("de", "consent"): "de_consent.wav", ("de-optout", "optout"): "de_optout.wav",
                ("uk", "notice"): "uk_notice.wav", ("us-all-party", "notice"): "us_notice.wav",
                ("us-all-party", "consent"): "us_consent.wav"}


@dataclass(frozen=True)
class Case:
    id: str
    dialed: str
    process: str
    outcome: str
    recorded: bool
    evidence: tuple                   # (kind, prompt id | digit | outcome), in order
    keys: str = ""                    # pressed 2 s after the menu starts
    hangup_after: str = ""            # moment the caller hangs up 1 s after (instead of talking to the agent)
    reason: str = ""                  # words the stored reason must contain
    bridged: bool = True
    rate_hz: int = 8000
    caller: str = field(default="", compare=False)


CASES = [
    Case("de-agree", DE, "de", "agreed", True, (("prompt", "consent"), ("digit", "1"), ("outcome", "agreed")),
         keys="1", reason="pressed 1 to agree"),
    Case("de-decline", DE, "de", "declined", False, (("prompt", "consent"), ("digit", "2"), ("outcome", "declined")),
         keys="2", reason="pressed 2 to decline"),
    Case("de-other-key", DE, "de", "other-key", False, (("prompt", "consent"), ("digit", "5"), ("outcome", "other-key")),
         keys="5", reason="not the agree key"),
    Case("de-hash-key", DE, "de", "other-key", False, (("prompt", "consent"), ("digit", "#"), ("outcome", "other-key")),
         keys="#", reason="not the agree key"),
    Case("de-no-input", DE, "de", "no-input", False, (("prompt", "consent"), ("outcome", "no-input")),
         reason="silence is not consent"),
    Case("de-hangup-in-menu", DE, "de", "hangup", False, (("prompt-cut-short", "consent"), ("outcome", "hangup")),
         hangup_after=MENU, reason="hung up", bridged=False),
    Case("de-optout-no-key", DE_OPTOUT, "de-optout", "not-opted-out", True,
         (("prompt", "optout"), ("outcome", "not-opted-out")), reason="no key within 5 s"),
    Case("de-optout-key", DE_OPTOUT, "de-optout", "opted-out", False,
         (("prompt", "optout"), ("digit", "1"), ("outcome", "opted-out")), keys="1", reason="pressed 1 to opt out"),
    Case("de-optout-other-key", DE_OPTOUT, "de-optout", "opted-out", False,
         (("prompt", "optout"), ("digit", "7"), ("outcome", "opted-out")), keys="7", reason="taken as an objection"),
    Case("uk-notice", UK, "uk", "notice-played", True, (("prompt", "notice"), ("outcome", "notice-played")),
         reason="played in full"),
    Case("uk-hangup-in-notice", UK, "uk", "hangup", False, (("prompt-cut-short", "notice"), ("outcome", "hangup")),
         hangup_after=NOTICE, reason="hung up", bridged=False),
    Case("us-strict-agree", US, "us-all-party", "agreed", True,
         (("prompt", "notice"), ("prompt", "consent"), ("digit", "1"), ("outcome", "agreed")), keys="1",
         reason="pressed 1 to agree", rate_hz=16000),
    Case("us-strict-decline", US, "us-all-party", "declined", False,
         (("prompt", "notice"), ("prompt", "consent"), ("digit", "2"), ("outcome", "declined")), keys="2",
         reason="pressed 2 to decline"),
    Case("none", NONE, "none", "never-record", False, (("outcome", "never-record"),), reason="never records"),
    Case("do-not-record-customer", DE, "none", "never-record", False, (("outcome", "never-record"),), keys="1",
         reason="never records", caller=DNR_CUSTOMER),
]


CALLER_PREFIX = {UK: "+447700", US: "+1415"}       # callers from the DID's own country: no routing conflict


def plan_for(number, case):
    caller = case.caller or f"{CALLER_PREFIX.get(case.dialed, '+49151')}{number:07d}"
    plan = CallPlan(case.id, caller, case.dialed, rate_hz=case.rate_hz)
    if case.keys:
        plan.press(case.keys, after=MENU, delay_s=2.0)
    if case.hangup_after:
        plan.hangup(after=case.hangup_after, delay_s=1.0)
    else:
        plan.hangup(after="bridged", delay_s=8.0)
    return plan


@pytest.fixture(scope="module")
def batch(module_system):
    module_system.index.import_customers([CustomerRecord(DNR_CUSTOMER, "DE", True)])
    plans = [plan_for(i, case) for i, case in enumerate(CASES)]
    module_system.run(*plans)
    return module_system, {plan.id: plan for plan in plans}


def kinds(evidence):
    return tuple((row["kind"], row.get("prompt_id") or row.get("digit") or row.get("outcome")) for row in evidence)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_outcome_reason_and_recording(batch, case):
    system, plans = batch
    plan = plans[case.id]
    call = system.index.call(plan.uuid)
    assert (call["process"], call["consent_outcome"]) == (case.process, case.outcome), call["consent_reason"]
    assert case.reason in call["consent_reason"]
    recordings = system.index.recordings(call_uuid=plan.uuid)
    switch_recorded = plan.count("record_start") > 0
    if case.recorded:
        assert [r["state"] for r in recordings] == ["completed"]
        assert recordings[0]["duration_s"] > 5
        assert switch_recorded and system.audio_of(plan.uuid)
    else:
        assert recordings == []
        assert not switch_recorded, "the switch was asked to record an unconsented call"
        assert system.audio_of(plan.uuid) == []
    assert call["ended_at"] and call["hangup_cause"]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_caller_reaches_the_agent_the_process_names(batch, case):
    _, plans = batch
    plan = plans[case.id]
    assert (plan.count("bridged") == 1) == case.bridged
    assert plan.count("app:bridge") == (1 if case.bridged else 0), "the fallback path must not be needed"
    if case.bridged:
        bridge_arg = next(a["arg"] for a in plan.summary["applications"] if a["name"] == "bridge")
        assert bridge_arg == "user/1001"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_evidence_answers_why_the_call_was_recorded_or_not(batch, case):
    """Prompts with the SHA-256 of the file played, digits with their times, the outcome with its process and
    config version, in order: enough to answer "why?" from the index alone."""
    system, plans = batch
    plan = plans[case.id]
    call = system.index.call(plan.uuid)
    evidence = system.index.evidence(plan.uuid)
    assert kinds(evidence) == case.evidence
    assert [row["seq"] for row in evidence] == list(range(1, len(evidence) + 1))
    for row in evidence:
        if row["kind"] == "prompt":
            path = PROMPTS_DIR / PROMPT_FILES[(case.process, row["prompt_id"])]
            assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    outcome = evidence[-1]
    assert (outcome["process"], outcome["config_version"]) == (case.process, "example-1")
    assert outcome["reason"] == call["consent_reason"]
    times = [datetime.fromisoformat(row["at"].replace("Z", "+00:00")) for row in evidence]
    assert times == sorted(times), "evidence times go backwards"
    started = datetime.fromisoformat(call["started_at"].replace("Z", "+00:00"))
    assert started <= times[0]
    assert call["routing"]["process"] == case.process and call["config_version"] == "example-1"


def test_a_do_not_record_customer_is_routed_by_the_customer_record(batch):
    system, plans = batch
    call = system.index.call(plans["do-not-record-customer"].uuid)
    assert call["routing"]["rule"] == "customer.do_not_record"
    assert "do-not-record" in call["routing"]["reason"]
    assert plans["do-not-record-customer"].count(MENU) == 0, "a do-not-record customer is not asked"
