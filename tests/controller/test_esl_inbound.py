"""InboundClient and InboundSupervisor against a fake FreeSWITCH inbound port."""

import time

import gevent
import pytest

import fakefs
from controller.eslcmd import backoff_delay_s
from controller.eslerrors import ESLAuthError, ESLConnectionError, ESLTimeout
from controller.esl import InboundClient, InboundSupervisor


@pytest.fixture
def switch():
    fake = fakefs.FakeInboundSwitch(api={"status": "UP 0 years\n", "uuid_exists": "false"}).start()
    yield fake
    fake.stop()


def test_api_and_bgapi_with_background_job_correlation(switch):
    client = InboundClient("127.0.0.1", switch.port, "ClueCon", command_timeout_s=1)
    client.connect()
    try:
        assert client.api("status") == "UP 0 years\n"
        assert client.api("no_such_thing").startswith("-ERR no_such_thing Command not found!")
        job = client.bgapi("status", timeout_s=2)
        assert job.event_name == "BACKGROUND_JOB" and job.body == "UP 0 years\n"
        sent = [c for c in switch.commands if c.startswith(("event", "bgapi"))]
        assert sent[0] == "event plain BACKGROUND_JOB"
        assert sent[1] == "bgapi status\nJob-UUID: " + job.headers["Job-UUID"]
    finally:
        client.close()


def test_bgapi_ignores_other_jobs_and_times_out(switch):
    switch.bgapi_job_uuid = "someone-elses-job"
    client = InboundClient("127.0.0.1", switch.port, "ClueCon", command_timeout_s=1)
    client.connect()
    try:
        started = time.monotonic()
        with pytest.raises(ESLTimeout):
            client.bgapi("status", timeout_s=0.3)
        assert time.monotonic() - started < 1.0
        assert client.next_event(timeout_s=1).headers["Job-UUID"] == "someone-elses-job"
    finally:
        client.close(exit_timeout_s=0.1)


def test_wrong_password_is_an_auth_error(switch):
    client = InboundClient("127.0.0.1", switch.port, "wrong", command_timeout_s=1)
    with pytest.raises(ESLAuthError):
        client.connect()
    assert client.lost_reason is not None


def test_connection_refused_is_a_connection_error(switch):
    port = switch.port
    switch.stop()
    with pytest.raises(ESLConnectionError):
        InboundClient("127.0.0.1", port, "ClueCon", connect_timeout_s=0.5).connect()


def test_silent_server_times_out_waiting_for_auth_request():
    silent = fakefs.FakeInboundSwitch()
    silent._serve = lambda sock, address: gevent.sleep(5)
    silent.start()
    try:
        started = time.monotonic()
        with pytest.raises(ESLTimeout):
            InboundClient("127.0.0.1", silent.port, "ClueCon", connect_timeout_s=0.2).connect()
        assert time.monotonic() - started < 1.0
    finally:
        silent._server.stop(timeout=0)


def test_events_queue_and_loss_fails_readers(switch):
    client = InboundClient("127.0.0.1", switch.port, "ClueCon", command_timeout_s=1)
    client.connect()
    client.subscribe(["CHANNEL_CREATE"])
    switch.push(fakefs.TraceEvent("event_plain_all.txt", "CHANNEL_CREATE").build())
    assert client.next_event(timeout_s=1).event_name == "CHANNEL_CREATE"
    reader = gevent.spawn(client.next_event, 5)
    switch.answer_commands = False
    pending = gevent.spawn(client.api, "status_that_never_returns", 5)
    switch.wait_command("api status_that_never_returns")
    switch.drop_connections()
    for greenlet in (reader, pending):
        with pytest.raises(ESLConnectionError):
            greenlet.get(timeout=1)
    assert client.lost_event.is_set()


def test_backoff_grows_exponentially_with_bounded_jitter():
    assert [backoff_delay_s(n, 0.5, 30, 0.0) for n in range(8)] == [0.25, 0.5, 1, 2, 4, 8, 15, 15]
    assert [backoff_delay_s(n, 0.5, 30, 0.999999) for n in (0, 10)] == pytest.approx([0.5, 30])


def wait_until(condition, timeout_s=2.0):
    """Poll a condition that has no event of its own, with a deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met within %s s" % timeout_s
        gevent.sleep(0.01)


def test_supervisor_reconnects_with_backoff_and_resubscribes(switch):
    port = switch.port
    supervisor = InboundSupervisor("127.0.0.1", port, "ClueCon", subscriptions=["CHANNEL_HANGUP"],
                                   backoff_initial_s=0.05, backoff_max_s=0.2, connect_timeout_s=0.5,
                                   random_unit=lambda: 0.0).start()
    try:
        assert supervisor.wait_connected(2)
        assert supervisor.api("status") == "UP 0 years\n"
        first_client = supervisor.client
        switch.stop()                                   # FreeSWITCH goes down
        assert first_client.lost_event.wait(timeout=2)
        assert not supervisor.connected
        with pytest.raises(ESLConnectionError):
            supervisor.api("status")
        wait_until(lambda: supervisor.failures >= 2)    # it keeps retrying while the port is closed
        restarted = fakefs.FakeInboundSwitch(api={"status": "UP again\n"}, port=port).start()
        try:
            assert restarted.accepted.wait(timeout=2)
            assert supervisor.wait_connected(2)
            assert supervisor.api("status") == "UP again\n"
            assert "event plain CHANNEL_HANGUP" in restarted.commands
            assert supervisor.connects == 2
        finally:
            restarted.stop()
    finally:
        supervisor.stop()
