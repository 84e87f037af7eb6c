"""The helpdesk section of the configuration, and the event bodies sent to helpdesks (pure).

config.py hands over the `helpdesk:` mapping as read; `parse_helpdesk` validates it into frozen
dataclasses and reports every problem as `helpdesk.<dotted.path>: expected ..., got ...`.

An event body is built once, when the event is written to the outbox (`event_body`), and stored as
is, so every retry sends the same facts. Each endpoint then renders it in its format (`render`):
`generic` sends the body unchanged, `zendesk` a ticket comment. `register_format` adds more.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from controller.errors import ConfigError
from controller.index import timestamp
from controller.links import recording_link

EVENT_TYPES = (
    "call.routed", "consent.decided", "recording.started", "recording.paused", "recording.resumed",
    "recording.tagged", "recording.flagged", "recording.cut", "recording.completed", "recording.deleted",
    "consent.withdrawn",
)
TEST_EVENT = "webhook.test"  # sent by `consentline webhooks test`, never stored in the outbox
MASK_MODES = (False, True, "last4")
DEFAULT_SECRET_ENV = "CONSENTLINE_WEBHOOK_SECRET"
MAX_LINK_TTL_S = 366 * 86400
_ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    events: frozenset[str] = frozenset(EVENT_TYPES)
    timeout_s: float = 5.0  # the whole request: connect, send, answer
    max_attempts: int = 8  # then the delivery becomes a dead letter
    format: str = "generic"

    def wants(self, event_type: str) -> bool:
        return event_type in self.events


@dataclass(frozen=True)
class HelpdeskSettings:
    secret: str | None = field(default=None, repr=False)  # signs webhook bodies and recording links
    mask_numbers: bool | str = False  # False: as dialled; True: every digit masked; "last4": all but the last 4
    link_ttl_s: int = 86400
    public_base_url: str | None = None  # where helpdesk users reach the link server
    links_listen: tuple[str, int] | None = None  # the link server's own address; None: no link server
    backoff_base_s: float = 2.0  # first retry waits up to this long (full jitter), doubling per attempt ...
    backoff_max_s: float = 600.0  # ... up to this
    poll_interval_s: float = 1.0  # how often the sender looks for due deliveries when nobody wakes it
    endpoints: tuple[Endpoint, ...] = ()

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


@dataclass(frozen=True)
class CallFacts:
    """What every event says about its call. Numbers as the index holds them; masking happens here."""

    call_uuid: str
    caller: str | None = None
    dialed: str | None = None
    agent: str | None = None
    process: str | None = None


class _Reader:
    """Takes keys out of one mapping, collecting problems under a dotted path."""

    def __init__(self, raw: Any, path: str, problems: list[str]):
        self.path, self.problems = path, problems
        if not isinstance(raw, Mapping):
            self.problem("", "a mapping", raw)
            raw = {}
        self.left = dict(raw)

    def problem(self, key: str, expected: str, got: Any) -> None:
        where = f"{self.path}.{key}" if key else self.path
        self.problems.append(f"{where}: expected {expected}, got {_shown(got)}")

    def take(self, key: str, check: Callable[[Any], bool], expected: str, default: Any = None, *,
             required: bool = False) -> Any:
        if key not in self.left:
            if required:
                self.problem(key, expected, None)
            return default
        value = self.left.pop(key)
        if check(value):
            return value
        self.problem(key, expected, value)
        return default

    def finish(self) -> None:
        for key in self.left:
            self.problem(str(key), "no such key", key)


def _shown(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "nothing" if value is None else repr(value)


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: Any) -> bool:
    return _whole(value) and 1 <= value <= 100


def _http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _listen(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    host, _, port = value.rpartition(":")
    return bool(host) and port.isdigit() and int(port) <= 65535


def parse_helpdesk(raw: Mapping[str, Any] | None, *,
                   environ: Mapping[str, str] = os.environ) -> HelpdeskSettings:
    """Validate the `helpdesk:` mapping; raise ConfigError listing every problem."""
    problems: list[str] = []
    top = _Reader(raw or {}, "helpdesk", problems)
    secret = _secret(top, environ)
    mask = top.take("mask_numbers", lambda v: v in MASK_MODES and (isinstance(v, bool) or v == "last4"),
                    "true, false or \"last4\"", False)
    ttl = top.take("link_ttl_s", lambda v: _whole(v) and 1 <= v <= MAX_LINK_TTL_S,
                   f"a whole number of seconds from 1 to {MAX_LINK_TTL_S}", 86400)
    base_url = top.take("public_base_url", _http_url, "an http:// or https:// URL", None)
    listen = top.take("links_listen", _listen, "host:port", None)
    backoff_base = top.take("backoff_base_s", _positive, "a number of seconds above 0", 2.0)
    backoff_max = top.take("backoff_max_s", _positive, "a number of seconds above 0", 600.0)
    poll = top.take("poll_interval_s", _positive, "a number of seconds above 0", 1.0)
    endpoints = _endpoints(top.take("endpoints", lambda v: isinstance(v, (list, tuple)), "a list", ()), problems)
    top.finish()
    if backoff_max < backoff_base:
        top.problem("backoff_max_s", f"at least backoff_base_s ({backoff_base:g})", backoff_max)
    if (endpoints or listen) and not secret and not any(p.startswith("helpdesk.secret") for p in problems):
        top.problem("secret_env", "the name of an environment variable holding the signing secret (or secret)",
                    None)
    if problems:
        raise ConfigError(problems)
    host_port = None
    if listen:
        host, _, port = listen.rpartition(":")
        host_port = (host.strip("[]"), int(port))
        base_url = base_url or f"http://{listen}"
    return HelpdeskSettings(secret=secret, mask_numbers=mask, link_ttl_s=ttl, public_base_url=base_url,
                            links_listen=host_port, backoff_base_s=float(backoff_base),
                            backoff_max_s=float(backoff_max), poll_interval_s=float(poll), endpoints=endpoints)


def _secret(top: _Reader, environ: Mapping[str, str]) -> str | None:
    inline = top.take("secret", lambda v: isinstance(v, str) and len(v) >= 16, "a string of 16 or more characters",
                      None)
    env_name = top.take("secret_env", lambda v: isinstance(v, str) and bool(v), "an environment variable name",
                        None)
    if inline and env_name:
        top.problems.append("helpdesk.secret: expected secret or secret_env, not both")
        return None
    if env_name:
        value = environ.get(env_name, "")
        if len(value) < 16:
            top.problem("secret_env", f"the environment variable {env_name} to hold 16 or more characters",
                        f"{len(value)} characters" if value else None)
            return None
        return value
    return inline


def _endpoints(items, problems: list[str]) -> tuple[Endpoint, ...]:
    endpoints: list[Endpoint] = []
    for number, item in enumerate(items):
        endpoint = _endpoint(_Reader(item, f"helpdesk.endpoints[{number}]", problems))
        if endpoint is None:
            continue
        if any(e.name == endpoint.name for e in endpoints):
            problems.append(f"helpdesk.endpoints[{number}].name: expected a unique name, got {endpoint.name!r} "
                            f"again")
        endpoints.append(endpoint)
    return tuple(endpoints)


def _endpoint(sec: _Reader) -> Endpoint | None:
    before = len(sec.problems)
    name = sec.take("name", lambda v: isinstance(v, str) and bool(_ENDPOINT_NAME.match(v)),
                    "a name of letters, digits, '_', '.' or '-'", required=True)
    url = sec.take("url", _http_url, "an http:// or https:// URL", required=True)
    events = _events(sec)
    timeout_s = sec.take("timeout_s", lambda v: _positive(v) and v <= 120, "a number of seconds from 0 to 120",
                         Endpoint.timeout_s)
    max_attempts = sec.take("max_attempts", _count, "a whole number from 1 to 100", Endpoint.max_attempts)
    fmt = sec.take("format", lambda v: v in _FORMATS, f"one of {', '.join(sorted(_FORMATS))}", Endpoint.format)
    sec.finish()
    if len(sec.problems) > before:
        return None
    return Endpoint(name=name, url=url, events=events, timeout_s=float(timeout_s), max_attempts=max_attempts,
                    format=fmt)


def _events(sec: _Reader) -> frozenset[str]:
    listed = sec.take("events", lambda v: isinstance(v, (list, tuple)) and all(isinstance(e, str) for e in v),
                      "a list of event names (or [\"*\"] for all)", ["*"])
    chosen = set()
    for number, event in enumerate(listed):
        if event == "*":
            chosen.update(EVENT_TYPES)
        elif event in EVENT_TYPES:
            chosen.add(event)
        else:
            sec.problem(f"events[{number}]", f"one of {', '.join(EVENT_TYPES)} or \"*\"", event)
    return frozenset(chosen)


# --- event bodies ------------------------------------------------------------------------------


def mask_number(number: str | None, mode: bool | str) -> str | None:
    """Replace digits with '*': all of them (True), all but the last four ("last4"), or none (False)."""
    if number is None or mode is False:
        return number
    keep = 4 if mode == "last4" else 0
    digits_seen, out = 0, []
    total_digits = sum(ch.isdigit() for ch in number)
    for ch in number:
        if ch.isdigit():
            digits_seen += 1
            out.append(ch if digits_seen > total_digits - keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def event_body(settings: HelpdeskSettings, event_type: str, facts: CallFacts, *, event_id: str,
               recording_id: str | None, at_s: float, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The generic JSON body of one event; `recording.completed` gets a signed, expiring link to the audio."""
    if event_type not in EVENT_TYPES and event_type != TEST_EVENT:
        raise ValueError(f"expected one of {', '.join(EVENT_TYPES)}, got {event_type!r}")
    details = dict(data or {})
    if event_type == "recording.completed" and recording_id and settings.secret and settings.public_base_url:
        url, expires_at_s = recording_link(settings.public_base_url, recording_id, settings.secret,
                                           now_s=at_s, ttl_s=settings.link_ttl_s)
        details["link"] = {"url": url, "expires_at": timestamp(expires_at_s)}
    return {
        "id": event_id, "type": event_type, "timestamp": timestamp(at_s),
        "call_uuid": facts.call_uuid, "recording_id": recording_id,
        "caller": mask_number(facts.caller, settings.mask_numbers),
        "dialed": mask_number(facts.dialed, settings.mask_numbers),
        "agent": facts.agent, "process": facts.process, "data": details,
    }


def generic_format(body: Mapping[str, Any]) -> dict[str, Any]:
    return dict(body)


def zendesk_format(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Zendesk ticket update: a private comment with the facts and link, and tags to find it by."""
    data = body.get("data") or {}
    lines = [f"Consentline {body['type']} at {body['timestamp']}",
             f"Call: {body['call_uuid']}  Caller: {body.get('caller') or '-'}  Dialled: {body.get('dialed') or '-'}",
             f"Agent: {body.get('agent') or '-'}  Process: {body.get('process') or '-'}"]
    if body.get("recording_id"):
        lines.append(f"Recording: {body['recording_id']}")
    if data.get("duration_s") is not None:
        lines.append(f"Duration: {float(data['duration_s']):.1f} s")
    if data.get("link"):
        lines.append(f"Listen: {data['link']['url']} (until {data['link']['expires_at']})")
    if data.get("reason"):
        lines.append(f"Reason: {data['reason']}")
    tags = {"consentline", _zendesk_tag(body["type"]), *(_zendesk_tag(t) for t in data.get("tags") or ())}
    return {"ticket": {"external_id": body["call_uuid"],
                       "comment": {"body": "\n".join(lines), "public": False},
                       "tags": sorted(t for t in tags if t)}}


def _zendesk_tag(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", str(text).lower()).strip("_")


_FORMATS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "generic": generic_format, "zendesk": zendesk_format,
}
FORMATS = MappingProxyType(_FORMATS)


def register_format(name: str, render_fn: Callable[[Mapping[str, Any]], dict[str, Any]]) -> None:
    """Add a helpdesk mapping (before the configuration is parsed); names are never replaced."""
    if name in _FORMATS:
        raise ValueError(f"a helpdesk format named {name!r} exists already")
    _FORMATS[name] = render_fn


def render(format_name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return _FORMATS[format_name](body)
