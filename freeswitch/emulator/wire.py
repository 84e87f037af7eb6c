"""ESL wire format, as FreeSWITCH 1.10 writes and reads it: URL encoding, event serialisation, command framing.

Pure functions only; sockets live in listener.py.
"""

import functools
import json
import re

# Bytes FreeSWITCH's switch_url_encode escapes besides controls and non-ASCII (switch_utils.h).
_UNSAFE = set(b'\r\n #%&+:;<=>?@[\\]^`{|}"')
_HEX_UPPER = re.compile(rb"%[0-9A-F]{2}")
_ENCODE_TABLE = [
    ("%%%02X" % b) if (b < 0x20 or b > 0x7E or b in _UNSAFE) else chr(b) for b in range(256)
]


@functools.lru_cache(maxsize=1 << 16)
def url_encode(value: str) -> str:
    """Percent-encode as switch_url_encode does, including its quirk: an existing `%XX` with uppercase hex stays.

    Cached: a channel's variables go out again with nearly every event it fires, so most values repeat."""
    raw = value.encode("utf-8")
    if raw.isalnum() or not any(_ENCODE_TABLE[b] != chr(b) for b in raw):
        return value
    out = []
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25 and _HEX_UPPER.match(raw, i):
            out.append(raw[i:i + 3].decode("ascii"))
            i += 3
            continue
        out.append(_ENCODE_TABLE[b])
        i += 1
    return "".join(out)


def serialize_plain(headers, body=None) -> bytes:
    """The inner text/event-plain block: `Name: urlencoded` lines, then a blank line or Content-Length and body."""
    parts = []
    for name, value in headers:
        encoded = url_encode(value) if value else "_undef_"
        parts.append(f"{name}: {encoded}\n")
    if body is not None:
        body_bytes = body.encode("utf-8")
        parts.append(f"Content-Length: {len(body_bytes)}\n\n")
        return "".join(parts).encode("utf-8") + body_bytes
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def serialize_json(headers, body=None) -> bytes:
    """One unformatted JSON object of string values, in header order; a repeated header repeats its key."""
    parts = [f"{json.dumps(name, ensure_ascii=False)}:{json.dumps(value, ensure_ascii=False)}" for name, value in headers]
    if body is not None:
        parts.append(f'"Content-Length":"{len(body.encode("utf-8"))}"')
        parts.append(f'"_body":{json.dumps(body, ensure_ascii=False)}')
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def serialize_xml(headers, body=None) -> bytes:
    """`<event><headers>...</headers>[<Content-Length>n</Content-Length><body>..</body>]</event>`."""
    parts = ["<event>\n  <headers>\n"]
    for name, value in headers:
        parts.append(f"    <{name}>{url_encode(value)}</{name}>\n")
    parts.append("  </headers>\n")
    if body is not None:
        parts.append(f"  <Content-Length>{len(body.encode('utf-8'))}</Content-Length>\n")
        parts.append(f"  <body>{body}</body>\n")
    parts.append("</event>")
    return "".join(parts).encode("utf-8")


SERIALIZERS = {"plain": serialize_plain, "json": serialize_json, "xml": serialize_xml}


def event_envelope(fmt: str, inner: bytes) -> bytes:
    return f"Content-Length: {len(inner)}\nContent-Type: text/event-{fmt}\n\n".encode("ascii") + inner


def command_reply(text: str, extra_headers=()) -> bytes:
    lines = ["Content-Type: command/reply", f"Reply-Text: {text}"]
    lines += [f"{k}: {v}" for k, v in extra_headers]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def api_response(body: str) -> bytes:
    data = body.encode("utf-8")
    return f"Content-Type: api/response\nContent-Length: {len(data)}\n\n".encode("ascii") + data


GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


def disconnect_notice(session_uuid=None, message=GOODBYE) -> bytes:
    data = message.encode("utf-8")
    if session_uuid:
        head = (f"Content-Type: text/disconnect-notice\nControlled-Session-UUID: {session_uuid}\n"
                f"Content-Disposition: disconnect\nContent-Length: {len(data)}\n\n")
    else:
        head = f"Content-Type: text/disconnect-notice\nContent-Length: {len(data)}\n\n"
    return head.encode("utf-8") + data


def linger_notice(session_uuid, channel_name, linger_s) -> bytes:
    return (f"Content-Type: text/disconnect-notice\nControlled-Session-UUID: {session_uuid}\n"
            f"Content-Disposition: linger\nChannel-Name: {channel_name}\nLinger-Time: {linger_s}\n"
            f"Content-Length: 0\n\n").encode("utf-8")


class CommandTooLarge(ValueError):
    pass


MAX_BODY_BYTES = 16 * 1024 * 1024


class Command:
    """One packet a client sent: the command line, headers (names looked up case-insensitively) and a body."""

    __slots__ = ("line", "headers", "body")

    def __init__(self, line, headers, body):
        self.line = line
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        want = name.lower()
        for key, value in self.headers:
            if key.lower() == want:
                return value
        return default

    def __repr__(self):
        return f"Command({self.line!r}, {self.headers!r})"


class CommandReader:
    """Incremental parser for what clients send: a packet ends at the second consecutive LF (CR does not reset it).

    Leading CR/LF bytes are skipped; header values are not URL-decoded; a Content-Length body follows.
    """

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data: bytes):
        self._buf += data
        commands = []
        while True:
            cmd = self._take_one()
            if cmd is None:
                return commands
            commands.append(cmd)

    def _take_one(self):
        buf = self._buf
        start = 0
        while start < len(buf) and buf[start] in (10, 13):
            start += 1
        end = self._find_end(buf, start)
        if end is None:
            if start:
                del buf[:start]
            return None
        text = bytes(buf[start:end]).decode("utf-8", "replace")
        lines = [l.rstrip("\r") for l in text.split("\n") if l.strip("\r")]
        headers = []
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.append((k, v.lstrip(" ")))
        body = b""
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        consumed = end + 1
        if length is not None:
            n = int(length.strip() or 0)
            if n < 0 or n > MAX_BODY_BYTES:
                raise CommandTooLarge(n)
            if len(buf) < consumed + n:
                return None
            body = bytes(buf[consumed:consumed + n])
            consumed += n
        del buf[:consumed]
        return Command(lines[0] if lines else "", headers, body)

    @staticmethod
    def _find_end(buf, start):
        """Index of the LF that ends the packet: two LFs with only CRs between them."""
        newlines = 0
        i = buf.find(b"\n", start)
        while i >= 0:
            j = i - 1
            # count this LF; a previous LF separated only by CRs makes it the second one
            newlines = 1
            while j >= start and buf[j] == 13:
                j -= 1
            if j >= start and buf[j] == 10:
                newlines = 2
            if newlines == 2:
                return i
            i = buf.find(b"\n", i + 1)
        return None
