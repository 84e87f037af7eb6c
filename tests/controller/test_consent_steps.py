"""The policy packs' decisions, without a switch: a scripted caller and an evidence recorder."""

from dataclasses import replace
from pathlib import Path

import pytest

from controller import consent
from controller.config import load_config
from controller.withdrawal import CodeMatcher

EXAMPLE = Path(__file__).resolve().parents[2] / "controller" / "examples" / "consentline.example.yaml"


class ScriptedCaller:
    def __init__(self, key=None, prompt_completed=True, notice_completed=True):
        self.key = key
        self.prompt_completed = prompt_completed
        self.notice_completed = notice_completed
        self.played = []

    def play(self, prompt_id):
        self.played.append(prompt_id)
        return self.notice_completed

    def ask(self, prompt_id, timeout_s, attempts):
        self.played.append(prompt_id)
        return consent.Answer(self.key, self.prompt_completed)


class Evidence:
    def __init__(self):
        self.items = []

    def prompt_played(self, prompt_id):
        self.items.append(("prompt", prompt_id))

    def key_pressed(self, key):
        self.items.append(("key", key))

    def prompt_cut_short(self, prompt_id):
        self.items.append(("cut-short", prompt_id))


@pytest.fixture(scope="module")
def config():
    return load_config(EXAMPLE)


@pytest.mark.parametrize("key, record, outcome", [
    ("1", True, consent.AGREED), ("2", False, consent.DECLINED), ("3", False, consent.OTHER_KEY),
    ("#", False, consent.OTHER_KEY), (None, False, consent.NO_INPUT)])
def test_german_opt_in_records_only_on_the_agree_key(config, key, record, outcome):
    evidence = Evidence()
    result = consent.run_consent(config.processes["de"], ScriptedCaller(key), evidence)
    assert (result.record, result.outcome) == (record, outcome)
    assert evidence.items[0] == ("prompt", "consent")
    assert (("key", key) in evidence.items) == (key is not None)


@pytest.mark.parametrize("key, completed, record, outcome", [
    (None, True, True, consent.NOT_OPTED_OUT), ("1", False, False, consent.OPTED_OUT),
    ("7", False, False, consent.OPTED_OUT), (None, False, False, consent.NOTICE_CUT_SHORT)])
def test_german_opt_out_menu(config, key, completed, record, outcome):
    result = consent.run_consent(config.processes["de-optout"], ScriptedCaller(key, completed), Evidence())
    assert (result.record, result.outcome) == (record, outcome)


@pytest.mark.parametrize("completed, record", [(True, True), (False, False)])
def test_uk_notice_must_play_in_full(config, completed, record):
    caller = ScriptedCaller(notice_completed=completed)
    result = consent.run_consent(config.processes["uk"], caller, Evidence())
    assert result.record is record and caller.played == ["notice"]


def test_us_strict_needs_the_notice_and_then_the_agree_key(config):
    strict = config.processes["us-all-party"]
    assert strict.strict
    agreed = ScriptedCaller("1")
    assert consent.run_consent(strict, agreed, Evidence()).record and agreed.played == ["notice", "consent"]
    assert not consent.run_consent(strict, ScriptedCaller("2"), Evidence()).record
    cut_short = ScriptedCaller("1", notice_completed=False)
    assert not consent.run_consent(strict, cut_short, Evidence()).record and cut_short.played == ["notice"]
    lenient = replace(strict, strict=False)
    assert consent.run_consent(lenient, ScriptedCaller(None), Evidence()).outcome == consent.NOTICE_PLAYED


def test_never_record_plays_nothing(config):
    caller = ScriptedCaller("1")
    result = consent.run_consent(config.processes["none"], caller, Evidence())
    assert (result.record, result.outcome, caller.played) == (False, consent.NEVER_RECORD, [])


def test_a_failing_step_propagates_so_the_flow_fails_closed(config):
    class Broken(ScriptedCaller):
        def ask(self, *args):
            raise ConnectionError("socket gone")
    with pytest.raises(ConnectionError):
        consent.run_consent(config.processes["de"], Broken(), Evidence())


def test_withdrawal_code_matches_within_the_inter_digit_timeout():
    matcher = CodeMatcher("*9", inter_digit_timeout_s=3.0)
    assert not matcher.feed("*", 0.0)
    assert matcher.feed("9", 1.0)
    assert not matcher.feed("*", 10.0)
    assert not matcher.feed("9", 14.0), "too slow: starts over"
    assert not matcher.feed("1", 20.0) and not matcher.feed("*", 20.5)
    assert matcher.feed("9", 21.0), "a code after other digits still matches"


class CallGoneInside(ScriptedCaller):
    def play(self, prompt_id):
        raise ConnectionError("the caller hung up")

    ask = lambda self, prompt_id, timeout_s, attempts: self.play(prompt_id)  # noqa: E731


@pytest.mark.parametrize("process, prompt_id", [("de", "consent"), ("uk", "notice"), ("de-optout", "optout")])
def test_a_flow_that_ends_inside_a_prompt_says_so_in_the_evidence(config, process, prompt_id):
    evidence = Evidence()
    with pytest.raises(ConnectionError):
        consent.run_consent(config.processes[process], CallGoneInside(), evidence)
    assert evidence.items == [("cut-short", prompt_id)]
