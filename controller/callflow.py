"""One inbound call, end to end: route, ask for consent, record only if lawful, bridge to the agent, finish.

Fail closed: any error before the recording is confirmed leaves the call unrecorded (nothing was created on
disk), and the call still goes to its agent where the process names one. Errors after that stop the recording
and delete it. The index gets every decision and its evidence before any audio is kept.
"""

import logging
import time

import gevent


from controller import consent
from controller.legalholds import held_among
from controller.callevents import CallEvents
from controller.callrecording import CallRecording
from controller.errors import IndexStoreError
from controller.eslerrors import CallGone, ESLError
from controller.helpdesk import CallFacts
from controller.routing import route
from controller.withdrawal import WithdrawalWatcher

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 10.0
PROMPT_MARGIN_S = 10.0
MAX_BRIDGE_S = 4 * 3600.0
KEY_VARIABLE = "consentline_key"
TAKEN_OVER_STATES = frozenset({"CS_ROUTING", "CS_RESET", "CS_HIBERNATE", "CS_SOFT_EXECUTE", "CS_CONSUME_MEDIA",
                               "CS_EXCHANGE_MEDIA"})


class EslConsentPort:
    """What consent steps need, over the call's ESL connection."""

    def __init__(self, call, process, prompt_seconds):
        self.call = call
        self.process = process
        self.prompt_seconds = prompt_seconds

    def _prompt(self, prompt_id):
        prompt = self.process.prompts[prompt_id]
        return prompt, self.prompt_seconds(prompt.path)

    def play(self, prompt_id):
        prompt, seconds = self._prompt(prompt_id)
        done = self.call.execute("playback", str(prompt.path), timeout_s=seconds + PROMPT_MARGIN_S)
        return _played_in_full(done, seconds)

    def ask(self, prompt_id, timeout_s, attempts):
        prompt, seconds = self._prompt(prompt_id)
        timeout_ms = int(timeout_s * 1000)
        arg = (f"1 1 {attempts} {timeout_ms} # {prompt.path} silence_stream://250 {KEY_VARIABLE} "
               f"^[0-9*#ABCD]$ {timeout_ms}")
        self._drain_digits()
        budget = attempts * (seconds + timeout_s + 1) + PROMPT_MARGIN_S
        done = self.call.execute("play_and_get_digits", arg, timeout_s=budget)
        key = done.headers.get(f"variable_{KEY_VARIABLE}")
        pressed = self._drain_digits()
        if key is None and pressed:
            key = pressed[0]  # e.g. a lone '#', which play_and_get_digits swallows as a terminator
        return consent.Answer(key=key, prompt_completed=_played_in_full(done, seconds))

    def _drain_digits(self):
        """DTMF events already queued (FreeSWITCH reports every digit play_and_get_digits reads)."""
        digits = []
        while True:
            try:
                frame = self.call.next_event(0)
            except ESLError:
                return digits
            if frame.headers.get("Event-Name") == "DTMF":
                digits.append(frame.headers.get("DTMF-Digit"))


def _played_in_full(done, seconds):
    """FILE PLAYED also means 'broken off'; the samples played tell the difference (terminators are off)."""
    if done.headers.get("Application-Response") not in ("FILE PLAYED", "_none_"):
        return False
    rate = int(done.headers.get("Channel-Read-Codec-Rate") or 8000)
    played = int(done.headers.get("variable_playback_samples") or 0)
    return played >= int((seconds - 0.1) * rate)


class IndexEvidence:
    """Consent evidence, kept with the time each fact happened and committed with the decision, in its transaction.

    One durable write between the caller's key and the recording instead of three (prompt, key, decision): that
    write is on the path the caller waits on. Evidence is only ever read with its decision, and every way out of
    the flow writes a decision (the failure paths included), so nothing is lost by waiting for it.
    """

    def __init__(self, call_uuid, process):
        self.call_uuid = call_uuid
        self.process = process
        self.pending = []  # (kind, at, fields)

    def prompt_played(self, prompt_id):
        self.pending.append(("prompt", time.time(), (prompt_id, self.process.prompts[prompt_id].sha256)))

    def prompt_cut_short(self, prompt_id):
        self.pending.append(("prompt-cut-short", time.time(), (prompt_id, self.process.prompts[prompt_id].sha256)))

    def key_pressed(self, key):
        self.pending.append(("digit", time.time(), (key,)))

    def write_into(self, index):
        """In the decision's transaction; `committed()` after it commits (a rolled-back try keeps them)."""
        for kind, at, fields in self.pending:
            if kind == "digit":
                index.evidence_digit(self.call_uuid, *fields, at)
            else:
                index.evidence_prompt(self.call_uuid, *fields, at, cut_short=kind == "prompt-cut-short")

    def committed(self):
        self.pending.clear()


class CallFlow:
    """The handler CallServer runs for each call."""

    def __init__(self, config, index, store, *, prompt_seconds, tailer_factory, observer=None, helpdesk=None,
                 on_event=None, agent_codes=None):
        self.config = config
        self.agent_codes = agent_codes    # controller.agentactions.AgentCodes, or None: no agent feature codes
        self.index = index
        self.helpdesk = helpdesk          # HelpdeskSettings, or None: no events are enqueued
        self.on_event = on_event          # wakes the webhook sender after an event is enqueued
        self.store = store
        self.prompt_seconds = prompt_seconds
        self.tailer_factory = tailer_factory
        self.observer = observer or (lambda kind, call, **info: None)

    def __call__(self, call):
        data = call.session_data or {}
        caller = data.get("Caller-Caller-ID-Number", "")
        dialed = data.get("Caller-Destination-Number", "")
        rate_hz = int(data.get("Channel-Read-Codec-Rate") or 8000)
        recording = None
        call.events = CallEvents(self.index, self.helpdesk, CallFacts(call.uuid, caller, dialed),
                                 on_enqueued=self.on_event)
        try:
            call.subscribe(["RECORD_START", "RECORD_STOP"])
            process, outcome, prepared = self._decide(call, caller, dialed, rate_hz)
            if prepared is not None:
                recording = self._start_recording(call, process, prepared)
            self._connect_agent(call, process, recording)
        finally:
            self._finish(call, recording)

    # -- deciding ----------------------------------------------------------------------------------------------

    def _decide(self, call, caller, dialed, rate_hz):
        """Route and run the consent flow. Any failure: not recorded (and the reason is kept where possible).

        Returns (process, outcome, prepared): `prepared` (see _prepare_recording) only when the outcome records
        and the decision is committed."""
        process = self.config.processes[self.config.default_process]
        prepared = None
        try:
            self.index.call_started(call.uuid, caller, dialed, time.time())
            customer = self.index.customer(caller)
            decision = route(caller, dialed, customer, self.config)
            process = self.config.processes[decision.process]
            call.events.facts = CallFacts(call.uuid, caller, dialed, agent=process.agent, process=process.name)
            call.events.write(lambda ix: ix.routing_decided(call.uuid, decision), "call.routed",
                              data={"rule": decision.rule, "conflict": bool(decision.conflict)})
            self.observer("routed", call, decision=decision)
            call.execute("answer", timeout_s=ANSWER_TIMEOUT_S)
            call.execute("set", "playback_terminators=none", timeout_s=ANSWER_TIMEOUT_S)
            port = EslConsentPort(call, process, self.prompt_seconds)
            call.evidence = IndexEvidence(call.uuid, process)
            outcome = consent.run_consent(process, port, call.evidence)
            preparing = self._prepare_recording(call, process, rate_hz) if outcome.record else None
            try:
                self._consent_decided(call, process, outcome)
            except BaseException:
                self._drop_prepared(call, preparing)
                raise
            prepared = preparing
        except CallGone as exc:
            self._record_failure(call, process, _gone_outcome(exc, "consent was decided"))
            raise
        except Exception as exc:  # whatever it is, a bug included: not recorded, and the caller still gets the agent
            if not isinstance(exc, (ESLError, IndexStoreError, KeyError, OSError)):
                log.exception("call %s: consent flow failed", call.uuid)
            outcome = consent.Outcome(False, "error", f"consent flow failed, not recorded: {exc}")
            self._record_failure(call, process, outcome)
        except BaseException:  # killed (GreenletExit): say why before going
            self._record_failure(call, process, consent.Outcome(
                False, "error", "the controller stopped this call before consent was decided, not recorded"))
            raise
        self.observer("consent", call, outcome=outcome, process=process)
        return process, outcome, prepared

    def _consent_decided(self, call, process, outcome):
        at = time.time()
        evidence = getattr(call, "evidence", None)

        def decided(ix):
            if evidence is not None:
                evidence.write_into(ix)
            ix.consent_decided(call.uuid, outcome.outcome, outcome.reason, process.name, self.config.config_version,
                               at)
        call.events.write(decided, "consent.decided", data={"outcome": outcome.outcome, "record": outcome.record,
                                                            "reason": outcome.reason})
        if evidence is not None:
            evidence.committed()

    def _record_failure(self, call, process, outcome):
        log.warning("call %s: %s", call.uuid, outcome.reason)
        try:
            self._consent_decided(call, process, outcome)
        except Exception:  # the index may be what failed; the call goes on unrecorded either way
            log.error("call %s: could not record the failed consent decision either", call.uuid)

    # -- recording ---------------------------------------------------------------------------------------------

    def _prepare_recording(self, call, process, rate_hz):
        """The empty recording is made ready while the decision is written, as both wait on the disk. It holds no
        audio: FreeSWITCH is asked to record only after the decision is committed (start())."""
        recording = CallRecording(call, self.store, self.config.controller.spool_dir, rate_hz=rate_hz,
                                  process=process, tailer_factory=self.tailer_factory)
        return recording, gevent.spawn(recording.prepare)

    def _drop_prepared(self, call, prepared):
        if prepared is None:
            return
        recording, job = prepared
        job.join()
        if job.successful():
            self._undo(call, recording, "the consent decision was not written")

    def _start_recording(self, call, process, prepared):
        recording, job = prepared
        try:
            job.get()  # the store's own error, if preparing failed: handled below like any unconfirmed start
            recording.start()
            at = time.time()

            def opened(ix):
                row_id = ix.recording_opened(call.uuid, recording.store_path, at, recording_id=recording.recording_id)
                ix.recording_state(row_id, "recording", at)
                return row_id
            recording.index_id = call.events.write(opened, "recording.started", recording_id=recording.recording_id)
        except CallGone as exc:
            self._undo(call, recording, "recording not confirmed")
            self._record_failure(call, process, _gone_outcome(exc, "the recording started"))
            raise
        except Exception as exc:  # anything unconfirmed: the recording must not survive (fail closed)
            self._undo(call, recording, "recording not confirmed")
            self._record_failure(call, process, consent.Outcome(
                False, "error", f"consent was given but the recording could not be started, not recorded: {exc}"))
            return None
        except BaseException:  # killed (GreenletExit) halfway: nothing of it may stay behind
            self._undo(call, recording, "the controller stopped this call")
            self._record_failure(call, process, consent.Outcome(
                False, "error", "the controller stopped this call while the recording started: recording deleted"))
            raise
        self.observer("recording", call, recording=recording)
        return recording

    def _undo(self, call, recording, reason):
        try:
            recording.discard("system", reason)
        except Exception:
            log.exception("call %s: could not undo the recording", call.uuid)
        index_id = getattr(recording, "index_id", None)
        if index_id:
            try:
                self.index.recording_state(index_id, "failed", time.time())
            except IndexStoreError:
                pass

    # -- the agent and the end of the call -----------------------------------------------------------------------

    def _connect_agent(self, call, process, recording):
        watcher = None
        if recording is not None and process.withdrawal.code:
            watcher = WithdrawalWatcher(call, process.withdrawal.code, self._withdraw_handler(call, process,
                                                                                             recording))
            watcher.start()
        codes = None
        if recording is not None and self.agent_codes is not None:
            codes = self.agent_codes.watch(call, process, recording, self._withdraw_handler(call, process, recording))
        bridged = None
        try:
            if recording is not None:
                bridged = call.expect(_bridge_of(call.uuid), survive_hangup=True)
            done = call.execute("bridge", process.agent, timeout_s=MAX_BRIDGE_S)
            if bridge_taken_over(done.headers):
                # A transfer: the caller is (or is being) bridged to a colleague and the call goes on (recorded,
                # withdrawable, with the codes on the colleague's leg) until someone hangs up.
                log.info("call %s: transferred (%s)", call.uuid, done.headers.get("variable_transfer_source"))
                if codes is not None:  # uuid_bridge named the new partner before it let the bridge go
                    codes.bridged_to(done.headers.get("variable_bridge_uuid"))
                self.observer("transferred", call)
                call.wait_event(lambda frame: False, MAX_BRIDGE_S)  # ends in CallGone when the call ends
            call.hangup()  # the agent hung up: the caller does not stay on an open line
        except BaseException as exc:
            if recording is not None and not (bridged is not None and bridged.arrived) and not _hung_up(exc):
                self._abandon(call, process, recording, exc)
            raise
        finally:
            if bridged is not None:
                bridged.cancel()
            if codes is not None:
                codes.stop()
            if watcher is not None:
                watcher.stop()

    def _abandon(self, call, process, recording, exc):
        """The bridge failed before it was up: the flow has lost the call (it cannot honour a withdrawal or
        know who is on the line), so the recording goes, as any error on the way to the agent."""
        what = "the controller stopped this call" if not isinstance(exc, Exception) else str(exc)
        self._undo(call, recording, "the bridge to the agent failed")
        self._record_failure(call, process, consent.Outcome(
            False, "error", f"the bridge to {process.agent} failed before it was up ({what}): recording deleted"))

    def _withdraw_handler(self, call, process, recording):
        def withdraw():
            if recording.state != "recording":
                return  # already withdrawn (the caller's code and an agent's *8 can both arrive), or gone
            held = process.withdrawal.on_withdraw != "keep" and self._under_legal_hold(recording)
            keep = process.withdrawal.on_withdraw == "keep" or held
            recording.withdraw("caller", "consent withdrawn by the caller", keep=keep)
            state = "withdrawn" if keep else "purged"
            why = "kept up to the withdrawal: under legal hold" if held else state
            at = time.time()
            duration_s = recording.duration_s if keep else None

            def withdrawn(ix):
                ix.consent_decided(call.uuid, "withdrawn", f"the caller withdrew consent ({why})",
                                   process.name, self.config.config_version, at)
                ix.recording_state(recording.index_id, state, at, duration_s=duration_s)
            deleted = [] if keep else [("recording.deleted", {"reason": "consent withdrawn"})]
            call.events.write(withdrawn, "consent.withdrawn", recording_id=recording.recording_id,
                              data={"kept": keep, "duration_s": duration_s}, also=deleted)
            self.observer("withdrawn", call, keep=keep)
        return withdraw

    def _under_legal_hold(self, recording):
        """A legal hold (on the recording or the call's numbers) forbids deleting it, even on withdrawal: the
        recording stops at once and is kept up to the withdrawal. An unreadable hold counts as held."""
        try:
            return bool(self.index.run(lambda ix: held_among(ix, [recording.recording_id])))
        except IndexStoreError:
            return True

    def _finish(self, call, recording):
        if recording is not None and recording.state == "recording":
            try:
                recording.finish()
                at, duration_s = time.time(), recording.duration_s
                call.events.write(lambda ix: ix.recording_state(recording.index_id, "completed", at,
                                                                duration_s=duration_s),
                                  "recording.completed", recording_id=recording.recording_id,
                                  data={"duration_s": duration_s, "tags": []})
            except Exception:
                log.exception("call %s: finishing the recording failed", call.uuid)
        try:
            self.index.call_ended(call.uuid, call.hangup_cause or "NORMAL_CLEARING", time.time())
        except IndexStoreError:
            log.error("call %s: could not record the end of the call", call.uuid)
        self.observer("ended", call, recording=recording)


def _gone_outcome(exc, before):
    """A hangup is the caller's choice; a lost socket is a fault, and the evidence must not blame the caller."""
    if exc.socket_lost:
        return consent.Outcome(False, "error", f"the ESL connection was lost ({exc.reason}) before {before}, "
                                               f"not recorded")
    return consent.Outcome(False, "hangup", f"the caller hung up before {before}")


def _hung_up(exc):
    return isinstance(exc, CallGone) and not exc.socket_lost


def bridge_taken_over(headers):
    """Did the `bridge` application return because a transfer took the caller over? FreeSWITCH's uuid_bridge
    (an attended transfer) moves the channel to CS_RESET and into the new bridge, a blind transfer
    (switch_ivr_session_transfer) to CS_ROUTING and the agents' context; a bridge that ended because the agent
    hung up leaves it in CS_EXECUTE."""
    return headers.get("Channel-State") in TAKEN_OVER_STATES


def _bridge_of(call_uuid):
    def matches(frame):
        return frame.headers.get("Event-Name") == "CHANNEL_BRIDGE" and frame.headers.get("Unique-ID") == call_uuid
    return matches
