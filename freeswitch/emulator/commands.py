"""mod_event_socket's parse_command: each command a client may send, with FreeSWITCH's exact reply texts.

Each handler takes the listener (freeswitch.emulator.listener) it came in on, the text after the command word,
and the whole command (headers and body, for sendmsg and sendevent).
"""

import logging

import gevent

from freeswitch.emulator import wire
from freeswitch.emulator.events import EVENT_NAMES

log = logging.getLogger(__name__)


def cmd_exit(listener, rest, command):
    listener.reply("+OK bye")
    listener.disconnect()

def cmd_connect(listener, rest, command):
    listener.send(listener.switch.connect_reply(listener.session, listener.async_mode, listener.full))

def cmd_api(listener, rest, command):
    listener.send(wire.api_response(listener.switch.api(rest, listener=listener)))

def cmd_bgapi(listener, rest, command):
    job_uuid = command.header("Job-UUID") or listener.switch.new_uuid()
    listener.reply(f"+OK Job-UUID: {job_uuid}", [("Job-UUID", job_uuid)])
    owner = listener.session.uuid if listener.session is not None else None
    gevent.spawn(listener.switch.background_job, rest, job_uuid, owner, listener)

def cmd_event(listener, rest, command):
    tokens = rest.split()
    fmt = "plain"
    if tokens and tokens[0].lower() in ("plain", "json", "xml"):
        fmt = tokens.pop(0).lower()
    enabled = False
    custom = False
    for token in tokens:
        if custom:
            listener.custom_subclasses.add(token)
            enabled = True
            continue
        name = token.upper()
        if name.startswith("SWITCH_EVENT_"):
            name = name[len("SWITCH_EVENT_"):]
        if name == "ALL":
            listener.all_events = True
            enabled = True
        elif name == "CUSTOM":
            custom = True
            listener.event_names.add("CUSTOM")
            enabled = True
        elif name in EVENT_NAMES:
            listener.event_names.add(name)
            enabled = True
    if not enabled:
        listener.reply("-ERR no keywords supplied")
        return
    listener.format = fmt
    listener.reply(f"+OK event listener enabled {fmt}")

def cmd_nixevent(listener, rest, command):
    tokens = [t.upper() for t in rest.split()]
    if not tokens:
        listener.reply("-ERR no keywords supplied")
        return
    for name in tokens:
        if name == "ALL":
            listener.all_events = False
            listener.event_names.clear()
            listener.custom_subclasses.clear()
        listener.event_names.discard(name)
    listener.reply("+OK events nixed")

def cmd_noevents(listener, rest, command):
    listening = listener.all_events or listener.event_names or listener.custom_subclasses or listener.myevents
    if not listening:
        listener.reply("-ERR not listening for events")
        return
    listener.all_events = False
    listener.event_names.clear()
    listener.custom_subclasses.clear()
    listener.myevents = False
    listener.reply("+OK no longer listening for events")

def cmd_filter(listener, rest, command):
    tokens = rest.split(None, 2)
    if tokens and tokens[0] == "delete":
        if len(tokens) < 2:
            listener.reply("-ERR invalid syntax")
            return
        header = tokens[1]
        value = tokens[2] if len(tokens) > 2 else ""
        if header == "all":
            listener.filters.clear()
        else:
            listener.filters = [(h, v) for h, v in listener.filters if not (h == header and (not value or v == value))]
        listener.reply(f"+OK filter deleted. [{header}][{value}]")
        return
    if tokens and tokens[0] == "add":
        tokens = tokens[1:] if len(tokens) < 3 else tokens[1:2] + tokens[2].split(None, 1)
    if len(tokens) < 2:
        listener.reply("-ERR invalid syntax")
        return
    header, value = tokens[0], tokens[1]
    listener.filters.append((header, value))
    listener.reply(f"+OK filter added. [{header}]=[{value}]")

def cmd_myevents(listener, rest, command):
    if listener.myevents:
        listener.reply("-ERR aready enabled.")
        return
    if listener.outbound:
        fmt = rest.split()[0].lower() if rest.split() else ""
        if fmt in ("plain", "json", "xml"):
            listener.format = fmt
        listener.myevents = True
        listener.switch.bind_listener(listener, listener.session.uuid)
        listener.reply("+OK Events Enabled")
        return
    if not rest:
        listener.reply("-ERR command not found")
        return
    uuid, _, fmt = rest.partition(" ")
    session = listener.switch.sessions.get(uuid)
    if session is None:
        if fmt:
            listener.reply("-ERR invalid uuid")
            return
        listener.myevents = True
        listener.reply("+OK Events Enabled")
        return
    listener.session = session
    session.inbound_listeners.add(listener)
    listener.myevents = True
    listener.switch.bind_listener(listener, uuid)
    listener.reply("+OK Events Enabled")

def cmd_divert_events(listener, rest, command):
    if listener.session is None:
        listener.reply("-ERR not controlling a session.")
    elif not rest:
        listener.reply("-ERR missing value.")
    elif rest.lower() == "on":
        listener.reply("+OK events diverted")
    else:
        listener.reply("+OK events not diverted")

def cmd_linger(listener, rest, command):
    if listener.session is None:
        listener.reply("-ERR not controlling a session")
        return
    if not rest:
        listener.linger_s = -1
        listener.reply("+OK will linger")
        return
    seconds = int(rest) if rest.isdigit() else 0
    listener.linger_s = seconds
    listener.reply(f"+OK will linger {seconds} seconds")

def cmd_nolinger(listener, rest, command):
    if listener.session is None:
        listener.reply("-ERR not controlling a session")
        return
    listener.linger_s = None
    listener.reply("+OK will not linger")

def cmd_getvar(listener, rest, command):
    value = listener.session.channel.variables.get(rest) if (listener.session is not None and rest) else None
    listener.reply(value if value else "-ERR command not found")

def cmd_resume(listener, rest, command):
    if listener.session is not None:
        listener.session.channel.variables.set("socket_resume", "true")
    listener.reply("+OK")

def cmd_sendmsg(listener, rest, command):
    target = rest.strip() or command.header("session-id") or ""
    if not target and listener.session is not None:
        target = listener.session.uuid
    session = listener.switch.sessions.get(target)
    if session is None:
        listener.reply(f"-ERR invalid session id [{target}]")
        return
    if listener.outbound and session is listener.session and not listener.async_mode and (command.header("async") or "").lower() != "true":
        listener.held_frames = []
        try:
            session.run_command_inline(command)
        finally:
            held, listener.held_frames = listener.held_frames, None
            listener.reply("+OK")
            for frame in held:
                listener.send(frame)
        return
    session.queue_command(command)
    listener.reply("+OK")

def cmd_sendevent(listener, rest, command):
    event_uuid = listener.switch.send_event(rest.strip(), command)
    listener.reply(f"+OK {event_uuid}")

def cmd_log(listener, rest, command):
    level = rest.strip()
    listener.reply(f"+OK log level {level} [{_LOG_LEVELS.get(level.lower(), 7)}]" if level else "+OK log level  [7]")

def cmd_nolog(listener, rest, command):
    listener.reply("+OK no longer logging")


_LOG_LEVELS = {"console": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}
ALWAYS_ALLOWED = {"exit", "filter", "resume", "connect", "getvar", "myevents", "divert_events", "sendmsg"}
COMMANDS = {
    "exit": cmd_exit, "...": cmd_exit, "connect": cmd_connect,
    "api": cmd_api, "bgapi": cmd_bgapi, "event": cmd_event,
    "nixevent": cmd_nixevent, "noevents": cmd_noevents, "filter": cmd_filter,
    "myevents": cmd_myevents, "divert_events": cmd_divert_events,
    "linger": cmd_linger, "nolinger": cmd_nolinger, "getvar": cmd_getvar,
    "resume": cmd_resume, "sendmsg": cmd_sendmsg, "sendevent": cmd_sendevent,
    "log": cmd_log, "nolog": cmd_nolog,
}
