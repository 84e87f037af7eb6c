"""The emulator's inbound ESL answers compared with a real FreeSWITCH 1.10.12's, trace by trace."""

import pytest

from tests.emulator.conftest import inbound_connection
from tests.emulator.trace_replay import Collector, load_blocks, replay_steps

INBOUND_TRACES = ["inbound_auth_api.txt", "inbound_auth_wrong_password.txt", "inbound_cmd_before_auth.txt"]


def replay(emulator, name, substitute=lambda data: data):
    sock = inbound_connection(emulator)
    collector = Collector(sock)
    problems = replay_steps(sock, collector, load_blocks(name), substitute)
    sock.close()
    return problems, collector


@pytest.mark.parametrize("name", INBOUND_TRACES)
def test_inbound_trace_replays_with_the_same_answers(emulator, name):
    problems, _ = replay(emulator, name)
    assert problems == []


def test_wrong_password_closes_the_connection(emulator):
    _, collector = replay(emulator, "inbound_auth_wrong_password.txt")
    assert collector.wait_for(lambda c: c.closed, timeout_s=5)
