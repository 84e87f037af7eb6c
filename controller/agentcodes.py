"""Agent feature codes, the pure part: per-process settings, the digit bindings FreeSWITCH matches, the requests
its events carry, and the rules that decide whether an action may start and whether its read-back confirms it.

The agent's phone sends DTMF on the agent leg; FreeSWITCH's own digit matcher (`bind_digit_action`) swallows a
bound sequence and runs `event agent_code=<request>`, so the digits never reach the caller, the recording or our
logs. `controller.agentactions` installs the bindings and carries the requests out.

`agent_codes` in a process (all keys optional; defaults from issue 5):

    agent_codes:
      enabled: true
      codes: {tag: "*1", flag: "*2", pause: "*3", resume: "*4", cut: "*5", stop: "*6", delete: "*7",
              withdraw: "*8"}            # null switches one off
      tags: [follow-up, sale, complaint] # *1 then the tag's number: *13 = complaint
      cut_seconds: 30
      read_back_s: 2.0                   # confirm every action within this, else fail closed
      fail_closed: stop                  # mask | stop | hangup
      tones: {success: "tone_stream://%(120,60,1400)", refusal: "tone_stream://%(250,100,480,620);loops=2"}
      notices: {pause: null, resume: null}   # a tone_stream:// or prompt file both parties hear

Tones go to the agent leg alone (`uuid_broadcast <agent> <tone> aleg`); notices are mixed into both legs
(`uuid_displace ... mux`), since the caller's leg is event-locked in the bridge and would hold a broadcast.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from controller.errors import ConfigError
from controller.eslcmd import check_line, execute_command
from controller.permissions import Actor, Decision, authorise

__all__ = ["ACTIONS", "RECORDER_ACTIONS", "FAIL_CLOSED_MODES", "INDEX_AFTER", "REALM", "EVENT_HEADER",
           "AgentCodeError", "AgentCodeSettings", "Binding", "Request", "RecorderState", "bind_commands",
           "bridged_agent_uuid", "bindings", "confirm", "decide", "dial_string_extension", "parse_agent_codes",
           "parse_all", "parse_request", "precondition", "record_stop_command", "sound_command"]

ACTIONS = ("tag", "flag", "pause", "resume", "cut", "stop", "delete", "withdraw")
RECORDER_ACTIONS = ("pause", "resume", "cut", "stop", "delete", "withdraw")  # those that change the recorder
DEFAULT_CODES = {"tag": "*1", "flag": "*2", "pause": "*3", "resume": "*4", "cut": "*5", "stop": "*6",
                 "delete": "*7", "withdraw": "*8"}
DEFAULT_TAGS = ("follow-up", "sale", "complaint")
FAIL_CLOSED_MODES = ("mask", "stop", "hangup")
DEFAULT_TONES = {"success": "tone_stream://%(120,60,1400)",
                 "refusal": "tone_stream://%(250,100,480,620);loops=2"}
# What a confirmed action leaves in the index: the recording's state (None: unchanged) and the helpdesk event.
INDEX_AFTER = {"pause": ("paused", "recording.paused"), "resume": ("recording", "recording.resumed"),
               "cut": (None, "recording.cut"), "stop": ("stopped", "recording.completed"),
               "delete": ("purged", "recording.deleted"), "withdraw": (None, None)}
REALM = "consentline"
EVENT_HEADER = "agent_code"
MAX_TAGS = 9  # one digit after the tag code

_CODE = re.compile(r"[0-9*#]{1,7}")
_TAG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_SOUND = re.compile(r"\S+")  # one token of uuid_broadcast
_STREAM = ("tone_stream://", "silence_stream://")
_REQUEST = re.compile(r"(?P<action>[a-z]+)(?:-(?P<number>[1-9]))?")


class AgentCodeError(ValueError):
    """An event value that no binding of ours produces."""


@dataclass(frozen=True)
class AgentCodeSettings:
    enabled: bool = True
    codes: Mapping[str, str] = None  # action -> digits, only the enabled ones
    tags: tuple[str, ...] = DEFAULT_TAGS
    cut_seconds: float = 30.0
    read_back_s: float = 2.0
    fail_closed: str = "stop"
    success_tone: str = DEFAULT_TONES["success"]
    refusal_tone: str = DEFAULT_TONES["refusal"]
    pause_notice: str | None = None
    resume_notice: str | None = None

    def __post_init__(self):
        if self.codes is None:
            object.__setattr__(self, "codes", dict(DEFAULT_CODES))


@dataclass(frozen=True)
class Binding:
    """One `bind_digit_action` on the agent leg: these digits fire `event agent_code=<request>`."""

    digits: str
    request: str

    @property
    def app_arg(self) -> str:
        return f"{REALM},{self.digits},exec:event,{EVENT_HEADER}={self.request}"


@dataclass(frozen=True)
class Request:
    action: str
    tag: str | None = None


# --- settings -------------------------------------------------------------------------------

def parse_agent_codes(raw: Mapping[str, Any] | None, path: str, prompts_dir: Path | None = None,
                      file_exists: Callable[[str], bool] = os.path.isfile) -> AgentCodeSettings:
    """Validate a process's `agent_codes` mapping; ConfigError lists every problem by its key path."""
    problems: list[str] = []
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {_shown(raw)}")

    def bad(key: str, expected: str, value: Any) -> None:
        problems.append(f"{path}.{key}: expected {expected}, got {_shown(value)}")

    known = {"enabled", "codes", "tags", "cut_seconds", "read_back_s", "fail_closed", "tones", "notices"}
    for key in sorted(set(raw) - known):
        problems.append(f"{path}.{key}: expected one of the keys {', '.join(sorted(known))}, got unknown key {key!r}")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        bad("enabled", "true or false", enabled)
    codes = _codes(raw.get("codes", {}), bad)
    tags = _tags(raw.get("tags", list(DEFAULT_TAGS)), bad)
    cut_seconds = _number(raw, "cut_seconds", 30.0, 1, 3600, bad)
    read_back_s = _number(raw, "read_back_s", 2.0, 0.1, 30, bad)
    fail_closed = raw.get("fail_closed", "stop")
    if fail_closed not in FAIL_CLOSED_MODES:
        bad("fail_closed", f"one of {', '.join(FAIL_CLOSED_MODES)}", fail_closed)
    tones = _sounds(raw.get("tones", {}), "tones", ("success", "refusal"), DEFAULT_TONES, bad,
                    prompts_dir, file_exists)
    notices = _sounds(raw.get("notices", {}), "notices", ("pause", "resume"), {}, bad, prompts_dir, file_exists)
    if not problems:
        problems += _conflicts(codes, tags, path)
    if problems:
        raise ConfigError(problems)
    return AgentCodeSettings(enabled=enabled, codes=codes, tags=tags, cut_seconds=cut_seconds,
                             read_back_s=read_back_s, fail_closed=fail_closed, success_tone=tones["success"],
                             refusal_tone=tones["refusal"], pause_notice=notices.get("pause"),
                             resume_notice=notices.get("resume"))


def parse_all(config) -> dict[str, AgentCodeSettings]:
    """Every process's settings by process name; one ConfigError for all problems."""
    settings, problems = {}, []
    for name, process in config.processes.items():
        try:
            settings[name] = parse_agent_codes(process.agent_codes, f"processes.{name}.agent_codes",
                                               config.prompts_dir)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError([f"{config.path}: {problem}" for problem in problems])
    return settings


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def _codes(given: Any, bad) -> dict[str, str]:
    if not isinstance(given, Mapping):
        bad("codes", "a mapping of action to code", given)
        return {}
    codes = dict(DEFAULT_CODES)
    for action, code in given.items():
        if action not in ACTIONS:
            bad(f"codes.{action}", f"an action from {', '.join(ACTIONS)}", action)
        elif code is None:
            codes.pop(action)
        elif not isinstance(code, str) or not _CODE.fullmatch(code):
            bad(f"codes.{action}", 'a quoted code of 1 to 7 keys from 0-9, *, # (like "*3"), or null', code)
        else:
            codes[action] = code
    return codes


def _tags(given: Any, bad) -> tuple[str, ...]:
    if not isinstance(given, (list, tuple)) or len(given) > MAX_TAGS:
        bad("tags", f"a list of up to {MAX_TAGS} tag names (numbered from 1)", given)
        return ()
    for number, tag in enumerate(given, start=1):
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            bad(f"tags[{number - 1}]", "a lower-case tag name of letters, digits, '_', '-' or '.'", tag)
    if len(set(given)) != len(given):
        bad("tags", "each tag once", list(given))
    return tuple(given)


def _number(raw: Mapping, key: str, default: float, low: float, high: float, bad) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        bad(key, f"a number from {low:g} to {high:g}", value)
        return default
    return float(value)


def _sounds(given: Any, key: str, names: tuple[str, ...], defaults: Mapping[str, str], bad,
            prompts_dir: Path | None, file_exists) -> dict[str, str | None]:
    """tone_stream:// or silence_stream:// scripts, or prompt files (relative to prompts_dir)."""
    if not isinstance(given, Mapping):
        bad(key, f"a mapping with {' and/or '.join(names)}", given)
        return dict(defaults)
    sounds = dict(defaults)
    for name, value in given.items():
        where = f"{key}.{name}"
        if name not in names:
            bad(where, f"one of {', '.join(names)}", name)
        elif value is None and name not in defaults:
            sounds[name] = None
        elif not isinstance(value, str) or not _SOUND.fullmatch(value):
            bad(where, "a tone_stream:// script or a prompt file path without spaces", value)
        elif value.startswith(_STREAM):
            sounds[name] = value
        else:
            resolved = str(Path(prompts_dir or ".") / value)
            if not file_exists(resolved):
                bad(where, "an existing prompt file", value)
            sounds[name] = str(Path(resolved).resolve())
    return sounds


def _conflicts(codes: Mapping[str, str], tags: tuple[str, ...], path: str) -> list[str]:
    """FreeSWITCH runs the first exact match at once: a code that starts another makes that one unreachable."""
    patterns = [(b.digits, b.request.split("-")[0]) for b in _bindings(codes, tags)]
    clashes = {}
    for i, (digits, action) in enumerate(patterns):
        for other_digits, other_action in patterns[i + 1:]:
            if digits.startswith(other_digits) or other_digits.startswith(digits):
                clashes.setdefault((action, other_action), (
                    f"{path}.codes.{other_action}: expected a code that neither starts nor is started by another, "
                    f"got {other_digits!r}, which clashes with {action} ({digits!r})"))
    return list(clashes.values())


# --- bindings and requests ----------------------------------------------------------------------

def bindings(settings: AgentCodeSettings) -> list[Binding]:
    """Every digit binding for the agent leg (none when disabled); the tag code has one per tag number."""
    return _bindings(settings.codes, settings.tags) if settings.enabled else []


def _bindings(codes: Mapping[str, str], tags: tuple[str, ...]) -> list[Binding]:
    out = []
    for action in ACTIONS:
        code = codes.get(action)
        if code is None:
            continue
        if action == "tag":
            out += [Binding(f"{code}{number}", f"tag-{number}") for number in range(1, len(tags) + 1)]
        else:
            out.append(Binding(code, action))
    return out


def parse_request(value: str | None, settings: AgentCodeSettings) -> Request:
    """The request an `agent_code` header names ("pause", "tag-3"); AgentCodeError for anything else."""
    match = _REQUEST.fullmatch(value or "")
    if match is None or match["action"] not in settings.codes or not settings.enabled:
        raise AgentCodeError(f"not an agent code request of this process: {value!r}")
    action, number = match["action"], match["number"]
    if action == "tag":
        if number is None or int(number) > len(settings.tags):
            raise AgentCodeError(f"no tag number {number} in this process")
        return Request("tag", settings.tags[int(number) - 1])
    if number is not None:
        raise AgentCodeError(f"{action} takes no number")
    return Request(action)


def decide(config, actor: Actor, action: str, owner_extension: str | None) -> Decision:
    """Whether `actor` may do `action` on a call whose agent is `owner_extension` (pause: own or others').

    Withdraw needs no permission (it relays the caller's right) but a configured agent: a phone's input never
    becomes a system actor."""
    if action != "withdraw":
        return authorise(config, actor, action, call_owner_extension=owner_extension)
    role = config.agents.get(actor.name) if actor.kind == "agent" else None
    if role is None:
        return Decision(False, f"{actor} is not a configured extension", actor, action)
    return Decision(True, f"{actor} (role {role}) relays the caller's withdrawal", actor, action, role)


# --- what goes to FreeSWITCH --------------------------------------------------------------------

def bind_commands(agent_uuid: str, settings: AgentCodeSettings, app_uuid_prefix: str) -> list[str]:
    """The sendmsg texts that bind every code on the agent leg, then select our realm."""
    apps = [("bind_digit_action", b.app_arg) for b in bindings(settings)] + [("digit_action_set_realm", REALM)]
    head = f"sendmsg {check_line(agent_uuid, 'agent uuid')}"
    return [execute_command(app, arg, f"{app_uuid_prefix}-{n}", event_lock=False).replace("sendmsg", head, 1)
            for n, (app, arg) in enumerate(apps)]


def record_stop_command(call_uuid: str, spool_path: str) -> str:
    return f"uuid_record {check_line(call_uuid, 'call uuid')} stop {check_line(spool_path, 'spool path')}"


def sound_command(uuid: str, sound: str, how: str) -> str:
    """`aleg`: uuid_broadcast to that leg alone (the agent's tones); `displace`: mixed into what it hears."""
    uuid = check_line(uuid, "uuid")
    return f"uuid_displace {uuid} start {sound} 0 mux" if how == "displace" else f"uuid_broadcast {uuid} {sound} {how}"


def bridged_agent_uuid(headers: Mapping[str, str]) -> str | None:
    """The agent leg a CHANNEL_BRIDGE on the caller's leg names."""
    if headers.get("Event-Name") != "CHANNEL_BRIDGE":
        return None
    return headers.get("Bridge-B-Unique-ID") or headers.get("variable_bridge_uuid") or None


# --- recorder state: may an action start, and does the read-back confirm it ---------------------------

@dataclass(frozen=True)
class RecorderState:
    """What the controller can read back about a call's recording."""

    call_state: str          # CallRecording.state: recording | stopped | withdrawn | failed | none
    media_status: str        # media Recording.status: recording | finished | deleted | discarded | none
    paused: bool
    length_samples: int
    switch_stopped: bool     # FreeSWITCH reported RECORD_STOP for the spool


def precondition(action: str, state: RecorderState) -> str | None:
    """Why the action cannot start on a recording in this state, or None."""
    if action in RECORDER_ACTIONS:
        if state.call_state != "recording" or state.media_status != "recording":
            return f"the recording is {state.call_state}, not running"
    elif state.media_status in ("deleted", "discarded", "none"):
        return f"the recording is {state.media_status}"
    return None


def confirm(action: str, after: RecorderState, cut: tuple[int, int, int] | None = None) -> str | None:
    """Why the read-back does not confirm the action (None: confirmed).

    `cut` is (start_sample, removed_samples, expected_samples) of a cut: it removed what was asked, or
    everything back to the start of a shorter recording.
    """
    live = after.media_status == "recording" and not after.switch_stopped
    cut_ok = cut is not None and (cut[1] == cut[2] or (cut[0] == 0 and 0 <= cut[1] < cut[2]))
    checks = {
        "pause": (live and after.paused, "the pipeline is not paused or the switch stopped recording"),
        "resume": (live and not after.paused, "the pipeline is still paused or the switch stopped recording"),
        "cut": (live and cut_ok, "the cut did not remove the expected samples or the switch stopped recording"),
        "stop": (after.switch_stopped and after.media_status == "finished" and after.call_state == "stopped",
                 "the switch or the pipeline did not stop"),
        "delete": (after.switch_stopped and after.media_status in ("deleted", "discarded"),
                   "the switch did not stop or the audio was not deleted"),
        "withdraw": (after.switch_stopped and after.call_state == "withdrawn",
                     "the switch did not stop or the recording was not withdrawn"),
    }
    if action not in checks:
        return f"no read-back rule for {action!r}"
    ok, problem = checks[action]
    return None if ok else problem


def dial_string_extension(dial: str) -> str | None:
    """The extension a dial string reaches: `{vars}user/1001@domain` or `sofia/<profile>/1001@host` -> "1001"."""
    dial = re.sub(r"^(?:\{[^}]*\}|\[[^\]]*\])+", "", dial.strip()).split(",")[0].split("|")[0]
    parts = dial.split("/")
    if parts[0] == "user" and len(parts) >= 2:
        extension = parts[1]
    elif parts[0] == "sofia" and len(parts) >= 3:
        extension = parts[2]
    else:
        return None
    extension = extension.split("@")[0]
    return extension or None
