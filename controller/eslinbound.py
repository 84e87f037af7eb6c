"""The controller's inbound connection to FreeSWITCH: API commands and subscriptions.

`InboundClient` is greenswitch's InboundESL with the safe core of `eslbase`;
`InboundSupervisor` keeps one connected, reconnecting with bounded, jittered
exponential back-off and subscribing again after FreeSWITCH restarts.
"""

import logging
import random
import time
import uuid as uuidlib

import gevent
import gevent.event
import gevent.queue
import gevent.socket
from greenswitch import InboundESL

from controller.eslbase import SafeProtocol, next_from, remaining_s, wait_for
from controller.eslcmd import (api_command, auth_command, background_job_of, backoff_delay_s,
                               bgapi_command, event_command, is_ok)
from controller.eslerrors import (ESLAuthError, ESLCommandError, ESLConnectionError, ESLError,
                                  ESLTimeout)
from controller.eslparse import API_RESPONSE

log = logging.getLogger(__name__)

_WAKE = object()


class InboundClient(SafeProtocol, InboundESL):
    """One authenticated inbound connection. Every call takes or defaults a timeout."""

    def __init__(self, host, port, password, *, connect_timeout_s=5.0, command_timeout_s=5.0,
                 event_queue_size=1024):
        self._init_safe(command_timeout_s)
        InboundESL.__init__(self, host, port, password, timeout=connect_timeout_s)
        self.connect_timeout_s = connect_timeout_s
        self.subscriptions = set()
        self.event_format = "plain"
        self.dropped_events = 0
        self._events = gevent.queue.Queue(maxsize=event_queue_size)
        self.sock = None
        self.sock_file = None

    def connect(self):
        """TCP connect, wait for auth/request, authenticate. Raises ESLConnectionError or ESLAuthError."""
        try:
            self.sock = gevent.socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except OSError as exc:
            raise ESLConnectionError("cannot connect to %s:%s: %s" % (self.host, self.port, exc)) from exc
        self.sock.settimeout(None)
        self.connected = True
        self.start_event_handlers()
        try:
            self._authenticate()
        except ESLError:
            self.close(exit_timeout_s=0.2)
            raise

    def _authenticate(self):
        if not self._auth_request_event.wait(timeout=self.connect_timeout_s):
            raise ESLTimeout("no auth/request within %.3g s" % self.connect_timeout_s)
        if self._rejected or self.lost_reason is not None:
            raise ESLAuthError("FreeSWITCH refused the connection")
        reply = self.send(auth_command(self.password))
        if reply.reply_text != "+OK accepted":
            raise ESLAuthError("authentication failed: %s" % reply.reply_text)

    def authenticate(self):
        self._authenticate()

    def api(self, command, timeout_s=None):
        """Run an API command; return its output (FreeSWITCH's own -ERR texts are output too)."""
        reply = self.send(api_command(command), timeout_s)
        if reply.content_type != API_RESPONSE:
            raise ESLCommandError("api %s refused: %s" % (command, reply.reply_text), reply.reply_text)
        return reply.body

    def bgapi(self, command, timeout_s):
        """Run an API command in the background; return its BACKGROUND_JOB event (output in `.body`)."""
        deadline = time.monotonic() + timeout_s
        job_uuid = str(uuidlib.uuid4())
        text = bgapi_command(command, job_uuid)
        if not self.subscriptions & {"BACKGROUND_JOB", "ALL"}:
            self.subscribe(["BACKGROUND_JOB"], self.event_format, timeout_s)
        waiter = self._waiters.add(background_job_of(job_uuid))  # before sending: cannot miss it
        try:
            reply = self.send(text, remaining_s(deadline))
            if not is_ok(reply.reply_text) or reply.headers.get("Job-UUID") != job_uuid:
                raise ESLCommandError("bgapi %s refused: %s" % (command, reply.reply_text), reply.reply_text)
            return wait_for(waiter, remaining_s(deadline), "bgapi %s [%s]" % (command, job_uuid))
        finally:
            self._waiters.discard(waiter)

    def subscribe(self, event_names, event_format="plain", timeout_s=None):
        """`event <format> <names>`. FreeSWITCH applies the format to the whole socket."""
        names = list(event_names)
        reply = self.send(event_command(names, event_format), timeout_s)
        if not is_ok(reply.reply_text):
            raise ESLCommandError("event %s refused: %s" % (names, reply.reply_text), reply.reply_text)
        self.subscriptions.update(names)
        self.event_format = event_format

    def next_event(self, timeout_s):
        """The next subscribed event. Raises ESLTimeout, or ESLConnectionError once the connection is gone."""
        return next_from(self._events, timeout_s, lambda: self._raise_if_unusable(False), _WAKE)

    def _on_event(self, frame):
        self._waiters.offer(frame)
        self._put_event(frame)
        self._dispatch(frame)

    def _put_event(self, item):
        try:
            self._events.put_nowait(item)
        except gevent.queue.Full:
            if item is not _WAKE:
                self.dropped_events += 1

    def _connection_lost(self, reason):
        first = self.lost_reason is None
        super()._connection_lost(reason)
        if first:
            self._put_event(_WAKE)


class InboundSupervisor:
    """Keeps one InboundClient connected and subscribed; reconnects with back-off after a loss."""

    poll_s = 1.0  # how often the supervisor re-checks for stop while a connection is up

    def __init__(self, host, port, password, *, subscriptions=(), event_format="plain",
                 backoff_initial_s=0.5, backoff_max_s=30.0, connect_timeout_s=5.0,
                 command_timeout_s=5.0, random_unit=random.random, client_factory=InboundClient,
                 on_connected=None):
        self.host, self.port, self.password = host, port, password
        self.subscriptions = tuple(subscriptions)
        self.event_format = event_format
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self.connects = 0
        self.failures = 0
        self.last_error = None
        self._random_unit = random_unit
        self._client_factory = client_factory
        self._on_connected = on_connected
        self._client = None
        self._connected_event = gevent.event.Event()
        self._stopping = gevent.event.Event()
        self._greenlet = None

    @property
    def connected(self):
        client = self._client
        return client is not None and client.lost_reason is None

    @property
    def client(self):
        """The connected client; raises ESLConnectionError while there is none."""
        client = self._client
        if client is None or client.lost_reason is not None:
            raise ESLConnectionError("not connected to FreeSWITCH at %s:%s" % (self.host, self.port))
        return client

    def wait_connected(self, timeout_s):
        return self._connected_event.wait(timeout=timeout_s) and self.connected

    def api(self, command, timeout_s=None):
        return self.client.api(command, timeout_s)

    def bgapi(self, command, timeout_s):
        return self.client.bgapi(command, timeout_s)

    def start(self):
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._supervise)
            self._greenlet.name = "esl-inbound-%s:%s" % (self.host, self.port)
        return self

    def stop(self, timeout_s=2.0):
        self._stopping.set()
        client = self._client
        if client is not None:
            client.close(exit_timeout_s=min(1.0, timeout_s))
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=timeout_s)

    def _supervise(self):
        attempt = 0
        while not self._stopping.is_set():
            client = self._connect_once()
            if client is None:
                delay_s = backoff_delay_s(attempt, self.backoff_initial_s, self.backoff_max_s,
                                          self._random_unit())
                attempt += 1
                log.warning("FreeSWITCH inbound %s:%s: %s; retry in %.2f s",
                            self.host, self.port, self.last_error, delay_s)
                self._stopping.wait(timeout=delay_s)
                continue
            attempt = 0
            self._serve(client)

    def _connect_once(self):
        client = self._client_factory(self.host, self.port, self.password,
                                      connect_timeout_s=self.connect_timeout_s,
                                      command_timeout_s=self.command_timeout_s)
        try:
            client.connect()
            if self.subscriptions:
                client.subscribe(self.subscriptions, self.event_format)
        except ESLError as exc:
            client.close(exit_timeout_s=0.2)
            self.failures += 1
            self.last_error = exc
            return None
        return client

    def _serve(self, client):
        self._client = client
        self.connects += 1
        self._connected_event.set()
        log.info("FreeSWITCH inbound %s:%s connected", self.host, self.port)
        if self._on_connected is not None:
            try:
                self._on_connected(client)
            except Exception:
                log.exception("inbound on_connected callback failed")
        while not self._stopping.is_set() and not client.lost_event.wait(timeout=self.poll_s):
            pass
        self._connected_event.clear()
        self._client = None
        self.last_error = ESLConnectionError("connection lost: %s" % client.lost_reason)
        client.close(exit_timeout_s=0.2)
