"""Scenario files: calls that arrive from a SIP trunk at given times, what callers and agents do, and the summary.

A scenario is YAML:

    speed: 20
    calls:
      - id: de-consent-yes
        start_s: 0
        caller: "+4915112345678"
        dialed: "+4930100100"
        rate_hz: 8000
        caller_audio: marker            # marker | silence | path to a WAV file
        caller_dtmf: [{at_s: 4.0, digits: "1"}]
        agent: {extension: "1001", answer_after_s: 2, audio: marker, dtmf: [{at_s: 20.0, digits: "*3"}],
                hold: [{at_s: 30.0, for_s: 5}],    # the agent's hold key: seconds after the agent answers
                transfer: {at_s: 40, consult_s: 3, to: {extension: "1002", dtmf: [{at_s: 6, digits: "*4"}]}}}
                # an attended transfer: hold, call the colleague, talk, transfer (times after each answers);
                # `blind: true` instead of consult_s: REFER without Replaces, the caller goes to the extension
        hangup: {by: caller, at_s: 45}
        fallback: agents                # optional: what public.xml does after `socket` (agents | announce)

Without `fallback` the dialplan is the socket app alone, so a call the controller lets go is hung up.
"""

import os

import numpy as np
import yaml

from freeswitch.emulator import audio

DTMF_SPACING_S = 0.3      # one key every 0.3 s within a string of digits
DTMF_END_DELAY_S = 0.2    # the event fires when the digit's end packet arrives
FALLBACKS = ("agents", "announce")


class ScenarioError(ValueError):
    """A scenario file that does not say what the emulator needs; the message names the key."""


def _expect(condition, where, what):
    if not condition:
        raise ScenarioError(f"{where}: expected {what}")


def load_scenario(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror}") from exc
    return parse_scenario(data, base_dir=os.path.dirname(os.path.abspath(path)), name=str(path))


def parse_scenario(data, base_dir=".", name="scenario"):
    _expect(isinstance(data, dict), name, "a mapping with `calls`")
    unknown = set(data) - {"speed", "calls"}
    _expect(not unknown, f"{name}: {sorted(unknown)[0] if unknown else ''}", "one of speed, calls")
    speed = data.get("speed", 1)
    _expect(isinstance(speed, (int, float)) and speed > 0, f"{name}: speed", "a positive number")
    calls = data.get("calls")
    _expect(isinstance(calls, list) and calls, f"{name}: calls", "a non-empty list")
    specs = [CallSpec(c, f"{name}: calls[{i}]", base_dir) for i, c in enumerate(calls)]
    ids = [s.id for s in specs]
    _expect(len(ids) == len(set(ids)), f"{name}: calls", "unique ids")
    return float(speed), specs


def _digits_list(items, where):
    _expect(isinstance(items, list), where, "a list of {at_s, digits}")
    out = []
    for i, item in enumerate(items):
        _expect(isinstance(item, dict) and set(item) == {"at_s", "digits"}, f"{where}[{i}]", "{at_s, digits}")
        _expect(isinstance(item["at_s"], (int, float)) and item["at_s"] >= 0, f"{where}[{i}].at_s",
                "a number of seconds >= 0")
        digits = str(item["digits"])
        _expect(digits and all(d in "0123456789*#ABCD" for d in digits), f"{where}[{i}].digits",
                "DTMF digits (0-9, *, #, A-D)")
        out.append((float(item["at_s"]), digits))
    return out


def _audio(value, where, base_dir):
    if value in (None, "marker", "silence"):
        return value or "marker"
    _expect(isinstance(value, str), where, "marker, silence or a WAV file path")
    path = value if os.path.isabs(value) else os.path.join(base_dir, value)
    _expect(os.path.exists(path), where, f"an existing WAV file (not found: {value})")
    return path


class CallSpec:
    KEYS = {"id", "start_s", "caller", "dialed", "rate_hz", "caller_audio", "caller_dtmf", "agent", "hangup",
            "fallback"}

    def __init__(self, data, where, base_dir):
        _expect(isinstance(data, dict), where, "a mapping")
        unknown = set(data) - self.KEYS
        _expect(not unknown, f"{where}.{sorted(unknown)[0] if unknown else ''}", f"one of {sorted(self.KEYS)}")
        _expect(isinstance(data.get("id", ""), (str, int)) and not isinstance(data.get("id"), bool), f"{where}.id",
                "a quoted label (YAML reads yes/no as booleans)")
        self.id = str(data.get("id") or where)
        self.start_s = float(data.get("start_s", 0))
        for key in ("caller", "dialed"):
            _expect(isinstance(data.get(key), str) and data[key], f"{where}.{key}", "a quoted phone number")
        self.caller = data["caller"]
        self.dialed = data["dialed"]
        self.rate_hz = data.get("rate_hz", 8000)
        _expect(self.rate_hz in (8000, 16000), f"{where}.rate_hz", "8000 or 16000")
        self.caller_audio = _audio(data.get("caller_audio"), f"{where}.caller_audio", base_dir)
        self.caller_dtmf = _digits_list(data.get("caller_dtmf", []), f"{where}.caller_dtmf")
        self.agent = self._agent(data.get("agent"), f"{where}.agent", base_dir)
        hangup = data.get("hangup")
        self.hangup_by, self.hangup_at_s = None, None
        if hangup is not None:
            _expect(isinstance(hangup, dict) and hangup.get("by") in ("caller", "agent")
                    and isinstance(hangup.get("at_s"), (int, float)), f"{where}.hangup",
                    "{by: caller|agent, at_s: seconds}")
            self.hangup_by, self.hangup_at_s = hangup["by"], float(hangup["at_s"])
        self.fallback = data.get("fallback")
        _expect(self.fallback in (None,) + FALLBACKS, f"{where}.fallback", " or ".join(FALLBACKS))
        _expect(self.fallback != "agents" or self.agent, f"{where}.fallback", "an agent to fall back to")

    @staticmethod
    def _agent(data, where, base_dir, transfer_allowed=True):
        if data is None:
            return None
        keys = {"extension", "answer_after_s", "audio", "dtmf", "reject", "hold"} | ({"transfer"} if transfer_allowed
                                                                                   else set())
        _expect(isinstance(data, dict) and not (set(data) - keys), where, f"a mapping of {sorted(keys)}")
        _expect(isinstance(data.get("extension"), str), f"{where}.extension", 'a quoted extension like "1001"')
        return {"extension": data["extension"], "answer_after_s": float(data.get("answer_after_s", 2)),
                "audio": _audio(data.get("audio"), f"{where}.audio", base_dir),
                "dtmf": _digits_list(data.get("dtmf", []), f"{where}.dtmf"), "reject": bool(data.get("reject")),
                "hold": _holds(data.get("hold", []), f"{where}.hold"),
                "transfer": _transfer(data.get("transfer"), f"{where}.transfer", base_dir)}


def _transfer(data, where, base_dir):
    if data is None:
        return None
    _expect(isinstance(data, dict) and set(data) <= {"at_s", "consult_s", "blind", "to"} and "to" in data
            and all(isinstance(data.get(k, 0), (int, float)) and data.get(k, 0) >= 0 for k in ("at_s", "consult_s"))
            and isinstance(data.get("blind", False), bool) and not (data.get("blind") and "consult_s" in data),
            where, "{at_s: seconds after the agent answers, consult_s: seconds talking to the colleague "
                   "(or blind: true, no consultation), to: {extension, ...}}")
    return {"at_s": float(data.get("at_s", 0)),
            "consult_s": None if data.get("blind") else float(data.get("consult_s", 0)),
            "to": CallSpec._agent(data["to"], f"{where}.to", base_dir, transfer_allowed=False)}


def _holds(items, where):
    _expect(isinstance(items, list), where, "a list of {at_s, for_s}")
    out = []
    for i, item in enumerate(items):
        _expect(isinstance(item, dict) and set(item) == {"at_s", "for_s"}
                and all(isinstance(item[k], (int, float)) and item[k] >= 0 for k in item),
                f"{where}[{i}]", "{at_s: seconds after the agent answers, for_s: seconds on hold}")
        out.append((float(item["at_s"]), float(item["for_s"])))
    return out


def dialplan(spec, socket_address):
    """The trunk call's dialplan, as public.xml: the socket app, then (with `fallback`) the unrecorded path."""
    socket = ("socket", f"{socket_address} async full")
    transfers = ("set", "force_transfer_context=default")  # a blind transfer goes to the agents' extensions
    if spec.fallback is None:
        return [transfers, socket]
    steps = [("set", "RECORD_STEREO=true"), ("set", "hangup_after_bridge=false"), ("set", "continue_on_fail=true"),
             transfers, socket,
             ("set", "consentline_fallback_used=true"), ("stop_record_session", "all"),
             ("set", "hangup_after_bridge=true")]
    if spec.fallback == "agents":
        steps += [("set", "call_timeout=30"), ("bridge", f"user/{spec.agent['extension']}")]
    return steps + [("pre_answer", ""), ("hangup", "NORMAL_TEMPORARY_FAILURE")]


def audio_function(kind, base_hz, rate_hz):
    """What a leg says, as a function of the sample index since it answered."""
    if kind == "silence":
        return None
    if kind == "marker":
        return lambda start, n: audio.marker_block(base_hz, rate_hz, start, n)
    source = audio.WavFileSource(kind, rate_hz)
    samples = source.read(source.duration_samples or 0)

    def from_file(start, n):
        out = np.zeros(n, dtype=np.int16)
        part = samples[start:start + n]
        out[:len(part)] = part
        return out
    return from_file
