"""Routing: rule matching, customer records, conflicts between jurisdictions, strictness."""

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import controller
from controller.config import load_config
from controller.customers import CustomerRecord
from controller.routing import normalise_number, route, strictness

EXAMPLE = Path(controller.__file__).parent / "examples" / "consentline.example.yaml"
FIXTURE_PROMPTS = Path(__file__).parent / "fixtures" / "config" / "prompts"


@pytest.fixture(scope="module")
def config():
    return load_config(EXAMPLE)


def customer(country=None, do_not_record=False, process=None, phone="+447700900123"):
    return CustomerRecord(phone, country, do_not_record, process)


@pytest.mark.parametrize("caller, dialed, expected, conflict", [
    ("+4915112345678", "+4930100100", "de", False),
    ("+4915112345678", "+4930100200", "de-optout", False),  # same jurisdiction: the DID rule comes first
    ("+447700900123", "+442070100100", "uk", False),
    ("+14155550199", "+14155550100", "us-all-party", False),
    ("+4915112345678", "+4930100900", "none", False),
    ("+4915112345678", "+4930999999", "de", False),  # no DID rule: the caller's prefix decides
    ("+447700900123", "+4930999999", "uk", False),
    ("+33612345678", "+4930999999", "none", False),  # nothing matches: default_process
    ("+4915112345678", "+442070100100", "de", True),  # German caller on the UK line: opt-in beats notice
    ("+447700900123", "+4930100200", "de-optout", True),  # UK caller on the opt-out line: opt-out beats notice
])
def test_demo_numbers(config, caller, dialed, expected, conflict):
    decision = route(caller, dialed, None, config)
    assert (decision.process, decision.conflict) == (expected, conflict), decision.reason
    assert decision.pack == config.processes[expected].pack
    assert decision.config_version == "example-1"


def test_german_did_uk_mobile_us_ca_customer_is_a_recorded_conflict(config):
    decision = route("+447700900123", "+4930100100", customer("US-CA"), config)
    assert decision.process == "de"
    assert decision.conflict
    assert {(s.source, s.process, s.jurisdiction) for s in decision.signals} == {
        ("dialed", "de", "DE"), ("caller_prefix", "uk", "GB"), ("customer.country", "us-all-party", "US-CA")}
    assert decision.rule == "routing[0] dialed=+4930100100 process=de"
    assert "DE, GB, US-CA" in decision.reason and "tie with us-all-party broken by rule order" in decision.reason


def _config_with_rules(tmp_path, rules: str):
    path = tmp_path / "c.yaml"
    path.write_text(EXAMPLE.read_text().split("routing:")[0].replace("prompts_dir: prompts", f"prompts_dir: {EXAMPLE.parent / 'prompts'}")
                    + "routing:\n" + rules + "\ndefault_process: none\n"
                    + 'jurisdictions: {"DE": de, "GB": uk, "US": us-all-party}\n'
                    + "roles: {agent: [tag]}\nagents: {\"1001\": {role: agent}}\n")
    return load_config(path)


def test_tie_between_equally_strict_processes_goes_to_the_earlier_rule(tmp_path):
    customer_first = _config_with_rules(tmp_path, '  - {customer: true}\n  - {dialed: "+4930100100", process: de}')
    decision = route("+14155550199", "+4930100100", customer("US-CA", phone="+14155550199"), customer_first)
    assert decision.conflict and decision.process == "us-all-party"
    assert decision.rule.startswith("routing[0] customer")


def test_do_not_record_customer_is_never_recorded(config):
    decision = route("+4915112345678", "+4930100100", customer("DE", do_not_record=True, phone="+4915112345678"),
                     config)
    assert decision.process == "none" and not decision.records
    assert decision.rule == "customer.do_not_record"
    assert "+4915112345678 is marked do-not-record" in decision.reason


def test_customer_preferred_process_and_unusable_records(config):
    preferred = route("+33612345678", "+4930999999", customer("FR", process="uk", phone="+33612345678"), config)
    assert (preferred.process, preferred.rule) == ("uk", "routing[7] customer phone=+33612345678")
    unknown_process = route("+33612345678", "+4930999999", customer(process="gone", phone="+33612345678"), config)
    assert unknown_process.process == "none"
    assert unknown_process.signals[0].note == "the record's process gone is not configured"
    unmapped = route("+33612345678", "+4930999999", customer("FR", phone="+33612345678"), config)
    assert unmapped.process == "none" and "no jurisdiction configured for FR" in unmapped.signals[0].note


def test_rule_naming_a_country_uses_the_jurisdictions_table(tmp_path):
    config = _config_with_rules(tmp_path, '  - {caller_prefix: "+1", country: "US-NY"}\n'
                                          '  - {dialed_prefix: "+4930", country: "DE"}')
    assert route("+12125550100", "+4412345", None, config).process == "us-all-party"  # US-NY falls back to US
    decision = route("+12125550100", "+4930555", None, config)
    # strict us-all-party and de are both opt-in: the earlier rule breaks the tie
    assert decision.conflict and decision.process == "us-all-party"
    assert "tie with de broken by rule order" in decision.reason


def test_numbers_are_normalised_before_matching(config):
    assert normalise_number("0049 (30) 100-100") == "+4930100100"
    assert normalise_number("1001") == "1001"
    decision = route("0044 7700 900123", "0049 30 100100", None, config)
    assert (decision.caller, decision.dialed, decision.process) == ("+447700900123", "+4930100100", "de")


def test_strictness_order(config):
    ranks = {name: strictness(process) for name, process in config.processes.items()}
    assert ranks["none"] < ranks["de"] == ranks["us-all-party"] < ranks["de-optout"] < ranks["uk"]


def test_decision_serialises_to_json(config):
    decision = route("+447700900123", "+4930100100", customer("US-CA"), config)
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["process"] == "de" and data["customer"]["country"] == "US-CA"
    assert [s["rule_index"] for s in data["signals"]] == [0, 6, 7]


CALLERS = ["+4915112345678", "+447700900123", "+14155550199", "+33612345678", "1001", ""]
DIALED = ["+4930100100", "+4930100200", "+442070100100", "+14155550100", "+4930100900", "+4930999999", "+3312"]
customers = st.none() | st.builds(
    CustomerRecord, phone=st.just("+000"), country=st.sampled_from([None, "DE", "GB", "US", "US-CA", "FR"]),
    do_not_record=st.booleans(), process=st.sampled_from([None, "de", "de-optout", "uk", "us-all-party", "none", "x"]))


@settings(max_examples=300, deadline=None)
@given(caller=st.sampled_from(CALLERS), dialed=st.sampled_from(DIALED), record=customers)
def test_routing_properties(config, caller, dialed, record):
    decision = route(caller, dialed, record, config)
    chosen = config.processes[decision.process]
    usable = [s for s in decision.signals if s.process is not None and s.source != "default"]
    if record is not None and record.do_not_record:
        assert not chosen.records
    elif not usable:
        assert decision.process == config.default_process
    elif decision.conflict:
        assert strictness(chosen) == min(strictness(config.processes[s.process]) for s in usable)
    else:
        assert decision.process == usable[0].process
    assert decision.conflict == (len({s.jurisdiction for s in usable if s.jurisdiction}) > 1)
