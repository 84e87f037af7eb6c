"""uuid_record over an inbound connection on a live call, compared with a real FreeSWITCH 1.10.12."""

import gevent

from tests.emulator.conftest import inbound_connection
from tests.emulator.test_conformance_outbound import hang_up_later, place_call
from tests.emulator.trace_replay import Collector, load_blocks, replay_steps

TRACE = "uuid_record_mask.txt"
TRACE_UUID = "b64b3728-235f-4426-8523-f381e1a5d188"


def test_uuid_record_trace_replays_with_the_same_answers(emulator, controller_socket, tmp_path):
    session = place_call(emulator, controller_socket)
    outbound = controller_socket.next_connection()
    out_frames = Collector(outbound)
    outbound.sendall(b"connect\n\nmyevents\n\nlinger\n\n")
    assert out_frames.wait_for(lambda c: len(c.frames) >= 3, timeout_s=5)

    inbound = inbound_connection(emulator)
    collector = Collector(inbound)

    def caller_and_controller():
        # The real call was answered just after the inbound socket subscribed, and hung up by the caller after
        # the last command.
        collector.wait_for(lambda c: any(f.get("Reply-Text") == "+OK event listener enabled plain"
                                         for f in c.frames), timeout_s=10)
        outbound.sendall(b"sendmsg\ncall-command: execute\nexecute-app-name: answer\n\n"
                         b"sendmsg\ncall-command: execute\nexecute-app-name: park\n\n")
        collector.wait_for(lambda c: sum(f.body == b"+OK Success\n" for f in c.frames) >= 9, timeout_s=20)
        hang_up_later(session, 1.0)
    actor = gevent.spawn(caller_and_controller)

    def substitute(data):
        return data.replace(TRACE_UUID.encode(), session.uuid.encode()).replace(
            b"/var/spool/fs/rec/", (str(tmp_path) + "/").encode())

    problems = replay_steps(inbound, collector, load_blocks(TRACE), substitute)
    actor.kill()
    assert problems == [], '\n'.join(problems)
    # the files the real switch kept are there, and the stopped ones are complete WAVs
    assert (tmp_path / "uuid_record.wav").read_bytes()[:4] == b"RIFF"
    assert (tmp_path / "uuid_record_until_hangup.wav").exists()
