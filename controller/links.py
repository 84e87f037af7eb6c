"""Signed, expiring recording links, and the small HTTP server that serves them.

A link is `<base>/recordings/<id>.<wav|flac>?expires=<unix s>&sig=<hex>`, where `sig` is an
HMAC-SHA256 over the recording id and the expiry, keyed with a key derived from the helpdesk secret
(so a webhook signature can never be replayed as a link). The server exports the recording as it
stands now, so audio cut or deleted after the link was sent is never served: a deleted recording
answers 404, a bad or expired signature 403. Every fetch of a recording path is audited before
anything is sent; if the audit cannot be written, nothing is served (503).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import parse_qs, quote

import gevent
from gevent.pywsgi import WSGIServer

from controller.audit import AuditEntry, append
from controller.errors import ConsentlineError
from controller.permissions import Actor
from media import MediaError, MediaStore, MediaTimeout, RecordingGone

log = logging.getLogger(__name__)

LINK_FORMATS = {"wav": "audio/wav", "flac": "audio/flac"}
_PATH = re.compile(r"^/recordings/(?P<id>[A-Za-z0-9_.-]+)\.(?P<fmt>wav|flac)$")
_STREAM_BLOCK_BYTES = 64 * 1024
AUDIT_TIMEOUT_S = 10.0


class LinkError(ConsentlineError):
    """A recording link does not grant access (bad signature, expired, malformed)."""


def _link_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"consentline recording link v1", hashlib.sha256).digest()


def sign_link(recording_id: str, expires_at_s: int, secret: str) -> str:
    """The hex signature that grants access to `recording_id` until `expires_at_s` (unix seconds)."""
    message = f"{recording_id}\n{int(expires_at_s)}".encode()
    return hmac.new(_link_key(secret), message, hashlib.sha256).hexdigest()


def verify_link(recording_id: str, expires_at_s: int | str, signature: str, secret: str, *, now_s: float) -> None:
    """Raise LinkError unless the signature is right and the link has not expired."""
    try:
        expires = int(expires_at_s)
    except (TypeError, ValueError):
        raise LinkError("the link's expiry is not a number") from None
    if not hmac.compare_digest(sign_link(recording_id, expires, secret), str(signature)):
        raise LinkError("bad signature")
    if now_s >= expires:
        raise LinkError("the link has expired")


def recording_link(base_url: str, recording_id: str, secret: str, *, now_s: float, ttl_s: int,
                   fmt: str = "wav") -> tuple[str, int]:
    """(URL, expires_at_s) of a link to the recording's export, valid for `ttl_s` from `now_s`."""
    expires = int(now_s) + int(ttl_s)
    query = f"expires={expires}&sig={sign_link(recording_id, expires, secret)}"
    return f"{base_url.rstrip('/')}/recordings/{quote(recording_id)}.{fmt}?{query}", expires


@dataclass(frozen=True)
class Fetch:
    """One request for a recording, as the audit log sees it."""

    recording_id: str
    outcome: str  # served | forbidden | gone | failed
    status: int
    reason: str
    remote_addr: str | None
    at_s: float


def audit_fetch_to(index) -> Callable[[Fetch], None]:
    """An on_fetch callback that appends each fetch to the index's audit log (action `link_fetch`)."""
    def on_fetch(fetch: Fetch) -> None:
        outcome = "done" if fetch.outcome == "served" else "refused" if fetch.status < 500 else "failed"
        append(index, AuditEntry(Actor("system", "recording-link"), "link_fetch", outcome,
                                 recording_id=fetch.recording_id, reason=fetch.reason, at=fetch.at_s,
                                 details={"status": fetch.status, "remote_addr": fetch.remote_addr}))
    return on_fetch


class LinkApp:
    """The WSGI application: GET /recordings/<id>.<fmt>?expires=...&sig=..."""

    def __init__(self, recordings_dir: str | Path, secret: str, on_fetch: Callable[[Fetch], None], *,
                 clock: Callable[[], float] = time.time, export_timeout_s: float = 120.0):
        self.recordings_dir = Path(recordings_dir)
        self.secret = secret
        self.on_fetch = on_fetch
        self.clock = clock
        self.export_timeout_s = export_timeout_s

    def __call__(self, environ, start_response):
        match = _PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            return _answer(start_response, 404, "no such path")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return _answer(start_response, 405, "only GET", [("Allow", "GET, HEAD")])
        recording_id, fmt = match["id"], match["fmt"]
        query = parse_qs(environ.get("QUERY_STRING", ""))
        remote = environ.get("REMOTE_ADDR")
        try:
            verify_link(recording_id, query.get("expires", [""])[0], query.get("sig", [""])[0], self.secret,
                        now_s=self.clock())
        except LinkError as exc:
            return self._refuse(start_response, recording_id, remote, 403, "forbidden", str(exc))
        try:
            export_path = self._export(recording_id, fmt)
        except (RecordingGone, ValueError) as exc:  # ValueError: not a valid recording id
            return self._refuse(start_response, recording_id, remote, 404, "gone", str(exc))
        except MediaTimeout as exc:
            return self._refuse(start_response, recording_id, remote, 503, "failed", str(exc))
        except MediaError as exc:  # e.g. still recording, or damaged
            return self._refuse(start_response, recording_id, remote, 409, "failed", str(exc))
        try:
            self._audit(Fetch(recording_id, "served", 200, "valid link", remote, self.clock()))
        except Exception as exc:  # noqa: BLE001 - whatever the audit store raises, fail closed
            log.error("link fetch of %s not served: audit failed: %s", recording_id, exc)
            export_path.unlink(missing_ok=True)
            return _answer(start_response, 503, "audit unavailable")
        return self._stream(start_response, export_path, fmt, environ.get("REQUEST_METHOD") == "HEAD")

    def _refuse(self, start_response, recording_id, remote, status, outcome, reason):
        try:
            self._audit(Fetch(recording_id, outcome, status, reason, remote, self.clock()))
        except Exception as exc:  # noqa: BLE001 - a refusal goes out even when its audit row cannot be written
            log.error("link fetch of %s (%s) not audited: %s", recording_id, outcome, exc)
        return _answer(start_response, status, reason)

    def _audit(self, fetch: Fetch) -> None:
        """The audit write may fsync: run it off the hub, bounded."""
        try:
            gevent.get_hub().threadpool.spawn(self.on_fetch, fetch).get(timeout=AUDIT_TIMEOUT_S)
        except gevent.Timeout:
            raise LinkError(f"the audit write took over {AUDIT_TIMEOUT_S:g} s") from None

    def _export(self, recording_id: str, fmt: str) -> Path:
        """Export to a private temp file from a fresh view of the store (never a cached, pre-cut state)."""
        store = MediaStore(self.recordings_dir)
        handle, name = tempfile.mkstemp(prefix=f"link-{recording_id}-", suffix=f".{fmt}")
        os.close(handle)
        path = Path(name)
        try:
            recording = store.open(recording_id)
            with gevent.Timeout(self.export_timeout_s, MediaTimeout(f"export took over {self.export_timeout_s} s")):
                recording.export(path, format=fmt.upper())
            return path
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            store.forget(recording_id)

    def _stream(self, start_response, path: Path, fmt: str, head_only: bool):
        source = path.open("rb")
        path.unlink()  # the open handle keeps the data; nothing is left behind if the client goes away
        size = os.fstat(source.fileno()).st_size
        start_response("200 OK", [("Content-Type", LINK_FORMATS[fmt]), ("Content-Length", str(size)),
                                  ("Cache-Control", "no-store")])
        if head_only:
            source.close()
            return [b""]
        return _blocks(source)


def _blocks(source) -> Iterator[bytes]:
    with source:
        while block := source.read(_STREAM_BLOCK_BYTES):
            yield block


_REASONS = {403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            503: "Service Unavailable"}


def _answer(start_response, status: int, text: str, extra_headers=()):
    body = (text + "\n").encode()
    start_response(f"{status} {_REASONS.get(status, 'Error')}",
                   [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                    *extra_headers])
    return [body]


class LinkServer:
    """gevent's WSGI server around LinkApp; `address` is the bound (host, port) once started."""

    def __init__(self, app: LinkApp, host: str = "127.0.0.1", port: int = 0, *, max_connections: int = 50):
        self.app = app
        self._server = WSGIServer((host, port), app, spawn=max_connections, log=None, error_log=log)

    def start(self) -> LinkServer:
        self._server.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address[:2]

    def stop(self, timeout_s: float = 5.0) -> None:
        self._server.stop(timeout=timeout_s)
