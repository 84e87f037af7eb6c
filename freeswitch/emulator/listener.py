"""One Event Socket connection, inbound (a client connected to us) or outbound (the socket app connected out).

Mirrors mod_event_socket's listener: authentication, subscriptions and filters, the per-socket event format,
myevents binding, linger, and the exact reply texts of parse_command.
"""

import logging
import re

import gevent
import gevent.queue

from freeswitch.emulator import wire
from freeswitch.emulator.commands import ALWAYS_ALLOWED, COMMANDS
from freeswitch.emulator.events import MYEVENTS

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
        handler = COMMANDS.get(word)
        if handler is None or (self.outbound and not self.full and word not in ALWAYS_ALLOWED):
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
