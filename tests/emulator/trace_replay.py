"""Replays captured FreeSWITCH 1.10.12 ESL transcripts against the emulator and compares the answers.

A transcript is a list of blocks, each the bytes one side sent. The controller's blocks are sent to the emulator
(with the call's UUID and recording paths substituted); after each one we collect the frames the emulator sends
until they cover the frames the real FreeSWITCH sent at that point, then compare them field by field after
normalising what legitimately differs (UUIDs, times, sequence numbers, host names, SIP details).
"""

import json
import os
import re
import urllib.parse
from dataclasses import dataclass, field

import gevent

TRACES_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "traces")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Headers whose values carry meaning a controller relies on; everything else is compared by name and order only.
SEMANTIC_HEADERS = {
    "Content-Type", "Reply-Text", "Event-Name", "Channel-State", "Channel-Call-State", "Channel-State-Number",
    "Answer-State", "Call-Direction", "Hangup-Cause", "Application", "Application-Data", "Application-Response",
    "DTMF-Digit", "Record-Completion-Cause", "Playback-Status", "Content-Disposition", "Linger-Time",
    "Socket-Mode", "Control", "Job-Command", "Job-Command-Arg", "Event-Calling-File", "Event-Calling-Function",
    "variable_current_application", "variable_read_result", "variable_read_terminator_used",
    "variable_hangup_cause", "variable_hangup_cause_q850", "variable_record_completion_cause",
    "variable_playback_terminator_used", "variable_RECORD_STEREO", "variable_current_application_response",
}
COMMON_HEADERS = ["Event-Name", "Core-UUID", "FreeSWITCH-Hostname", "FreeSWITCH-Switchname", "FreeSWITCH-IPv4",
                  "FreeSWITCH-IPv6", "Event-Date-Local", "Event-Date-GMT", "Event-Date-Timestamp",
                  "Event-Calling-File", "Event-Calling-Function", "Event-Calling-Line-Number", "Event-Sequence"]


def _unescape(text):
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            n = text[i + 1]
            if n == "n":
                out.append(10)
                i += 2
            elif n == "r":
                out.append(13)
                i += 2
            elif n == "\\":
                out.append(92)
                i += 2
            elif n == "x":
                out.append(int(text[i + 2:i + 4], 16))
                i += 4
            else:
                raise ValueError(f"bad escape at {i}")
        else:
            out += c.encode("latin-1")
            i += 1
    return bytes(out)


@dataclass
class Block:
    direction: str
    t: float
    data: bytes = b""


def load_blocks(name):
    blocks = []
    with open(os.path.join(TRACES_DIR, name), encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"--- (\S+) t=\+([\d.]+) (\d+) bytes", line)
            if m:
                blocks.append(Block(m.group(1), float(m.group(2))))
            elif line.startswith("|") and blocks:
                blocks[-1].data += _unescape(line[1:])
    return blocks


@dataclass
class Frame:
    headers: list
    body: bytes = b""
    inner: list = field(default_factory=list)
    inner_body: bytes = b""

    def get(self, name, default=None):
        for key, value in self.headers + self.inner:
            if key == name:
                return value
        return default

    @property
    def content_type(self):
        return self.get("Content-Type")

    @property
    def signature(self):
        data = self.get("Application-Data")
        return (self.content_type, self.get("Event-Name"), self.get("Application"),
                normalise(data) if data else None)

    @property
    def is_event(self):
        return (self.content_type or "").startswith("text/event-")


def _header_lines(text):
    pairs = []
    for line in text.split("\n"):
        if not line:
            continue
        key, _, value = line.partition(": ")
        pairs.append((key, urllib.parse.unquote(value)))
    return pairs


def parse_frames(buf):
    """Split a byte stream into frames; returns (frames, remaining bytes)."""
    frames = []
    i = 0
    while True:
        j = buf.find(b"\n\n", i)
        if j < 0:
            break
        headers = _header_lines(buf[i:j].decode("utf-8"))
        length = int(dict(headers).get("Content-Length", 0))
        if j + 2 + length > len(buf):
            break
        body = buf[j + 2:j + 2 + length]
        frame = Frame(headers, body)
        ctype = frame.content_type or ""
        if ctype == "text/event-plain":
            k = body.find(b"\n\n")
            frame.inner = _header_lines(body[:k].decode("utf-8"))
            frame.inner_body = body[k + 2:]
        elif ctype == "text/event-json":
            obj = json.loads(body)
            frame.inner_body = obj.pop("_body", "").encode()
            frame.inner = [(k, v) for k, v in obj.items()]
        frames.append(frame)
        i = j + 2 + length
    return frames, buf[i:]


def steps(blocks):
    """[(bytes the controller sends, frames FreeSWITCH answered before the controller's next send)]."""
    out = []
    pending = b""
    for block in blocks:
        if block.direction == "APP->FS":
            out.append([block.data, b""])
        elif out:
            out[-1][1] += block.data
        else:
            pending += block.data
    result = [(b"", parse_frames(pending)[0])] if pending else []
    result += [(app, parse_frames(fs)[0]) for app, fs in out]
    return result


def replay_steps(sock, collector, blocks, substitute, loopback=False, timeout_s=10):
    """Send each controller block, wait for the frames FreeSWITCH sent in answer, compare. Returns problems.

    A frame the emulator sends earlier than FreeSWITCH did (an event that raced its command's reply) stays
    pending and is matched in the step where FreeSWITCH sent it.
    """
    problems = []
    pending = []
    taken = 0
    for app_bytes, expected in steps(blocks):
        if app_bytes:
            sock.sendall(substitute(app_bytes))
        ok = collector.wait_for(lambda c: covers(pending + c.frames[taken:], expected), timeout_s=timeout_s)
        pending += collector.frames[taken:]
        taken = len(collector.frames)
        if not ok:
            problems.append(f"after {app_bytes[:60]!r}: got {[f.signature for f in pending]}, "
                            f"want {[f.signature for f in expected]}")
        matched = []
        for want, got in align(pending, expected):
            problems.extend(compare_frames(want, got, loopback=loopback))
            if got is not None:
                matched.append(got)
        pending = [f for f in pending if not any(f is m for m in matched)]
    extra = [f.signature for f in pending if f.get("Event-Name") not in OPTIONAL_EVENTS]
    if extra:
        problems.append(f"frames FreeSWITCH did not send: {extra}")
    return problems


class Collector:
    """Reads frames from a socket in a greenlet."""

    def __init__(self, sock):
        self.sock = sock
        self.frames = []
        self.closed = False
        self._buf = b""
        self._greenlet = gevent.spawn(self._run)

    def _run(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return
            self._buf += data
            frames, self._buf = parse_frames(self._buf)
            self.frames.extend(frames)

    def wait_for(self, predicate, timeout_s):
        with gevent.Timeout(timeout_s, False):
            while not predicate(self):
                gevent.sleep(0.005)
            return True
        return False


OPTIONAL_EVENTS = {"CHANNEL_PARK"}   # racy in FreeSWITCH itself (esl-reference 10.8)


def _split(frames):
    """Events and everything else: the order within each is FreeSWITCH's; between them it is a race."""
    return [f for f in frames if f.is_event], [f for f in frames if not f.is_event]


def _covers_in_order(received, expected):
    it = iter(received)
    for frame in expected:
        if frame.get("Event-Name") in OPTIONAL_EVENTS:
            continue
        for got in it:
            if got.signature == frame.signature:
                break
        else:
            return False
    return True


def covers(received, expected):
    """True when `received` holds every non-optional expected frame, events and replies each in order."""
    return all(_covers_in_order(r, e) for r, e in zip(_split(received), _split(expected)))


def _align_in_order(received, expected):
    pairs = []
    j = 0
    for frame in expected:
        k = j
        while k < len(received) and received[k].signature != frame.signature:
            k += 1
        if k == len(received):
            if frame.get("Event-Name") not in OPTIONAL_EVENTS:
                pairs.append((frame, None))
            continue
        pairs.append((frame, received[k]))
        j = k + 1
    return pairs


def align(received, expected):
    """Pairs (expected, received): events with events and replies with replies, each in order."""
    pairs = []
    for r, e in zip(_split(received), _split(expected)):
        pairs += _align_in_order(r, e)
    return pairs


def normalise(value):
    if isinstance(value, list):
        value = json.dumps(value)
    value = UUID_RE.sub("<uuid>", value)
    value = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", "<addr>", value)
    value = re.sub(r"/\S*/", "<dir>/", value)
    return value


def compare_frames(expected, got, loopback=False):
    """A list of human-readable differences between a real frame and the emulator's.

    `loopback`: the capture's channel was a loopback leg, whose events differ from a SIP leg's in which carry
    variables; the emulator's trunk calls are SIP legs, so that check is skipped there.
    """
    problems = []
    if got is None:
        return [f"missing frame {expected.signature}"]
    for key, value in expected.headers + expected.inner:
        if key in SEMANTIC_HEADERS:
            actual = got.get(key)
            if actual is None:
                problems.append(f"{expected.signature}: header {key} missing")
            elif normalise(actual) != normalise(value):
                problems.append(f"{expected.signature}: {key} is {actual!r}, FreeSWITCH said {value!r}")
    if expected.inner:
        want = [k for k, _ in expected.inner]
        have = [k for k, _ in got.inner]
        if want[:13] == COMMON_HEADERS and have[:13] != COMMON_HEADERS:
            problems.append(f"{expected.signature}: common headers {have[:13]}")
        tail = _tail_len(want)
        tail_want = want[len(want) - tail:] if tail else []
        tail_have = have[len(have) - tail:] if tail else []
        if tail_want != tail_have:
            problems.append(f"{expected.signature}: event-specific headers {tail_have}, FreeSWITCH had {tail_want}")
        has_vars = any(k.startswith("variable_") for k in have)
        if not loopback and any(k.startswith("variable_") for k in want) != has_vars:
            problems.append(f"{expected.signature}: variables present={any(k.startswith('variable_') for k in have)}")
    else:
        want = [k for k, _ in expected.headers]
        have = [k for k, _ in got.headers]
        if want != have and expected.get("Event-Name") != "CHANNEL_DATA":
            problems.append(f"{expected.signature}: headers {have}, FreeSWITCH had {want}")
    if expected.content_type == "api/response" and normalise(expected.body.decode()) != normalise(got.body.decode()):
        if not expected.body.startswith(b"UP "):
            problems.append(f"api body {got.body!r}, FreeSWITCH said {expected.body!r}")
    return problems


def _tail_len(names):
    """How many headers follow the last variable_ (the event-specific ones), 0 if no variables."""
    last_var = max((i for i, k in enumerate(names) if k.startswith("variable_")), default=None)
    if last_var is None:
        return 0
    return len(names) - last_var - 1
