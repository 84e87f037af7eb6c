"""The agent-code link: an inbound ESL connection of its own, subscribed to CHANNEL_APPLICATION and CHANNEL_BRIDGE.

It hands each `agent_code` event (what bind_digit_action fires on an agent leg) to the call that bound that leg,
and each CHANNEL_BRIDGE that involves a watched call to that call: after an attended transfer the colleague's
leg is the bridge's A side, so that event never reaches the call's own socket. Nothing else on the controller's
main inbound connection is disturbed, and no filter there hides other events.
"""

import logging

import gevent
import gevent.event
import gevent.queue

from controller.agentcodes import EVENT_HEADER
from controller.eslerrors import ESLError, ESLTimeout
from controller.eslinbound import InboundSupervisor

log = logging.getLogger(__name__)

SUBSCRIPTIONS = ("CHANNEL_APPLICATION", "CHANNEL_BRIDGE")
BRIDGED = "bridged"             # a mailbox item (BRIDGED, agent leg uuid): the call is bridged to that leg now
POLL_S = 1.0


class AgentCodeLink:
    """CHANNEL_APPLICATION events from FreeSWITCH, routed by the agent leg's Unique-ID to a call's mailbox."""

    def __init__(self, supervisor, poll_s=POLL_S):
        self.supervisor = supervisor
        self.poll_s = poll_s
        self.dropped = 0
        self._mailboxes = {}
        self._calls = {}                # call uuid -> mailbox, for bridges that involve the call
        self._stopping = gevent.event.Event()
        self._greenlet = None

    @classmethod
    def connect(cls, host, port, password):
        return cls(InboundSupervisor(host, port, password, subscriptions=SUBSCRIPTIONS))

    def start(self):
        self.supervisor.start()
        self._greenlet = gevent.spawn(self._read)
        self._greenlet.name = "agent-code-link"
        return self

    def stop(self, timeout_s=2.0):
        self._stopping.set()
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=timeout_s)
        self.supervisor.stop(timeout_s)

    def register(self, agent_uuid, mailbox):
        self._mailboxes[agent_uuid] = mailbox

    def unregister(self, agent_uuid):
        self._mailboxes.pop(agent_uuid, None)

    def watch_call(self, call_uuid, mailbox):
        self._calls[call_uuid] = mailbox

    def unwatch_call(self, call_uuid):
        self._calls.pop(call_uuid, None)

    def api(self, command, timeout_s):
        return self.supervisor.client.api(command, timeout_s)

    def _read(self):
        while not self._stopping.is_set():
            try:
                frame = self.supervisor.client.next_event(self.poll_s)
            except ESLTimeout:
                continue
            except ESLError:  # not connected (yet, or again): the supervisor reconnects and subscribes
                self.supervisor.wait_connected(self.poll_s)
                self._stopping.wait(0.05)
                continue
            self.route(frame)

    def route(self, frame):
        headers = frame.headers
        if headers.get("Event-Name") == "CHANNEL_BRIDGE":
            a_uuid, b_uuid = headers.get("Bridge-A-Unique-ID"), headers.get("Bridge-B-Unique-ID")
            for call_uuid, other in ((b_uuid, a_uuid), (a_uuid, b_uuid)):
                if call_uuid in self._calls and other:
                    self._deliver(self._calls[call_uuid], (BRIDGED, other), call_uuid)
            return
        agent_uuid, value = headers.get("Unique-ID"), headers.get(EVENT_HEADER)
        mailbox = self._mailboxes.get(agent_uuid)
        if mailbox is not None and value is not None:
            self._deliver(mailbox, (agent_uuid, value), agent_uuid)

    def _deliver(self, mailbox, item, uuid):
        try:
            mailbox.put_nowait(item)
        except gevent.queue.Full:
            self.dropped += 1
            log.warning("%s: %s dropped, %d queued already", uuid, item[0] if item[0] == BRIDGED else "request",
                        mailbox.qsize())
