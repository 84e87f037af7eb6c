"""Applications, API commands and events of the emulator that the captured traces do not exercise."""

import json

import gevent
import gevent.socket
import numpy as np
import pytest

from freeswitch.emulator import audio
from freeswitch.emulator.bridge import AgentBehaviour
from freeswitch.emulator.faults import drop_connections
from tests.emulator.eslclient import inbound, outbound_call


def agent(extension="1001", **kwargs):
    marker = lambda start, n: audio.marker_block(audio.AGENT_MARKER_BASE_HZ, 8000, start, n)
    return {extension: AgentBehaviour(extension, answer_after_s=kwargs.pop("answer_after_s", 1.0), audio=marker,
                                      **kwargs)}


@pytest.fixture
def call(emulator, controller_socket):
    session, peer = outbound_call(emulator, controller_socket, agents=agent())
    assert peer.reply("myevents").get("Reply-Text") == "+OK Events Enabled"
    assert peer.reply("linger").get("Reply-Text") == "+OK will linger"
    peer.execute("answer")
    peer.event("CHANNEL_EXECUTE_COMPLETE", Application="answer")
    yield session, peer
    peer.close()


def test_bridge_creates_an_agent_leg_and_reports_bridge_and_unbridge(emulator, call):
    session, peer = call
    peer.execute("bridge", "user/1001")
    bridged = peer.event("CHANNEL_BRIDGE")
    b_uuid = bridged.get("Bridge-B-Unique-ID")
    assert bridged.get("Bridge-A-Unique-ID") == session.uuid and b_uuid and b_uuid != session.uuid
    assert bridged.get("Other-Type") == "originatee" and bridged.get("Other-Leg-Unique-ID") == b_uuid
    assert emulator.switch.sessions[b_uuid].channel.answer_state == "answered"
    emulator.switch.sessions[b_uuid].hangup("NORMAL_CLEARING", initiator="remote")
    peer.event("CHANNEL_UNBRIDGE")
    done = peer.event("CHANNEL_EXECUTE_COMPLETE", Application="bridge")
    assert done.get("variable_bridge_hangup_cause") == "NORMAL_CLEARING"
    assert session.channel.up, "the caller stays up when the agent hangs up"


def test_bridge_to_an_unknown_user_hangs_the_caller_up(call):
    session, peer = call
    peer.execute("bridge", "user/9999")
    hangup = peer.event("CHANNEL_HANGUP")
    assert hangup.get("Hangup-Cause") == "USER_NOT_REGISTERED"


def test_bridged_agent_is_recorded_on_the_right_channel(emulator, call, tmp_path):
    session, peer = call
    path = tmp_path / "bridged.wav"
    peer.execute("record_session", f"{path} 0 {{RECORD_STEREO=true,RECORD_PRE_BUFFER_FRAMES=0}}")
    peer.execute("bridge", "user/1001")
    bridged = peer.event("CHANNEL_BRIDGE")
    emulator.switch.clock.sleep(4.0)
    session.hangup("NORMAL_CLEARING", initiator="remote")
    peer.event("CHANNEL_HANGUP_COMPLETE")
    import soundfile
    data, rate = soundfile.read(str(path), dtype="int16")
    tail = data[-rate // 2 - 2000:-2000]
    assert audio.marker_index(audio.AGENT_MARKER_BASE_HZ, audio.dominant_frequency(tail[:, 1], rate)) is not None
    assert audio.marker_index(audio.CALLER_MARKER_BASE_HZ, audio.dominant_frequency(tail[:, 0], rate)) is None \
        or not np.any(tail[:, 0]), "the caller here says nothing (no caller audio configured)"
    assert bridged.get("Bridge-B-Unique-ID")


def test_bind_digit_action_consumes_the_code_and_runs_its_action(emulator, call):
    session, peer = call
    peer.reply("event plain CHANNEL_APPLICATION")
    peer.execute("bind_digit_action", "agent,*3,exec:event,agent_code=pause")
    peer.execute("digit_action_set_realm", "agent")
    peer.event("CHANNEL_EXECUTE_COMPLETE", Application="digit_action_set_realm")
    session.receive_dtmf("*3")
    headerless = peer.wait(lambda f: f.get("Event-Name") is None and f.get("digits") == "*3", what="header-less")
    assert headerless.get("event") == "agent_code=pause" and headerless.get("execute") == "non-blocking"
    app_event = peer.event("CHANNEL_APPLICATION")
    assert app_event.get("agent_code") == "pause"
    assert not [f for f in peer.frames if f.get("Event-Name") == "DTMF"], "matched digits give no DTMF events"
    session.receive_dtmf("5")
    released = peer.event("DTMF")
    assert (released.get("DTMF-Digit"), released.get("DTMF-Source")) == ("5", "APP")


def test_event_application_fires_custom_events(call):
    session, peer = call
    peer.reply("event plain CUSTOM consentline::test")
    peer.execute("event", "Event-Name=CUSTOM,Event-Subclass=consentline::test,mark=1")
    custom = peer.event("CUSTOM")
    assert (custom.get("Event-Subclass"), custom.get("mark")) == ("consentline::test", "1")


def test_uuid_break_ends_a_playback_with_status_break(call):
    session, peer = call
    peer.reply("event plain PLAYBACK_START PLAYBACK_STOP")
    peer.execute("playback", "tone_stream://%(20000,0,440)", lock=False)
    peer.event("PLAYBACK_START")
    assert peer.reply(f"api uuid_break {session.uuid}").body == b"+OK\n"
    assert peer.event("PLAYBACK_STOP").get("Playback-Status") == "break"
    assert peer.event("CHANNEL_EXECUTE_COMPLETE", Application="playback").get("Application-Response") == "FILE PLAYED"


def test_unknown_application_hangs_up_with_destination_out_of_order(call):
    session, peer = call
    peer.execute("no_such_app", "x")
    assert peer.event("CHANNEL_HANGUP").get("Hangup-Cause") == "DESTINATION_OUT_OF_ORDER"
    assert not [f for f in peer.frames if f.get("Application") == "no_such_app"]


def test_channel_api_commands(emulator, call):
    session, peer = call
    api = inbound(emulator)
    u = session.uuid
    assert api.reply(f"api uuid_exists {u}").body == b"true"
    assert api.reply(f"api uuid_setvar {u} consentline_test hello").body == b"+OK\n"
    assert api.reply(f"api uuid_getvar {u} consentline_test").body == b"hello"
    assert api.reply(f"api uuid_getvar {u} nothing_here").body == b"_undef_"
    assert api.reply(f"api uuid_send_dtmf {u} 12").body == f"+OK {u} sent DTMF 12.\n".encode()
    assert api.reply(f"api uuid_recv_dtmf {u} 7").body == f"+OK {u} received DTMF 7.\n".encode()
    assert peer.event("DTMF").get("DTMF-Source") == "APP"
    plain = api.reply("api show channels").body.decode()
    assert plain.splitlines()[0].startswith("uuid,direction,created") and plain.endswith("\n1 total.\n")
    rows = json.loads(api.reply("api show channels as json").body)
    assert rows["row_count"] == 1 and rows["rows"][0]["uuid"] == u
    assert api.reply(f"api uuid_broadcast {u} silence_stream://100 aleg").body == b"+OK Message sent\n"
    peer.event("CHANNEL_EXECUTE_COMPLETE", Application="playback")
    assert api.reply(f"api uuid_kill {u} USER_BUSY").body == b"+OK\n"
    assert peer.event("CHANNEL_HANGUP").get("Hangup-Cause") == "USER_BUSY"
    assert api.reply(f"api uuid_exists {u}").body == b"false"
    assert api.reply(f"api uuid_kill {u}").body == b"-ERR No such channel!\n"
    api.close()


def test_heartbeat_sendevent_filters_and_json(emulator):
    emulator.switch.clock.set_speed(400)  # HEARTBEAT runs on a 20 s clock
    api = inbound(emulator)
    assert api.reply("event json HEARTBEAT CUSTOM consentline::x").get("Reply-Text") == "+OK event listener enabled json"
    beat = api.event("HEARTBEAT", timeout_s=5)
    assert beat.content_type == "text/event-json" and beat.get("Event-Info") == "System Ready"
    reply = api.reply("sendevent CUSTOM\nEvent-Subclass: consentline::x\nmark: 2")
    assert reply.get("Reply-Text").startswith("+OK ")
    custom = api.event("CUSTOM")
    assert custom.get("mark") == "2" and custom.get("Command") == "sendevent CUSTOM"
    assert api.reply("filter Event-Subclass consentline::y").get("Reply-Text") == \
        "+OK filter added. [Event-Subclass]=[consentline::y]"
    api.send("sendevent CUSTOM\nEvent-Subclass: consentline::x\nmark: 3")
    assert api.wait(lambda f: f.content_type == "command/reply").get("Reply-Text").startswith("+OK")
    gevent.sleep(0.2)
    assert not [f for f in api.frames if f.get("mark") == "3"], "filtered out: no matching header value"
    api.close()


def test_greenswitch_inbound_client_works_against_the_emulator(emulator):
    import greenswitch
    host, port = emulator.esl_address
    client = greenswitch.InboundESL(host=host, port=port, password="ClueCon")
    client.connect()
    try:
        assert client.send("api status").data.startswith("UP ")
        assert client.send("api no_such_thing").data == "-ERR no_such_thing Command not found!\n"
    finally:
        client.stop()


def test_greenswitch_outbound_server_drives_a_call(emulator):
    import greenswitch
    answered = gevent.event.Event()

    class App:
        def __init__(self, session):
            self.session = session

        def run(self):
            self.session.connect()
            self.session.myevents()
            self.session.linger()
            self.session.answer()
            self.session.playback("silence_stream://200", block=True)
            answered.set()
            self.session.hangup()

    # greenswitch cannot bind port 0 (it treats the bound port 0 as "no port" and exits): find a free one
    probe = gevent.socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = greenswitch.OutboundESLServer(bind_address="127.0.0.1", bind_port=port, application=App)
    listener = gevent.spawn(server.listen)
    try:
        switch = emulator.switch
        channel = switch.profiles.trunk_channel(uuid=switch.new_uuid(), caller="+4915112345678",
                                                dialed="+4930100100")
        from freeswitch.emulator.session import Session
        session = Session(switch, channel)
        session.dialplan = [("socket", f"127.0.0.1:{port} async full")]
        switch.add_session(session)
        session.start()
        assert answered.wait(timeout=10), "greenswitch's blocking playback() returned"
        assert session.destroyed.wait(timeout=10)
        assert channel.answer_state == "hangup"
    finally:
        server.stop()
        listener.kill()


def test_faults_drop_delay_refuse_and_restart(emulator, controller_socket):
    switch = emulator.switch
    session, peer = outbound_call(emulator, controller_socket)
    assert drop_connections(switch, inbound=False) == 1
    assert peer.collector.wait_for(lambda c: c.closed, timeout_s=5), "the connection was cut without a notice"
    assert not [f for f in peer.frames if f.content_type == "text/disconnect-notice"]
    switch.faults.refuse_outbound = True
    channel = switch.profiles.trunk_channel(uuid=switch.new_uuid(), caller="+1", dialed="+2")
    from freeswitch.emulator.session import Session
    refused = Session(switch, channel)
    refused.dialplan = [("socket", f"{controller_socket.address} async full")]
    switch.add_session(refused)
    refused.start()
    assert refused.destroyed.wait(timeout=5) and channel.hangup_cause == "NORMAL_CLEARING"
    switch.faults.clear()
    old_core = switch.core.core_uuid
    api = inbound(emulator)
    emulator.restart()
    assert api.collector.wait_for(lambda c: c.closed, timeout_s=5)
    again = inbound(emulator)
    assert switch.core.core_uuid != old_core
    switch.faults.reply_delay_real_s = 0.3
    started = gevent.get_hub().loop.now()
    again.reply("api version")
    assert gevent.get_hub().loop.now() - started >= 0.25
    again.close()


def test_uuid_hold_marks_the_leg_held_and_silences_it_for_the_other_side(emulator, call):
    session, peer = call
    peer.reply("event plain CHANNEL_HOLD CHANNEL_UNHOLD")
    api = inbound(emulator)
    assert api.reply(f"api uuid_hold {session.uuid}").body == b"+OK Success\n"
    assert peer.event("CHANNEL_HOLD").get("Channel-Call-State") in ("ACTIVE", "HELD")
    assert session.channel.held and not np.any(session.channel.read_audio_at(session.switch.clock.now(), 800))
    assert api.reply(f"api uuid_hold off {session.uuid}").body == b"+OK Success\n"
    peer.event("CHANNEL_UNHOLD")
    assert not session.channel.held and session.channel.call_state == "ACTIVE"
    assert api.reply("api uuid_hold 00000000-0000-0000-0000-000000000000").body == b"-ERR No such channel!\n"
    api.close()
