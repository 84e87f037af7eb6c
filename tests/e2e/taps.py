"""Taps on the controller's side of a call: each reports a moment to the stage before the real work runs.

A reaction to such a moment runs in the controller's own call greenlet, so it can raise into the flow
(`InjectedFault`), refuse the index write that is about to happen, or crash the call there and then.
"""

import threading

import gevent
import pytest

from controller.errors import IndexWriteError
from controller.esl import OutboundCall
from tests.e2e.choreography import InjectedFault  # noqa: F401  (re-exported for the fault tests)

INDEX_WRITES = frozenset({"call_started", "routing_decided", "evidence_prompt", "evidence_digit", "consent_decided",
                          "recording_opened", "recording_state", "call_ended"})


class TappedIndex:
    """The controller's index, with a moment before every write and per-call refusal from a given write on.

    Writes come two ways: single calls on the hub (`index.call_ended(...)`), and `run(fn)`, where `fn` makes
    several writes in one transaction in the index worker thread. There each write hands its moment to the hub
    and waits for the reactions to run, so a reaction sees the write before it happens, wherever it is made.
    """

    HANDOFF_TIMEOUT_S = 5.0

    def __init__(self, inner, stage):
        self.inner = inner
        self.stage = stage
        self.refusing = set()        # call uuids whose writes are refused from now on
        self.refused = []            # (call uuid, method) actually refused
        self._hub = gevent.get_hub()

    def refuse(self, call_uuid):
        self.refusing.add(call_uuid)

    def __getattr__(self, name):
        method = getattr(self.inner, name)
        if name not in INDEX_WRITES:
            return method

        def write(call_uuid, *args, **kwargs):
            self.before_write(call_uuid, name)
            return method(call_uuid, *args, **kwargs)
        return write

    def run(self, fn, *args):
        return self.inner.run(lambda index, *a: fn(_WorkerIndex(index, self), *a), *args)

    def before_write(self, call_uuid, name):
        """On the hub: report the moment (recording_state's id is the call uuid here), then refuse if asked."""
        plan = self.stage.plan_for_uuid(call_uuid)
        if plan is not None:
            self.stage.emit(plan, f"index:{name}")
        if call_uuid in self.refusing:
            self.refused.append((call_uuid, name))
            raise IndexWriteError(f"{name}: the index refuses writes (fault injection)")

    def before_write_in_worker(self, call_uuid, name):
        done = threading.Event()
        raised = []

        def on_hub():
            try:
                self.before_write(call_uuid, name)
            except BaseException as exc:  # handed to the worker: it is the write's own failure
                raised.append(exc)
            finally:
                done.set()
        self._hub.loop.run_callback_threadsafe(on_hub)
        if not done.wait(self.HANDOFF_TIMEOUT_S):
            raise IndexWriteError(f"{name}: the test's index tap did not answer")
        if raised:
            raise raised[0]


class _WorkerIndex:
    """The Index as `fn` sees it in the worker thread, with the taps in front of its writes."""

    def __init__(self, index, tapped):
        self._index = index
        self._tapped = tapped

    def __getattr__(self, name):
        method = getattr(self._index, name)
        if name not in INDEX_WRITES:
            return method

        def write(call_uuid, *args, **kwargs):
            self._tapped.before_write_in_worker(call_uuid, name)
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
        self.execute_timeout_scale = 1.0
        _ClassTaps.attach(self)

    def close(self):
        _ClassTaps.detach(self)

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

    def before_execute(self, call, app, kwargs):
        self._emit(call.uuid, f"esl:execute {app}")
        if "timeout_s" in kwargs and self.owns(call):
            kwargs["timeout_s"] *= self.execute_timeout_scale

    def before_api(self, call, command):
        words = command.split()
        if len(words) > 2 and words[0] == "uuid_record":
            self._emit(call.uuid, f"esl:api uuid_record {words[2]}")

    def owns(self, call):
        return self.stage.plan_for_uuid(call.uuid) is not None


class _ClassTaps:
    """OutboundCall.execute and .api wrapped once, while any system's taps are attached."""

    attached = []
    _patch = None

    @classmethod
    def attach(cls, taps):
        if not cls.attached:
            cls._patch = pytest.MonkeyPatch()
            cls._patch.setattr(OutboundCall, "execute", cls._wrap_execute(OutboundCall.execute))
            cls._patch.setattr(OutboundCall, "api", cls._wrap_api(OutboundCall.api))
        cls.attached.append(taps)

    @classmethod
    def detach(cls, taps):
        if taps in cls.attached:
            cls.attached.remove(taps)
            if not cls.attached:
                cls._patch.undo()

    @classmethod
    def _wrap_execute(cls, original):
        def execute(call, app, arg=None, **kwargs):
            for taps in list(cls.attached):
                taps.before_execute(call, app, kwargs)
            return original(call, app, arg, **kwargs)
        return execute

    @classmethod
    def _wrap_api(cls, original):
        def api(call, command, timeout_s=None):
            for taps in list(cls.attached):
                taps.before_api(call, command)
            return original(call, command, timeout_s)
        return api
