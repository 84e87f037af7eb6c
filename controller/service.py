"""The outbound socket server: FreeSWITCH's `socket <host:port> async full` connects here.

One greenlet per call, named `call-<uuid>` once the channel data is in. The
handler receives an `OutboundCall` after `connect`, `myevents` and `linger`;
it decides the rest. Above `max_calls` a call gets `connect`, one more round
trip and `exit`, so FreeSWITCH carries on with the next dialplan action
(`exit` straight after the connect reply would leave the channel parked with
no controller). `stop(drain_timeout_s)` stops accepting, lets running calls
finish up to the timeout, then kills the rest; each killed call's socket is
closed, which FreeSWITCH treats like `exit`.
"""

import logging
import signal

import gevent
import gevent.event
import gevent.pool
import gevent.server

from controller.esl import OutboundCall
from controller.eslerrors import CallGone, ESLError

log = logging.getLogger(__name__)


class CallServer:
    """Accepts FreeSWITCH's outbound connections and runs `handler(call)` for each."""

    def __init__(self, handler, *, host="127.0.0.1", port=0, max_calls=100, linger=True,
                 setup_timeout_s=5.0, command_timeout_s=5.0, exit_timeout_s=1.0,
                 max_rejecting=16, call_factory=OutboundCall):
        if max_calls < 1:
            raise ValueError("max_calls must be at least 1")
        self.handler = handler
        self.host = host
        self.requested_port = port
        self.max_calls = max_calls
        self.linger = linger            # True: linger until we close; a number: seconds; False: no linger
        self.setup_timeout_s = setup_timeout_s
        self.command_timeout_s = command_timeout_s
        self.exit_timeout_s = exit_timeout_s
        self.accepted_calls = 0
        self.rejected_calls = 0
        self.failed_calls = 0
        self.killed_calls = 0
        self._active_calls = 0
        self._call_factory = call_factory
        self._stopping = False
        # Rejections and connections still in setup are bounded too: at most
        # max_calls + max_rejecting greenlets, after which accepting pauses.
        self._pool = gevent.pool.Pool(size=max_calls + max_rejecting)
        self._server = None
        self._stopped = gevent.event.Event()

    @property
    def port(self):
        """The bound port (useful with port=0)."""
        return self._server.server_port if self._server is not None else None

    @property
    def active_calls(self):
        return self._active_calls

    def start(self):
        self._server = gevent.server.StreamServer((self.host, self.requested_port), self._serve_connection,
                                                  spawn=self._pool)
        self._server.start()
        log.info("call server listening on %s:%s", self.host, self.port)
        return self

    def wait_stopped(self, timeout_s):
        """True once stop() has finished."""
        return self._stopped.wait(timeout=timeout_s)

    def stop(self, drain_timeout_s=30.0, kill_timeout_s=2.0):
        """Stop accepting, wait up to `drain_timeout_s` for calls to end, kill the rest. Returns the number killed."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        killed = 0
        if not self._pool.join(timeout=drain_timeout_s):
            killed = len(self._pool)
            log.warning("killing %d call(s) still running after %.3g s", killed, drain_timeout_s)
            self._pool.kill(block=True, timeout=kill_timeout_s)
        self.killed_calls += killed
        self._stopped.set()
        return killed

    def _serve_connection(self, sock, address):
        greenlet = gevent.getcurrent()
        greenlet.name = "call-setup-%s:%s" % address[:2]
        call = self._call_factory(address, sock, command_timeout_s=self.command_timeout_s)
        counted = False
        try:
            call.connect(timeout_s=self.setup_timeout_s)
            greenlet.name = "call-%s" % call.uuid
            if self._stopping or self._active_calls >= self.max_calls:
                self._reject(call)
                return
            self._active_calls += 1  # no yield since the check above: the bound holds
            counted = True
            self.accepted_calls += 1
            self._set_up(call)
            self.handler(call)
        except CallGone as exc:
            log.info("call %s gone: %s", call.uuid, exc)
        except ESLError as exc:
            self.failed_calls += 1
            log.warning("call %s: ESL error: %s", call.uuid, exc)
        except Exception:
            self.failed_calls += 1
            log.exception("call %s: handler failed", call.uuid)
        finally:
            if counted:
                self._active_calls -= 1
            call.close(exit_timeout_s=self.exit_timeout_s)

    def _set_up(self, call):
        call.myevents(timeout_s=self.setup_timeout_s)
        if self.linger is True:
            call.linger(timeout_s=self.setup_timeout_s)
        elif self.linger:
            call.linger(int(self.linger), timeout_s=self.setup_timeout_s)

    def _reject(self, call):
        self.rejected_calls += 1
        log.warning("call %s rejected: %s", call.uuid,
                    "stopping" if self._stopping else "at %d calls" % self.max_calls)
        # One round trip before exit (see module docstring).
        call.myevents(timeout_s=self.setup_timeout_s)


def install_sigterm_handler(server, drain_timeout_s=30.0):
    """On SIGTERM, stop `server` (in its own greenlet). Returns the handle; call .cancel() to remove it."""
    def on_sigterm():
        log.info("SIGTERM: draining calls for up to %.3g s", drain_timeout_s)
        gevent.spawn(server.stop, drain_timeout_s).name = "call-server-stop"
    return gevent.signal_handler(signal.SIGTERM, on_sigterm)
