"""Agent feature codes on a live call: bindings on the agent leg, then each request authorised, carried out,
read back, audited and confirmed to the agent alone with a tone.

- `AgentCodeLink` (controller.agentlink) brings each `agent_code` event, and each bridge a watched call is
  part of, to the call's mailbox.
- `AgentCodes`: the controller-wide part: every process's settings (checked at start-up) and the link.
- `CallAgentCodes`: one per recorded call. It waits for CHANNEL_BRIDGE on the call's socket and binds the codes
  on the agent leg named by `Bridge-B-Unique-ID`. After an attended transfer FreeSWITCH bridges the colleague's
  leg to the caller with the colleague's leg as the A side (switch_ivr_uuid_bridge), so that CHANNEL_BRIDGE
  never reaches the call's own socket: the link hands it over, and the codes move to the colleague's leg, who
  then owns the call. Requests run one at a time, in order with those moves. The media pipeline is the single
  source of truth for pause, resume and cut; stop, delete and withdraw also stop FreeSWITCH's recording and
  wait for its RECORD_STOP.

A recorder action must be confirmed within `read_back_s` (the switch's reply and events, and the pipeline's
state read back); otherwise the call fails closed (`mask`, `stop` or `hangup`) with an alert in the log and the
audit. The index change, its audit row and its helpdesk event commit together. Digits never appear here:
FreeSWITCH matched them, we only see the action's name.
"""

import logging
import time

import gevent
import gevent.queue

from types import SimpleNamespace

from controller import audit, tags
from controller.agentcodes import (INDEX_AFTER, AgentCodeError, RecorderState, bind_commands, bindings,
                                   bridged_agent_uuid, confirm, decide, dial_string_extension, parse_all,
                                   parse_request, precondition, record_stop_command, sound_command)
from controller.callrecording import record_event
from controller.errors import ConsentlineError
from controller.legalholds import held_among
from controller.eslcmd import is_ok
from controller.eslerrors import ESLError
from controller.agentlink import BRIDGED
from controller.permissions import Actor, authorise
from media import MediaError

log = logging.getLogger(__name__)

DESTROYS_AUDIO = frozenset({"cut", "delete"})  # refused under legal hold, like the staff commands

BRIDGE_WAIT_S = 4 * 3600.0      # as long as a bridge may last
POLL_S = 1.0
MAILBOX_SIZE = 16               # requests waiting per call; more are dropped and counted
COMMAND_TIMEOUT_S = 2.0         # tones, notices, bindings, variable reads
STOP_GRACE_S = 5.0              # after the bridge: time left to finish a request already running
ACTION_ERRORS = (ESLError, MediaError, ConsentlineError, OSError, ValueError)
FAIL_CLOSED_ACTOR = Actor.system("fail-closed")
FLAG_REASON = "flagged by agent code"


class SwitchRefused(ESLError):
    """FreeSWITCH answered a command we need confirmed with something other than +OK."""


def _remaining_s(deadline):
    return max(0.01, deadline - time.monotonic())


def _sample_range(result):
    """An OpResult's [start, end) for the audit. A resume after a cut into the pause can report its start past
    its end (the pipeline keeps the pause's old start): the end is right, so the range is clamped to it."""
    if result is None:
        return None, None
    return min(result.start_sample, result.end_sample), result.end_sample


def _is_bridge(frame):
    return bridged_agent_uuid(frame.headers) is not None


class AgentCodes:
    """Agent codes for every recorded call; `watch()` is the call flow's hook around the bridge.

    `index_io` runs fn(index, ...) off the hub (`OffHubIndex.run`); changes that the helpdesk hears of go
    through the call's `events` (the same worker), so the change, its audit row and its event commit together.
    """

    def __init__(self, config, index_io, link):
        self.config = config
        self.index_io = index_io
        self.link = link
        self.settings = parse_all(config)  # ConfigError at start-up, naming every bad key

    def watch(self, call, process, recording, withdraw):
        """Start handling the agent's codes for a recorded call (None when there is nothing to handle)."""
        settings = self.settings.get(process.name)
        if self.link is None or recording is None or settings is None or not bindings(settings):
            return None
        try:
            return CallAgentCodes(self, call, process, settings, recording, withdraw).start()
        except ESLError as exc:
            log.warning("call %s: agent codes not started: %s", call.uuid, exc)
            return None


class CallAgentCodes:
    """One recorded call's agent codes, from the bridge to the end of the bridge."""

    def __init__(self, service, call, process, settings, recording, withdraw):
        self.service = service
        self.config = service.config
        self.call = call
        self.settings = settings
        self.recording = recording
        self.withdraw = withdraw
        self.owner = dial_string_extension(process.agent)
        self.agent_uuid = None
        self.legs = {}                      # agent leg uuid -> Actor
        self.outcomes = []                  # (action, outcome) in order
        self.mailbox = gevent.queue.Queue(MAILBOX_SIZE)
        self._stopping = False
        # Registered before the bridge is sent, so neither event can be missed.
        self._bridged = call.expect(_is_bridge)
        self._switch_stop = call.expect(record_event("RECORD_STOP", recording.spool_path), survive_hangup=True)
        self._watcher = self._worker = None

    def start(self):
        self.service.link.watch_call(self.call.uuid, self.mailbox)
        self._watcher = gevent.spawn(self._watch_bridges)
        self._worker = gevent.spawn(self._serve)
        self._watcher.name = f"agent-bridges-{self.call.uuid}"
        self._worker.name = f"agent-codes-{self.call.uuid}"
        return self

    def bridged_to(self, agent_uuid):
        """The call's own socket learnt of its (new) partner: a CHANNEL_BRIDGE, or after a transfer the bridge's
        completion. The codes move there unless the link's CHANNEL_BRIDGE has already done so; any one source
        suffices. Through the mailbox, so that the move runs in order with the requests."""
        if agent_uuid:
            try:
                self.mailbox.put((BRIDGED, agent_uuid), timeout=COMMAND_TIMEOUT_S)
            except gevent.queue.Full:
                log.error("call %s: new agent leg %s not handled: the request queue stays full", self.call.uuid,
                          agent_uuid)

    def stop(self):
        """The bridge ended: finish the requests in hand (bounded), then let go of the leg."""
        self._stopping = True
        self._watcher.kill(block=False)
        try:
            self.mailbox.put_nowait(None)  # wakes the worker; requests queued before it still run
        except gevent.queue.Full:
            pass
        self._worker.join(timeout=2 * self.settings.read_back_s + STOP_GRACE_S)
        self._worker.kill(block=False)
        for agent_uuid in self.legs:
            self.service.link.unregister(agent_uuid)
        self.service.link.unwatch_call(self.call.uuid)
        self._bridged.cancel()
        self._switch_stop.cancel()

    # -- the agent leg ------------------------------------------------------------------------------------

    def _watch_bridges(self):
        while True:
            try:
                frame = self._bridged.wait(BRIDGE_WAIT_S, "CHANNEL_BRIDGE")
                self._bridged = self.call.expect(_is_bridge)  # a transfer bridges another agent leg
            except ESLError:
                return
            self.bridged_to(bridged_agent_uuid(frame.headers))

    def _attach(self, agent_uuid):
        if agent_uuid == self.agent_uuid:
            return
        previous, self.agent_uuid = self.agent_uuid, agent_uuid
        extension = self._extension_of(agent_uuid)
        self.legs[agent_uuid] = Actor.agent(extension)
        if previous is not None and extension != "unknown":
            self.owner = extension  # transferred: the colleague's call now (pause_own)
            log.info("call %s: transferred from agent leg %s to %s (%s)", self.call.uuid, previous, agent_uuid,
                     extension)
        self.service.link.register(agent_uuid, self.mailbox)
        if previous is not None:
            self.service.link.unregister(previous)
        try:
            for command in bind_commands(agent_uuid, self.settings, f"agent-codes-{time.monotonic_ns()}"):
                reply = self.call.send(command, COMMAND_TIMEOUT_S)
                if not is_ok(reply.reply_text):
                    raise SwitchRefused(f"{command.splitlines()[2]} answered {reply.reply_text!r}")
        except (ESLError, ValueError) as exc:
            log.error("call %s: agent codes not bound on agent leg %s: %s", self.call.uuid, agent_uuid, exc)
            if not self.call.gone and self.recording.state == "recording":
                # Unbound codes would reach the caller and the recording as tones: fail closed, as for an action
                # FreeSWITCH does not confirm.
                self._fail_closed(self.legs[agent_uuid], "bind_codes", f"agent codes not bound: {exc}")
            return
        log.info("call %s: agent codes bound on agent leg %s (%s)", self.call.uuid, agent_uuid,
                 self.legs[agent_uuid])

    def _extension_of(self, agent_uuid):
        """The B-leg's dialed_user, else the extension in the process's dial string."""
        try:
            value = self.call.api(f"uuid_getvar {agent_uuid} dialed_user", timeout_s=COMMAND_TIMEOUT_S).strip()
        except (ESLError, ValueError):
            value = ""
        if value and not value.startswith("-") and value != "_undef_":
            return value
        return self.owner or "unknown"

    def _serve(self):
        while not self._stopping or not self.mailbox.empty():
            try:
                item = self.mailbox.get(timeout=POLL_S)
            except gevent.queue.Empty:
                continue
            if item is None:
                continue
            agent_uuid, value = item
            if agent_uuid == BRIDGED:
                self._attach(value)
                continue
            try:
                request = parse_request(value, self.settings)
            except AgentCodeError as exc:
                log.warning("call %s: ignored an agent code event: %s", self.call.uuid, exc)
                continue
            outcome = self.perform(self.legs.get(agent_uuid, Actor.agent("unknown")), agent_uuid, request)
            self.outcomes.append((request.action, outcome))

    # -- one request --------------------------------------------------------------------------------------

    def perform(self, actor, agent_uuid, request):
        """Authorise, act, read back, audit, tone. Returns "done", "refused" or "failed"."""
        if request.action in ("tag", "flag"):
            outcome = self._annotate(actor, request)
        else:
            outcome = self._change_recorder(actor, request.action)
        tone = self.settings.success_tone if outcome == "done" else self.settings.refusal_tone
        self._sound(sound_command(agent_uuid, tone, "aleg"))  # only the agent hears it: the agent leg alone
        notice = {"pause": self.settings.pause_notice, "resume": self.settings.resume_notice}.get(request.action)
        if outcome == "done" and notice:
            # Not a broadcast: the caller's leg is event-locked in the bridge, which holds queued broadcasts
            # until the bridge ends; a displace media bug plays at once, mixed in.
            for uuid in (self.call.uuid, agent_uuid):
                self._sound(sound_command(uuid, notice, "displace"))
        return outcome

    def _change_recorder(self, actor, action):
        decision = decide(self.config, actor, action, self.owner)
        refusal = decision.reason if not decision.allowed else precondition(action, self.state())
        if refusal is None and action in DESTROYS_AUDIO and self._under_legal_hold():
            refusal = "the recording is under legal hold"
        details = {"permission": decision.permission}
        if refusal is not None:
            self._write(self._audit_entry(actor, action, "refused", refusal, details=details))
            return "refused"
        problem, result = self._act_and_confirm(actor, action)
        if problem is not None:
            self._fail_closed(actor, action, problem)
            return "failed"
        sample_range = _sample_range(result)
        self._write(self._audit_entry(actor, action, "done", decision.reason, sample_range, details),
                    *INDEX_AFTER[action], sample_range)
        return "done"

    def _act_and_confirm(self, actor, action):
        """(problem or None, the operation's OpResult or None), all within read_back_s."""
        bound_s = self.settings.read_back_s
        deadline = time.monotonic() + bound_s
        job = gevent.spawn(self._guarded, getattr(self, f"_do_{action}"), str(actor), deadline)
        job.join(timeout=bound_s)
        if not job.ready():
            return f"not confirmed within {bound_s:g} s", None
        result, error = job.value
        if error is not None:
            return f"{type(error).__name__}: {error}", None
        cut = None
        if action == "cut":
            expected = self.recording.recording.fmt.seconds_to_samples(self.settings.cut_seconds)
            cut = (result.start_sample, result.removed_samples, expected)
        return confirm(action, self.state(), cut), result

    @staticmethod
    def _guarded(operation, actor, deadline):
        try:
            return operation(actor, deadline), None
        except ACTION_ERRORS as exc:
            return None, exc

    # -- the operations: the pipeline (and for stop, delete, withdraw the switch); each returns an OpResult ---

    def _do_pause(self, actor, deadline):
        return self.recording.recording.pause(actor, "paused by agent code")

    def _do_resume(self, actor, deadline):
        return self.recording.recording.resume(actor, "resumed by agent code")

    def _do_cut(self, actor, deadline):
        return self.recording.recording.cut_last(self.settings.cut_seconds, actor, "cut by agent code")

    def _do_stop(self, actor, deadline):
        self._stop_switch(deadline)
        return self.recording.finish(actor, "stopped by agent code", record_stop_timeout_s=_remaining_s(deadline))

    def _do_delete(self, actor, deadline):
        self._stop_switch(deadline)
        result = self.recording.recording.delete(actor, "deleted by agent code")
        self.recording.withdraw(actor, "deleted by agent code", keep=False)  # spool and call state follow
        return result

    def _do_withdraw(self, actor, deadline):
        self._stop_switch(deadline)
        length = self.recording.recording.length_samples
        self.withdraw()  # the call flow's own withdrawal: the same effect as the caller's code
        return SimpleNamespace(start_sample=0, end_sample=length)

    def _stop_switch(self, deadline):
        """uuid_record stop, confirmed by +OK and then RECORD_STOP for our spool."""
        reply = self.call.api(record_stop_command(self.call.uuid, self.recording.spool_path),
                              timeout_s=_remaining_s(deadline))
        if not is_ok(reply):
            raise SwitchRefused(f"uuid_record stop answered {reply.strip()!r}")
        self._switch_stop.wait(_remaining_s(deadline), "RECORD_STOP")

    def state(self):
        rec, media = self.recording, self.recording.recording
        return RecorderState(call_state=rec.state, media_status=media.status if media is not None else "none",
                             paused=bool(media is not None and media.paused),
                             length_samples=media.length_samples if media is not None else 0,
                             switch_stopped=self._switch_stop.arrived)

    # -- failing closed -------------------------------------------------------------------------------------

    def _fail_closed(self, actor, action, problem):
        mode = self.settings.fail_closed
        log.error("ALERT call %s: %s by %s not confirmed (%s); failing closed (%s)",
                  self.call.uuid, action, actor, problem, mode)
        self._write(self._audit_entry(actor, action, "failed", f"not confirmed: {problem}; failed closed ({mode})",
                                      details={"alert": True, "fail_closed": mode}))
        try:
            result, outcome, note = self._close(mode), "done", f"after an unconfirmed {action}"
        except ACTION_ERRORS as exc:
            result, outcome, note = None, "failed", f"{mode} failed ({exc}); hanging up"
            log.error("ALERT call %s: failing closed (%s) failed: %s; hanging up", self.call.uuid, mode, exc)
            self._hang_up()
        sample_range = _sample_range(result)
        stopped = mode == "stop" and result is not None
        self._write(self._audit_entry(FAIL_CLOSED_ACTOR, "fail_closed", outcome, note, sample_range,
                                      {"alert": True, "mode": mode, "action": action}),
                    *(("stopped", "recording.completed") if stopped else (None, None)), sample_range)

    def _close(self, mode):
        """Stop keeping audio at once (mask from here on), then hang up or finish the recording if asked."""
        media, result = self.recording.recording, None
        if media is not None and media.status == "recording":
            result = media.mask(str(FAIL_CLOSED_ACTOR), "fail closed: nothing more is kept")
        if mode == "hangup":
            self._hang_up()
        elif mode == "stop" and self.recording.state == "recording":
            try:
                self.call.api(record_stop_command(self.call.uuid, self.recording.spool_path),
                              timeout_s=self.settings.read_back_s)
            except ESLError:
                pass  # the pipeline takes no more audio either way, and the spool goes
            result = self.recording.finish(str(FAIL_CLOSED_ACTOR), "fail closed", record_stop_timeout_s=0)
        return result

    def _hang_up(self):
        try:
            self.service.link.api(f"uuid_kill {self.call.uuid} NORMAL_CLEARING", COMMAND_TIMEOUT_S)
        except ESLError:
            try:
                self.call.hangup(timeout_s=COMMAND_TIMEOUT_S)
            except ESLError as exc:
                log.error("ALERT call %s: could not hang up: %s", self.call.uuid, exc)

    # -- tags and flags: the tags module authorises and audits them ----------------------------------------------

    def _annotate(self, actor, request):
        rid, tagging = self.recording.index_id, request.action == "tag"
        refusal, outcome = precondition(request.action, self.state()), "refused"
        if refusal is None:
            allowed = authorise(self.config, actor, request.action).allowed  # as tags.* decides: no event if not
            data = {"tag": request.tag, "by": str(actor)} if tagging else {"reason": FLAG_REASON, "by": str(actor)}
            result = self._write(lambda ix: tags.tag(ix, self.config, actor, rid, request.tag) if tagging
                                 else tags.flag(ix, self.config, actor, rid, FLAG_REASON),
                                 event_type=("recording.tagged" if tagging else "recording.flagged") if allowed
                                 else None, data=data)
            if result is not None and not result.allowed:
                return "refused"  # tags.* audited the refusal
            found = self._read(tags.tags_of if tagging else tags.flag_of, rid) if result is not None else None
            if found and (request.tag in found if tagging else found["flagged"]):
                return "done"
            refusal, outcome = "the index does not show it", "failed"
        self._write(self._audit_entry(actor, request.action, outcome, refusal, details={"tag": request.tag}))
        return outcome

    # -- the index, audit, sounds --------------------------------------------------------------------------

    def _audit_entry(self, actor, action, outcome, reason, sample_range=(None, None), details=None):
        return audit.AuditEntry(actor, action, outcome, call_uuid=self.call.uuid,
                                recording_id=self.recording.index_id, start_sample=sample_range[0],
                                end_sample=sample_range[1], reason=reason,
                                details={k: v for k, v in (details or {}).items() if v is not None})

    def _write(self, change, state=None, event_type=None, sample_range=(None, None), data=None):
        """One transaction: an audit entry (or change(index)), the recording's state, the helpdesk event."""
        entry = change if isinstance(change, audit.AuditEntry) else None
        rid, at = self.recording.index_id, time.time()

        def in_index(ix):
            if state is not None:
                ix.recording_state(rid, state, at, duration_s=duration_s)
            return audit.append(ix, entry) if entry is not None else change(ix)
        duration_s = self.recording.duration_s if state == "stopped" else None
        if event_type is not None and data is None:
            data = {"start_sample": sample_range[0], "end_sample": sample_range[1], "reason": entry.reason,
                    "by": str(entry.actor), "duration_s": duration_s}
        try:
            events = getattr(self.call, "events", None)
            if events is not None:
                return events.write(in_index, event_type, recording_id=self.recording.recording_id, data=data)
            return self.service.index_io.run(in_index)
        except ConsentlineError as exc:
            log.error("ALERT call %s: could not write to the index: %s", self.call.uuid, exc)
            return None

    def _under_legal_hold(self):
        """A hold (on this recording or on the call's numbers) forbids destroying audio; unknown counts as held."""
        held = self._read(held_among, [self.recording.recording_id])
        return held is None or bool(held)

    def _read(self, fn, *args):
        try:
            return self.service.index_io.run(fn, *args)
        except ConsentlineError as exc:
            log.error("call %s: could not read the index back: %s", self.call.uuid, exc)
            return None

    def _sound(self, command):
        """Through the link (the call's own socket if the link is down); best effort, never waits long."""
        try:
            try:
                reply = self.service.link.api(command, COMMAND_TIMEOUT_S)
            except ESLError:
                reply = self.call.api(command, timeout_s=COMMAND_TIMEOUT_S)
        except ESLError as exc:
            reply = f"-ERR {exc}"
        if not is_ok(reply):
            log.warning("call %s: not played (%s): %s", self.call.uuid, command.split()[0], reply.strip())
