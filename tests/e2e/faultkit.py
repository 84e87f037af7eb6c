"""Faults, and the moment each one is injected at for every step of the consent flow.

Five faults (design: "any error on the consent path leaves the call unrecorded"):

    drop       the call's ESL connection is cut without a goodbye (the switch side of the step)
    delay      everything the switch sends on the call's socket from then on comes late, past the controller's
               timeouts (which the batch shortens, so the test takes seconds, not minutes)
    exception  the controller's flow raises at that step (a bug)
    index      the index refuses every write for the call from that step's write on
    crash      the controller's call greenlet is killed (finally blocks run; a SIGKILL is tested separately)

Steps, in call order: route, answer, notice, menu, key, decision, record, record_start, bridge.
"""

import gevent

from freeswitch.emulator.faults import delay_connections, drop_connections
from tests.e2e.choreography import MENU, NOTICE, InjectedFault

STEPS = ("route", "answer", "notice", "menu", "key", "decision", "record", "record_start", "bridge")
FAULTS = ("drop", "delay", "exception", "index", "crash")
DELAY_REAL_S = 3.0               # longer than every shortened controller timeout below
SHORT_COMMAND_TIMEOUT_S = 1.0
EXECUTE_TIMEOUT_SCALE = 0.1      # prompt budgets are media seconds; the switch runs 20x faster than real time

# Where each step is seen from the switch: the application it starts, the key going in, the API it is asked.
SWITCH_SIDE = {"route": "ctl:routed", "answer": "app:answer", "notice": NOTICE, "menu": MENU, "key": "key",
               "decision": "index:consent_decided", "record": "api:uuid_record start",
               "record_start": "record_start", "bridge": "app:bridge"}
# A delay must start before the controller's command where the switch answers at once; at record_start it starts
# inside uuid_record, after the switch took its reply path, so only RECORD_START comes late (as FreeSWITCH's
# event thread can deliver it after the reply).
DELAY_SIDE = dict(SWITCH_SIDE, record="esl:api uuid_record start", record_start="api:uuid_record start",
                  bridge="esl:execute bridge")
# Where each step is in the controller's own greenlet (an exception there is an exception in the flow).
CONTROLLER_SIDE = {"route": "ctl:routed", "answer": "esl:execute answer", "notice": "esl:execute playback",
                   "menu": "esl:execute play_and_get_digits", "key": "index:evidence_digit",
                   "decision": "index:consent_decided", "record": "esl:api uuid_record start",
                   "record_start": "ctl:tailer", "bridge": "esl:execute bridge"}
# The index write each step makes (moment, occurrence); steps that write nothing have no index fault.
INDEX_SIDE = {"route": ("index:routing_decided", 1), "notice": ("index:evidence_prompt", 1),
              "menu": ("index:evidence_prompt", 2), "key": ("index:evidence_digit", 1),
              "decision": ("index:consent_decided", 1), "record": ("index:recording_opened", 1),
              "record_start": ("index:recording_state", 1)}


# Steps where a fault is deliberately waited out rather than failed closed (none: every sendmsg reply, the
# bridge's included, must come within the command timeout).
WAITED_FOR = set()


def applies(fault, step):
    return fault != "index" or step in INDEX_SIDE


def drop(ctx):
    assert drop_connections(ctx.switch, inbound=False, uuid=ctx.plan.uuid) == 1


def delay(ctx):
    assert delay_connections(ctx.switch, DELAY_REAL_S, inbound=False, uuid=ctx.plan.uuid) == 1


def explode(ctx):
    raise InjectedFault(f"injected at {ctx.plan.id}")


class RefuseIndex:
    def __init__(self, taps):
        self.taps = taps

    def __call__(self, ctx):
        self.taps.index.refuse(ctx.plan.uuid)


class Crash:
    """Kill the controller's greenlet for the call, where it stands (at once if the moment is in it)."""

    def __init__(self, taps):
        self.taps = taps

    def __call__(self, ctx):
        greenlet = self.taps.call_greenlets[ctx.plan.uuid]
        if greenlet is gevent.getcurrent():
            raise gevent.GreenletExit()
        greenlet.kill(block=False)


def arm(plan, fault, step, taps):
    """Put `fault` at `step` of `plan`'s call."""
    if fault == "drop":
        plan.on(SWITCH_SIDE[step], drop)
    elif fault == "delay":
        plan.on(DELAY_SIDE[step], delay)
    elif fault == "exception":
        plan.on(CONTROLLER_SIDE[step], explode)
    elif fault == "index":
        moment, occurrence = INDEX_SIDE[step]
        plan.on(moment, RefuseIndex(taps), occurrence=occurrence)
    elif fault == "crash":
        plan.on(SWITCH_SIDE[step], Crash(taps))
    else:
        raise ValueError(fault)
    return plan
