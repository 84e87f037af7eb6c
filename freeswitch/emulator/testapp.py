"""A small outbound-ESL test application that drives the emulator's calls for the demo and tests. Not the product.

For each call FreeSWITCH hands it (`socket <addr> async full`): connect, myevents, linger, answer, a tone prompt
inside play_and_get_digits for one digit (1: record, 2: don't), on 1 `record_session <dir>/<uuid>.wav` in stereo
(caller left, agent right), then `bridge user/<ext>`; when the call ends it replies `exit`. It has no consent
policy, routing or error handling worth the name: the controller replaces it.

    python -m freeswitch.emulator.testapp --listen 127.0.0.1:8084 --recordings DIR [--agent 1001]
"""

import argparse
import logging
import os
import urllib.parse
import uuid as uuidlib

import gevent
import gevent.event
import gevent.server

log = logging.getLogger(__name__)

PROMPT = "tone_stream://%(400,200,440)"
MENU = f"1 1 1 20000 # {PROMPT} silence_stream://250 consent_digit ^[12]$"
RECORD_VARS = "{RECORD_STEREO=true,enable_file_write_buffering=false,RECORD_PRE_BUFFER_FRAMES=0}"
REPLY_TIMEOUT_S = 10.0        # real seconds for a reply or a short application
CALL_TIMEOUT_S = 3600.0       # real seconds a bridged call may last


class CallEnded(Exception):
    """The channel hung up before the application we waited for completed."""


class OutboundCall:
    """One outbound socket: synchronous commands, reading (and noting) events until the wanted frame arrives."""

    def __init__(self, sock):
        self.sock, self.file = sock, sock.makefile("rb")
        self.result = dict.fromkeys(("uuid", "caller", "dialed", "digits", "recording", "answered_us", "agent_answered_us",
                                     "record_start_us", "record_stop_us", "record_samples", "hangup_us",
                                     "hangup_cause", "error"))
        self.result["finished"] = False
        self.hung_up = self.reported = self.notice = False

    def _frame(self):
        headers = {}
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("FreeSWITCH closed the socket")
            line = line.decode("utf-8").rstrip("\n")
            if not line:
                if headers:
                    break
                continue
            name, _, value = line.partition(": ")
            headers[name] = urllib.parse.unquote(value)
        body = self.file.read(int(headers["Content-Length"])).decode("utf-8") if "Content-Length" in headers else ""
        if headers.get("Content-Type") == "text/event-plain":
            event = dict(l.partition(": ")[::2] for l in body.split("\n\n", 1)[0].split("\n") if l)
            headers = {k: urllib.parse.unquote(v) for k, v in event.items()}
            self._note(headers)
        elif headers.get("Content-Type") == "text/disconnect-notice":
            self.notice = True
        return headers

    def _note(self, event):
        name, stamp, r = event.get("Event-Name"), int(event.get("Event-Date-Timestamp", 0)), self.result
        if name == "CHANNEL_ANSWER":
            r["answered_us"] = r["answered_us"] or stamp
        elif name == "CHANNEL_BRIDGE":
            r["agent_answered_us"] = int(event.get("Other-Leg-Channel-Answered-Time", 0)) or None
        elif name == "RECORD_START":
            r["record_start_us"] = stamp
        elif name == "RECORD_STOP":
            r["record_stop_us"], r["record_samples"] = stamp, int(event.get("variable_record_samples", 0))
        elif name == "CHANNEL_HANGUP":
            self.hung_up, r["hangup_us"], r["hangup_cause"] = True, stamp, event.get("Hangup-Cause")
        elif name == "CHANNEL_HANGUP_COMPLETE":
            self.reported = True

    def until(self, wanted, timeout_s=REPLY_TIMEOUT_S, stop_when_reported=False):
        with gevent.Timeout(timeout_s, TimeoutError(f"no reply within {timeout_s} s")):
            while not (stop_when_reported and self.reported):
                frame = self._frame()
                if wanted(frame):
                    return frame
        raise CallEnded()

    def command(self, text):
        self.sock.sendall(text.encode("utf-8") + b"\n\n")
        reply = self.until(lambda f: f.get("Content-Type") == "command/reply")
        if not reply.get("Reply-Text", "").startswith("+OK"):
            raise RuntimeError(f"{text.split()[0]}: {reply.get('Reply-Text')}")
        return reply

    def execute(self, app, arg="", timeout_s=REPLY_TIMEOUT_S):
        """sendmsg execute, then wait for its CHANNEL_EXECUTE_COMPLETE; CallEnded if the call ends first."""
        if self.hung_up:
            raise CallEnded()
        app_uuid = str(uuidlib.uuid4())
        self.command(f"sendmsg\ncall-command: execute\nexecute-app-name: {app}\nexecute-app-arg: {arg}\n"
                     f"Event-UUID: {app_uuid}")
        return self.until(lambda f: f.get("Event-Name") == "CHANNEL_EXECUTE_COMPLETE"
                          and f.get("Application-UUID") == app_uuid, timeout_s, stop_when_reported=True)


class TestApp:
    """The socket server: one greenlet per call; `calls` maps each call's UUID to what happened."""

    __test__ = False    # not a pytest class

    def __init__(self, listen=("127.0.0.1", 0), recordings_dir=".", agent="1001", routes=None):
        self.recordings_dir, self.agent, self.routes = os.path.abspath(recordings_dir), agent, dict(routes or {})
        self.server = gevent.server.StreamServer(listen, self._handle)
        self.calls = {}
        self.finished = gevent.event.Event()    # set (and cleared) whenever a call finishes

    address = property(lambda self: self.server.address[:2])

    def start(self):
        os.makedirs(self.recordings_dir, exist_ok=True)
        self.server.start()
        return self

    def stop(self):
        self.server.stop(timeout=1)

    def wait_for_calls(self, count, timeout_s):
        """Wait until `count` calls have finished; True if they did in time."""
        with gevent.Timeout(timeout_s, False):
            while sum(1 for r in self.calls.values() if r.get("finished")) < count:
                self.finished.wait()
                self.finished.clear()
            return True
        return False

    def _handle(self, sock, address):
        call = OutboundCall(sock)
        result = call.result
        try:
            data = call.command("connect")
            result.update(uuid=data["Unique-ID"], caller=data.get("Caller-Caller-ID-Number"),
                          dialed=data.get("Caller-Destination-Number"))
            self.calls[result["uuid"]] = result
            for text in ("myevents", "event plain RECORD_START RECORD_STOP", "linger"):
                call.command(text)
            self._dialogue(call, result)
        except CallEnded:
            pass
        except (OSError, ConnectionError, RuntimeError, TimeoutError, KeyError) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
            log.warning("call %s: %s", result["uuid"], result["error"])
        finally:
            self._finish(call, result)

    def _dialogue(self, call, result):
        call.execute("answer")
        done = call.execute("play_and_get_digits", MENU, timeout_s=REPLY_TIMEOUT_S + 10)
        result["digits"] = done.get("variable_consent_digit")
        if result["digits"] == "1":
            path = os.path.join(self.recordings_dir, f"{result['uuid']}.wav")
            call.execute("record_session", f"{path} 0 {RECORD_VARS}")
            result["recording"] = path
        extension = self.routes.get(result["dialed"], self.agent)
        call.execute("bridge", f"user/{extension}", timeout_s=CALL_TIMEOUT_S)
        call.execute("hangup", "NORMAL_CLEARING")   # the agent hung up first: end the caller's leg too

    def _finish(self, call, result):
        try:
            if not call.notice:   # linger: the call is over once the notice and HANGUP_COMPLETE are in
                call.until(lambda f: call.notice and call.reported, timeout_s=REPLY_TIMEOUT_S)
            call.sock.sendall(b"exit\n\n")
        except (OSError, ConnectionError, TimeoutError) as exc:
            result["error"] = result["error"] or f"{type(exc).__name__}: {exc}"
        finally:
            call.sock.close()
            result["finished"] = True
            self.finished.set()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8084", help="HOST:PORT the socket app connects to")
    parser.add_argument("--recordings", default="recordings", help="directory for the WAV files")
    parser.add_argument("--agent", default="1001", help="extension to bridge to (default 1001)")
    parser.add_argument("--route", action="append", default=[], metavar="DIALED=EXT", help="per-number agent")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = TestApp((host or "127.0.0.1", int(port)), args.recordings, args.agent,
                  dict(r.split("=", 1) for r in args.route)).start()
    log.info("test application listening on %s:%s, recordings in %s", *app.address, app.recordings_dir)
    try:
        gevent.wait()
    except KeyboardInterrupt:
        app.stop()


if __name__ == "__main__":
    main()
