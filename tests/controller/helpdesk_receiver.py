"""A real HTTP helpdesk for tests: gevent.pywsgi on an ephemeral loopback port.

It checks every signature itself (from the documented header format, not with the sender's code),
records what arrived, and can be told to answer 500, to be slow, to hang until released, or to be
down (its listening socket closed, so connections are refused).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from dataclasses import dataclass, field

import gevent
import gevent.event
import gevent.socket
from gevent.pywsgi import WSGIServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    answered: int  # the status this request was given

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def key(self) -> str:
        return self.headers.get("Idempotency-Key", "")


def signature_matches(secret: str, header: str, body: bytes, now_s: float, tolerance_s: float = 300) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    if not parts.get("t", "").isdigit() or abs(now_s - int(parts["t"])) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class HelpdeskReceiver:
    secret: str
    mode: str = "ok"  # ok | fail (500) | slow (delay_s, then 200) | hang (until release())
    delay_s: float = 0.0
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self):
        self._changed = gevent.event.Event()
        self._release = gevent.event.Event()
        self._server: WSGIServer | None = None
        self.port = 0
        self.hanging = 0  # requests currently held by mode "hang"

    # --- control ---------------------------------------------------------------------------------

    def start(self) -> HelpdeskReceiver:
        self._server = WSGIServer(("127.0.0.1", self.port), self._app, log=None, error_log=None)
        self._server.start()
        self.port = self._server.address[1]  # kept, so that a restart after down() reuses it
        return self

    def down(self) -> None:
        """Close the listening socket: new connections are refused until start() again."""
        self._server.stop(timeout=1)
        self._server = None

    def release(self) -> None:
        self._release.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    # --- what arrived ----------------------------------------------------------------------------

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.answered == 200]

    def accepted_keys(self) -> list[str]:
        return [r.key for r in self.accepted]

    def wait_until(self, predicate, timeout_s: float = 5.0) -> None:
        """Wait for `predicate()` to hold, re-checking whenever a request arrives; fail after the timeout."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout_s} s; received {len(self.requests)} requests")
            self._changed.clear()
            self._changed.wait(timeout=min(remaining, 0.05))

    # --- the WSGI app ----------------------------------------------------------------------------

    def _app(self, environ, start_response):
        body = environ["wsgi.input"].read()
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        ok = signature_matches(self.secret, headers.get("X-Consentline-Signature", ""), body, time.time())
        mode = self.mode
        if mode == "hang":
            self.hanging += 1
            self._changed.set()
            self._release.wait(timeout=30)
            self.hanging -= 1
        elif mode == "slow":
            gevent.sleep(self.delay_s)
        status = 500 if mode == "fail" else 200 if ok else 401
        self.requests.append(Received(headers, body, ok, status))
        self._changed.set()
        reply = json.dumps({"status": status, "key": headers.get("Idempotency-Key")}).encode()
        start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(reply)))])
        return [reply]


class _GeventConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = gevent.socket.create_connection((self.host, self.port), self.timeout)


def http_get(port: int, path_and_query: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """A request to a server in this process (a blocking client would stall it): (status, headers, body)."""
    conn = _GeventConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path_and_query)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
