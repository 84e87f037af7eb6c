"""A minimal scripted ESL peer for emulator tests: send a command, wait for the frame you expect."""

import gevent.socket

from freeswitch.emulator.session import Session
from tests.emulator.trace_replay import Collector

TIMEOUT_S = 5.0


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.collector = Collector(sock)
        self._taken = set()   # indices of frames a wait already returned; others stay available

    @property
    def frames(self):
        return self.collector.frames

    def send(self, text):
        self.sock.sendall(text.encode() + b"\n\n")

    def wait(self, predicate, timeout_s=TIMEOUT_S, what="frame"):
        """The first frame not yet returned that satisfies predicate (events and replies race, as in FreeSWITCH)."""
        found = []

        def check(c):
            for i in range(len(c.frames)):
                if i not in self._taken and predicate(c.frames[i]):
                    found.append(i)
                    return True
            return False
        assert self.collector.wait_for(check, timeout_s), f"no {what} within {timeout_s} s: " + repr(
            [f.signature for i, f in enumerate(self.frames) if i not in self._taken][-20:])
        self._taken.add(found[0])
        return self.frames[found[0]]

    def reply(self, text, timeout_s=TIMEOUT_S):
        """Send a command and return its command/reply or api/response."""
        self.send(text)
        return self.wait(lambda f: f.content_type in ("command/reply", "api/response"), timeout_s, f"reply to {text!r}")

    def event(self, name, timeout_s=TIMEOUT_S, **headers):
        def matches(f):
            return f.get("Event-Name") == name and all(f.get(k.replace("_", "-")) == v for k, v in headers.items())
        return self.wait(matches, timeout_s, name)

    def execute(self, app, arg=None, uuid=None, lock=True):
        lines = ["sendmsg" + (f" {uuid}" if uuid else ""), "call-command: execute", f"execute-app-name: {app}"]
        if arg is not None:
            lines.append(f"execute-app-arg: {arg}")
        if lock:
            lines.append("event-lock: true")
        return self.reply("\n".join(lines))

    def close(self):
        self.sock.close()


def inbound(emulator, password="ClueCon"):
    host, port = emulator.esl_address
    peer = Peer(gevent.socket.create_connection((host, port), timeout=TIMEOUT_S))
    peer.wait(lambda f: f.content_type == "auth/request")
    assert peer.reply(f"auth {password}").get("Reply-Text") == "+OK accepted"
    return peer


def outbound_call(emulator, controller_socket, caller="+4915112345678", dialed="+4930100100", agents=None,
                  audio=None):
    """Place a trunk call whose socket app connects to controller_socket; return (session, peer after connect)."""
    switch = emulator.switch
    uuid = switch.new_uuid()
    channel = switch.profiles.trunk_channel(uuid=uuid, caller=caller, dialed=dialed)
    channel.audio = audio
    session = Session(switch, channel)
    session.dialplan = [("socket", f"{controller_socket.address} async full")]
    session.agent_behaviours = agents or {}
    switch.add_session(session)
    session.start()
    peer = Peer(controller_socket.next_connection())
    peer.send("connect")
    peer.wait(lambda f: f.get("Reply-Text") == "+OK\n" or f.get("Event-Name") == "CHANNEL_DATA", what="connect reply")
    return session, peer
