"""The media clock: feeds every recording the audio of the time that has passed, in whole packets.

Audio is a pure function of sample position (marker audio, files, prompts), so one ticker greenlet can serve
every call; at speed 1 it wakes every `tick_real_s` and writes what each recording is owed.
"""

import logging

import gevent

log = logging.getLogger(__name__)

DEFAULT_TICK_REAL_S = 0.05


class MediaTicker:
    def __init__(self, switch, tick_real_s=DEFAULT_TICK_REAL_S):
        self.switch = switch
        self.tick_real_s = tick_real_s
        self.tracked = {}          # session uuid -> session with recordings

    def start(self):
        return gevent.spawn(self._loop)

    def track(self, session):
        """Called as a recording starts: bring the others up to now, so the new one starts from this packet."""
        if session.uuid in self.tracked:
            self.flush(session)
        session.media_pos = self._due_samples(session)
        self.tracked[session.uuid] = session

    def _loop(self):
        while True:
            gevent.sleep(self.tick_real_s)
            for session in list(self.tracked.values()):
                try:
                    self.flush(session)
                except Exception:  # one broken recording must not stop the others
                    log.exception("media tick failed for %s", session.uuid)
                    self.tracked.pop(session.uuid, None)

    def _due_samples(self, session):
        """Samples of media since the channel's media started, rounded down to whole packets."""
        channel = session.channel
        start = getattr(channel, "media_started_at", None)
        if start is None:
            return 0
        packet = channel.rate_hz * channel.ptime_ms // 1000
        end = channel.hungup_at if channel.hungup_at is not None else self.switch.clock.now()
        elapsed = max(0.0, end - start)
        return int(elapsed * channel.rate_hz) // packet * packet

    def flush(self, session):
        """Feed the session's recordings everything up to now."""
        if not session.recordings:
            self.tracked.pop(session.uuid, None)
            return
        due = self._due_samples(session)
        position = getattr(session, "media_pos", due)
        n = due - position
        if n <= 0:
            return
        read = session.channel.read_audio(position, n)
        write = session.write_audio(position, n)
        session.media_pos = due
        for bug in list(session.recordings.values()):
            bug.recorder.feed(read, write)
            if bug.limit_s and bug.recorder.samples_written >= bug.limit_s * bug.recorder.rate_hz:
                gevent.spawn(bug.stop, "stop")
