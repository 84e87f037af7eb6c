"""Pure, incremental parser for what FreeSWITCH sends over the Event Socket.

Bytes go in, in any split; `Frame` objects come out. Header blocks are split
into lines first and each value is URL-decoded on its own, so an encoded
newline inside a channel variable stays inside that value instead of turning
into a forged header (greenswitch decodes the whole block before splitting).
Content-Length counts bytes, never characters. No I/O here.
"""

import json
from urllib.parse import unquote
from xml.etree import ElementTree

from controller.eslerrors import ESLProtocolError

EVENT_PLAIN = "text/event-plain"
EVENT_JSON = "text/event-json"
EVENT_XML = "text/event-xml"
COMMAND_REPLY = "command/reply"
API_RESPONSE = "api/response"
AUTH_REQUEST = "auth/request"
DISCONNECT_NOTICE = "text/disconnect-notice"
RUDE_REJECTION = "text/rude-rejection"
LOG_DATA = "log/data"

DEFAULT_MAX_HEAD_BYTES = 1 << 20
DEFAULT_MAX_BODY_BYTES = 64 << 20


class Frame:
    """One thing FreeSWITCH sent: a reply, an api response, an event, a notice.

    For events (`text/event-*`) `headers` and `body` are the inner event's and
    `envelope` keeps the outer frame headers; for everything else `headers` are
    the frame's own and `envelope` is None. `body` is text ('' when absent).
    """

    __slots__ = ("content_type", "headers", "body", "envelope")

    def __init__(self, content_type, headers, body="", envelope=None):
        self.content_type = content_type
        self.headers = headers
        self.body = body
        self.envelope = envelope

    def __repr__(self):
        return "Frame(%r, %r, headers=%d, body=%d chars)" % (
            self.content_type, self.event_name, len(self.headers), len(self.body))

    def get(self, name, default=None):
        return self.headers.get(name, default)

    @property
    def is_event(self):
        return self.envelope is not None

    @property
    def event_name(self):
        """`Event-Name`, or None for the header-less events of bind_digit_action."""
        return self.headers.get("Event-Name") if self.envelope is not None else None

    @property
    def reply_text(self):
        return self.headers.get("Reply-Text", "")

    @property
    def data(self):
        """greenswitch's `event.data`: the Reply-Text of a reply, otherwise the body."""
        if self.content_type == COMMAND_REPLY:
            return self.reply_text
        return self.body

    @property
    def is_linger_notice(self):
        return (self.content_type == DISCONNECT_NOTICE
                and self.headers.get("Content-Disposition") == "linger")


# Channel variables repeat in every event of a call, so decoded values are
# cached. Bounded: short values only, and the cache is emptied when full.
_DECODE_CACHE_ENTRIES = 4096
_DECODE_CACHE_MAX_CHARS = 1024
_decode_cache = {}


def decode_value(value):
    """URL-decode one header value (FreeSWITCH uses %XX; '+' is literal)."""
    if "%" not in value:
        return value
    decoded = _decode_cache.get(value)
    if decoded is None:
        decoded = unquote(value)
        if len(value) <= _DECODE_CACHE_MAX_CHARS:
            if len(_decode_cache) >= _DECODE_CACHE_ENTRIES:
                _decode_cache.clear()
            _decode_cache[value] = decoded
    return decoded


def parse_header_block(text):
    """`Name: value` lines -> dict. Split first, then decode each value; the first duplicate wins.

    FreeSWITCH writes every header as name, ': ', value, so the name ends at
    the first ': ' (at the first ':' on a line without ': '). Lines without
    ':' cannot come from an encoder that escapes newlines; they are ignored
    rather than glued to the previous value. Header order is kept.
    """
    lines = text.split("\n")
    try:
        headers = dict([line.split(": ", 1) for line in lines])
    except ValueError:  # some line lacks ': '
        headers = _parse_lines_slowly(lines)
    else:
        if len(headers) != len(lines):
            headers = _parse_lines_slowly(lines)  # duplicates (HANGUP_COMPLETE's Hangup-Cause)
    cached = _decode_cache.get
    for name, value in [item for item in headers.items() if "%" in item[1]]:
        headers[name] = cached(value) or decode_value(value)
    return headers


def _parse_lines_slowly(lines):
    headers = {}
    for line in lines:
        name, sep, value = line.partition(": ")
        if not sep:
            name, sep, value = line.partition(":")
            if not sep:
                continue
        if name not in headers:
            headers[name] = value
    return headers


def content_length(headers):
    raw = headers.get("Content-Length")
    if raw is None or raw == "":
        return 0
    try:
        length = int(raw)
    except ValueError:
        raise ESLProtocolError("bad Content-Length %r" % raw) from None
    if length < 0:
        raise ESLProtocolError("negative Content-Length %r" % raw)
    return length


def parse_event_plain(body):
    """Inner `text/event-plain` bytes -> (headers, body text). The inner body follows the inner Content-Length."""
    end = body.find(b"\n\n")
    if end < 0:
        return parse_header_block(body.decode("utf-8", "replace")), ""
    headers = parse_header_block(body[:end].decode("utf-8", "replace"))
    length = content_length(headers)
    if not length:
        return headers, ""
    return headers, body[end + 2:end + 2 + length].decode("utf-8", "replace")


def _json_value(value):
    # A multi-valued header is a JSON array; event-plain shows it as ARRAY::a|:b.
    if isinstance(value, list):
        return "ARRAY::" + "|:".join(str(item) for item in value)
    return value if isinstance(value, str) else str(value)


def parse_event_json(body):
    """Inner `text/event-json` bytes -> (headers, body text). Values are not URL-encoded in JSON."""
    try:
        obj = json.loads(body.decode("utf-8", "replace"))
    except ValueError as exc:
        raise ESLProtocolError("bad event json: %s" % exc) from None
    if not isinstance(obj, dict):
        raise ESLProtocolError("event json is not an object")
    text = obj.pop("_body", "")
    return {str(k): _json_value(v) for k, v in obj.items()}, _json_value(text)


def parse_event_xml(body):
    """Inner `text/event-xml` bytes -> (headers, body text). Header texts are URL-encoded."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ESLProtocolError("bad event xml: %s" % exc) from None
    headers = {}
    header_elements = root.find("headers")
    for element in header_elements if header_elements is not None else ():
        headers.setdefault(element.tag, decode_value(element.text or ""))
    body_element = root.find("body")
    return headers, (body_element.text or "") if body_element is not None else ""


_EVENT_PARSERS = {EVENT_PLAIN: parse_event_plain, EVENT_JSON: parse_event_json, EVENT_XML: parse_event_xml}


def build_frame(headers, body):
    """Outer headers and body bytes -> Frame (events are unpacked)."""
    content_type = headers.get("Content-Type", "")
    event_parser = _EVENT_PARSERS.get(content_type)
    if event_parser is not None:
        inner_headers, inner_body = event_parser(body)
        return Frame(content_type, inner_headers, inner_body, headers)
    return Frame(content_type, headers, body.decode("utf-8", "replace"))


class FrameParser:
    """Incremental: `feed(chunk)` returns the frames completed by that chunk.

    A header block is bounded by `max_head_bytes` and a body by `max_body_bytes`;
    beyond either the stream is rejected with ESLProtocolError.
    """

    def __init__(self, max_head_bytes=DEFAULT_MAX_HEAD_BYTES, max_body_bytes=DEFAULT_MAX_BODY_BYTES):
        self.max_head_bytes = max_head_bytes
        self.max_body_bytes = max_body_bytes
        self.frames_parsed = 0
        self._buf = bytearray()
        self._scan_from = 0          # where to resume looking for the blank line
        self._pending_head = None    # (headers, body length) once a header block is read

    @property
    def buffered_bytes(self):
        return len(self._buf)

    def feed(self, chunk):
        buf = self._buf
        buf += chunk
        frames = []
        pos = 0
        while True:
            if self._pending_head is None:
                pos = self._skip_blank_lines(buf, pos)
                end = buf.find(b"\n\n", max(pos, self._scan_from))
                if end < 0:
                    self._check_head_size(len(buf) - pos)
                    self._scan_from = max(pos, len(buf) - 1)
                    break
                self._check_head_size(end - pos)
                headers = parse_header_block(buf[pos:end].decode("utf-8", "replace"))
                length = content_length(headers)
                if length > self.max_body_bytes:
                    raise ESLProtocolError("body of %d bytes exceeds %d" % (length, self.max_body_bytes))
                self._pending_head = (headers, length)
                pos = end + 2
            headers, length = self._pending_head
            if len(buf) - pos < length:
                break
            body = bytes(buf[pos:pos + length])
            pos += length
            self._pending_head = None
            frames.append(build_frame(headers, body))
        del buf[:pos]
        self._scan_from = max(0, self._scan_from - pos)
        self.frames_parsed += len(frames)
        return frames

    @staticmethod
    def _skip_blank_lines(buf, pos):
        # FreeSWITCH itself skips stray line ends between packets; do the same.
        while pos < len(buf) and buf[pos] == 10:
            pos += 1
        return pos

    def _check_head_size(self, size):
        if size > self.max_head_bytes:
            raise ESLProtocolError("header block exceeds %d bytes" % self.max_head_bytes)


def parse_stream(data):
    """Parse a whole byte stream at once; returns (frames, leftover byte count)."""
    parser = FrameParser()
    frames = parser.feed(data)
    return frames, parser.buffered_bytes
