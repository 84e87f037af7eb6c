"""The ESL layer the call flow makes legal decisions with.

`OutboundCall` is greenswitch's OutboundSession with a safe core (see
`eslbase`): one per call, created by `controller.service.CallServer`.

Decisions worth knowing before using it:
- `execute()` stamps a fresh Event-UUID and returns the CHANNEL_EXECUTE_COMPLETE
  whose Application-UUID equals it; never matched by application name.
- When the call goes away (CHANNEL_HANGUP or CHANNEL_HANGUP_COMPLETE for this
  Unique-ID, a disconnect notice of either kind, EOF) every pending command and
  wait fails at once with `CallGone`. An execute in flight at that moment
  raises, even though FreeSWITCH (with linger) still sends that app's
  completion afterwards: a consent step that did not finish before the hangup
  did not finish. `CallGone.app_uuid` names it, and `wait_completion()` (which
  outlives the hangup, not the socket) returns the late completion for
  evidence if one arrives.
- Events the call flow reads (DTMF, CHANNEL_APPLICATION, CUSTOM, and
  bind_digit_action's header-less events) go to a bounded queue read with
  `next_event()`; overflow is counted in `dropped_events`.
"""

import collections
import logging
import time
import uuid as uuidlib

import gevent.queue
from greenswitch.esl import OutboundSession

from controller import eslerrors
from controller.eslbase import SafeProtocol, next_from, remaining_s, wait_for
from controller.eslcmd import (EXECUTE_COMPLETE, HANGUP_EVENTS, api_command, completion_of,
                               event_command, execute_command, getvar_command, hangup_command,
                               is_hangup_of, is_ok, linger_command)
from controller.eslerrors import (CallGone, ESLAuthError, ESLCommandError, ESLConnectionError,  # noqa: F401
                                  ESLError, ESLProtocolError, ESLTimeout)
from controller.eslparse import API_RESPONSE, Frame, FrameParser  # noqa: F401

log = logging.getLogger(__name__)

QUEUED_EVENT_NAMES = frozenset({"DTMF", "CHANNEL_APPLICATION", "CUSTOM", "DETECTED_SPEECH"})
_WAKE = object()  # put in the call event queue to wake a reader when the call goes away


def default_queue_filter(frame):
    """Events a call flow reads: DTMF and named ones, and bind_digit_action's header-less events."""
    name = frame.headers.get("Event-Name")
    return name is None or name in QUEUED_EVENT_NAMES


class OutboundCall(SafeProtocol, OutboundSession):
    """One call on an outbound (`socket ... async full`) connection."""

    completions_kept = 64

    def __init__(self, client_address, sock, *, command_timeout_s=5.0, event_queue_size=64,
                 queue_filter=default_queue_filter):
        self._init_safe(command_timeout_s)
        self.gone_reason = None
        self.hangup_cause = None
        self.dropped_events = 0
        self._queue_filter = queue_filter
        self._call_events = gevent.queue.Queue(maxsize=event_queue_size)
        self._completions = collections.OrderedDict()
        OutboundSession.__init__(self, client_address, sock)
        self.client_address = client_address
        # greenswitch's handlers match completions by app name and wait without
        # timeouts; ours replace them (handlers registered later still run).
        self.event_handlers.clear()

    # ----- identity
    @property
    def uuid(self):
        data = self.session_data or {}
        return data.get("Unique-ID") or data.get("variable_uuid")

    @property
    def gone(self):
        return self.gone_reason is not None

    # ----- commands
    def connect(self, timeout_s=None):
        """Send `connect`; return the channel data (also in `session_data`)."""
        if self.session_data is not None:
            return self.session_data
        reply = self._command_ok("connect", timeout_s)
        self.session_data = reply.headers
        self._outbound_connected = True
        return self.session_data

    def myevents(self, timeout_s=None):
        self._command_ok("myevents", timeout_s)

    def linger(self, linger_s=None, timeout_s=None):
        """Keep the socket after hangup (forever with None: we close it ourselves)."""
        self._command_ok(linger_command(linger_s), timeout_s)

    def subscribe(self, event_names, event_format="plain", timeout_s=None):
        """`event plain ...` on top of myevents (needs `full`), e.g. RECORD_START RECORD_STOP."""
        self._command_ok(event_command(event_names, event_format), timeout_s)

    def execute(self, app, arg=None, *, timeout_s, event_lock=True):
        """Run a dialplan application and return its CHANNEL_EXECUTE_COMPLETE frame.

        Raises ESLTimeout (with `app_uuid`) when it does not complete in time,
        CallGone (with `app_uuid`) when the call goes away first, and
        ESLCommandError when FreeSWITCH refuses the sendmsg.
        """
        self._raise_if_unusable(survive_hangup=False)
        app_uuid = str(uuidlib.uuid4())
        command = execute_command(app, arg, app_uuid, event_lock)
        deadline = time.monotonic() + timeout_s
        waiter = self._waiters.add(completion_of(app_uuid))  # before sending: cannot miss it
        try:
            # FreeSWITCH answers the sendmsg at once; only the application itself may take its whole budget
            self._command_ok(command, min(timeout_s, self.command_timeout_s))
            return wait_for(waiter, remaining_s(deadline), "execute %s [%s]" % (app, app_uuid))
        except CallGone as exc:
            raise CallGone(exc.reason, exc.hangup_cause, app_uuid) from None
        except ESLTimeout as exc:
            raise ESLTimeout(str(exc), app_uuid=app_uuid) from None
        finally:
            self._waiters.discard(waiter)

    def api(self, command, timeout_s=None):
        """Run an API command over this socket (needs `full`); return its output."""
        reply = self.send(api_command(command), timeout_s)
        if reply.content_type != API_RESPONSE:
            raise ESLCommandError("api %s refused: %s" % (command, reply.reply_text), reply.reply_text)
        return reply.body

    def hangup(self, cause="NORMAL_CLEARING", timeout_s=None):
        """`sendmsg call-command: hangup`. Returns False if the call was already gone."""
        command = hangup_command(cause)
        if self.gone:
            return False
        self._command_ok(command, timeout_s)
        return True

    def getvar(self, name, timeout_s=None):
        """A channel variable, or None when unset (FreeSWITCH answers that with -ERR)."""
        text = self.send(getvar_command(name), timeout_s).reply_text
        return None if text.startswith("-ERR") else text

    def _command_ok(self, command, timeout_s):
        reply = self.send(command, timeout_s)
        if not is_ok(reply.reply_text):
            name = command.split("\n", 1)[0]
            raise ESLCommandError("%s refused: %s" % (name, reply.reply_text), reply.reply_text)
        return reply

    def register_expected_event(self, *args, **kwargs):
        raise ESLError("greenswitch's blocking helpers match by app name; use execute()")

    # ----- reading events
    def next_event(self, timeout_s):
        """The next queued DTMF/named event. Raises ESLTimeout, or CallGone once the call is gone."""
        return next_from(self._call_events, timeout_s, lambda: self._raise_if_unusable(survive_hangup=False), _WAKE)

    def completion(self, app_uuid):
        """The CHANNEL_EXECUTE_COMPLETE with this Application-UUID if it has arrived (the last 64 kept)."""
        return self._completions.get(app_uuid)

    def wait_completion(self, app_uuid, timeout_s):
        """Like completion(), but waits; works after hangup while the socket lingers."""
        frame = self._completions.get(app_uuid)
        if frame is not None:
            return frame
        return self.wait_event(completion_of(app_uuid), timeout_s, survive_hangup=True)

    # ----- what the receive greenlet does with events
    def _on_event(self, frame):
        name = frame.headers.get("Event-Name")
        if name == EXECUTE_COMPLETE:
            self._remember_completion(frame)
        self._waiters.offer(frame)  # first: a wait for the hangup event itself succeeds
        if name in HANGUP_EVENTS and is_hangup_of(frame, self.uuid):
            self._call_gone(eslerrors.HANGUP, frame.headers.get("Hangup-Cause"))
        elif not self.gone and self._queue_filter(frame):
            self._queue_call_event(frame)
        self._dispatch(frame)

    def _remember_completion(self, frame):
        app_uuid = frame.headers.get("Application-UUID")
        if app_uuid:
            self._completions[app_uuid] = frame
            while len(self._completions) > self.completions_kept:
                self._completions.popitem(last=False)

    def _queue_call_event(self, item):
        try:
            self._call_events.put_nowait(item)
        except gevent.queue.Full:
            if item is not _WAKE:
                self.dropped_events += 1
                if self.dropped_events & (self.dropped_events - 1) == 0:  # 1, 2, 4, 8...: no log flood
                    log.warning("call %s: event queue full, %d event(s) dropped so far",
                                self.uuid, self.dropped_events)

    def _on_disconnect_notice(self, frame):
        if frame.is_linger_notice:
            self._lingering = True
            self._call_gone(eslerrors.LINGER_NOTICE, None)
        else:
            self._call_gone(eslerrors.DISCONNECT_NOTICE, None)
        super()._on_disconnect_notice(frame)

    def _call_gone(self, reason, hangup_cause):
        if hangup_cause and self.hangup_cause is None:
            self.hangup_cause = hangup_cause
        if self.gone_reason is not None:
            return
        self.gone_reason = reason
        self._outbound_connected = False
        self._fail_pending_replies(self._gone_error)
        self._waiters.fail(self._gone_error, include_survivors=False)
        self._queue_call_event(_WAKE)

    def _connection_lost(self, reason):
        self._call_gone(reason, None)
        super()._connection_lost(reason)

    def _gone_error(self):
        return CallGone(self.gone_reason, self.hangup_cause)

    def _lost_error(self):
        return CallGone(self.lost_reason, self.hangup_cause)

    def _raise_if_unusable(self, survive_hangup):
        if self.lost_reason is not None:
            raise self._lost_error()
        if self.gone_reason is not None and not survive_hangup:
            raise self._gone_error()


from controller.eslinbound import InboundClient, InboundSupervisor  # noqa: E402,F401
