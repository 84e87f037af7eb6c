"""Fault injection for tests: what a real network and a real FreeSWITCH do to a controller on a bad day."""

import time

import gevent
import gevent.queue

DELAYED_FRAMES_MAX = 1024


class Faults:
    def __init__(self):
        self.refuse_outbound = False      # the socket app cannot connect (controller down or refusing)
        self.stall_outbound_s = 0.0       # virtual seconds before the socket app connects
        self.reply_delay_real_s = 0.0     # extra real seconds before every frame a listener sends
        self.stall_reads = False          # listeners stop reading what clients send (a hung switch)

    def reply_delay_s(self, listener):
        return self.reply_delay_real_s

    def stalled(self, listener):
        return self.stall_reads

    def clear(self):
        self.__init__()


def drop_connections(switch, outbound=True, inbound=True, uuid=None):
    """Cut ESL connections without a goodbye, as a crash or a network failure would. Returns how many."""
    dropped = 0
    for listener in _matching(switch, outbound, inbound, uuid):
        listener.kill()
        dropped += 1
    return dropped


def _matching(switch, outbound, inbound, uuid):
    for listener in list(switch.listeners):
        if listener.outbound and not outbound or (not listener.outbound and not inbound):
            continue
        if uuid is not None and (listener.session is None or listener.session.uuid != uuid):
            continue
        yield listener


def delay_connections(switch, real_s, outbound=True, inbound=True, uuid=None):
    """From now on every frame these connections send arrives `real_s` real seconds late, in order: a congested
    link. Unlike `reply_delay_real_s` the switch itself is not held up (its events queue behind the delay).
    Returns how many connections are affected."""
    delayed = 0
    for listener in _matching(switch, outbound, inbound, uuid):
        _DelayedLine(listener, real_s)
        delayed += 1
    return delayed


class _DelayedLine:
    def __init__(self, listener, real_s):
        self.listener = listener
        self.real_s = real_s
        self.frames = gevent.queue.Queue(maxsize=DELAYED_FRAMES_MAX)
        self.send_now = listener.send
        listener.send = self.send
        gevent.spawn(self._deliver)

    def send(self, frame):
        try:
            self.frames.put_nowait((time.monotonic() + self.real_s, frame))
        except gevent.queue.Full:
            self.listener.lost_events += 1

    def _deliver(self):
        while not (self.listener.closing and self.frames.empty()):
            try:
                due, frame = self.frames.get(timeout=1.0)
            except gevent.queue.Empty:
                continue
            gevent.sleep(max(0.0, due - time.monotonic()))
            self.send_now(frame)
