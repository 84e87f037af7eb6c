"""The policy packs' consent flows: small steps run in sequence by one runner.

A step talks to the call only through a `ConsentPort` (play a prompt, ask for one key) and reports evidence
through an `EvidenceSink`; it never touches ESL or the index itself, so the decision logic is testable without a
switch. The runner's outcome says whether recording is lawful, and why.

Fail closed: an exception anywhere (call gone, timeout, index write refused) propagates; the caller treats any
exception as "not recorded".
"""

from dataclasses import dataclass
from typing import Protocol

# Outcomes, as stored in the index (calls.consent_outcome).
AGREED = "agreed"                 # opt-in: the agree key
DECLINED = "declined"             # opt-in: the decline key
OTHER_KEY = "other-key"           # opt-in: any other key: not consent
NO_INPUT = "no-input"             # opt-in: nothing within the timeout
NOTICE_PLAYED = "notice-played"   # notice packs: the notice was played in full
NOT_OPTED_OUT = "not-opted-out"   # opt-out menu: no key within the timeout
OPTED_OUT = "opted-out"           # opt-out menu: the opt-out key (or any key: we do not guess)
NEVER_RECORD = "never-record"     # the `none` pack
NOTICE_CUT_SHORT = "notice-cut-short"  # a notice that did not play to the end: no recording


@dataclass(frozen=True)
class Answer:
    """What the caller did at a prompt: the key (or None) and whether the prompt itself played in full."""
    key: str | None
    prompt_completed: bool


class ConsentPort(Protocol):
    def play(self, prompt_id: str) -> bool:
        """Play a prompt to the caller; True if it played to the end."""

    def ask(self, prompt_id: str, timeout_s: float, attempts: int) -> Answer:
        """Play a prompt and read one key (any key ends it)."""


class EvidenceSink(Protocol):
    def prompt_played(self, prompt_id: str) -> None: ...

    def prompt_cut_short(self, prompt_id: str) -> None:
        """The flow ended inside the prompt (hangup, lost socket, timeout): the caller may have heard part."""

    def key_pressed(self, key: str) -> None: ...


@dataclass(frozen=True)
class Outcome:
    record: bool
    outcome: str
    reason: str


class PlayNotice:
    """A notice that must be heard in full before any audio is kept (uk, us-all-party)."""

    def __init__(self, prompt_id):
        self.prompt_id = prompt_id

    def run(self, port, evidence, process):
        completed = _prompting(evidence, self.prompt_id, port.play)
        evidence.prompt_played(self.prompt_id)
        if not completed:
            return Outcome(False, NOTICE_CUT_SHORT, f"the {self.prompt_id} prompt did not play to the end")
        return Outcome(True, NOTICE_PLAYED, f"the {self.prompt_id} prompt played in full")


def _prompting(evidence, prompt_id, play, *args):
    """Run a prompt; if the flow ends inside it, the evidence says it was started and cut short."""
    try:
        return play(prompt_id, *args)
    except BaseException:
        evidence.prompt_cut_short(prompt_id)
        raise


def _ask(port, evidence, prompt_id, settings):
    """Play the prompt, read one key; the prompt and the key (if any) go into the evidence."""
    answer = _prompting(evidence, prompt_id, port.ask, settings.timeout_s, settings.attempts)
    evidence.prompt_played(prompt_id)
    if answer.key is not None:
        evidence.key_pressed(answer.key)
    return answer


class AskOptIn:
    """Explicit opt-in (de, strict us-all-party): only the agree key records."""

    def __init__(self, prompt_id):
        self.prompt_id = prompt_id

    def run(self, port, evidence, process):
        settings = process.consent
        answer = _ask(port, evidence, self.prompt_id, settings)
        if answer.key == settings.agree_key:
            return Outcome(True, AGREED, f"the caller pressed {settings.agree_key} to agree")
        if answer.key == settings.decline_key:
            return Outcome(False, DECLINED, f"the caller pressed {settings.decline_key} to decline")
        if answer.key is None:
            return Outcome(False, NO_INPUT, f"no key within {settings.timeout_s:g} s: silence is not consent")
        return Outcome(False, OTHER_KEY, f"the caller pressed {answer.key}, which is not the agree key")


class OptOutMenu:
    """The opt-out menu (de-optout): recording unless the caller presses a key within the timeout."""

    def __init__(self, prompt_id):
        self.prompt_id = prompt_id

    def run(self, port, evidence, process):
        settings = process.consent
        answer = _ask(port, evidence, self.prompt_id, settings)
        if answer.key is None:
            if not answer.prompt_completed:
                return Outcome(False, NOTICE_CUT_SHORT, "the opt-out menu did not play to the end")
            return Outcome(True, NOT_OPTED_OUT, f"no key within {settings.timeout_s:g} s after the opt-out menu")
        if answer.key == settings.optout_key:
            return Outcome(False, OPTED_OUT, f"the caller pressed {settings.optout_key} to opt out")
        return Outcome(False, OPTED_OUT, f"the caller pressed {answer.key}: any key is taken as an objection")


class NeverRecord:
    def run(self, port, evidence, process):
        return Outcome(False, NEVER_RECORD, f"process {process.name} never records")


def steps_for(process) -> list:
    """The pack's steps, in order. Every pack's list ends in the step whose outcome decides."""
    pack = process.pack
    if pack == "de":
        return [AskOptIn("consent")]
    if pack == "de-optout":
        return [OptOutMenu("optout")]
    if pack == "uk":
        return [PlayNotice("notice")]
    if pack == "us-all-party":
        return [PlayNotice("notice"), AskOptIn("consent")] if process.strict else [PlayNotice("notice")]
    if pack == "none":
        return [NeverRecord()]
    raise ValueError(f"unknown policy pack {pack!r}")


def run_consent(process, port: ConsentPort, evidence: EvidenceSink) -> Outcome:
    """Run the pack's steps; the first step that does not allow recording decides, else the last one."""
    outcome = None
    for step in steps_for(process):
        outcome = step.run(port, evidence, process)
        if not outcome.record:
            return outcome
    return outcome
