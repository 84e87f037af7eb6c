"""Transfers, as mod_sofia carries them out, and the `uuid_bridge` and `uuid_transfer` APIs that share their core.

No captured trace holds a transfer: this follows FreeSWITCH 1.10's code (sofia.c, REFER with and without
Replaces; switch_ivr_bridge.c, switch_ivr_uuid_bridge and switch_ivr_multi_threaded_bridge; switch_ivr.c,
switch_ivr_session_transfer).

**Blind transfer** (REFER without Replaces, or `uuid_transfer`): switch_ivr_session_transfer sends the caller's
channel to the destination in the context named by its `force_transfer_context` (else its own). The channel
moves to CS_ROUTING at once: its `bridge` returns (Channel-State CS_ROUTING, transfer_source `...:bl_xfer:...`),
the agent leg is hung up, the socket app's park ends, and the new context's dialplan runs (the outbound socket
stays attached and keeps receiving the channel's events). `default` rings the agent extension, as
freeswitch/conf's dialplan/default.xml does.

**Attended transfer:**

The agent puts the caller on hold and calls a colleague from the same phone (the consult call: an inbound leg
from the phone, bridged to the colleague's leg). Transferring sends REFER with Replaces on the first call;
FreeSWITCH then runs `switch_ivr_uuid_bridge(<colleague's leg>, <caller's leg>)`:

- Both legs leave what they were doing. The caller's `bridge` application returns (CHANNEL_UNBRIDGE, then
  CHANNEL_EXECUTE_COMPLETE with Channel-State CS_RESET, because the bridge's end moves a redirected channel
  there), and the first agent leg is hung up. The consult leg is hung up with ATTENDED_TRANSFER.
- The colleague's leg is the originator of the new bridge: CHANNEL_BRIDGE carries *its* Unique-ID, with
  Bridge-A-Unique-ID = the colleague's leg and Bridge-B-Unique-ID = the caller's leg. A socket that only sees
  the caller's channel (the outbound socket, `myevents`) does not get it; the caller's channel goes through
  CHANNEL_STATE CS_RESET, CS_CONSUME_MEDIA and CS_EXCHANGE_MEDIA instead.
- A media bug on the caller's channel (uuid_record) stays where it is and records the new bridge.
- When the colleague hangs up, the caller's channel is hung up with the same cause, as any bridge peer is.
"""

import logging

import gevent

from freeswitch.emulator.bridge import join_legs, set_hold
from freeswitch.emulator.session import Session

log = logging.getLogger(__name__)

USAGE = "-USAGE: <uuid> <other_uuid>\n"
TRANSFER_USAGE = "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
UNWIND_TIMEOUT_S = 5.0          # real seconds for a leg's previous bridge to let go of it
CONSULT_ANSWER_TIMEOUT_S = 60.0


def uuid_bridge_api(switch, arg):
    """`uuid_bridge <uuid> <other_uuid> [<fallback_uuid>]`: the reply text FreeSWITCH gives."""
    tokens = arg.split()
    if len(tokens) < 2:
        return USAGE
    for other in tokens[1:3]:
        if uuid_bridge(switch, tokens[0], other):
            return f"+OK {other}\n"
    return "-ERR Invalid uuid\n"


def uuid_transfer_api(switch, arg):
    """`uuid_transfer <uuid> [-bleg] <dest> [<dialplan>] [<context>]` (`-both` is not emulated)."""
    tokens = arg.split()
    bleg = len(tokens) > 1 and tokens[1] == "-bleg"
    if bleg:
        del tokens[1]
    if len(tokens) < 2 or tokens[1].startswith("-"):
        return TRANSFER_USAGE
    session = switch.sessions.get(tokens[0])
    if session is not None and bleg:
        peer = session.channel.peer
        session = switch.sessions.get(peer.uuid) if peer is not None else None
    context = tokens[3] if len(tokens) > 3 else None
    if session is None or not session_transfer(session, tokens[1], context=context):
        return "-ERR No such channel!\n"
    return "+OK\n"


def session_transfer(session, destination, context=None):
    """switch_ivr_session_transfer: take the channel out of what it does and route it to `destination`."""
    channel, switch = session.channel, session.switch
    if not channel.up:
        return False
    context = context or channel.variables.get("force_transfer_context") or channel.profile.context
    channel.transfer_to = (destination, context)
    channel.taken_over = True
    channel.set_state("CS_ROUTING")  # at once; the CHANNEL_STATE event comes when the state machine gets there
    source = f"{int(switch.clock.epoch_us() // 1_000_000)}:{session.uuid}:bl_xfer:{destination}/{context}/XML"
    channel.variables.set("transfer_source", source)
    channel.variables.set("transfer_history", source)
    session.wakeup.set()
    if channel.peer is not None and channel.peer.uuid in switch.sessions:
        switch.sessions[channel.peer.uuid].wakeup.set()
    return True


def agent_extension(switch, session, destination):
    """dialplan/default.xml: an agent's extension rings that phone, anything else is unallocated."""
    if destination not in switch.users and destination not in getattr(session, "agent_behaviours", {}):
        return [("hangup", "UNALLOCATED_NUMBER")]
    return [("set", "hangup_after_bridge=true"), ("set", "call_timeout=30"), ("bridge", f"user/{destination}")]


def blind_transfer_later(agent_session, at_t, target):
    """The agent's phone, at `at_t`: REFER without Replaces, the caller to `target` (an AgentBehaviour)."""
    switch = agent_session.switch
    switch.clock.sleep_until(at_t)
    caller_channel = agent_session.channel.peer
    if not agent_session.channel.up or caller_channel is None or caller_channel.uuid not in switch.sessions:
        return
    caller = switch.sessions[caller_channel.uuid]
    caller.agent_behaviours = dict(getattr(caller, "agent_behaviours", {}), **{target.extension: target})
    switch.scenario_hook("transfer", caller, to=target.extension, how="blind")
    session_transfer(caller, target.extension)


def uuid_bridge(switch, originator_uuid, originatee_uuid):
    """switch_ivr_uuid_bridge: take both legs out of whatever they do and bridge them. False if either is gone."""
    originator = switch.sessions.get(originator_uuid)
    originatee = switch.sessions.get(originatee_uuid)
    if originator is None or originatee is None or not originator.channel.up or not originatee.channel.up:
        return False
    if originator.channel.answer_state != "answered" and originatee.channel.answer_state == "answered":
        originator, originatee = originatee, originator  # "reversing order of channels so this will work!"
    now_s = int(switch.clock.epoch_us() // 1_000_000)
    for session, other in ((originator, originatee), (originatee, originator)):
        channel, v = session.channel, session.channel.variables
        channel.taken_over = True
        v.set("bridge_channel", other.channel.name)
        v.set("bridge_uuid", other.uuid)
        v.set("signal_bond", other.uuid)
        source = f"{now_s}:{session.uuid}:uuid_br:{other.uuid}"
        v.set("transfer_source", source)
        v.set("transfer_history", source)
        session.wakeup.set()
        if channel.peer is not None and channel.peer.uuid in switch.sessions:  # its bridge loop may run there
            switch.sessions[channel.peer.uuid].wakeup.set()
    gevent.spawn(_run_uuid_bridge, originator, originatee).name = f"uuid-bridge-{originator.uuid}"
    return True


def _run_uuid_bridge(originator, originatee):
    """The originator's side of switch_ivr_multi_threaded_bridge, once both legs are free."""
    a, b = originator.channel, originatee.channel
    # The previous bridges unwind in their own greenlets; each lets go of its peers and fires its application's
    # completion without yielding, so once both peers are clear the caller's CHANNEL_EXECUTE_COMPLETE is out.
    with gevent.Timeout(UNWIND_TIMEOUT_S, False):
        while a.peer is not None or b.peer is not None:
            gevent.sleep(0.001)
    if a.peer is not None or b.peer is not None or not (a.up and b.up):
        log.warning("uuid_bridge %s %s: a leg did not come free", a.uuid, b.uuid)
        a.taken_over = b.taken_over = False
        return
    a.taken_over = b.taken_over = False
    originatee.set_state("CS_RESET")
    originatee.set_state("CS_CONSUME_MEDIA")
    switch = originator.switch
    bridge_headers = join_legs(a, b, switch.clock.epoch_us())
    originatee.set_state("CS_EXCHANGE_MEDIA")
    originator.fire("CHANNEL_BRIDGE", bridge_headers)
    switch.scenario_hook("uuid_bridged", originatee, agent=originator)
    while a.up and b.up and a.peer is b and not (a.taken_over or b.taken_over):
        gevent.wait([originator.hung_up, originatee.hung_up], count=1, timeout=switch.clock.real_seconds(1.0))
    for session in (originator, originatee):
        switch.media.flush(session)
    if a.peer is b:
        a.peer = b.peer = None
    originator.fire("CHANNEL_UNBRIDGE", bridge_headers)
    if a.up and not b.up and not a.taken_over:
        originator.hangup(b.hangup_cause or "NORMAL_CLEARING")
    elif b.up and not a.up and not b.taken_over:
        originatee.hangup(a.hangup_cause or "NORMAL_CLEARING")


# -- the agent's phone: hold, consult, REFER with Replaces ------------------------------------------------------

def attended_transfer_later(agent_session, at_t, consult_s, target):
    """The agent's phone, at `at_t`: hold the caller, call `target` (an AgentBehaviour), and transfer once the
    colleague has talked for `consult_s`. Gives up (unhold, drop the consult call) if the colleague never
    answers."""
    switch = agent_session.switch
    clock = switch.clock
    clock.sleep_until(at_t)
    caller_channel = agent_session.channel.peer
    if not agent_session.channel.up or caller_channel is None:
        return
    set_hold(agent_session, True)
    consult = place_consult_call(agent_session, target)
    colleague = _wait_for_consult_answer(consult)
    if colleague is None:
        if consult.channel.up:
            consult.hangup("NORMAL_CLEARING", initiator="remote")
        if agent_session.channel.up:
            set_hold(agent_session, False)
        return
    clock.sleep(consult_s)
    caller_channel = agent_session.channel.peer
    if caller_channel is None or not colleague.channel.up or not agent_session.channel.up:
        return
    switch.scenario_hook("transfer", switch.sessions[caller_channel.uuid], to=colleague.behaviour.extension,
                         how="attended")
    if uuid_bridge(switch, colleague.uuid, caller_channel.uuid):
        consult.hangup("ATTENDED_TRANSFER")
        consult.channel.variables.set("endpoint_disposition", "ATTENDED_TRANSFER")


def place_consult_call(agent_session, target):
    """The agent's phone calls `target.extension`: an inbound leg from the phone that bridges to the colleague."""
    switch = agent_session.switch
    uuid = switch.new_uuid()
    channel = switch.profiles.phone_channel(uuid=uuid, extension=agent_session.behaviour.extension,
                                            dialed=target.extension, a_channel=agent_session.channel)
    session = Session(switch, channel)
    session.dialplan = [("bridge", f"user/{target.extension}")]
    session.agent_behaviours = {target.extension: target}
    switch.add_session(session)
    session.start()
    return session


def _wait_for_consult_answer(consult):
    """The colleague's leg, once answered; None if the consult call ended first or nobody answered in time."""
    clock = consult.switch.clock
    deadline = clock.now() + CONSULT_ANSWER_TIMEOUT_S
    while consult.channel.up and clock.now() < deadline:
        peer = consult.channel.peer
        if peer is not None and peer.answer_state == "answered":
            return consult.switch.sessions.get(peer.uuid)
        clock.sleep(0.1)
    return None
