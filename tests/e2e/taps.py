"""Taps on the controller's side of a call: each reports a moment to the stage before the real work runs.

A reaction to such a moment runs in the controller's own call greenlet, so it can raise into the flow
(`InjectedFault`), refuse the index write that is about to happen, or crash the call there and then.
"""

import gevent
import pytest

from controller.errors import IndexWriteError
from controller.esl import OutboundCall
from tests.e2e.choreography import InjectedFault  # noqa: F401  (re-exported for the fault tests)

INDEX_WRITES = frozenset({"call_started", "routing_decided", "evidence_prompt", "evidence_digit", "consent_decided",
                          "recording_opened", "recording_state", "call_ended"})


class TappedIndex:
    """The controller's index, with a moment before every write and per-call refusal from a given write on."""

    def __init__(self, inner, stage):
        self.inner = inner
        self.stage = stage
        self.refusing = set()        # call uuids whose writes are refused from now on
        self.refused = []            # (call uuid, method) actually refused

    def refuse(self, call_uuid):
        self.refusing.add(call_uuid)

    def __getattr__(self, name):
        method = getattr(self.inner, name)
        if name not in INDEX_WRITES:
            return method

        def write(call_uuid, *args, **kwargs):
            plan = self.stage.plan_for_uuid(call_uuid)  # recording_state's id is the call uuid here
            if plan is not None:
                self.stage.emit(plan, f"index:{name}")
            if call_uuid in self.refusing:
                self.refused.append((call_uuid, name))
                raise IndexWriteError(f"{name}: the index refuses writes (fault injection)")
            return method(call_uuid, *args, **kwargs)
        return write


class ControllerTaps:
    """Installs the taps on a running Controller; `close()` takes them off again."""

    def __init__(self, controller, stage):
        self.stage = stage
        self.flow = controller.flow
        self.index = TappedIndex(self.flow.index, stage)
        self.flow.index = self.index
        self.flow.observer = self._flow_moment
        self.call_greenlets = {}
        self._handler = controller.server.handler
        controller.server.handler = self._handle
        self._tailer_factory = self.flow.tailer_factory
        self.flow.tailer_factory = self._tailer
        self._patch = pytest.MonkeyPatch()
        self._patch.setattr(OutboundCall, "execute", self._tap_execute(OutboundCall.execute))
        self._patch.setattr(OutboundCall, "api", self._tap_api(OutboundCall.api))

    def close(self):
        self._patch.undo()

    def _emit(self, call_uuid, moment):
        plan = self.stage.plan_for_uuid(call_uuid)
        if plan is not None:
            self.stage.emit(plan, moment)

    def _flow_moment(self, kind, call, **info):
        self._emit(call.uuid, f"ctl:{kind}")

    def _handle(self, call):
        self.call_greenlets[call.uuid] = gevent.getcurrent()
        return self._handler(call)

    def _tailer(self, recording, spool_path):
        self._emit(recording.recording_id, "ctl:tailer")   # right after RECORD_START was confirmed
        return self._tailer_factory(recording, spool_path)

    def _tap_execute(self, original):
        taps = self

        def execute(call, app, arg=None, **kwargs):
            taps._emit(call.uuid, f"esl:execute {app}")
            return original(call, app, arg, **kwargs)
        return execute

    def _tap_api(self, original):
        taps = self

        def api(call, command, timeout_s=None):
            words = command.split()
            if len(words) > 2 and words[0] == "uuid_record":
                taps._emit(call.uuid, f"esl:api uuid_record {words[2]}")
            return original(call, command, timeout_s)
        return api
