"""Runs a scenario's calls against a controller's socket address and collects the summary."""

import logging
import os

import gevent

from freeswitch.emulator import audio
from freeswitch.emulator.bridge import AgentBehaviour
from freeswitch.emulator.scenario import DTMF_END_DELAY_S, DTMF_SPACING_S, audio_function, dialplan
from freeswitch.emulator.session import Session

log = logging.getLogger(__name__)



class CallRecord:
    """What the summary says about one call; filled in by switch observers as the call runs."""

    def __init__(self, spec):
        self.spec = spec
        self.uuid = None
        self.agent_uuid = None
        self.arrived_at = None
        self.hangup_cause = None
        self.applications = []
        self.agent_applications = []
        self.dtmf = []
        self.heard = []
        self.recordings = {}
        self.ended = gevent.event.Event()

    def at_s(self, clock):
        return round(clock.now() - self.arrived_at, 3)

    def as_dict(self):
        return {
            "id": self.spec.id, "uuid": self.uuid, "agent_uuid": self.agent_uuid, "caller": self.spec.caller,
            "dialed": self.spec.dialed, "hangup_cause": self.hangup_cause, "applications": self.applications,
            "agent_applications": self.agent_applications, "dtmf": self.dtmf, "heard": self.heard,
            "recordings": list(self.recordings.values()),
        }


class ScenarioRunner:
    def __init__(self, switch, socket_address, specs):
        self.switch = switch
        self.socket_address = socket_address
        self.records = [CallRecord(spec) for spec in specs]
        self._by_uuid = {}
        switch.observers.append(self._observe)

    def run(self, timeout_s=None):
        """Start every call at its time and wait (in real seconds, bounded) until all have ended."""
        greenlets = [gevent.spawn(self._place_call, record) for record in self.records]
        latest_end = max((r.spec.start_s + (r.spec.hangup_at_s or 0) for r in self.records), default=0)
        if timeout_s is None:
            timeout_s = self.switch.clock.real_seconds(latest_end + 120) + 10
        with gevent.Timeout(timeout_s, False):
            for record in self.records:
                record.ended.wait()
        gevent.killall(greenlets, block=False)
        self.switch.observers.remove(self._observe)
        return {"calls": [r.as_dict() for r in self.records]}

    def _place_call(self, record):
        spec = record.spec
        clock = self.switch.clock
        clock.sleep_until(spec.start_s)
        uuid = self.switch.new_uuid()
        channel = self.switch.profiles.trunk_channel(uuid=uuid, caller=spec.caller, dialed=spec.dialed,
                                                     rate_hz=spec.rate_hz)
        channel.audio = audio_function(spec.caller_audio, audio.CALLER_MARKER_BASE_HZ, spec.rate_hz)
        session = Session(self.switch, channel)
        session.dialplan = dialplan(spec, self.socket_address)
        if spec.agent:
            session.agent_behaviours = {spec.agent["extension"]: _behaviour(spec.agent, spec.rate_hz)}
        record.uuid = uuid
        record.arrived_at = clock.now()
        self._by_uuid[uuid] = record
        self.switch.add_session(session)
        session.start()
        for at_s, digits in spec.caller_dtmf:
            gevent.spawn(self._press, session, record, record.arrived_at + at_s, digits)
        if spec.hangup_at_s is not None:
            gevent.spawn(self._hangup, session, record, record.arrived_at + spec.hangup_at_s, spec.hangup_by)

    def _press(self, session, record, at_t, digits):
        clock = self.switch.clock
        for i, digit in enumerate(digits):
            clock.sleep_until(at_t + DTMF_SPACING_S * i + DTMF_END_DELAY_S)
            if not session.channel.up:
                return
            record.dtmf.append({"leg": "caller", "digits": digit, "at_s": record.at_s(clock)})
            session.receive_dtmf(digit, source="RTP", duration=1600)

    def _hangup(self, session, record, at_t, by):
        self.switch.clock.sleep_until(at_t)
        target = session
        if by == "agent" and record.agent_uuid in self.switch.sessions:
            target = self.switch.sessions[record.agent_uuid]
        target.hangup("NORMAL_CLEARING", initiator="remote")

    # -- observing --------------------------------------------------------------------------------------------

    def _record_for(self, session):
        record = self._by_uuid.get(session.uuid)
        return record

    def _observe(self, kind, session, **info):
        record = self._record_for(session)
        if record is None:
            return
        clock = self.switch.clock
        leg = "caller" if session.uuid == record.uuid else "agent"
        if kind == "execute":
            target = record.applications if leg == "caller" else record.agent_applications
            target.append({"name": info["app"], "arg": info["arg"]})
        elif kind == "agent_leg":
            record.agent_uuid = info["agent"].uuid
            self._by_uuid[info["agent"].uuid] = record
        elif kind == "dtmf_pressed":
            record.dtmf.append({"leg": leg, "digits": info["digits"], "at_s": record.at_s(clock)})
        elif kind == "dtmf_relayed":
            record.heard.append({"leg": "agent" if leg == "caller" else "caller", "what": "dtmf",
                                 "digits": info["digit"], "at_s": record.at_s(clock)})
        elif kind == "uuid_bridged":      # a transfer: the colleague's leg is this call's agent now
            record.agent_uuid = info["agent"].uuid
            self._by_uuid[info["agent"].uuid] = record
        elif kind == "transfer":
            record.heard.append({"leg": "agent", "what": "transfer", "to": info["to"], "how": info["how"],
                                 "at_s": record.at_s(clock)})
        elif kind in ("hold", "unhold"):
            record.heard.append({"leg": leg, "what": kind, "at_s": record.at_s(clock)})
        elif kind == "playback":
            record.heard.append({"leg": leg, "what": "playback", "path": info["path"], "at_s": record.at_s(clock)})
        elif kind == "record_start":
            bug = info["bug"]
            record.recordings[info["path"]] = {
                "path": info["path"], "format": os.path.splitext(info["path"])[1].lstrip(".") or "native",
                "channels": 2 if bug.recorder.channels == 2 else 1, "rate_hz": bug.recorder.rate_hz,
                "duration_s": None, "leg": leg}
        elif kind == "record_stop":
            entry = record.recordings.get(info["path"])
            if entry is not None:
                result = info["result"]
                entry["duration_s"] = round(result.record_samples / entry["rate_hz"], 3)
                entry["completion_cause"] = result.completion_cause
        elif kind == "hangup" and leg == "caller":
            record.hangup_cause = session.channel.hangup_cause
        elif kind == "destroyed" and leg == "caller":
            record.ended.set()


def _behaviour(agent, rate_hz):
    """The scenario's agent (and the colleague a transfer reaches) as the phone behaviour bridge.py drives."""
    transfer = agent.get("transfer")
    return AgentBehaviour(
        agent["extension"], answer_after_s=agent["answer_after_s"],
        audio=audio_function(agent["audio"], audio.AGENT_MARKER_BASE_HZ, rate_hz),
        dtmf=agent["dtmf"], reject=agent["reject"], holds=agent.get("hold", ()),
        transfer=None if transfer is None else (transfer["at_s"], transfer["consult_s"],
                                                _behaviour(transfer["to"], rate_hz)))
