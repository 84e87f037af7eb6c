"""A scripted fake FreeSWITCH for the ESL tests, built from the captured traces.

`FakeSwitch` plays FreeSWITCH in outbound mode: it connects to the controller's
port, answers `connect` with the real CHANNEL_DATA block of
outbound_connect_answer_playback.txt, and the test decides every other byte:
replies, events in any order, split anywhere, delayed, or the socket dropped.
`FakeInboundSwitch` plays FreeSWITCH's inbound port (auth, api, bgapi, event).
Framing and encoding here are written independently of controller.eslparse.
"""

import importlib.util
from pathlib import Path

import gevent
import gevent.event
import gevent.queue
import gevent.server
import gevent.socket

TRACES_DIR = Path(__file__).resolve().parent.parent / "traces"
CONNECT_TRACE = "outbound_connect_answer_playback.txt"
CALL_UUID = "ddc2c414-3906-4b01-8d23-7fdb986f4fa3"  # the channel in CONNECT_TRACE
GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
_SAFE = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/,!$'()*-._~")


def load_decode():
    spec = importlib.util.spec_from_file_location("trace_decode", TRACES_DIR / "decode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trace_stream(name, direction="FS->APP"):
    streams, _, bad = load_decode().streams(str(TRACES_DIR / name))
    assert not bad, "byte-count mismatch in %s" % name
    return bytes(streams[direction])


def split_frames(stream):
    """Raw frames (header block + Content-Length body) of a byte stream."""
    frames, pos = [], 0
    while True:
        end = stream.find(b"\n\n", pos)
        if end < 0:
            return frames
        length = 0
        for line in stream[pos:end].split(b"\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        frames.append(stream[pos:end + 2 + length])
        pos = end + 2 + length


def trace_frames(name):
    return split_frames(trace_stream(name))


def connect_reply():
    return trace_frames(CONNECT_TRACE)[0]


def encode_value(value):
    """FreeSWITCH's header value encoding: %XX (upper case) for everything outside a safe set."""
    return "".join(chr(b) if b in _SAFE else "%%%02X" % b for b in value.encode("utf-8"))


def event_frame(headers, body=None):
    """A text/event-plain frame from (name, value) pairs; values are encoded here."""
    items = headers.items() if isinstance(headers, dict) else headers
    inner = "".join("%s: %s\n" % (name, encode_value(value)) for name, value in items).encode()
    if body is None:
        inner += b"\n"
    else:
        raw_body = body.encode("utf-8") if isinstance(body, str) else body
        inner += b"Content-Length: %d\n\n" % len(raw_body) + raw_body
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


def json_event_frame(json_text):
    raw = json_text.encode("utf-8")
    return b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(raw) + raw


def reply_frame(text="+OK", extra=()):
    lines = ["Content-Type: command/reply", "Reply-Text: " + text] + ["%s: %s" % kv for kv in extra]
    return ("\n".join(lines) + "\n\n").encode()


def api_frame(body):
    raw = body.encode("utf-8")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(raw) + raw


def disconnect_frame(linger=False, uuid=CALL_UUID):
    if linger:
        return ("Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\n"
                "Content-Disposition: linger\nChannel-Name: sofia/peer/sipp@127.0.0.1:5062\n"
                "Linger-Time: -1\nContent-Length: 0\n\n" % uuid).encode()
    return (b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\n"
            b"Content-Disposition: disconnect\nContent-Length: %d\n\n" % (uuid.encode(), len(GOODBYE))
            + GOODBYE)


class TraceEvent:
    """A text/event-plain frame from a trace, re-serialised with some headers replaced."""

    def __init__(self, trace, event_name, index=0):
        matches = [f for f in trace_frames(trace)
                   if b"text/event-plain" in f.split(b"\n\n", 1)[0]
                   and b"\n\nEvent-Name: %s\n" % event_name.encode() in f]
        frame = matches[index]
        inner = frame.split(b"\n\n", 1)[1]
        head, _, self.body = inner.partition(b"\n\n")
        self.lines = [line.decode().split(": ", 1) for line in head.split(b"\n")]

    def get_raw(self, name):
        return next(value for key, value in self.lines if key == name)

    def build(self, exact=None, **replace):
        """Frame bytes with headers replaced or added; values are plain text.

        Keyword names use '_' for '-' (Application_UUID=...); `exact` maps names as they are.
        """
        wanted = {key.replace("_", "-"): encode_value(value) for key, value in replace.items()}
        wanted.update({key: encode_value(value) for key, value in (exact or {}).items()})
        lines = [(key, wanted.pop(key, value)) for key, value in self.lines if key != "Content-Length"]
        lines += list(wanted.items())
        inner = "".join("%s: %s\n" % kv for kv in lines).encode()
        inner += (b"Content-Length: %d\n\n" % len(self.body) + self.body) if self.body else b"\n"
        return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner


def read_commands(sock, out_queue):
    """Commands the controller sends, as text without the final blank line, until EOF."""
    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            out_queue.put(None)
            return
        buf += chunk
        while b"\n\n" in buf:
            command, buf = buf.split(b"\n\n", 1)
            out_queue.put(command.decode())


class FakeSwitch:
    """FreeSWITCH connecting to the controller in outbound mode; the test scripts every byte."""

    def __init__(self, port=None, host="127.0.0.1", timeout_s=2.0, sock=None):
        """Connect to `host:port`, or play over an already connected `sock` (e.g. a socketpair end)."""
        self.sock = sock or gevent.socket.create_connection((host, port), timeout=timeout_s)
        self.sock.settimeout(None)
        self.commands = gevent.queue.Queue(maxsize=256)
        self.closed_by_peer = gevent.event.Event()
        self._reader = gevent.spawn(self._read)

    def _read(self):
        read_commands(self.sock, self.commands)
        self.closed_by_peer.set()

    def next_command(self, timeout_s=2.0):
        """The next command, or None when the controller closed the socket."""
        try:
            return self.commands.get(timeout=timeout_s)
        except gevent.queue.Empty:
            raise AssertionError("no command from the controller within %s s" % timeout_s) from None

    def expect(self, prefix, timeout_s=2.0):
        command = self.next_command(timeout_s)
        assert command is not None and command.startswith(prefix), "expected %r, got %r" % (prefix, command)
        return command

    def push(self, data, chunk_size=None, delay_s=0.0):
        """Send bytes, optionally in chunks of `chunk_size` with `delay_s` between them."""
        step = chunk_size or len(data) or 1
        for start in range(0, len(data), step):
            if start and delay_s:
                gevent.sleep(delay_s)
            self.sock.sendall(data[start:start + step])

    def reply(self, text="+OK", extra=()):
        self.push(reply_frame(text, extra))

    def handshake(self, linger=True):
        """Answer connect (real CHANNEL_DATA), myevents and linger as FreeSWITCH 1.10 does."""
        self.expect("connect")
        self.push(connect_reply())
        self.expect("myevents")
        self.reply("+OK Events Enabled")
        if linger:
            self.expect("linger")
            self.reply("+OK will linger")

    def serve_until_closed(self, timeout_s=5.0):
        """Answer +OK to everything (exit with +OK bye) until the controller closes; return the commands."""
        seen = []
        with gevent.Timeout(timeout_s, AssertionError("controller did not close within %s s" % timeout_s)):
            while True:
                command = self.commands.get()
                if command is None:
                    return seen
                seen.append(command)
                self.reply("+OK bye" if command == "exit" else "+OK")

    def wait_closed(self, timeout_s=2.0):
        return self.closed_by_peer.wait(timeout=timeout_s)

    def close(self):
        self.sock.close()
        self._reader.kill(block=True, timeout=1)


class FakeInboundSwitch:
    """FreeSWITCH's inbound port: auth, api (from a dict or callable), bgapi with BACKGROUND_JOB, event."""

    def __init__(self, password="ClueCon", api=None, port=0, answer_commands=True):
        self.password = password
        self.api = api or {}
        self.answer_commands = answer_commands
        self.requested_port = port
        self.commands = []
        self.connections = []
        self.accepted = gevent.event.Event()
        self.bgapi_job_uuid = None  # set to send BACKGROUND_JOB events with this Job-UUID instead
        self._new_command = gevent.event.Event()
        self._server = None

    @property
    def port(self):
        return self._server.server_port

    def start(self):
        # StreamServer sets SO_REUSEADDR, so a restarted fake can take the same port.
        self._server = gevent.server.StreamServer(("127.0.0.1", self.requested_port), self._serve)
        self._server.start()
        return self

    def wait_command(self, prefix, timeout_s=2.0):
        """Block until a command starting with `prefix` has arrived; return it."""
        with gevent.Timeout(timeout_s, AssertionError("no %r within %s s" % (prefix, timeout_s))):
            while True:
                found = [c for c in self.commands if c.startswith(prefix)]
                if found:
                    return found[-1]
                self._new_command.wait()

    def stop(self):
        """Like FreeSWITCH going down: close the port and every connection."""
        self._server.stop(timeout=0)
        self.drop_connections()

    def drop_connections(self):
        for sock in list(self.connections):
            sock.close()
        self.connections.clear()

    def push(self, data):
        for sock in list(self.connections):
            sock.sendall(data)

    def _serve(self, sock, address):
        self.connections.append(sock)
        self.accepted.set()
        sock.sendall(b"Content-Type: auth/request\n\n")
        queue = gevent.queue.Queue(maxsize=256)
        reader = gevent.spawn(read_commands, sock, queue)
        try:
            while True:
                command = queue.get(timeout=30)
                if command is None:
                    return
                self.commands.append(command)
                self._new_command.set()
                self._new_command = gevent.event.Event()
                if self.answer_commands:
                    self._answer(sock, command)
        except (OSError, gevent.queue.Empty):
            return
        finally:
            reader.kill(block=False)

    def _answer(self, sock, command):
        first, _, rest = command.partition("\n")
        if first.startswith("auth "):
            if first[5:] == self.password:
                sock.sendall(reply_frame("+OK accepted"))
            else:
                sock.sendall(reply_frame("-ERR invalid") + disconnect_frame_inbound())
                sock.close()
        elif first.startswith("api "):
            sock.sendall(api_frame(self._api(first[4:])))
        elif first.startswith("bgapi "):
            job_uuid = rest.split(": ", 1)[1]
            sock.sendall(reply_frame("+OK Job-UUID: " + job_uuid, [("Job-UUID", job_uuid)]))
            sock.sendall(event_frame([("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", self.bgapi_job_uuid or job_uuid),
                                      ("Job-Command", first[6:])], self._api(first[6:])))
        elif first.startswith("event "):
            sock.sendall(reply_frame("+OK event listener enabled " + first.split()[1]))
        elif first == "exit":
            sock.sendall(reply_frame("+OK bye") + disconnect_frame_inbound())
            sock.close()
        else:
            sock.sendall(reply_frame("-ERR command not found"))

    def _api(self, command):
        if callable(self.api):
            return self.api(command)
        name = command.split(" ", 1)[0]
        return self.api.get(command, self.api.get(name, "-ERR %s Command not found!\n" % name))


def disconnect_frame_inbound():
    return b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(GOODBYE) + GOODBYE
