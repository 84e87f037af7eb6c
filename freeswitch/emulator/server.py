"""The emulator process: the switch plus its inbound Event Socket server, with start, stop and restart."""

import logging

import gevent
import gevent.server
import gevent.socket

from freeswitch.emulator.faults import drop_connections
from freeswitch.emulator.listener import Listener
from freeswitch.emulator.switch import Switch

log = logging.getLogger(__name__)


class Emulator:
    def __init__(self, esl_host="127.0.0.1", esl_port=0, password="ClueCon", speed=1.0, recordings_dir=None,
                 sounds_dir=None):
        self.switch = Switch(speed=speed, password=password, recordings_dir=recordings_dir, sounds_dir=sounds_dir)
        self._esl_host = esl_host
        self._esl_port = esl_port
        self.server = None

    @property
    def esl_address(self):
        host, port = self.server.address[:2]
        return host, port

    def start(self):
        self.server = gevent.server.StreamServer((self._esl_host, self._esl_port), self._accept)
        self.server.start()
        self._esl_port = self.server.address[1]  # a restart keeps the port
        log.info("ESL listening on %s:%s", *self.esl_address)
        return self

    def _accept(self, sock, address):
        sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
        listener = Listener(self.switch, sock)
        listener.start().join()

    def stop(self):
        if self.server is not None:
            self.server.stop(timeout=1)
        self.switch.stop()

    def restart(self):
        """What a FreeSWITCH restart looks like from outside: every call and connection gone, a new Core-UUID."""
        self.server.stop(timeout=0)
        drop_connections(self.switch)
        for session in list(self.switch.sessions.values()):
            session.hangup("MANAGER_REQUEST", initiator="kill")
        from freeswitch.emulator.events import Core
        self.switch.core = Core(self.switch.clock, hostname=self.switch.core.hostname)
        self.start()
