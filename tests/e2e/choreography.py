"""Calls that react to what the switch and the controller do, instead of acting at fixed times.

A fixed "press 1 at 4 s" races the controller's set-up on a loaded machine (a key pressed before the menu is
drained and lost). Here a caller presses 2 virtual seconds after *its* menu starts, hangs up 8 s after *its*
bridge, and a fault fires at the exact step it is meant for.

A moment is a name for something that happened on one call:

    app:<name>      the caller leg started a dialplan application (app:answer, app:play_and_get_digits, ...)
    api:<name> <verb>  the switch is about to run an API command for that call (api:uuid_record start)
    record_start    the switch started recording the call
    record_stop     the switch stopped recording it
    bridged         caller and agent are bridged
    hangup          the caller's leg hung up
    key             the caller's scripted key went in (the `press` action emits it)
    ctl:<kind>      the controller's call flow reported <kind> (routed, consent, recording, withdrawn, ended)
    index:<method>  the controller is about to write <method> to the index for that call

Every moment is kept with its virtual time, so tests can ask "when did the switch stop recording?".
"""

import collections
import logging

import gevent

from freeswitch.emulator import audio

log = logging.getLogger(__name__)

MENU = "app:play_and_get_digits"
NOTICE = "app:playback"


class InjectedFault(RuntimeError):
    """An exception a test puts into the call flow (a bug, as far as the flow can tell)."""


class CallPlan:
    """One call: its scenario entry plus reactions `(moment, occurrence, delay_s, action)`."""

    def __init__(self, id_, caller, dialed, *, agent="1001", agent_answer_s=1.0, hangup_backstop_s=90.0,
                 rate_hz=8000, fallback="agents"):
        self.id = id_
        self.caller = caller
        self.dialed = dialed
        self.spec = {"id": id_, "caller": caller, "dialed": dialed, "rate_hz": rate_hz, "caller_audio": "marker",
                     # a backstop only: scripted hangups come from reactions
                     "hangup": {"by": "caller", "at_s": hangup_backstop_s}}
        if agent:
            self.spec["agent"] = {"extension": agent, "answer_after_s": agent_answer_s, "audio": "marker"}
        if fallback:
            self.spec["fallback"] = fallback
        self.reactions = []
        self.uuid = None
        self.moments = []            # (name, virtual time)
        self.pressed = []            # (digits, virtual time, caller marker second at that time)
        self.snapshots = {}          # label -> whatever a `snapshot` action returned

    def on(self, moment, action, delay_s=0.0, occurrence=1):
        """Run `action(ctx)` `delay_s` virtual seconds after the `occurrence`-th `moment` (0 s: synchronously)."""
        self.reactions.append((moment, occurrence, delay_s, action))
        return self

    def press(self, digits, after=MENU, delay_s=2.0, occurrence=1):
        return self.on(after, Press(digits), delay_s, occurrence)

    def hangup(self, after="bridged", delay_s=8.0, by="caller"):
        return self.on(after, Hangup(by), delay_s)

    # -- what happened ------------------------------------------------------------------------------------

    def count(self, moment):
        return sum(1 for name, _ in self.moments if name == moment)

    def first(self, moment):
        return next((t for name, t in self.moments if name == moment), None)

    def last(self, moment):
        times = [t for name, t in self.moments if name == moment]
        return times[-1] if times else None


class Context:
    """What an action may touch: the switch, the call's legs, the plan and the controller's side."""

    def __init__(self, stage, plan):
        self.stage = stage
        self.plan = plan

    @property
    def switch(self):
        return self.stage.switch

    @property
    def caller_session(self):
        return self.stage.switch.sessions.get(self.plan.uuid)

    @property
    def agent_session(self):
        agent_uuid = self.stage.agent_of.get(self.plan.uuid)
        return self.stage.switch.sessions.get(agent_uuid) if agent_uuid else None

    def caller_second(self):
        """Which second of the caller's marker audio is playing now (marker seconds count from the answer)."""
        session = self.caller_session
        started = session.channel.media_started_at if session is not None else None
        return None if started is None else int(self.stage.switch.clock.now() - started)


class Press:
    def __init__(self, digits):
        self.digits = digits

    def __call__(self, ctx):
        session = ctx.caller_session
        if session is None or not session.channel.up:
            return
        ctx.plan.pressed.append((self.digits, ctx.switch.clock.now(), ctx.caller_second()))
        session.receive_dtmf(self.digits, source="RTP", duration=1600)
        ctx.stage.emit(ctx.plan, "key")


class Hangup:
    def __init__(self, by):
        self.by = by

    def __call__(self, ctx):
        session = ctx.agent_session if self.by == "agent" else ctx.caller_session
        if session is not None and session.channel.up:
            session.hangup("NORMAL_CLEARING", initiator="remote")


class Stage:
    """Dispatches moments to plans: a switch observer plus taps the controller side calls into."""

    def __init__(self, switch):
        self.switch = switch
        self.plans_by_caller = {}
        self.plans_by_uuid = {}
        self.agent_of = {}           # caller uuid -> agent uuid
        self._caller_of = {}         # agent uuid -> caller uuid
        self._greenlets = []
        switch.observers.append(self.observe)
        self._wrap_api()

    def add(self, plan):
        if plan.caller in self.plans_by_caller:
            raise ValueError(f"two calls from {plan.caller}: moments could not be told apart")
        self.plans_by_caller[plan.caller] = plan

    def close(self):
        gevent.killall(self._greenlets, block=False)
        if self.observe in self.switch.observers:
            self.switch.observers.remove(self.observe)

    # -- moments -------------------------------------------------------------------------------------------

    def plan_for_uuid(self, uuid):
        return self.plans_by_uuid.get(uuid) or self.plans_by_uuid.get(self._caller_of.get(uuid))

    def emit(self, plan, moment):
        plan.moments.append((moment, self.switch.clock.now()))
        occurrence = plan.count(moment)
        for name, wanted, delay_s, action in plan.reactions:
            if name != moment or wanted != occurrence:
                continue
            if delay_s:
                self._greenlets.append(gevent.spawn(self._later, plan, delay_s, action))
            else:
                self._run(plan, action)

    def _later(self, plan, delay_s, action):
        self.switch.clock.sleep(delay_s)
        self._run(plan, action)

    def _run(self, plan, action):
        try:
            action(Context(self, plan))
        except InjectedFault:
            raise                    # meant for the greenlet that reported the moment (the controller's)
        except Exception:  # a broken action must show up in the test, not kill the switch greenlet silently
            log.exception("action %r on call %s failed", action, plan.id)
            plan.moments.append(("action-failed", self.switch.clock.now()))

    def observe(self, kind, session, **info):
        if kind in ("agent_leg", "uuid_bridged"):  # uuid_bridged: a transfer, the colleague's leg is the agent now
            self.agent_of[session.uuid] = info["agent"].uuid
            self._caller_of[info["agent"].uuid] = session.uuid
            return
        plan = self._caller_plan(session)
        if plan is None:
            return
        if kind == "execute":
            self.emit(plan, f"app:{info['app']}")
        elif kind in ("record_start", "record_stop", "bridged", "hangup"):
            self.emit(plan, kind)

    def _caller_plan(self, session):
        """The plan of a caller leg (agent legs only report through agent_leg)."""
        if session.uuid in self._caller_of:
            return None
        plan = self.plans_by_uuid.get(session.uuid)
        if plan is None:
            plan = self.plans_by_caller.get(session.channel.profile.caller_id_number)
            if plan is None or plan.uuid is not None:
                return None
            plan.uuid = session.uuid
            self.plans_by_uuid[session.uuid] = plan
        return plan

    def _wrap_api(self):
        """api:<name> moments, just before the switch runs a command that names a call's uuid."""
        commands = self.switch.apis.commands
        for name in ("uuid_record",):
            original = commands[name]

            def tapped(arg, _name=name, _original=original):
                words = arg.split()
                plan = self.plans_by_uuid.get(words[0]) if words else None
                if plan is not None:
                    self.emit(plan, f"api:{_name} {words[1] if len(words) > 1 else ''}".rstrip())
                return _original(arg)
            commands[name] = tapped


def caller_marker_second(frequency_hz):
    return audio.marker_index(audio.CALLER_MARKER_BASE_HZ, frequency_hz)


def agent_marker_second(frequency_hz):
    return audio.marker_index(audio.AGENT_MARKER_BASE_HZ, frequency_hz)
