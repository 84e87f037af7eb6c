"""One call's recording, after consent: FreeSWITCH writes the spool, the media store keeps the chunks.

Start: create the recording in the store (`prepare`, which may run while the decision is written), ask
FreeSWITCH to record into the spool (`uuid_record ... start`), and confirm the RECORD_START event before
reporting success. Anything that cannot be confirmed is undone at
once (stop, delete chunks and spool): the call carries on unrecorded.
"""

import logging
import os

from controller.eslerrors import CallGone, ESLError
from media import MediaError, RecordingGone, spool_record_vars

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_S = 5.0
SPOOL_POLL_S = 0.05


class RecordingNotConfirmed(Exception):
    """FreeSWITCH did not confirm that it records (or stopped) what we asked for."""


def record_event(name, path):
    def matches(frame):
        return frame.headers.get("Event-Name") == name and frame.headers.get("Record-File-Path") == path
    return matches


class CallRecording:
    def __init__(self, call, store, spool_dir, *, rate_hz, process, tailer_factory):
        self.call = call
        self.store = store
        # absolute: FreeSWITCH resolves a relative path against its own directories, and reports it resolved
        self.spool_path = os.path.abspath(os.path.join(str(spool_dir), f"{call.uuid}.raw"))
        self.rate_hz = rate_hz
        self.process = process
        self.recording = None
        self.tailer = None
        self._tailer_factory = tailer_factory
        self.state = "none"          # none | recording | stopped | withdrawn | failed
        self.index_id = None
        self._stopped = None         # the RECORD_STOP expectation, registered before recording starts
        self._switch_asked = False   # uuid_record start was sent: undoing must ask FreeSWITCH to stop

    @property
    def recording_id(self):
        return self.call.uuid

    @property
    def store_path(self):
        return str(self.recording.directory) if self.recording is not None else ""

    def prepare(self):
        """The empty recording in the store, ready for audio: nothing of the call is in it until start()."""
        os.makedirs(os.path.dirname(self.spool_path), exist_ok=True)
        self.recording = self.store.create(self.recording_id, rate_hz=self.rate_hz, channels=2,
                                           holdback_s=self.process.hold_back_s, gap_fill=self.process.gap)
        return self

    def start(self):
        """Returns once FreeSWITCH confirmed RECORD_START; raises (after undoing everything) otherwise."""
        if self.recording is None:
            self.prepare()
        try:
            started = self.call.expect(record_event("RECORD_START", self.spool_path))
            self._stopped = self.call.expect(record_event("RECORD_STOP", self.spool_path), survive_hangup=True)
            self._switch_asked = True
            reply = self.call.api(f"uuid_record {self.call.uuid} start {self.spool_path} 0 {spool_record_vars()}",
                                  timeout_s=CONFIRM_TIMEOUT_S)
            if not reply.startswith("+OK"):
                started.cancel()
                raise RecordingNotConfirmed(f"uuid_record start answered {reply.strip()!r}")
            started.wait(CONFIRM_TIMEOUT_S, "RECORD_START")
            self.tailer = self._tailer_factory(self.recording, self.spool_path)
            self.tailer.start()
            self.state = "recording"
        except (ESLError, CallGone, MediaError, RecordingNotConfirmed, OSError):
            self.discard("system", "recording could not be confirmed")
            raise

    def stop_switch_recording(self):
        """Ask FreeSWITCH to stop writing the spool (best effort: a gone call has stopped already)."""
        try:
            self.call.api(f"uuid_record {self.call.uuid} stop {self.spool_path}", timeout_s=CONFIRM_TIMEOUT_S)
        except (ESLError, CallGone):
            pass

    def withdraw(self, actor, reason, keep):
        """The caller withdrew consent: stop at once; keep what was recorded up to here, or purge it."""
        self.stop_switch_recording()
        if keep:
            result = self.finish(actor, reason)
            self.state = "withdrawn"
            return result
        self.discard(actor, reason)
        self.state = "withdrawn"
        return None

    def finish(self, actor="system", reason="call ended", record_stop_timeout_s=CONFIRM_TIMEOUT_S):
        """After RECORD_STOP (or the call's end): move the rest of the spool in and close the recording."""
        if self.state != "recording":
            return None
        try:
            self._stopped.wait(record_stop_timeout_s, "RECORD_STOP")
        except (ESLError, CallGone):
            log.info("call %s: no RECORD_STOP seen; finishing from the spool as it is", self.call.uuid)
        result = self.tailer.stop("system", reason)
        self.state = "stopped"
        _remove(self.spool_path)
        return result

    def discard(self, actor, reason):
        """Delete every chunk and the spool; only a tombstone stays."""
        if self._switch_asked:
            self.stop_switch_recording()
        try:
            if self.tailer is not None:
                self.tailer.withdraw(actor, reason)
            elif self.recording is not None:
                self.recording.delete(actor, reason)
        except RecordingGone:
            pass  # already deleted
        except MediaError:
            log.exception("call %s: could not delete the recording", self.call.uuid)
            raise
        finally:
            if self._stopped is not None:
                self._stopped.cancel()
            _remove(self.spool_path)
            self.state = "failed"    # withdraw() says "withdrawn" after this; nothing is left to finish

    @property
    def duration_s(self):
        if self.recording is None:
            return None
        return self.recording.length_samples / self.rate_hz


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
