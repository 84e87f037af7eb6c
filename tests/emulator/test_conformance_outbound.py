"""Outbound ESL (`socket ... async full`) compared with a real FreeSWITCH 1.10.12, trace by trace.

Each test places a call from the emulated trunk to a test socket, replays the controller's side of a captured
transcript, plays the caller's part (digits, hangup) at the point the real caller did, and compares every frame.
"""

import gevent
import pytest

from freeswitch.emulator.session import Session
from tests.emulator.trace_replay import Collector, load_blocks, replay_steps

TRACE_UUIDS = {
    "outbound_connect_answer_playback.txt": "ddc2c414-3906-4b01-8d23-7fdb986f4fa3",
    "dtmf_events.txt": "458df092-9173-410b-99b2-521c86dfa387",
}


def place_call(emulator, controller_socket):
    switch = emulator.switch
    uuid = switch.new_uuid()
    channel = switch.profiles.trunk_channel(uuid=uuid, caller="sipp", dialed="8084")
    session = Session(switch, channel)
    session.dialplan = [("socket", f"{controller_socket.address} async full")]
    switch.add_session(session)
    session.start()
    return session


def press(session, digits, source="RTP", duration=2240):
    def later():
        for digit in digits:
            session.switch.clock.sleep(0.3)
            session.receive_dtmf(digit, source=source, duration=duration)
    return gevent.spawn(later)


def hang_up_later(session, after_s):
    def later():
        session.switch.clock.sleep(after_s)
        session.hangup("NORMAL_CLEARING", initiator="remote")
    return gevent.spawn(later)


def digits_then_bye(session):
    press(session, "123#").join()
    hang_up_later(session, 1.0)


def is_event(name, app=None, app_uuid_suffix=None):
    def predicate(frame):
        if frame.get("Event-Name") != name or (app and frame.get("Application") != app):
            return False
        return app_uuid_suffix is None or (frame.get("Application-UUID") or "").endswith(app_uuid_suffix)
    return predicate


# What the caller (SIPp or the loopback leg) did in each capture, keyed to the event it followed.
CALLER_SCRIPTS = {
    "outbound_connect_answer_playback.txt": [(is_event("CHANNEL_EXECUTE", "play_and_get_digits"),
                                              lambda s: press(s, "123#"))],
    "hangup_disconnect.txt": [(is_event("CHANNEL_EXECUTE_COMPLETE", "answer"), digits_then_bye)],
    "hangup_disconnect_linger3.txt": [(is_event("CHANNEL_EXECUTE_COMPLETE", "answer"), digits_then_bye)],
    "hangup_disconnect_nolinger.txt": [(is_event("CHANNEL_EXECUTE_COMPLETE", "answer"), digits_then_bye)],
    "outbound_loopback_async_lock.txt": [(is_event("CHANNEL_EXECUTE_COMPLETE", "playback", "660"),
                                          lambda s: press(s, "4", source="UNKNOWN", duration=2000))],
    "dtmf_events.txt": [(lambda f: f.get("Event-Name") == "DTMF" and f.get("DTMF-Digit") == "*", digits_then_bye)],
    "record_session_mask_pause_apps.txt": [],
    "record_stereo_esl.txt": [],
}


def replay_outbound(emulator, controller_socket, name, tmp_path):
    session = place_call(emulator, controller_socket)
    sock = controller_socket.next_connection()
    collector = Collector(sock)
    scripts = list(CALLER_SCRIPTS[name])

    def watch():
        checked = 0
        while scripts:
            while checked < len(collector.frames) and scripts:
                predicate, action = scripts[0]
                if predicate(collector.frames[checked]):
                    scripts.pop(0)
                    gevent.spawn(action, session)
                checked += 1
            gevent.sleep(0.005)
    watcher = gevent.spawn(watch)

    def substitute(data):
        if name in TRACE_UUIDS:
            data = data.replace(TRACE_UUIDS[name].encode(), session.uuid.encode())
        return data.replace(b"/var/spool/fs/rec/", (str(tmp_path) + "/").encode())

    problems = replay_steps(sock, collector, load_blocks(name), substitute, loopback="loopback" in name)
    watcher.kill()
    sock.close()
    return problems, collector, session


# Traces whose meaning depends on real durations (a 200 ms prompt still playing when the next command arrives).
REAL_TIME_TRACES = {"outbound_loopback_async_lock.txt"}


@pytest.mark.parametrize("name", sorted(CALLER_SCRIPTS))
def test_outbound_trace_replays_with_the_same_answers(emulator, controller_socket, tmp_path, name):
    if name in REAL_TIME_TRACES:
        emulator.switch.clock.set_speed(1.0)
    problems, _, _ = replay_outbound(emulator, controller_socket, name, tmp_path)
    assert problems == []
