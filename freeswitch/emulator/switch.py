"""The emulated switch: sessions, the event bus, sendmsg dispatch, variable expansion and background work."""

import logging
import re
import uuid as uuidlib

import gevent

from freeswitch.emulator import wire
from freeswitch.emulator.api import ApiCommands
from freeswitch.emulator.apps import APPLICATIONS
from freeswitch.emulator.channel import cause_from_string
from freeswitch.emulator.clock import VirtualClock
from freeswitch.emulator.events import Core, Event
from freeswitch.emulator.faults import Faults
from freeswitch.emulator.media import MediaTicker
from freeswitch.emulator.profiles import Profiles
from freeswitch.emulator.session import Session

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 20.0
_VAR_REF = re.compile(r"\$\{([^}]+)\}")


class Switch:
    def __init__(self, *, speed=1.0, password="ClueCon", recordings_dir=None, hostname=None, sounds_dir=None):
        self.clock = VirtualClock(speed)
        self.core = Core(self.clock, hostname=hostname)
        self.password = password
        self.recordings_dir = recordings_dir
        self.sounds_dir = sounds_dir
        self.sessions = {}
        self.listeners = set()           # every ESL connection
        self._unbound = set()            # listeners that may want any channel's events
        self._bound = {}                 # uuid -> listeners with `myevents` on that channel
        self.applications = APPLICATIONS
        self.apis = ApiCommands(self)
        self.profiles = Profiles(self)
        self.faults = Faults()
        self.media = MediaTicker(self)
        self.observers = []              # callables(kind, session, **info) for scenarios and summaries
        self.users = {}                  # extension -> agent behaviour (scenario), for bridge user/NNNN
        self.sessions_since_start = 0
        self.peak_sessions = 0
        self._greenlets = [gevent.spawn(self._heartbeat_loop), self.media.start()]

    def stop(self):
        for listener in list(self.listeners):
            listener.disconnect("The system is being shut down.\n")
        for session in list(self.sessions.values()):
            session.hangup("MANAGER_REQUEST")
        gevent.killall(self._greenlets, block=False)

    @staticmethod
    def new_uuid():
        return str(uuidlib.uuid4())

    # -- sessions ----------------------------------------------------------------------------------------------

    def add_session(self, session: Session):
        self.sessions[session.uuid] = session
        self.sessions_since_start += 1
        self.peak_sessions = max(self.peak_sessions, len(self.sessions))

    def session_hung_up(self, session):
        self.scenario_hook("hangup", session)
        if session.hangup_initiator == "kill":
            for listener in session.bound_listeners():
                listener.channel_down()

    def session_reported(self, session):
        if session.hangup_initiator != "kill":
            for listener in session.bound_listeners():
                listener.channel_down()

    def session_destroyed(self, session):
        self.sessions.pop(session.uuid, None)
        self.scenario_hook("destroyed", session)

    def scenario_hook(self, kind, session, **info):
        for observer in list(self.observers):
            try:
                observer(kind, session, **info)
            except Exception:  # an observer's bug must not break the call it watches
                log.exception("observer failed on %s", kind)

    # -- events ------------------------------------------------------------------------------------------------

    def add_listener(self, listener):
        self.listeners.add(listener)
        self._unbound.add(listener)

    def bind_listener(self, listener, uuid):
        """`myevents`: from now on the listener only gets that channel's events, so index it by uuid."""
        self._unbound.discard(listener)
        self._bound.setdefault(uuid, set()).add(listener)

    def remove_listener(self, listener):
        self.listeners.discard(listener)
        self._unbound.discard(listener)
        for uuid in [u for u, group in self._bound.items() if listener in group]:
            group = self._bound[uuid]
            group.discard(listener)
            if not group:
                del self._bound[uuid]

    def fire(self, event: Event):
        targets = list(self._unbound)
        uuid = event.get("Unique-ID")
        if uuid in self._bound:
            targets += self._bound[uuid]
        if event.get("Event-Name") == "BACKGROUND_JOB":
            targets += self._bound.get(event.get("Job-Owner-UUID"), ())
        for listener in targets:
            listener.offer(event)

    def _heartbeat_loop(self):
        # A global 20 s clock, not timed from any subscription (seen live).
        while True:
            self.clock.sleep(HEARTBEAT_INTERVAL_S)
            self.fire(self.heartbeat_event())

    def heartbeat_event(self):
        event = self.core.new_event("HEARTBEAT")
        uptime_s = int(self.clock.now())
        event.extend([
            ("Event-Info", "System Ready"),
            ("Up-Time", _uptime_text(uptime_s)),
            ("FreeSWITCH-Version", "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit"),
            ("Uptime-msec", str(int(self.clock.now() * 1000))),
            ("Session-Count", str(len(self.sessions))),
            ("Max-Sessions", "1000000"),
            ("Session-Per-Sec", "30"), ("Session-Per-Sec-Last", "0"), ("Session-Per-Sec-Max", "0"),
            ("Session-Per-Sec-FiveMin", "0"),
            ("Session-Since-Startup", str(self.sessions_since_start)),
            ("Session-Peak-Max", str(self.peak_sessions)), ("Session-Peak-FiveMin", str(self.peak_sessions)),
            ("Idle-CPU", "99.000000"),
        ])
        return event

    def send_event(self, name_and_subclass, command):
        """sendevent: the client's headers first, then Command and Event-UUID, then the common headers."""
        name = (name_and_subclass.split() or ["CUSTOM"])[0].upper()
        event_uuid = self.new_uuid()
        common = self.core.new_event(name)
        event = Event(list(command.headers))
        event.add("Command", f"sendevent {name}")
        event.add("Event-UUID", event_uuid)
        event.extend(common.headers)
        if command.body:
            event.body = command.body.decode("utf-8", "replace")
        self.fire(event)
        return event_uuid

    # -- ESL services --------------------------------------------------------------------------------------------

    def connect_reply(self, session, async_mode, full) -> bytes:
        """The outbound `connect` reply: a CHANNEL_DATA event, urlencoded, with the reply headers at the end."""
        channel = session.channel
        event = self.core.new_event("CHANNEL_DATA")
        event.extend(channel.profile.headers("Channel", channel.times))
        event.extend(channel.basic_data())
        event.extend(channel.variable_headers())
        seen = set()
        unique = []
        for name, value in event.headers:  # CHANNEL_DATA replaces duplicate headers
            if name not in seen:
                seen.add(name)
                unique.append((name, value))
        unique += [("Content-Type", "command/reply"), ("Reply-Text", "+OK\n"),
                   ("Socket-Mode", "async" if async_mode else "static"),
                   ("Control", "full" if full else "single-channel")]
        return wire.serialize_plain(unique)

    def api(self, command_line, listener=None) -> str:
        return self.apis.execute(command_line, listener)

    def background_job(self, command_line, job_uuid, owner_uuid, listener):
        result = self.api(command_line, listener)
        name, _, arg = command_line.strip().partition(" ")
        event = self.core.new_event("BACKGROUND_JOB")
        event.add("Job-UUID", job_uuid)
        if owner_uuid:
            event.add("Job-Owner-UUID", owner_uuid)
        event.add("Job-Command", name)
        event.add("Job-Command-Arg", arg)
        event.body = result
        self.fire(event)

    # -- sendmsg ---------------------------------------------------------------------------------------------------

    def run_private_command(self, session, command):
        """What switch_ivr_parse_event does with one queued sendmsg."""
        call_command = (command.header("call-command") or "").lower()
        if call_command == "execute":
            app = command.header("execute-app-name") or ""
            arg = command.header("execute-app-arg")
            if not arg and command.body:
                arg = command.body.decode("utf-8", "replace")
            loops = int(command.header("loops") or 1)
            session.execute(app, arg or "", app_uuid=command.header("event-uuid"),
                            uuid_name=command.header("event-uuid-name"), loops=loops,
                            event_lock=(command.header("event-lock") or "").lower() == "true", from_sendmsg=True)
        elif call_command == "hangup":
            session.hangup(cause_from_string(command.header("hangup-cause") or "NORMAL_CLEARING"),
                           initiator="local")
        elif call_command == "unicast" or call_command == "nomedia" or call_command == "xferext":
            log.info("sendmsg %s is accepted but not emulated", call_command)

    def dialplan_for(self, session, context, destination):
        """What a transferred channel runs: context `default` as freeswitch/conf's agent extensions; any other
        context (`public`) the channel's own dialplan again, socket app and all."""
        if context == "default":
            from freeswitch.emulator.transfer import agent_extension  # transfer.py builds on the session module
            return agent_extension(self, session, destination)
        return session.dialplan

    def expand(self, session, text):
        """Channel-variable expansion of ${name}; an unknown variable expands to nothing."""
        if "${" not in text:
            return text
        variables = session.channel.variables
        return _VAR_REF.sub(lambda m: variables.get(m.group(1), ""), text)


def _uptime_text(seconds):
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"0 years, {days} days, {hours} hours, {minutes} minutes, {secs} seconds, 0 milliseconds, "
            f"0 microseconds")
