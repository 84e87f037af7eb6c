"""The safe core shared by our outbound call and inbound client, mixed into greenswitch's classes.

What it changes in greenswitch's ESLProtocol (without touching greenswitch itself):
- the receive loop reads raw chunks into `eslparse.FrameParser` (split, then decode);
- replies and events are matched in the receive greenlet, so a slow event
  handler can never hold up the completion someone is waiting for;
- `send()` uses `sendall`, holds a lock so that reply order equals send order,
  and waits with a timeout; a reply that arrives after its timeout is dropped;
- EOF, socket errors and protocol errors fail every pending command and wait at once;
- the queue to greenswitch's handler greenlet is bounded, drops are counted,
  and handler errors are logged without a bare `except:`.
"""

import collections
import logging
import time

import gevent
import gevent.event
import gevent.lock
import gevent.queue

from controller import eslerrors
from controller.eslerrors import ESLError, ESLTimeout
from controller.eslparse import (API_RESPONSE, AUTH_REQUEST, COMMAND_REPLY, DISCONNECT_NOTICE,
                                 RUDE_REJECTION, FrameParser)

log = logging.getLogger(__name__)

RECV_BYTES = 65536


def remaining_s(deadline):
    return max(0.0, deadline - time.monotonic())


class _Waiter:
    __slots__ = ("predicate", "result", "survive_hangup")

    def __init__(self, predicate, survive_hangup):
        self.predicate = predicate
        self.result = gevent.event.AsyncResult()
        self.survive_hangup = survive_hangup


class WaiterSet:
    """Greenlets waiting for an event that matches a predicate. Bounded."""

    def __init__(self, max_waiters=256):
        self.max_waiters = max_waiters
        self._waiters = []

    def __len__(self):
        return len(self._waiters)

    def add(self, predicate, survive_hangup=False):
        if len(self._waiters) >= self.max_waiters:
            raise ESLError("more than %d pending waits" % self.max_waiters)
        waiter = _Waiter(predicate, survive_hangup)
        self._waiters.append(waiter)
        return waiter

    def discard(self, waiter):
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def offer(self, frame):
        for waiter in self._waiters:
            if waiter.result.ready():
                continue
            try:
                matched = waiter.predicate(frame)
            except Exception as exc:  # a faulty predicate fails its own wait, not the reader
                waiter.result.set_exception(exc)
                continue
            if matched:
                waiter.result.set(frame)

    def fail(self, make_error, include_survivors):
        for waiter in self._waiters:
            if not waiter.result.ready() and (include_survivors or not waiter.survive_hangup):
                waiter.result.set_exception(make_error())


def next_from(queue, timeout_s, raise_if_unusable, wake):
    """The next item of an event queue: items already queued first; then, while the connection is usable, wait
    up to timeout_s (ESLTimeout after it). `wake` items (put there when the connection goes) are skipped."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            item = queue.get_nowait()
        except gevent.queue.Empty:
            raise_if_unusable()
            try:
                item = queue.get(timeout=remaining_s(deadline))
            except gevent.queue.Empty:
                raise ESLTimeout("next_event: nothing within %.3g s" % timeout_s) from None
        if item is not wake:
            return item


def wait_for(waiter, timeout_s, what):
    """Block until `waiter` resolves; return its frame, raise its error, or raise ESLTimeout."""
    waiter.result.wait(timeout=timeout_s)
    if not waiter.result.ready():
        raise ESLTimeout("%s: no answer within %.3g s" % (what, timeout_s))
    return waiter.result.get(block=False)


class Expectation:
    """An event registered for before it could arrive (see SafeProtocol.expect)."""

    def __init__(self, waiters, waiter):
        self._waiters = waiters
        self._waiter = waiter

    @property
    def arrived(self):
        return self._waiter.result.ready() and self._waiter.result.successful()

    def wait(self, timeout_s, what="expected event"):
        try:
            return wait_for(self._waiter, timeout_s, what)
        finally:
            self.cancel()

    def cancel(self):
        self._waiters.discard(self._waiter)


class SafeProtocol:
    """Mix in before a greenswitch protocol class: `class X(SafeProtocol, greenswitch.InboundESL)`."""

    command_timeout_s = 5.0
    max_pending_replies = 64
    dispatch_queue_size = 1024

    def _init_safe(self, command_timeout_s):
        self.command_timeout_s = command_timeout_s
        self._parser = FrameParser()
        self._pending_replies = collections.deque()
        self._send_lock = gevent.lock.Semaphore()
        self._waiters = WaiterSet()
        self.lost_reason = None
        self.lost_event = gevent.event.Event()
        self.dropped_dispatch = 0
        self.unexpected_replies = 0
        self._rejected = False

    # ----- errors: what a lost connection means for this kind of peer
    def _lost_error(self):
        """The exception a caller gets once the socket is gone; subclasses choose the type."""
        return eslerrors.ESLConnectionError("connection lost: %s" % self.lost_reason)

    # ----- greenswitch overrides
    def start_event_handlers(self):
        # ESLProtocol.__init__ made an unbounded queue; replace it before the greenlets run.
        self._esl_event_queue = gevent.queue.Queue(maxsize=self.dispatch_queue_size)
        super().start_event_handlers()

    def receive_events(self):
        reason = eslerrors.SOCKET_CLOSED
        try:
            while self._run:
                chunk = self.sock.recv(RECV_BYTES)
                if not chunk:
                    break
                for frame in self._parser.feed(chunk):
                    self.handle_event(frame)
        except eslerrors.ESLProtocolError as exc:
            log.error("ESL stream rejected: %s", exc)
            reason = eslerrors.PROTOCOL_ERROR
        except OSError as exc:
            log.info("ESL socket error: %s", exc)
            reason = eslerrors.SOCKET_ERROR
        except Exception:  # a bug here must not leave waiters hanging: fail closed
            log.exception("ESL receive loop failed")
            reason = eslerrors.PROTOCOL_ERROR
        finally:
            self._connection_lost(self.lost_reason or reason)

    def handle_event(self, frame):
        content_type = frame.content_type
        if content_type == COMMAND_REPLY or content_type == API_RESPONSE:
            self._resolve_reply(frame)
        elif frame.envelope is not None:
            self._on_event(frame)
        elif content_type == DISCONNECT_NOTICE:
            self._on_disconnect_notice(frame)
        elif content_type == AUTH_REQUEST:
            self._auth_request_event.set()
        elif content_type == RUDE_REJECTION:
            self._rejected = True
            self._auth_request_event.set()
            self._connection_lost(eslerrors.DISCONNECT_NOTICE)
        else:
            self._dispatch(frame)

    def _safe_exec_handler(self, handler, event):
        try:
            handler(event)
        except Exception:
            log.exception("ESL handler %s raised", getattr(handler, "__name__", handler))

    # ----- hooks for subclasses
    def _on_event(self, frame):
        self._waiters.offer(frame)
        self._dispatch(frame)

    def _on_disconnect_notice(self, frame):
        self._dispatch(frame)
        if not frame.is_linger_notice:
            self._connection_lost(eslerrors.DISCONNECT_NOTICE)

    # ----- plumbing
    def _dispatch(self, frame):
        """Hand a frame to greenswitch's handler greenlet, if anyone registered a handler."""
        if not self.event_handlers:
            return
        try:
            self._esl_event_queue.put_nowait(frame)
        except gevent.queue.Full:
            self.dropped_dispatch += 1

    def _resolve_reply(self, frame):
        if not self._pending_replies:
            self.unexpected_replies += 1
            log.warning("ESL reply with no command pending: %r", frame.reply_text)
            return
        pending = self._pending_replies.popleft()
        if not pending.ready():  # else its sender timed out or was failed already
            pending.set(frame)

    def _fail_pending_replies(self, make_error):
        # Keep the slots: a reply that still comes must pop its own slot, not the next command's.
        for pending in self._pending_replies:
            if not pending.ready():
                pending.set_exception(make_error())

    def _connection_lost(self, reason):
        if self.lost_reason is not None:
            return
        self.lost_reason = reason
        self.connected = False
        self._run = False
        self._fail_pending_replies(self._lost_error)
        self._pending_replies.clear()
        self._waiters.fail(self._lost_error, include_survivors=True)
        self.lost_event.set()
        self._close_socket()

    def _close_socket(self):
        # greenswitch made a file object over the socket; the descriptor only
        # closes (and wakes a blocked recv) once both are closed, file first.
        for name in ("sock_file", "sock"):
            closable = getattr(self, name, None)
            if closable is not None:
                try:
                    closable.close()
                except OSError:
                    pass

    def send(self, data, timeout_s=None):
        """Send one command and return its reply frame (command/reply or api/response)."""
        timeout_s = self.command_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        raw = (data + "\n\n").encode("utf-8")
        if not self._send_lock.acquire(timeout=timeout_s):
            raise ESLTimeout("%s: could not send within %.3g s" % (data.split("\n", 1)[0], timeout_s))
        try:
            pending = self._enqueue_and_write(raw, deadline)
        finally:
            self._send_lock.release()
        pending.wait(timeout=remaining_s(deadline))
        if not pending.ready():
            raise ESLTimeout("%s: no reply within %.3g s" % (data.split("\n", 1)[0], timeout_s))
        return pending.get(block=False)

    def _enqueue_and_write(self, raw, deadline):
        if self.lost_reason is not None or not self.connected:
            raise self._lost_error()
        if len(self._pending_replies) >= self.max_pending_replies:
            raise ESLError("more than %d commands without a reply" % self.max_pending_replies)
        pending = gevent.event.AsyncResult()
        self._pending_replies.append(pending)
        try:
            with gevent.Timeout(remaining_s(deadline), ESLTimeout("send timed out")):
                self.sock.sendall(raw)
        except ESLTimeout:
            self._connection_lost(eslerrors.SEND_TIMEOUT)  # a partial write leaves the stream unusable
            raise
        except OSError:
            self._connection_lost(eslerrors.SOCKET_ERROR)
            raise self._lost_error() from None
        return pending

    def expect(self, predicate, survive_hangup=False):
        """Register interest in an event *before* the command that causes it, so it cannot be missed.

        Returns an Expectation: `wait(timeout_s)` for the frame, `cancel()` when no longer needed.
        """
        self._raise_if_unusable(survive_hangup)
        return Expectation(self._waiters, self._waiters.add(predicate, survive_hangup))

    def wait_event(self, predicate, timeout_s, survive_hangup=False):
        """Wait for the next event for which `predicate(frame)` is true; return the frame."""
        self._raise_if_unusable(survive_hangup)
        waiter = self._waiters.add(predicate, survive_hangup)
        try:
            return wait_for(waiter, timeout_s, "wait_event")
        finally:
            self._waiters.discard(waiter)

    def _raise_if_unusable(self, survive_hangup):
        if self.lost_reason is not None:
            raise self._lost_error()

    def close(self, exit_timeout_s=1.0):
        """Say `exit` if the line is idle, close the socket, stop our greenlets. Never blocks long."""
        if self.lost_reason is None and self.connected and not self._pending_replies:
            try:
                self.send("exit", timeout_s=exit_timeout_s)
            except ESLError:
                pass
        self._connection_lost(eslerrors.CLOSED)
        current = gevent.getcurrent()
        for greenlet in (self._receive_events_greenlet, self._process_events_greenlet):
            if greenlet is not None and greenlet is not current:
                greenlet.kill(block=True, timeout=exit_timeout_s)

    def stop(self):
        """greenswitch's name for close()."""
        self.close()
