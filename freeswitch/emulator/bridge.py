"""The bridge application and the agent legs it originates (`bridge user/1001`).

An agent's behaviour (when it answers, what it says, which keys it presses, when it hangs up) comes from the
scenario through `switch.users`; an extension nobody registered fails like an unregistered user.
"""

import logging
import re

import gevent

from freeswitch.emulator.session import Session

log = logging.getLogger(__name__)

DEFAULT_CALL_TIMEOUT_S = 60.0
_DIAL_VARS = re.compile(r"^\{([^}]*)\}")


class AgentBehaviour:
    """How an agent's phone behaves when a bridge reaches it."""

    def __init__(self, extension, answer_after_s=2.0, audio=None, dtmf=(), hangup_after_s=None, reject=False,
                 holds=(), transfer=None):
        self.extension = extension
        self.transfer = transfer        # (seconds after answer, seconds of consultation or None for a blind
        #                                 transfer, the colleague's AgentBehaviour)
        self.holds = list(holds)        # [(seconds after answer, seconds on hold)]: the phone's hold key
        self.answer_after_s = answer_after_s
        self.audio = audio              # callable(first_sample_since_answer, n) or None
        self.dtmf = list(dtmf)          # [(seconds after answer, digits)]
        self.hangup_after_s = hangup_after_s
        self.reject = reject


def parse_dial_string(dial):
    """`[{k=v,...}]user/1001[@domain]` or `sofia/<profile>/<user>@host` -> (extension, {vars})."""
    dial = dial.strip()
    variables = {}
    match = _DIAL_VARS.match(dial)
    if match:
        for item in match.group(1).split(","):
            key, sep, value = item.partition("=")
            if sep:
                variables[key.strip()] = value
        dial = dial[match.end():]
    parts = dial.split("/")
    if parts[0] == "user" and len(parts) >= 2:
        return parts[1].split("@")[0], variables
    if parts[0] == "sofia" and len(parts) >= 3:
        return parts[2].split("@")[0], variables
    if parts[0] == "loopback" and len(parts) >= 2:
        return parts[1], variables
    return None, variables


def app_bridge(session, arg):
    switch = session.switch
    a = session.channel
    extension, dial_vars = parse_dial_string(arg.split(",")[0].split("|")[0])
    behaviours = getattr(session, "agent_behaviours", {})
    behaviour = (behaviours.get(extension) or switch.users.get(extension)) if extension else None
    if behaviour is None:
        _bridge_failed(session, "USER_NOT_REGISTERED" if extension else "INVALID_NUMBER_FORMAT")
        return
    b_session = originate_agent(session, behaviour, dial_vars)
    timeout_s = float(a.variables.get("call_timeout") or DEFAULT_CALL_TIMEOUT_S)
    outcome = _wait_for_answer(session, b_session, timeout_s)
    if outcome != "answered":
        if b_session.channel.up:
            b_session.hangup("NO_ANSWER" if outcome == "timeout" else "ORIGINATOR_CANCEL")
        if outcome != "a_gone":
            _bridge_failed(session, "NO_ANSWER" if outcome == "timeout" else (b_session.channel.hangup_cause or "CALL_REJECTED"))
        return
    session.answer()
    _run_bridge(session, b_session)


def _wait_for_answer(session, b_session, timeout_s):
    clock = session.switch.clock
    deadline = clock.now() + timeout_s
    while True:
        if not session.channel.up:
            return "a_gone"
        if b_session.channel.answer_state == "answered":
            return "answered"
        if not b_session.channel.up:
            return "rejected"
        remaining = deadline - clock.now()
        if remaining <= 0:
            return "timeout"
        session.pump()
        session.wait(min(remaining, 0.1))


def _bridge_failed(session, cause):
    variables = session.channel.variables
    variables.set("originate_disposition", cause)
    variables.set("DIALSTATUS", cause)
    if (variables.get("continue_on_fail") or "").lower() not in ("true", cause.lower()):
        session.hangup(cause)


def originate_agent(a_session, behaviour, dial_vars):
    switch = a_session.switch
    a = a_session.channel
    uuid = dial_vars.get("origination_uuid") or switch.new_uuid()
    channel = switch.profiles.agent_channel(uuid=uuid, extension=behaviour.extension, a_channel=a, rate_hz=a.rate_hz)
    for key, value in dial_vars.items():
        channel.variables.set(key, value)
    for name in (a.variables.get("export_vars") or "").split(","):
        if name and a.variables.get(name) is not None:
            channel.variables.set(name, a.variables.get(name))
    channel.audio = behaviour.audio
    channel.other_leg = ("originator", a)
    b_session = Session(switch, channel)
    b_session.behaviour = behaviour
    switch.add_session(b_session)
    b_session.greenlet = gevent.spawn(_run_agent_leg, b_session)
    b_session.greenlet.name = f"agent-{uuid}"
    switch.scenario_hook("agent_leg", a_session, agent=b_session)
    return b_session


def _run_agent_leg(b_session):
    try:
        _agent_leg_life(b_session)
    finally:
        if b_session.channel.up:
            b_session.hangup("NORMAL_CLEARING")
        b_session._report_and_destroy()


def _agent_leg_life(b_session):
    behaviour = b_session.behaviour
    clock = b_session.switch.clock
    for event_name, state in (("CHANNEL_OUTGOING", None), (None, "CS_INIT"), ("CHANNEL_CREATE", None),
                              ("CHANNEL_ORIGINATE", None), (None, "CS_ROUTING"), (None, "CS_CONSUME_MEDIA")):
        if state:
            b_session.set_state(state)
        else:
            b_session.fire(event_name)
    b_session.set_call_state("RINGING")
    if behaviour.reject:
        clock.sleep(min(behaviour.answer_after_s, 1.0))
        b_session.hangup("CALL_REJECTED", initiator="remote")
        return
    deadline = clock.now() + behaviour.answer_after_s
    while b_session.channel.up and clock.now() < deadline:
        b_session.wait(deadline - clock.now())
    if not b_session.channel.up:
        return
    b_session.answer()
    b_session.set_state("CS_EXCHANGE_MEDIA")
    _schedule_agent_actions(b_session, behaviour)
    while b_session.channel.up:
        b_session.pump()
        b_session.wait(None)


def _schedule_agent_actions(b_session, behaviour):
    clock = b_session.switch.clock
    answered = clock.now()
    for at_s, digits in behaviour.dtmf:
        gevent.spawn(_press_later, b_session, answered + at_s, digits)
    if behaviour.hangup_after_s is not None:
        gevent.spawn(_hangup_later, b_session, answered + behaviour.hangup_after_s)
    for at_s, for_s in behaviour.holds:
        gevent.spawn(_hold_later, b_session, answered + at_s, for_s)
    if behaviour.transfer is not None:
        from freeswitch.emulator.transfer import attended_transfer_later, blind_transfer_later  # builds on this
        at_s, consult_s, colleague = behaviour.transfer
        if consult_s is None:
            gevent.spawn(blind_transfer_later, b_session, answered + at_s, colleague)
        else:
            gevent.spawn(attended_transfer_later, b_session, answered + at_s, consult_s, colleague)


def _hold_later(session, at_t, for_s):
    clock = session.switch.clock
    clock.sleep_until(at_t)
    if session.channel.up:
        set_hold(session, True)
        clock.sleep(for_s)
        if session.channel.up:
            set_hold(session, False)


def set_hold(session, held):
    """The phone put the call on hold (a sendonly re-INVITE): CHANNEL_HOLD/UNHOLD and the call state on that leg.

    While a leg is held its party says nothing to the other side (FreeSWITCH plays that side hold music, which
    the emulator renders as silence)."""
    channel = session.channel
    if channel.held == held:
        return False
    channel.held = held
    session.fire("CHANNEL_HOLD" if held else "CHANNEL_UNHOLD")
    session.set_call_state("HELD" if held else "ACTIVE")
    session.switch.scenario_hook("hold" if held else "unhold", session)
    return True


def _press_later(session, at_t, digits):
    clock = session.switch.clock
    for i, digit in enumerate(digits):
        clock.sleep_until(at_t + 0.3 * i + 0.2)  # the event fires when the end packet arrives
        if not session.channel.up:
            return
        session.switch.scenario_hook("dtmf_pressed", session, digits=digit)
        session.receive_dtmf(digit, source="RTP", duration=1600)


def _hangup_later(session, at_t):
    session.switch.clock.sleep_until(at_t)
    session.hangup("NORMAL_CLEARING", initiator="remote")


def join_legs(a, b, now_us):
    """What both channels of a bridge note about each other (switch_ivr_multi_threaded_bridge), `a` being the A
    side; returns the Bridge-A/B-Unique-ID headers of its CHANNEL_BRIDGE and CHANNEL_UNBRIDGE."""
    a.times["bridged"] = b.times["bridged"] = now_us
    a.peer, b.peer = b, a
    a.other_leg, b.other_leg = ("originatee", b), ("originator", a)
    for channel, other in ((a, b), (b, a)):
        channel.variables.set("bridge_channel", other.name)
        channel.variables.set("bridge_uuid", other.uuid)
        channel.variables.set("signal_bond", other.uuid)
        channel.variables.set("last_bridge_to", other.uuid)
    return [("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)]


def _run_bridge(session, b_session):
    a, b = session.channel, b_session.channel
    switch = session.switch
    bridge_headers = join_legs(a, b, switch.clock.epoch_us())
    a.variables.set("bridge_to", b.uuid)
    for leg in (session, b_session):
        for bug in leg.recordings.values():
            bug.recorder.drop_pre_buffer()  # FreeSWITCH drops the pre-buffer at bridge and unbridge
    session.fire("CHANNEL_BRIDGE", bridge_headers)
    switch.scenario_hook("bridged", session, agent=b_session)
    while a.up and b.up and not (a.taken_over or b.taken_over):
        session.pump()
        session.wait(None)
    # uuid_bridge (a transfer, transfer.py) may have taken a leg away: that leg is not hung up here
    for leg in (session, b_session):
        switch.media.flush(leg)
        for bug in leg.recordings.values():
            bug.recorder.drop_pre_buffer()
    a.peer = b.peer = None
    a.variables.set("last_bridge_hangup_cause", b.hangup_cause or "NORMAL_CLEARING")
    a.variables.set("bridge_hangup_cause", b.hangup_cause or "NORMAL_CLEARING")
    session.fire("CHANNEL_UNBRIDGE", bridge_headers)
    switch.scenario_hook("unbridged", session, agent=b_session)
    if a.taken_over and a.transfer_to is None:
        a.set_state("CS_RESET")  # the bridge's end moves a redirected channel there; no event until it runs
    if b.up and not b.taken_over:
        b_session.hangup(a.hangup_cause or "NORMAL_CLEARING")
