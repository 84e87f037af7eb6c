"""Fixtures that run the emulator in-process on ephemeral ports."""

import gevent
import gevent.queue
import gevent.server
import gevent.socket
import pytest

from freeswitch.emulator.server import Emulator

TEST_SPEED = 20.0


@pytest.fixture
def emulator(tmp_path):
    emu = Emulator("127.0.0.1", 0, speed=TEST_SPEED, recordings_dir=str(tmp_path / "rec")).start()
    yield emu
    emu.stop()


class ControllerSocket:
    """A listening socket standing in for the controller: FreeSWITCH's socket app connects here."""

    def __init__(self):
        self.accepted = gevent.queue.Queue()
        self.server = gevent.server.StreamServer(("127.0.0.1", 0), self._accept)
        self.server.start()
        self._hold = []

    def _accept(self, sock, address):
        done = gevent.event.Event()
        self._hold.append(done)
        self.accepted.put(sock)
        done.wait()

    @property
    def address(self):
        return f"127.0.0.1:{self.server.address[1]}"

    def next_connection(self, timeout_s=5.0):
        return self.accepted.get(timeout=timeout_s)

    def close(self):
        for done in self._hold:
            done.set()
        self.server.stop(timeout=0)


@pytest.fixture
def controller_socket():
    cs = ControllerSocket()
    yield cs
    cs.close()


def inbound_connection(emu):
    host, port = emu.esl_address
    return gevent.socket.create_connection((host, port), timeout=5)
