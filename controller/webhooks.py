"""The webhook sender: one greenlet per endpoint POSTs due outbox deliveries, signed, with back-off.

Every request carries
    Content-Type: application/json
    X-Consentline-Event: <event type>
    X-Consentline-Delivery: <delivery id>
    Idempotency-Key: <event key>           (the same on every attempt: receivers drop repeats by it)
    X-Consentline-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
A 2xx answer marks the delivery delivered. Anything else (an error status, a refused connection, a
timeout) counts an attempt and schedules the next after a full-jitter exponential back-off; after
the endpoint's max_attempts the delivery is dead (`consentline webhooks retry` revives it).

Delivery is at least once: a crash between the answer and the index update sends the event again,
with the same Idempotency-Key. Calls are never slowed: they only insert outbox rows; index work
here runs on a worker thread of its own and HTTP on gevent sockets, each with a timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urlsplit

import gevent
import gevent.event
import gevent.socket
import gevent.ssl

from controller import __version__, outbox
from controller.errors import ConsentlineError, IndexStoreError
from controller.helpdesk import TEST_EVENT, CallFacts, Endpoint, HelpdeskSettings, event_body, render
from controller.index import Index
from controller.indexio import OffHubIndex
from controller.links import Fetch, LinkApp, LinkServer, audit_fetch_to

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Consentline-Signature"
EVENT_HEADER = "X-Consentline-Event"
DELIVERY_HEADER = "X-Consentline-Delivery"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ANSWER_LIMIT_BYTES = 64 * 1024  # of a receiver's answer body, kept for errors and `webhooks test`
INDEX_TIMEOUT_S = 10.0


class DeliveryError(ConsentlineError):
    """A POST did not get an answer: refused, reset, timed out, or the URL is unusable."""


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


# --- signing (pure) ----------------------------------------------------------------------------


def sign(secret: str, body: bytes, t_s: int) -> str:
    """The X-Consentline-Signature value for `body` sent at unix time `t_s`."""
    digest = hmac.new(secret.encode(), f"{int(t_s)}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={int(t_s)},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, *, now_s: float, tolerance_s: float = 300) -> bool:
    """For receivers: the signature matches and its timestamp is within `tolerance_s` of now."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        t_s = int(fields["t"])
    except (KeyError, ValueError):
        return False
    expected = sign(secret, body, t_s).split("v1=", 1)[1]
    return abs(now_s - t_s) <= tolerance_s and hmac.compare_digest(expected, fields.get("v1", ""))


def request_for(endpoint: Endpoint, secret: str, stored_body: Mapping, *, event_type: str, event_key: str,
                delivery_id: int | str, now_s: float) -> tuple[bytes, dict[str, str]]:
    """The exact bytes and headers of one attempt (the body in the endpoint's format)."""
    body = json.dumps(render(endpoint.format, stored_body), sort_keys=True, separators=(",", ":")).encode()
    return body, {
        "Content-Type": "application/json", "User-Agent": f"consentline/{__version__}",
        EVENT_HEADER: event_type, DELIVERY_HEADER: str(delivery_id), IDEMPOTENCY_HEADER: event_key,
        SIGNATURE_HEADER: sign(secret, body, int(now_s)),
    }


# --- HTTP on gevent sockets --------------------------------------------------------------------


class _GeventHTTPConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = gevent.socket.create_connection((self.host, self.port), self.timeout, self.source_address)


class _GeventHTTPSConnection(http.client.HTTPSConnection):
    def connect(self):
        sock = gevent.socket.create_connection((self.host, self.port), self.timeout, self.source_address)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> Answer:
    """POST and read the answer within `timeout_s` in all (connect, send, wait, read)."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn = _GeventHTTPSConnection(parts.hostname, parts.port, timeout=timeout_s,
                                      context=gevent.ssl.create_default_context())
    elif parts.scheme == "http":
        conn = _GeventHTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    else:
        raise DeliveryError(f"{url}: expected an http:// or https:// URL")
    try:
        with gevent.Timeout(timeout_s, DeliveryError(f"no answer within {timeout_s:g} s")):
            conn.request("POST", path, body=body, headers=dict(headers))
            response = conn.getresponse()
            return Answer(response.status, response.reason, response.read(ANSWER_LIMIT_BYTES))
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        conn.close()


# --- the sender ----------------------------------------------------------------------------------

Post = Callable[[str, bytes, Mapping[str, str], float], Answer]


class Sender:
    """Delivers the outbox. `start()` runs one greenlet per endpoint; `run_once()` is one pass, for tests."""

    def __init__(self, index: Index, settings: HelpdeskSettings, *, post: Post = http_post,
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random,
                 batch_size: int = 20):
        self.index = index
        self.settings = settings
        self.post = post
        self.clock = clock
        self.rand = rand
        self.batch_size = batch_size
        self.counts = {"delivered": 0, "failed": 0, "dead": 0, "index_errors": 0}
        # SQLite commits fsync: the outbox's reads and writes go through the index worker, off the hub
        self._index_io = OffHubIndex(index, timeout_s=INDEX_TIMEOUT_S)
        self._wakeups = {e.name: gevent.event.Event() for e in settings.endpoints}
        self._workers: list[gevent.Greenlet] = []
        self._stopping = False

    def start(self) -> Sender:
        for endpoint in self.settings.endpoints:
            worker = gevent.Greenlet(self._work, endpoint)
            worker.name = f"webhooks:{endpoint.name}"
            worker.start()
            self._workers.append(worker)
        return self

    def wake(self) -> None:
        """Look for due deliveries now (call after committing events) instead of at the next poll."""
        for event in self._wakeups.values():
            event.set()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop the workers, letting a POST in flight finish for up to `timeout_s`; True if all ended.

        A delivery cut short stays pending and goes out again after a restart (same idempotency key)."""
        self._stopping = True
        self.wake()
        gevent.joinall(self._workers, timeout=timeout_s)
        alive = [w for w in self._workers if not w.dead]
        gevent.killall(alive, timeout=1.0)
        self._index_io.close()
        return not alive

    def run_once(self, endpoint_name: str | None = None) -> int:
        """One pass over the due deliveries of one endpoint (or all); returns how many were attempted."""
        attempted = 0
        for endpoint in self.settings.endpoints:
            if endpoint_name in (None, endpoint.name):
                attempted += self._pass(endpoint)
        return attempted

    def _work(self, endpoint: Endpoint) -> None:
        wakeup = self._wakeups[endpoint.name]
        while not self._stopping:
            wakeup.clear()
            try:
                attempted = self._pass(endpoint)
            except IndexStoreError as exc:
                self.counts["index_errors"] += 1
                log.error("webhooks %s: index unavailable, will retry: %s", endpoint.name, exc)
                attempted = 0
            except Exception:  # noqa: BLE001 - a bug must not silence the helpdesk for good; log and go on
                log.exception("webhooks %s: unexpected error; retrying after the poll interval", endpoint.name)
                attempted = 0
            if not attempted and not self._stopping:
                wakeup.wait(timeout=self.settings.poll_interval_s)

    def _pass(self, endpoint: Endpoint) -> int:
        batch = self._index_io.run(outbox.due, endpoint.name, self.clock(), self.batch_size)
        for delivery in batch:
            if self._stopping:
                break
            self._attempt(endpoint, delivery)
        return len(batch)

    def _attempt(self, endpoint: Endpoint, delivery: outbox.Delivery) -> None:
        body, headers = request_for(endpoint, self.settings.secret, json.loads(delivery.body),
                                    event_type=delivery.event_type, event_key=delivery.event_key,
                                    delivery_id=delivery.id, now_s=self.clock())
        status, error = None, None
        try:
            answer = self.post(endpoint.url, body, headers, endpoint.timeout_s)
            status = answer.status
            if not answer.ok:
                error = f"HTTP {answer.status} {answer.reason}: {answer.body[:200].decode(errors='replace')}"
        except DeliveryError as exc:
            error = str(exc)
        now_s = self.clock()
        if error is None:
            self._index_io.run(outbox.mark_delivered, delivery.id, status, now_s)
            self.counts["delivered"] += 1
            return
        attempts = delivery.attempts + 1
        retry_at = None
        if attempts < endpoint.max_attempts:
            retry_at = now_s + outbox.backoff_s(attempts, self.settings.backoff_base_s, self.settings.backoff_max_s,
                                                self.rand())
        self._index_io.run(outbox.mark_failed, delivery.id, error, status, now_s, retry_at)
        self.counts["failed" if retry_at is not None else "dead"] += 1
        log.warning("webhooks %s: delivery %s (%s) attempt %d failed: %s%s", endpoint.name, delivery.id,
                    delivery.event_type, attempts, error, "" if retry_at is not None else "; now a dead letter")


def send_test(endpoint: Endpoint, settings: HelpdeskSettings, *, post: Post = http_post,
              now_s: float | None = None) -> Answer:
    """POST a signed `webhook.test` event to one endpoint now (outside the outbox) and return its answer."""
    now_s = time.time() if now_s is None else now_s
    key = outbox.new_event_key()
    stored = event_body(settings, TEST_EVENT, CallFacts("00000000-0000-0000-0000-000000000000", "+0000000000",
                                                        "+0000000000", "test", "test"),
                        event_id=key, recording_id=None, at_s=now_s, data={"message": "Consentline test event"})
    body, headers = request_for(endpoint, settings.secret, stored, event_type=TEST_EVENT, event_key=key,
                                delivery_id="test", now_s=now_s)
    return post(endpoint.url, body, headers, endpoint.timeout_s)


class HelpdeskService:
    """What the controller runs for the helpdesk: the sender, and the link server when `links_listen` is set.

    Audio links are audited to the index's audit log unless another `on_fetch` is given."""

    def __init__(self, index: Index, settings: HelpdeskSettings, recordings_dir, *,
                 on_fetch: Callable[[Fetch], None] | None = None):
        self.sender = Sender(index, settings)
        self.link_server = None
        if settings.links_listen is not None:
            app = LinkApp(recordings_dir, settings.secret, on_fetch or audit_fetch_to(index))
            self.link_server = LinkServer(app, *settings.links_listen)

    def start(self) -> HelpdeskService:
        if self.link_server is not None:
            self.link_server.start()
        self.sender.start()
        return self

    def wake(self) -> None:
        self.sender.wake()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.sender.stop(timeout_s)
        if self.link_server is not None:
            self.link_server.stop(timeout_s)
