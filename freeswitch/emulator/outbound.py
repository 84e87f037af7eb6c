"""The `socket` dialplan application: connect out to a controller and hand it the call (outbound ESL)."""

import logging

import gevent
import gevent.socket

from freeswitch.emulator.listener import FIRST_PACKET_TIMEOUT_S, Listener

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0


def parse_socket_arg(arg):
    """`host[:port][/path][|host2...] [async] [full]` -> ([(host, port)], async, full)."""
    tokens = arg.split()
    flags = {t.lower() for t in tokens[1:]}
    targets = []
    for target in (tokens[0] if tokens else "").split("|"):
        hostport = target.split("/", 1)[0]
        host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "8084")
        targets.append((host or hostport, int(port or 8084)))
    return targets, "async" in flags, "full" in flags


def _connect(switch, targets):
    for host, port in targets:
        if switch.faults.refuse_outbound:
            log.info("outbound connection to %s:%s refused (fault injection)", host, port)
            continue
        try:
            sock = gevent.socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
            sock.settimeout(None)
            sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            log.info("socket app could not connect to %s:%s: %s", host, port, exc)
    return None


def app_socket(session, arg):
    switch = session.switch
    targets, async_mode, full = parse_socket_arg(arg)
    if targets:
        session.channel.variables.set("socket_host", targets[0][0])
    if switch.faults.stall_outbound_s:
        switch.clock.sleep(switch.faults.stall_outbound_s)
    sock = _connect(switch, targets)
    if sock is None:
        return
    listener = Listener(switch, sock, session=session, async_mode=async_mode, full=full)
    session.listener = listener
    listener.start()
    switch.scenario_hook("socket_connected", session, listener=listener)
    session.controller_ready.wait(timeout=switch.clock.real_seconds(FIRST_PACKET_TIMEOUT_S + 1))
    if async_mode:
        _park_while_controlled(session)
    else:
        while session.channel.up and (session.controlled or session.orphaned):
            session.wait(None)


def _park_while_controlled(session):
    """switch_ivr_park: read media (DTMF events), run queued commands, until hangup or the socket goes."""
    session.fire("CHANNEL_PARK")
    while session.channel.up and (session.controlled or session.orphaned) and not session.channel.transfer_to:
        session.pump()
        if not (session.controlled or session.orphaned) or session.channel.transfer_to:
            break  # the socket went (or a transfer came) while a nested app ran (its wake-up was used up there)
        session.wait(None)
    session.fire("CHANNEL_UNPARK")
