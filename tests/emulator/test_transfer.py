"""Attended transfer and `uuid_bridge`, as FreeSWITCH 1.10's code carries them out (no captured trace holds one).

What a controller relies on: the caller's `bridge` application returns (with Channel-State CS_RESET) while the
call goes on; the new CHANNEL_BRIDGE carries the colleague's Unique-ID, so only a socket subscribed to all
channels sees it; a media bug on the caller's leg keeps recording; the caller goes when the colleague hangs up.
"""

import numpy as np
import pytest
import soundfile

from freeswitch.emulator import audio
from freeswitch.emulator.bridge import AgentBehaviour
from freeswitch.emulator.transfer import place_consult_call
from tests.emulator.eslclient import inbound, outbound_call

COLLEAGUE_HZ = 1000


def _marker(start, n):
    return audio.marker_block(audio.AGENT_MARKER_BASE_HZ, 8000, start, n)


@pytest.fixture
def bridged(emulator, controller_socket):
    """A trunk call answered and bridged to agent 1001, with an inbound socket watching every CHANNEL_BRIDGE."""
    agents = {ext: AgentBehaviour(ext, answer_after_s=0.5, audio=_marker) for ext in ("1001", "1002")}
    session, peer = outbound_call(emulator, controller_socket, agents=agents)
    watcher = inbound(emulator)
    watcher.reply("event plain CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP")
    assert peer.reply("myevents").get("Reply-Text") == "+OK Events Enabled"
    peer.execute("answer")
    peer.event("CHANNEL_EXECUTE_COMPLETE", Application="answer")
    peer.execute("bridge", "user/1001")
    first = peer.event("CHANNEL_BRIDGE").get("Bridge-B-Unique-ID")
    yield session, peer, watcher, first
    watcher.close()
    peer.close()


def _colleague_tone(start, n):
    t = (start + np.arange(n)) / 8000
    return np.round(8000 * np.sin(2 * np.pi * COLLEAGUE_HZ * t)).astype(np.int16)


def _consult(emulator, watcher, first_uuid, extension="1002", **behaviour):
    """Agent 1001's phone calls `extension`; returns (consult leg, colleague's leg) once they are bridged."""
    switch = emulator.switch
    colleague = AgentBehaviour(extension, answer_after_s=0.5, audio=_colleague_tone, **behaviour)
    consult = place_consult_call(switch.sessions[first_uuid], colleague)
    bridged = watcher.event("CHANNEL_BRIDGE", Unique_ID=consult.uuid)
    return consult, switch.sessions[bridged.get("Bridge-B-Unique-ID")]


def test_uuid_bridge_moves_the_caller_to_the_colleague_and_the_first_bridge_returns(emulator, bridged):
    session, peer, watcher, first = bridged
    consult, colleague = _consult(emulator, watcher, first)
    api = inbound(emulator)
    assert api.reply(f"api uuid_bridge {colleague.uuid} {session.uuid}").body == f"+OK {session.uuid}\n".encode()

    unbridge = peer.event("CHANNEL_UNBRIDGE")
    assert unbridge.get("Bridge-B-Unique-ID") == first
    done = peer.event("CHANNEL_EXECUTE_COMPLETE", Application="bridge")
    assert done.get("Channel-State") == "CS_RESET"
    assert done.get("variable_bridge_uuid") == colleague.uuid
    assert ":uuid_br:" in done.get("variable_transfer_source")
    for state in ("CS_RESET", "CS_CONSUME_MEDIA", "CS_EXCHANGE_MEDIA"):
        peer.event("CHANNEL_STATE", Channel_State=state)

    new_bridge = watcher.event("CHANNEL_BRIDGE", Unique_ID=colleague.uuid)
    assert new_bridge.get("Bridge-A-Unique-ID") == colleague.uuid
    assert new_bridge.get("Bridge-B-Unique-ID") == session.uuid
    assert session.channel.peer is colleague.channel and session.channel.up
    watcher.event("CHANNEL_HANGUP", Unique_ID=first)  # the first agent leg goes
    assert not any(f.get("Event-Name") == "CHANNEL_BRIDGE" and f.get("Unique-ID") == colleague.uuid
                   for f in peer.frames), "the caller's own socket sees only its own channel's events"

    colleague.hangup("NORMAL_CLEARING", initiator="remote")
    hangup = peer.event("CHANNEL_HANGUP")
    assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING" and not session.channel.up
    consult.hangup("NORMAL_CLEARING")
    api.close()


def test_a_recording_on_the_caller_keeps_going_and_records_the_colleague(emulator, bridged, tmp_path):
    session, peer, watcher, first = bridged
    api = inbound(emulator)
    path = tmp_path / "call.wav"
    peer.reply("event plain RECORD_STOP")
    assert api.reply(f"api uuid_setvar {session.uuid} RECORD_STEREO true").body == b"+OK\n"
    assert api.reply(f"api uuid_record {session.uuid} start {path}").body == b"+OK Success\n"
    consult, colleague = _consult(emulator, watcher, first, hangup_after_s=4.0)
    assert api.reply(f"api uuid_bridge {colleague.uuid} {session.uuid}").body.startswith(b"+OK")
    watcher.event("CHANNEL_BRIDGE", Unique_ID=colleague.uuid)
    stop = peer.event("RECORD_STOP", timeout_s=10.0)  # the colleague hangs up, so the caller goes too
    assert stop.get("Record-File-Path") == str(path)
    data, rate = soundfile.read(str(path), dtype="int16")
    heard = data[-rate:-rate // 4, 1]  # the caller's side hears the colleague in the last second
    assert audio.dominant_frequency(heard.astype(np.float64), rate) == pytest.approx(COLLEAGUE_HZ, abs=5)
    consult.hangup("NORMAL_CLEARING")
    api.close()


def test_uuid_bridge_usage_and_unknown_uuids(emulator):
    api = inbound(emulator)
    assert api.reply("api uuid_bridge").body == b"-USAGE: <uuid> <other_uuid>\n"
    assert api.reply("api uuid_bridge 1 2").body == b"-ERR Invalid uuid\n"
    api.close()


def test_uuid_transfer_routes_the_caller_to_an_agent_extension_and_the_socket_stays(emulator, bridged):
    """A blind transfer (uuid_transfer, or REFER without Replaces) with force_transfer_context=default."""
    session, peer, watcher, first = bridged
    api = inbound(emulator)
    assert api.reply(f"api uuid_setvar {session.uuid} force_transfer_context default").body == b"+OK\n"
    assert api.reply(f"api uuid_transfer {session.uuid} 1002").body == b"+OK\n"
    peer.event("CHANNEL_UNBRIDGE")
    done = peer.event("CHANNEL_EXECUTE_COMPLETE", Application="bridge")
    assert done.get("Channel-State") == "CS_ROUTING"
    assert done.get("variable_transfer_source").endswith(f":{session.uuid}:bl_xfer:1002/default/XML")
    peer.event("CHANNEL_EXECUTE_COMPLETE", Application="socket")   # the park ends; the socket stays attached
    peer.event("CHANNEL_STATE", Channel_State="CS_ROUTING")
    peer.event("CHANNEL_EXECUTE", Application="bridge", Application_Data="user/1002")
    second = peer.event("CHANNEL_BRIDGE").get("Bridge-B-Unique-ID")  # the caller is the A side again
    assert second not in (first, None) and session.channel.peer.uuid == second
    watcher.event("CHANNEL_HANGUP", Unique_ID=first)
    emulator.switch.sessions[second].hangup("NORMAL_CLEARING", initiator="remote")
    peer.event("CHANNEL_HANGUP")  # hangup_after_bridge in the agents' context: the caller goes too
    assert api.reply("api uuid_transfer").body.startswith(b"-USAGE")
    assert api.reply(f"api uuid_transfer {session.uuid} 1002").body == b"-ERR No such channel!\n"
    api.close()


def test_without_force_transfer_context_a_blind_transfer_runs_the_trunk_dialplan_again(emulator, controller_socket,
                                                                                      bridged):
    """Why public.xml sets force_transfer_context: otherwise the caller is handed to the controller a second time."""
    session, peer, watcher, first = bridged
    api = inbound(emulator)
    assert api.reply(f"api uuid_transfer {first} -bleg 1002").body == b"+OK\n"  # the caller, from the agent leg
    again = controller_socket.next_connection()
    assert again is not None and session.channel.profile.destination_number == "1002"
    session.hangup("NORMAL_CLEARING", initiator="remote")
    again.close()
    api.close()
