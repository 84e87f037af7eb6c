"""CallServer: per-call greenlets, the concurrency bound, drain and kill, handler errors, SIGTERM."""

import logging
import os
import signal

import gevent
import gevent.event
import gevent.queue
import gevent.socket
import pytest

import fakefs
from controller.service import CallServer, install_sigterm_handler


class Recorder:
    """A handler that reports each call to the test and then runs `body(call)`."""

    def __init__(self, body=None):
        self.calls = gevent.queue.Queue(maxsize=16)
        self.finished = gevent.queue.Queue(maxsize=16)
        self.body = body

    def __call__(self, call):
        self.calls.put((call, gevent.getcurrent().name))
        try:
            if self.body is not None:
                self.body(call)
        finally:
            self.finished.put(call.uuid)


def serve(handler, **kwargs):
    kwargs.setdefault("setup_timeout_s", 2.0)
    kwargs.setdefault("exit_timeout_s", 0.5)
    return CallServer(handler, port=0, **kwargs).start()


def test_handler_gets_the_call_after_setup_in_a_greenlet_named_after_it():
    def body(call):
        call.execute("answer", timeout_s=2)

    handler = Recorder(body)
    server = serve(handler)
    fs = fakefs.FakeSwitch(server.port)
    try:
        fs.handshake(linger=True)
        call, greenlet_name = handler.calls.get(timeout=2)
        assert greenlet_name == "call-" + fakefs.CALL_UUID
        assert call.session_data["Channel-Destination-Number"] == "8084"
        command = fs.expect("sendmsg")
        fs.reply("+OK")
        app_uuid = command.split("Event-UUID: ")[1]
        fs.push(fakefs.TraceEvent(fakefs.CONNECT_TRACE, "CHANNEL_EXECUTE_COMPLETE").build(Application_UUID=app_uuid))
        assert handler.finished.get(timeout=2) == fakefs.CALL_UUID
        assert fs.serve_until_closed() == ["exit"]   # after the handler, the server says exit and closes
        assert server.accepted_calls == 1 and server.active_calls == 0
    finally:
        fs.close()
        server.stop(drain_timeout_s=1)


def test_above_the_bound_a_call_gets_connect_one_round_trip_and_exit():
    release = gevent.event.Event()
    handler = Recorder(lambda call: release.wait(timeout=5))
    server = serve(handler, max_calls=1)
    first, second = fakefs.FakeSwitch(server.port), fakefs.FakeSwitch(server.port)
    try:
        first.handshake()
        handler.calls.get(timeout=2)
        second.expect("connect")
        second.push(fakefs.connect_reply())
        second.expect("myevents")                    # not exit straight after connect
        second.reply("+OK Events Enabled")
        assert second.serve_until_closed() == ["exit"]
        assert server.rejected_calls == 1 and server.active_calls == 1
        release.set()
        assert handler.finished.get(timeout=2) == fakefs.CALL_UUID
        assert first.serve_until_closed() == ["exit"]
        assert server.active_calls == 0
    finally:
        release.set()
        first.close()
        second.close()
        server.stop(drain_timeout_s=1)


def test_stop_refuses_new_calls_and_drains_running_ones():
    def body(call):
        call.next_event(timeout_s=5)                 # ends when the caller presses a key

    handler = Recorder(body)
    server = serve(handler)
    port = server.port
    fs = fakefs.FakeSwitch(port)
    try:
        fs.handshake()
        handler.calls.get(timeout=2)
        stopping = gevent.spawn(server.stop, 5.0)
        gevent.sleep(0)
        with pytest.raises(OSError):
            gevent.socket.create_connection(("127.0.0.1", port), timeout=1)
        assert not stopping.ready()
        fs.push(fakefs.TraceEvent(fakefs.CONNECT_TRACE, "DTMF").build())
        assert handler.finished.get(timeout=2) == fakefs.CALL_UUID
        fs.serve_until_closed()
        assert stopping.get(timeout=2) == 0
        assert server.wait_stopped(1)
    finally:
        fs.close()


def test_stop_kills_calls_still_running_after_the_drain_timeout():
    cleaned_up = gevent.event.Event()

    def body(call):
        try:
            gevent.sleep(30)
        finally:
            cleaned_up.set()

    handler = Recorder(body)
    server = serve(handler)
    fs = fakefs.FakeSwitch(server.port)
    try:
        fs.handshake()
        handler.calls.get(timeout=2)
        assert server.stop(drain_timeout_s=0.2) == 1
        assert cleaned_up.is_set()
        fs.serve_until_closed(timeout_s=2)
        assert server.killed_calls == 1 and server.active_calls == 0
    finally:
        fs.close()


def test_a_failing_handler_is_logged_with_the_call_uuid_and_the_server_goes_on(caplog):
    outcomes = iter([RuntimeError("flow bug"), None])

    def body(call):
        error = next(outcomes)
        if error:
            raise error

    handler = Recorder(body)
    server = serve(handler)
    try:
        with caplog.at_level(logging.ERROR, logger="controller.service"):
            for _ in range(2):
                fs = fakefs.FakeSwitch(server.port)
                fs.handshake()
                handler.finished.get(timeout=2)
                fs.serve_until_closed()
                fs.close()
        failures = [r for r in caplog.records if "handler failed" in r.getMessage()]
        assert len(failures) == 1 and fakefs.CALL_UUID in failures[0].getMessage()
        assert failures[0].exc_info[0] is RuntimeError
        assert server.failed_calls == 1 and server.accepted_calls == 2
    finally:
        server.stop(drain_timeout_s=1)


def test_a_silent_peer_times_out_in_setup_without_reaching_the_handler():
    handler = Recorder()
    server = serve(handler, setup_timeout_s=0.2)
    fs = fakefs.FakeSwitch(server.port)
    try:
        fs.expect("connect")                         # never answered
        fs.serve_until_closed(timeout_s=2)
        assert handler.calls.empty() and server.failed_calls == 1
    finally:
        fs.close()
        server.stop(drain_timeout_s=1)


def test_sigterm_handler_stops_the_server():
    server = serve(Recorder())
    handle = install_sigterm_handler(server, drain_timeout_s=1)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert server.wait_stopped(2)
        with pytest.raises(OSError):
            gevent.socket.create_connection(("127.0.0.1", server.port or 1), timeout=1)
    finally:
        handle.cancel()
