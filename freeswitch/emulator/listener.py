"""One Event Socket connection, inbound (a client connected to us) or outbound (the socket app connected out).

Mirrors mod_event_socket's listener: authentication, subscriptions and filters, the per-socket event format,
myevents binding, linger, and the exact reply texts of parse_command.
"""

import logging
import re

import gevent
import gevent.queue

from freeswitch.emulator import wire
from freeswitch.emulator.events import EVENT_NAMES, MYEVENTS

log = logging.getLogger(__name__)

MAX_QUEUED_FRAMES = 100_000
FIRST_PACKET_TIMEOUT_S = 25.0
READ_BYTES = 65536


class Listener:
    def __init__(self, switch, sock, *, session=None, async_mode=True, full=True):
        self.switch = switch
        self.sock = sock
        self.outbound = session is not None
        self.session = session                 # bound session (outbound, or inbound after myevents <uuid>)
        self.async_mode = async_mode
        self.full = full
        self.authenticated = self.outbound
        self.connected_seen = False
        self.commands_seen = 0
        self.format = "plain"
        self.all_events = False
        self.event_names = set()
        self.custom_subclasses = set()
        self.myevents = False
        self.filters = []
        self.linger_s = None                   # None: off; -1: forever; N: seconds
        self.linger_sent = False
        self.closing = False
        self.held_frames = None                # static mode: events wait until the +OK is out
        self.out = gevent.queue.Queue(MAX_QUEUED_FRAMES)
        self.reader = wire.CommandReader()
        self.lost_events = 0
        self._greenlets = []

    # -- running ---------------------------------------------------------------------------------------------

    def start(self):
        self._greenlets = [gevent.spawn(self._write_loop), gevent.spawn(self._read_loop)]
        self.switch.add_listener(self)
        if not self.outbound:
            self.send(b"Content-Type: auth/request\n\n")
        return self._greenlets[1]

    def _write_loop(self):
        while True:
            frame = self.out.get()
            if frame is None:
                break
            try:
                self.sock.sendall(frame)
            except OSError:
                break
        self._close_socket()

    def _read_loop(self):
        try:
            while not self.closing:
                timeout = FIRST_PACKET_TIMEOUT_S if (self.outbound and not self.connected_seen) else None
                data = self._recv(timeout)
                if data is None:
                    self._silent_controller()
                    return
                if not data:
                    break
                for command in self.reader.feed(data):
                    self.handle(command)
                    if self.closing:
                        return
        except wire.CommandTooLarge:
            log.info("dropping connection: command body too large")
        except OSError:
            pass
        finally:
            self.finish(by_client=True)

    def _recv(self, timeout_virtual_s):
        if self.switch.faults.stalled(self):
            gevent.sleep(0.01)
        if timeout_virtual_s is None:
            return self.sock.recv(READ_BYTES)
        with gevent.Timeout(self.switch.clock.real_seconds(timeout_virtual_s), False):
            return self.sock.recv(READ_BYTES)
        return None

    def _silent_controller(self):
        """No packet within 25 s: notice, close; the channel stays parked in the socket app (as seen live)."""
        self.send(wire.disconnect_notice(self.session.uuid if self.session else None))
        self.finish(by_client=False, orphan=True)

    def send(self, frame: bytes):
        if self.closing and frame is not None and not frame.startswith(b"Content-Type: text/disconnect-notice"):
            return
        delay_s = self.switch.faults.reply_delay_s(self)
        if delay_s:
            gevent.sleep(delay_s)
        try:
            self.out.put_nowait(frame)
        except gevent.queue.Full:
            self.lost_events += 1

    def finish(self, by_client, orphan=False):
        """The listener ends: tell the session (which may continue its dialplan) and close after the queue drains."""
        if self.closing:
            return
        self.closing = True
        self.switch.remove_listener(self)
        session = self.session
        if session is not None and self.outbound:
            session.listener_gone(self, orphan=orphan or self.commands_seen <= 1)
        if session is not None and self.linger_s is not None and self.linger_sent:
            session.release_hold()
        self.out.put(None)

    def kill(self):
        """Fault injection: drop the TCP connection without a notice."""
        self.closing = True
        self.switch.remove_listener(self)
        if self.session is not None and self.outbound:
            self.session.listener_gone(self, orphan=False)
        self._close_socket()

    def _close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def disconnect(self, message=wire.GOODBYE):
        bound = self.session.uuid if self.session is not None else None
        self.send(wire.disconnect_notice(bound, message))
        self.finish(by_client=False)

    # -- events ----------------------------------------------------------------------------------------------

    def wants(self, event) -> bool:
        name = event.get("Event-Name")
        if name is None:
            # bind_digit_action's header-less events reach a socket bound to that channel with myevents
            return self.myevents and self.session is not None and event.get("Unique-ID") == self.session.uuid
        if not (self.all_events or name in self.event_names or (self.myevents and name in MYEVENTS)):
            if not (name == "CUSTOM" and event.get("Event-Subclass") in self.custom_subclasses):
                return False
        if name == "CUSTOM" and not self.all_events and "CUSTOM" not in self.event_names:
            if event.get("Event-Subclass") not in self.custom_subclasses:
                return False
        if not self._passes_filters(event):
            return False
        if self.myevents and self.session is not None:
            # mod_event_socket: with myevents only the bound channel's events, and its own background jobs
            if event.get("Job-Owner-UUID") == self.session.uuid:
                return True
            return event.get("Unique-ID") == self.session.uuid
        return True

    def _passes_filters(self, event):
        """mod_event_socket's filters: once any exists, an event needs a header that matches a positive filter
        (`+` or none) and none that matches a negative one (`-`); a value starting with `/` is a regex."""
        if not self.filters:
            return True
        send = False
        for header, value in self.filters:
            actual = event.get(header)
            if actual is None:
                continue
            pattern = value.lstrip(" +-")
            signs = value[:len(value) - len(pattern)].replace(" ", "")
            positive = not signs.endswith("-")
            if send and positive:
                continue
            if value.startswith("/"):
                matched = re.search(value.strip("/"), actual) is not None
            else:
                matched = actual.lower() == pattern.lower()
            if matched:
                if not positive:
                    return False
                send = True
        return send

    def offer(self, event):
        if self.closing or not self.authenticated or not self.wants(event):
            return
        frame = wire.event_envelope(self.format, event.serialize(self.format))
        if self.held_frames is not None:
            self.held_frames.append(frame)
        else:
            self.send(frame)

    # -- commands --------------------------------------------------------------------------------------------

    def handle(self, command):
        self.commands_seen += 1
        line = command.line.strip()
        if self.outbound and not self.connected_seen:
            # Only the reply to `connect` goes out on the first-packet path (mod_event_socket).
            if line == "connect":
                self.connected_seen = True
                self.send(self.switch.connect_reply(self.session, self.async_mode, self.full))
                self.session.controller_connected(self)
            return
        word, _, rest = line.partition(" ")
        if not self.authenticated:
            self._before_auth(word, rest)
            return
        handler = _COMMANDS.get(word)
        if handler is None or (self.outbound and not self.full and word not in _ALWAYS_ALLOWED):
            self.reply("-ERR command not found")
            return
        handler(self, rest.strip(), command)

    def reply(self, text, extra=()):
        self.send(wire.command_reply(text, extra))

    def _before_auth(self, word, rest):
        if word == "auth":
            if rest == self.switch.password:
                self.authenticated = True
                self.reply("+OK accepted")
            else:
                self.reply("-ERR invalid")
                self.disconnect()
        elif word in ("exit", "..."):
            self.reply("+OK bye")
            self.disconnect()
        else:
            self.reply("-ERR command not found")

    def _cmd_exit(self, rest, command):
        self.reply("+OK bye")
        self.disconnect()

    def _cmd_connect(self, rest, command):
        self.send(self.switch.connect_reply(self.session, self.async_mode, self.full))

    def _cmd_api(self, rest, command):
        self.send(wire.api_response(self.switch.api(rest, listener=self)))

    def _cmd_bgapi(self, rest, command):
        job_uuid = command.header("Job-UUID") or self.switch.new_uuid()
        self.reply(f"+OK Job-UUID: {job_uuid}", [("Job-UUID", job_uuid)])
        owner = self.session.uuid if self.session is not None else None
        gevent.spawn(self.switch.background_job, rest, job_uuid, owner, self)

    def _cmd_event(self, rest, command):
        tokens = rest.split()
        fmt = "plain"
        if tokens and tokens[0].lower() in ("plain", "json", "xml"):
            fmt = tokens.pop(0).lower()
        enabled = False
        custom = False
        for token in tokens:
            if custom:
                self.custom_subclasses.add(token)
                enabled = True
                continue
            name = token.upper()
            if name.startswith("SWITCH_EVENT_"):
                name = name[len("SWITCH_EVENT_"):]
            if name == "ALL":
                self.all_events = True
                enabled = True
            elif name == "CUSTOM":
                custom = True
                self.event_names.add("CUSTOM")
                enabled = True
            elif name in EVENT_NAMES:
                self.event_names.add(name)
                enabled = True
        if not enabled:
            self.reply("-ERR no keywords supplied")
            return
        self.format = fmt
        self.reply(f"+OK event listener enabled {fmt}")

    def _cmd_nixevent(self, rest, command):
        tokens = [t.upper() for t in rest.split()]
        if not tokens:
            self.reply("-ERR no keywords supplied")
            return
        for name in tokens:
            if name == "ALL":
                self.all_events = False
                self.event_names.clear()
                self.custom_subclasses.clear()
            self.event_names.discard(name)
        self.reply("+OK events nixed")

    def _cmd_noevents(self, rest, command):
        listening = self.all_events or self.event_names or self.custom_subclasses or self.myevents
        if not listening:
            self.reply("-ERR not listening for events")
            return
        self.all_events = False
        self.event_names.clear()
        self.custom_subclasses.clear()
        self.myevents = False
        self.reply("+OK no longer listening for events")

    def _cmd_filter(self, rest, command):
        tokens = rest.split(None, 2)
        if tokens and tokens[0] == "delete":
            if len(tokens) < 2:
                self.reply("-ERR invalid syntax")
                return
            header = tokens[1]
            value = tokens[2] if len(tokens) > 2 else ""
            if header == "all":
                self.filters.clear()
            else:
                self.filters = [(h, v) for h, v in self.filters if not (h == header and (not value or v == value))]
            self.reply(f"+OK filter deleted. [{header}][{value}]")
            return
        if tokens and tokens[0] == "add":
            tokens = tokens[1:] if len(tokens) < 3 else tokens[1:2] + tokens[2].split(None, 1)
        if len(tokens) < 2:
            self.reply("-ERR invalid syntax")
            return
        header, value = tokens[0], tokens[1]
        self.filters.append((header, value))
        self.reply(f"+OK filter added. [{header}]=[{value}]")

    def _cmd_myevents(self, rest, command):
        if self.myevents:
            self.reply("-ERR aready enabled.")
            return
        if self.outbound:
            fmt = rest.split()[0].lower() if rest.split() else ""
            if fmt in ("plain", "json", "xml"):
                self.format = fmt
            self.myevents = True
            self.switch.bind_listener(self, self.session.uuid)
            self.reply("+OK Events Enabled")
            return
        if not rest:
            self.reply("-ERR command not found")
            return
        uuid, _, fmt = rest.partition(" ")
        session = self.switch.sessions.get(uuid)
        if session is None:
            if fmt:
                self.reply("-ERR invalid uuid")
                return
            self.myevents = True
            self.reply("+OK Events Enabled")
            return
        self.session = session
        session.inbound_listeners.add(self)
        self.myevents = True
        self.switch.bind_listener(self, uuid)
        self.reply("+OK Events Enabled")

    def _cmd_divert_events(self, rest, command):
        if self.session is None:
            self.reply("-ERR not controlling a session.")
        elif not rest:
            self.reply("-ERR missing value.")
        elif rest.lower() == "on":
            self.reply("+OK events diverted")
        else:
            self.reply("+OK events not diverted")

    def _cmd_linger(self, rest, command):
        if self.session is None:
            self.reply("-ERR not controlling a session")
            return
        if not rest:
            self.linger_s = -1
            self.reply("+OK will linger")
            return
        seconds = int(rest) if rest.isdigit() else 0
        self.linger_s = seconds
        self.reply(f"+OK will linger {seconds} seconds")

    def _cmd_nolinger(self, rest, command):
        if self.session is None:
            self.reply("-ERR not controlling a session")
            return
        self.linger_s = None
        self.reply("+OK will not linger")

    def _cmd_getvar(self, rest, command):
        value = self.session.channel.variables.get(rest) if (self.session is not None and rest) else None
        self.reply(value if value else "-ERR command not found")

    def _cmd_resume(self, rest, command):
        if self.session is not None:
            self.session.channel.variables.set("socket_resume", "true")
        self.reply("+OK")

    def _cmd_sendmsg(self, rest, command):
        target = rest.strip() or command.header("session-id") or ""
        if not target and self.session is not None:
            target = self.session.uuid
        session = self.switch.sessions.get(target)
        if session is None:
            self.reply(f"-ERR invalid session id [{target}]")
            return
        if self.outbound and session is self.session and not self.async_mode and (command.header("async") or "").lower() != "true":
            self.held_frames = []
            try:
                session.run_command_inline(command)
            finally:
                held, self.held_frames = self.held_frames, None
                self.reply("+OK")
                for frame in held:
                    self.send(frame)
            return
        session.queue_command(command)
        self.reply("+OK")

    def _cmd_sendevent(self, rest, command):
        event_uuid = self.switch.send_event(rest.strip(), command)
        self.reply(f"+OK {event_uuid}")

    def _cmd_log(self, rest, command):
        level = rest.strip()
        self.reply(f"+OK log level {level} [{_LOG_LEVELS.get(level.lower(), 7)}]" if level else "+OK log level  [7]")

    def _cmd_nolog(self, rest, command):
        self.reply("+OK no longer logging")

    # -- the bound channel goes down ----------------------------------------------------------------------------

    def channel_down(self):
        """Called once the bound channel's hangup has reached the point where FreeSWITCH's listener notices it."""
        if self.closing:
            return
        session = self.session
        if self.linger_s is None:
            self.disconnect()
            return
        if self.linger_sent:
            return
        self.linger_sent = True
        session.take_hold()
        self.send(wire.linger_notice(session.uuid, session.channel.name, self.linger_s))
        if self.linger_s >= 0:
            gevent.spawn(self._linger_timeout, self.linger_s)

    def _linger_timeout(self, seconds):
        self.switch.clock.sleep(seconds)
        if not self.closing:
            self.disconnect()


_LOG_LEVELS = {"console": 0, "alert": 1, "crit": 2, "err": 3, "warning": 4, "notice": 5, "info": 6, "debug": 7}
_ALWAYS_ALLOWED = {"exit", "filter", "resume", "connect", "getvar", "myevents", "divert_events", "sendmsg"}
_COMMANDS = {
    "exit": Listener._cmd_exit, "...": Listener._cmd_exit, "connect": Listener._cmd_connect,
    "api": Listener._cmd_api, "bgapi": Listener._cmd_bgapi, "event": Listener._cmd_event,
    "nixevent": Listener._cmd_nixevent, "noevents": Listener._cmd_noevents, "filter": Listener._cmd_filter,
    "myevents": Listener._cmd_myevents, "divert_events": Listener._cmd_divert_events,
    "linger": Listener._cmd_linger, "nolinger": Listener._cmd_nolinger, "getvar": Listener._cmd_getvar,
    "resume": Listener._cmd_resume, "sendmsg": Listener._cmd_sendmsg, "sendevent": Listener._cmd_sendevent,
    "log": Listener._cmd_log, "nolog": Listener._cmd_nolog,
}
