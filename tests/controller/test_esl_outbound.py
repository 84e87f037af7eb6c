"""OutboundCall against a scripted FreeSWITCH over a socketpair: matching, timeouts, fail-fast."""

import time
import uuid

import gevent
import gevent.socket
import pytest

import fakefs
from controller.esl import OutboundCall
from controller.eslerrors import CallGone, ESLCommandError, ESLError, ESLTimeout

LOCK_TRACE = "outbound_loopback_async_lock.txt"


@pytest.fixture
def line():
    """(call, fs): a connected OutboundCall and the fake FreeSWITCH end of its socket."""
    ours, theirs = gevent.socket.socketpair()
    call = OutboundCall(("test", 0), ours, command_timeout_s=1.0)
    fs = fakefs.FakeSwitch(sock=theirs)
    connecting = gevent.spawn(call.connect)
    fs.expect("connect")
    fs.push(fakefs.connect_reply())
    connecting.get(timeout=2)
    yield call, fs
    fs.close()
    call.close(exit_timeout_s=0.1)


def headers_of(command):
    return dict(line.split(": ", 1) for line in command.split("\n")[1:])


def completion(app_uuid, index=0, exact=None, **extra):
    return fakefs.TraceEvent(fakefs.CONNECT_TRACE, "CHANNEL_EXECUTE_COMPLETE", index).build(
        exact, Application_UUID=app_uuid, **extra)


def hangup_event(unique_id=fakefs.CALL_UUID, cause="NORMAL_CLEARING"):
    return fakefs.TraceEvent("hangup_disconnect.txt", "CHANNEL_HANGUP").build(
        Unique_ID=unique_id, Hangup_Cause=cause)


def start_execute(call, fs, app="playback", arg="tone_stream://%(200,0,440)", **kwargs):
    """Spawn an execute, answer its sendmsg with +OK, return (greenlet, the Event-UUID it sent)."""
    kwargs.setdefault("timeout_s", 2.0)
    greenlet = gevent.spawn(call.execute, app, arg, **kwargs)
    command = fs.expect("sendmsg")
    fs.reply("+OK")
    return greenlet, headers_of(command)["Event-UUID"]


def test_connect_keeps_the_channel_data(line):
    call, _ = line
    assert call.uuid == fakefs.CALL_UUID
    assert call.session_data["Caller-Caller-ID-Number"] == "sipp"
    assert call.session_data["variable_sip_full_from"].startswith('"sipp" <sip:sipp@127.0.0.1:5062>')


def test_execute_sends_event_lock_and_a_fresh_event_uuid_and_returns_its_completion(line):
    call, fs = line
    running, app_uuid = start_execute(call, fs, app="answer", arg=None)
    assert uuid.UUID(app_uuid).version == 4
    fs.push(completion(str(uuid.uuid4())))           # same app name, someone else's uuid
    fs.push(completion(app_uuid), chunk_size=97)     # ours, split across many sends
    result = running.get(timeout=2)
    assert result.headers["Application-UUID"] == app_uuid
    assert result.event_name == "CHANNEL_EXECUTE_COMPLETE"


def test_sendmsg_text_is_exact(line):
    call, fs = line
    greenlet = gevent.spawn(call.execute, "playback", "/tmp/x.wav", timeout_s=0.3)
    command = fs.expect("sendmsg")
    app_uuid = headers_of(command)["Event-UUID"]
    assert command == ("sendmsg\ncall-command: execute\nexecute-app-name: playback\n"
                       "execute-app-arg: /tmp/x.wav\nevent-lock: true\nEvent-UUID: " + app_uuid)
    fs.reply("+OK")
    with pytest.raises(ESLTimeout):
        greenlet.get(timeout=2)


def test_two_overlapping_playbacks_completing_in_nested_order(line):
    call, fs = line
    outer, outer_uuid = start_execute(call, fs, arg="tone_stream://%(200,0,440)", event_lock=False)
    inner, inner_uuid = start_execute(call, fs, arg="tone_stream://%(200,0,880)", event_lock=False)
    assert outer_uuid != inner_uuid
    # As captured live: without event-lock the second app runs inside the first and completes first.
    nested = fakefs.TraceEvent(LOCK_TRACE, "CHANNEL_EXECUTE_COMPLETE", 1)
    enclosing = fakefs.TraceEvent(LOCK_TRACE, "CHANNEL_EXECUTE_COMPLETE", 2)
    assert nested.get_raw("Application-UUID").endswith("0880")
    fs.push(nested.build(Application_UUID=inner_uuid, Unique_ID=fakefs.CALL_UUID))
    assert inner.get(timeout=2).headers["Application-Data"] == "tone_stream://%(200,0,880)"
    assert not outer.ready()
    fs.push(enclosing.build(Application_UUID=outer_uuid, Unique_ID=fakefs.CALL_UUID))
    assert outer.get(timeout=2).headers["Application-Data"] == "tone_stream://%(200,0,440)"


def test_execute_times_out_and_names_its_app_uuid(line):
    call, fs = line
    started = time.monotonic()
    running, app_uuid = start_execute(call, fs, timeout_s=0.2)
    with pytest.raises(ESLTimeout) as caught:
        running.get(timeout=2)
    assert caught.value.app_uuid == app_uuid
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("method, args", [("getvar", ("uuid",)), ("api", ("status",)), ("myevents", ())])
def test_commands_time_out_when_freeswitch_never_replies(line, method, args):
    call, fs = line
    started = time.monotonic()
    with pytest.raises(ESLTimeout):
        getattr(call, method)(*args, timeout_s=0.2)
    assert fs.next_command().split(" ")[0] in ("getvar", "api", "myevents")
    assert time.monotonic() - started < 1.0


def test_a_late_reply_does_not_answer_the_next_command(line):
    call, fs = line
    with pytest.raises(ESLTimeout):
        call.getvar("first", timeout_s=0.1)
    second = gevent.spawn(call.getvar, "second", timeout_s=2)
    fs.expect("getvar first")
    fs.expect("getvar second")
    fs.reply("value-of-first")
    fs.reply("value-of-second")
    assert second.get(timeout=2) == "value-of-second"


def test_hangup_fails_a_pending_execute_at_once_and_the_late_completion_stays_readable(line):
    call, fs = line
    running, app_uuid = start_execute(call, fs, timeout_s=5.0)
    waiting = gevent.spawn(call.wait_event, lambda f: f.event_name == "DTMF", 5.0)
    gevent.sleep(0)
    fs.push(hangup_event(cause="NORMAL_CLEARING"))
    with pytest.raises(CallGone) as caught:
        running.get(timeout=1)
    assert (caught.value.reason, caught.value.hangup_cause, caught.value.app_uuid) == \
        ("hangup", "NORMAL_CLEARING", app_uuid)
    assert not caught.value.socket_lost
    with pytest.raises(CallGone):
        waiting.get(timeout=1)
    # With linger the app's completion still arrives after CHANNEL_HANGUP: kept as evidence.
    fs.push(completion(app_uuid, Application_Response="PLAYBACK ERROR"))
    late = call.wait_completion(app_uuid, timeout_s=1)
    assert late.headers["Application-Response"] == "PLAYBACK ERROR"
    with pytest.raises(CallGone):
        call.execute("answer", timeout_s=1)
    assert call.hangup() is False
    getting = gevent.spawn(call.getvar, "hangup_cause", timeout_s=2)
    fs.expect("getvar hangup_cause")  # the execute and hangup above sent nothing
    fs.reply("NORMAL_CLEARING")
    assert getting.get(timeout=2) == "NORMAL_CLEARING"


def test_hangup_of_another_channel_is_ignored(line):
    call, fs = line
    running, app_uuid = start_execute(call, fs)
    fs.push(hangup_event(unique_id=str(uuid.uuid4())))
    fs.push(completion(app_uuid))
    assert running.get(timeout=2).headers["Application-UUID"] == app_uuid
    assert not call.gone


def test_forged_header_in_a_variable_does_not_hang_the_call_up(line):
    call, fs = line
    running, app_uuid = start_execute(call, fs)
    fs.push(completion(app_uuid, exact={"variable_x": "a\nEvent-Name: CHANNEL_HANGUP\nHangup-Cause: CALL_REJECTED"}))
    result = running.get(timeout=2)
    assert result.headers["variable_x"] == "a\nEvent-Name: CHANNEL_HANGUP\nHangup-Cause: CALL_REJECTED"
    assert not call.gone and call.hangup_cause is None


def test_linger_notice_fails_pending_commands_and_waits_at_once(line):
    call, fs = line
    running, app_uuid = start_execute(call, fs)
    pending_getvar = gevent.spawn(call.getvar, "x", timeout_s=5)
    fs.expect("getvar x")
    fs.push(fakefs.disconnect_frame(linger=True))
    for greenlet in (running, pending_getvar):
        with pytest.raises(CallGone) as caught:
            greenlet.get(timeout=1)
        assert caught.value.reason == "linger-notice"
    fs.reply("late answer to getvar x")   # still consumed by its own slot
    getting = gevent.spawn(call.getvar, "hangup_cause", timeout_s=2)
    fs.expect("getvar hangup_cause")
    fs.reply("NORMAL_CLEARING")
    assert getting.get(timeout=2) == "NORMAL_CLEARING"


@pytest.mark.parametrize("ending", ["disconnect-notice", "socket-closed"])
def test_socket_end_fails_everything_including_waits_that_outlive_hangup(line, ending):
    call, fs = line
    running, app_uuid = start_execute(call, fs)
    survivor = gevent.spawn(call.wait_completion, "no-such-app", 5.0)
    reader = gevent.spawn(call.next_event, 5.0)
    gevent.sleep(0)
    if ending == "disconnect-notice":
        fs.push(fakefs.disconnect_frame())
    else:
        fs.close()
    for greenlet in (running, survivor, reader):
        with pytest.raises(CallGone) as caught:
            greenlet.get(timeout=1)
        assert caught.value.reason == ending
    with pytest.raises(CallGone):
        call.getvar("x", timeout_s=1)


def test_wait_event_matches_a_predicate_and_times_out(line):
    call, fs = line
    waiting = gevent.spawn(call.wait_event, lambda f: f.headers.get("DTMF-Digit") == "#", 2.0)
    gevent.sleep(0)
    for index in range(4):
        fs.push(fakefs.TraceEvent(fakefs.CONNECT_TRACE, "DTMF", index).build())
    assert waiting.get(timeout=2).headers["DTMF-Digit"] == "#"
    with pytest.raises(ESLTimeout):
        call.wait_event(lambda f: False, 0.1)


def test_dtmf_and_headerless_events_queue_in_order_with_a_bound(line):
    call, fs = line
    fs.push(fakefs.event_frame([("agent_code", "tag"), ("digits", "12"), ("Unique-ID", fakefs.CALL_UUID)]))
    for index in range(4):
        fs.push(fakefs.TraceEvent(fakefs.CONNECT_TRACE, "DTMF", index).build())
    first = call.next_event(timeout_s=1)
    assert first.event_name is None and first.headers["agent_code"] == "tag"
    assert [call.next_event(timeout_s=1).headers["DTMF-Digit"] for _ in range(4)] == ["1", "2", "3", "#"]
    with pytest.raises(ESLTimeout):
        call.next_event(timeout_s=0.1)
    hung_up = gevent.spawn(call.wait_event, lambda f: f.event_name == "CHANNEL_HANGUP", 2.0)
    gevent.sleep(0)
    digit = fakefs.TraceEvent(fakefs.CONNECT_TRACE, "DTMF", 0).build()
    fs.push(digit * 70 + hangup_event())
    hung_up.get(timeout=2)
    assert call.dropped_events == 70 - 64
    assert [call.next_event(timeout_s=1).headers["DTMF-Digit"] for _ in range(64)] == ["1"] * 64
    with pytest.raises(CallGone):
        call.next_event(timeout_s=1)


def test_api_returns_the_body_and_refusal_is_an_error(line):
    call, fs = line
    running = gevent.spawn(call.api, "uuid_exists " + fakefs.CALL_UUID, 2)
    fs.expect("api uuid_exists")
    fs.push(fakefs.api_frame("true"))
    assert running.get(timeout=2) == "true"
    refused = gevent.spawn(call.api, "status", 2)
    fs.expect("api status")
    fs.reply("-ERR command not found")  # what FreeSWITCH says without `full`
    with pytest.raises(ESLCommandError):
        refused.get(timeout=2)


def test_hangup_uses_call_command_and_getvar_maps_unset_to_none(line):
    call, fs = line
    hanging = gevent.spawn(call.hangup, "USER_BUSY")
    assert fs.expect("sendmsg") == "sendmsg\ncall-command: hangup\nhangup-cause: USER_BUSY"
    fs.reply("+OK")
    assert hanging.get(timeout=2) is True
    getting = gevent.spawn(call.getvar, "nope")
    fs.expect("getvar nope")
    fs.reply("-ERR command not found")
    assert getting.get(timeout=2) is None


def test_refused_sendmsg_and_unsafe_text(line):
    call, fs = line
    running = gevent.spawn(call.execute, "playback", "x", timeout_s=2)
    fs.expect("sendmsg")
    fs.reply("-ERR invalid session id")
    with pytest.raises(ESLCommandError):
        running.get(timeout=2)
    for bad in (("playback", "x\nexecute-app-name: hangup"), ("play\nback", None)):
        with pytest.raises(ValueError):
            call.execute(*bad, timeout_s=1)
    with pytest.raises(ValueError):
        call.hangup("NORMAL\nX")
    with pytest.raises(ESLError):
        call.playback("/tmp/x.wav")  # greenswitch's name-matched helper is disabled
