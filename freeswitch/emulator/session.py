"""A channel's session: the thread of control that runs its applications, as switch_core_session does.

Applications run one at a time in the session greenlet. Apps that read media (park, playback, play_and_get_digits,
sleep, bridge) call `pump()`, which dequeues DTMF (firing DTMF events) and runs queued sendmsg commands nested
inside the running app unless an event-lock is held: exactly the nesting that FreeSWITCH shows.
"""

import collections
import logging

import gevent
import gevent.event

from freeswitch.emulator.cdr import hangup_variables
from freeswitch.emulator.channel import Channel, cause_from_string
from freeswitch.emulator.events import EXTENDED_DATA_EVENTS, Event
from freeswitch.emulator.wire import Command

log = logging.getLogger(__name__)

MAX_PRIVATE_QUEUE = 1000


class AppError(Exception):
    """An application could not run (bad arguments, no media)."""


class Session:
    def __init__(self, switch, channel: Channel):
        self.switch = switch
        self.channel = channel
        self.uuid = channel.uuid
        self.private_queue = collections.deque()
        self.dtmf_queue = collections.deque()
        self.wakeup = gevent.event.Event()
        self.lock_depth = 0
        self.break_requested = False
        self.controlled = False           # an outbound socket listener controls this session
        self.listener = None
        self.recordings = {}              # resolved path -> RecordingBug
        self.digit_machine = None
        self.playing = None               # the Source currently sent to this leg, if any
        self.hangup_initiator = None      # "kill" (uuid_kill of this channel) or "remote"
        self.destroyed = gevent.event.Event()
        self.hung_up = gevent.event.Event()
        self.holds = 0                    # listeners that keep the session from being destroyed (linger)
        self.greenlet = None
        self.dialplan = []                # [(app, arg)] run after routing
        self.inbound_listeners = set()    # inbound sockets bound with `myevents <uuid>`
        self.controller_ready = gevent.event.Event()
        self.orphaned = False

    # -- events -----------------------------------------------------------------------------------------------

    def new_event(self, name, subclass=None, extended=None):
        event = self.switch.core.new_event(name, subclass)
        self.channel.event_data(event, name in EXTENDED_DATA_EVENTS if extended is None else extended)
        return event

    def fire(self, name, extra=(), subclass=None, body=None):
        event = self.new_event(name, subclass)
        event.extend(extra)
        event.body = body
        self.switch.fire(event)
        return event

    def set_state(self, state):
        self.channel.set_state(state)
        self.fire("CHANNEL_STATE")

    def set_call_state(self, call_state):
        original = self.channel.call_state
        self.channel.call_state = call_state
        event = self.switch.core.new_event("CHANNEL_CALLSTATE")
        event.add("Original-Channel-Call-State", original)
        event.add("Channel-Call-State-Number", str(_CALL_STATE_NUMBERS.get(call_state, 0)))
        self.channel.event_data(event, False)
        self.switch.fire(event)

    # -- life cycle -------------------------------------------------------------------------------------------

    def start(self):
        self.greenlet = gevent.spawn(self._run)
        self.greenlet.name = f"session-{self.uuid}"
        return self.greenlet

    def _run(self):
        try:
            self._route_and_execute()
        except gevent.GreenletExit:
            raise
        except Exception:  # a bug in an emulated app must not take the switch down: hang up like a crash would
            log.exception("session %s crashed", self.uuid)
            self.hangup("DESTINATION_OUT_OF_ORDER")
        finally:
            if self.channel.up:
                self.hangup("NORMAL_CLEARING")
            self._report_and_destroy()

    def _route_and_execute(self):
        self.fire("CHANNEL_CREATE")
        self.set_call_state("RINGING")   # the trunk's INVITE is ringing us
        dialplan = self.dialplan
        while True:
            self.set_state("CS_ROUTING")
            self.set_state("CS_EXECUTE")
            for app, arg in dialplan:
                if not self.channel.up or self.channel.transfer_to:
                    break
                self.execute(app, arg)
            if not self.channel.up:
                return
            if not self.channel.transfer_to:
                break
            dialplan = self._route_transfer()
        if self.channel.up:
            log.debug("%s executed the last dialplan instruction, hanging up", self.channel.name)
            self.hangup("NORMAL_CLEARING")

    def _route_transfer(self):
        """switch_ivr_session_transfer took effect: the dialplan of the new destination and context."""
        destination, context = self.channel.transfer_to
        self.channel.transfer_to = None
        self.channel.taken_over = False
        self.channel.profile.destination_number = destination
        self.channel.profile.context = context
        return self.switch.dialplan_for(self, context, destination)

    def _report_and_destroy(self):
        channel = self.channel
        self.set_state("CS_HANGUP")
        for bug in list(self.recordings.values()):
            bug.stop("hangup")
        self.set_call_state("HANGUP")
        self._set_hangup_variables()
        channel.set_state("CS_REPORTING")
        self.fire("CHANNEL_STATE")
        event = self.switch.core.new_event("CHANNEL_HANGUP_COMPLETE")
        event.add("Hangup-Cause", channel.hangup_cause)
        channel.event_data(event, True)
        self.switch.fire(event)
        self.switch.session_reported(self)
        # A lingering listener holds the session (a read lock in FreeSWITCH) until it lets go.
        while self.holds > 0:
            self.wakeup.wait(timeout=1.0)
            self.wakeup.clear()
        self.fire("CHANNEL_DESTROY")
        channel.set_state("CS_DESTROY")
        self.fire("CHANNEL_STATE")
        self.destroyed.set()
        self.switch.session_destroyed(self)

    def _set_hangup_variables(self):
        channel = self.channel
        v = channel.variables
        disposition = None
        if channel.profile.source == "mod_sofia":
            disposition = "recv_bye" if self.hangup_initiator == "remote" else "send_bye"
        for name, value in hangup_variables(channel.times, channel.hangup_cause, self.switch.clock.epoch_us(),
                                            channel.profile.caller_id_name, channel.profile.caller_id_number,
                                            v.get("current_application", ""), v.get("current_application_data"),
                                            disposition):
            v.set(name, value)

    # -- answer and hangup ------------------------------------------------------------------------------------

    def answer(self):
        channel = self.channel
        if channel.answer_state == "answered" or not channel.up:
            return
        channel.times["answered"] = self.switch.clock.epoch_us()
        channel.answered_at = self.switch.clock.now()
        if channel.media_started_at is None:
            channel.media_started_at = channel.answered_at
        channel.answer_state = "answered"
        self.switch.profiles.on_answer(channel)
        self.fire("CHANNEL_ANSWER")
        self.set_call_state("ACTIVE")
        self.switch.scenario_hook("answered", self)

    def pre_answer(self):
        channel = self.channel
        if channel.answer_state in ("answered", "early") or not channel.up:
            return
        channel.times["progress_media"] = self.switch.clock.epoch_us()
        channel.media_started_at = self.switch.clock.now()
        channel.answer_state = "early"
        self.fire("CHANNEL_PROGRESS_MEDIA")
        self.set_call_state("EARLY")

    def hangup(self, cause="NORMAL_CLEARING", initiator="local"):
        channel = self.channel
        if not channel.up:
            return False
        channel.up = False
        channel.state = "CS_HANGUP"      # the state number moves now; Channel-State follows when the app returns
        channel.hangup_cause = cause_from_string(cause)
        channel.times["hangup"] = self.switch.clock.epoch_us()
        channel.hungup_at = self.switch.clock.now()
        channel.answer_state = "hangup"
        self.hangup_initiator = initiator
        self.fire("CHANNEL_HANGUP")
        self.hung_up.set()
        self.wakeup.set()
        if channel.peer is not None:
            peer_session = self.switch.sessions.get(channel.peer.uuid)
            if peer_session is not None:
                peer_session.wakeup.set()
        self.switch.session_hung_up(self)
        return True

    # -- commands and digits from outside ---------------------------------------------------------------------

    def queue_command(self, command):
        """A sendmsg for this session (async): it runs when the session next pumps its private events."""
        if len(self.private_queue) >= MAX_PRIVATE_QUEUE:
            raise AppError("private event queue full")
        self.private_queue.append(command)
        self.wakeup.set()

    def queue_app(self, app, arg=""):
        """Run an application as a broadcast (what bind_digit_action's exec: does)."""
        headers = [("call-command", "execute"), ("execute-app-name", app)]
        if arg:
            headers.append(("execute-app-arg", arg))
        self.queue_command(Command("sendmsg", headers, b""))

    def receive_dtmf(self, digits, source="RTP", duration=2000, from_endpoint=True):
        """Digits arriving on this leg. Endpoint digits pass the digit machine when bindings exist."""
        for digit in digits:
            if from_endpoint and self.digit_machine is not None and self.digit_machine.active:
                self.digit_machine.feed(digit)
            else:
                self.dtmf_queue.append((digit, duration, source, False))
        self.wakeup.set()

    def request_break(self, all_=False):
        self.break_requested = True
        if all_:
            self.private_queue.clear()
        self.wakeup.set()

    # -- the controlling socket -----------------------------------------------------------------------------

    def controller_connected(self, listener):
        self.controlled = True
        self.controller_ready.set()

    def listener_gone(self, listener, orphan=False):
        """The outbound socket ended. An `exit` straight after `connect` leaves the call parked (seen live)."""
        self.inbound_listeners.discard(listener)
        if listener is not self.listener:
            return
        if orphan and self.channel.up:
            self.orphaned = True
        else:
            self.controlled = False
        self.controller_ready.set()
        self.wakeup.set()

    def take_hold(self):
        self.holds += 1

    def release_hold(self):
        self.holds = max(0, self.holds - 1)
        self.wakeup.set()

    def bound_listeners(self):
        listeners = set(self.inbound_listeners)
        if self.listener is not None:
            listeners.add(self.listener)
        return listeners

    def run_command_inline(self, command):
        """Static socket mode: the command runs before its +OK is sent."""
        self.switch.run_private_command(self, command)

    # -- the pump ---------------------------------------------------------------------------------------------

    def pump(self, dtmf=True):
        """Dequeue DTMF (firing events) and run queued commands nested here unless event-locked.

        Returns the digits dequeued, for apps that read them.
        """
        digits = []
        while dtmf and self.dtmf_queue:
            digit, duration, source, released = self.dtmf_queue.popleft()
            self.fire("DTMF", [("DTMF-Digit", digit), ("DTMF-Duration", str(duration)), ("DTMF-Source", source)])
            if released:  # a digit the digit machine let go is followed by a header-less `digits:` event
                headerless = Event([("digits", digit)])
                self.channel.event_data(headerless, True)
                self.switch.fire(headerless)
            digits.append(digit)
            if self.channel.peer is not None:  # relayed to the other leg as RFC 2833: its phone hears it
                self.switch.scenario_hook("dtmf_relayed", self, digit=digit, to_uuid=self.channel.peer.uuid)
        while self.private_queue and self.lock_depth == 0 and self.channel.up:
            command = self.private_queue.popleft()
            self.switch.run_private_command(self, command)
        return digits

    def wait(self, timeout_s):
        """Sleep up to timeout_s of virtual time; wake early on a command, digit, break or hangup.

        Returns at once once the channel is down or a break is pending: a nested app may have consumed the
        wake-up that announced it.
        """
        if not self.channel.up or self.break_requested:
            self.wakeup.clear()
            return
        if timeout_s is None:
            self.wakeup.wait()
        else:
            self.wakeup.wait(timeout=self.switch.clock.real_seconds(timeout_s))
        self.wakeup.clear()

    def interrupted(self):
        return not self.channel.up or self.break_requested

    # -- application execution --------------------------------------------------------------------------------

    def execute(self, app_name, arg="", app_uuid=None, uuid_name=None, loops=1, event_lock=False,
                from_sendmsg=False):
        """switch_core_session_execute_application: the events and variables around one application."""
        apps = self.switch.applications
        app = apps.get(app_name)
        if app is None:
            log.info("Invalid Application %s", app_name)
            self.hangup("DESTINATION_OUT_OF_ORDER")
            return
        if not self.channel.up and not getattr(app, "zombie_exec", False):
            return
        import uuid as uuidlib
        app_uuid = app_uuid or str(uuidlib.uuid4())
        expanded = self.switch.expand(self, arg or "")
        v = self.channel.variables
        if event_lock:
            self.lock_depth += 1
        try:
            total = loops if loops and loops > 0 else 1
            iteration = 0
            while True:
                iteration += 1
                if from_sendmsg:
                    v.set("current_loop", str(iteration))
                    v.set("total_loops", str(total))
                started = self.switch.clock.now()
                self._exec_once(app, app_name, expanded, app_uuid, uuid_name)
                if iteration >= total and loops >= 0:
                    break
                if self.switch.clock.now() - started < 0.5 or not self.channel.up:
                    break
        finally:
            if event_lock:
                self.lock_depth -= 1
                if self.private_queue:
                    self.wakeup.set()

    def _exec_once(self, app, app_name, expanded, app_uuid, uuid_name):
        v = self.channel.variables
        v.set("current_application", app_name)
        v.set("current_application_data", expanded)
        v.set("current_application_response", None)
        app_headers = [("Application", app_name), ("Application-Data", expanded), ("Application-UUID", app_uuid)]
        if uuid_name:
            app_headers.append(("Application-UUID-Name", uuid_name))
        self.fire("CHANNEL_EXECUTE", app_headers)
        self.switch.scenario_hook("execute", self, app=app_name, arg=expanded)
        v.set("current_application", app_name)
        self.break_requested = False
        try:
            app(self, expanded)
        except AppError as exc:
            log.info("%s %s: %s", self.channel.name, app_name, exc)
        self.break_requested = False
        response = v.get("current_application_response") or "_none_"
        done_headers = [("Application", app_name), ("Application-Data", expanded), ("Application-Response", response),
                        ("Application-UUID", app_uuid)]
        if uuid_name:
            done_headers.append(("Application-UUID-Name", uuid_name))
        self.fire("CHANNEL_EXECUTE_COMPLETE", done_headers)

    def write_audio(self, position, n):
        """What FreeSWITCH sends to this leg: the prompt being played, else the bridged peer, else None (nothing)."""
        if self.playing is not None:
            return self.playing.read(n)
        peer = self.channel.peer
        if peer is not None and self.channel.media_started_at is not None:
            t = self.channel.media_started_at + position / self.channel.rate_hz
            return peer.read_audio_at(t, n)
        return None

    def set_response(self, text):
        self.channel.variables.set("current_application_response", text)


_CALL_STATE_NUMBERS = {"DOWN": 0, "DIALING": 1, "RINGING": 2, "EARLY": 3, "ACTIVE": 4, "HELD": 5,
                       "RING_WAIT": 6, "HANGUP": 7, "UNHELD": 8}
