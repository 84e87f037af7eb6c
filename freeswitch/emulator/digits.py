"""bind_digit_action's digit machine: matched sequences are swallowed and their action runs; others come back.

Checked against FreeSWITCH 1.10.12: a matched sequence gives no DTMF events and one header-less event
(`<app>: <value>`, `digits: <matched>`, `execute: non-blocking`, then channel data); a digit that can begin no
binding is released at once, a prefix is held for bind_digit_digit_timeout (1500 ms); released digits become DTMF
events with source APP and duration 2000, each followed by a header-less `digits: <d>` event.
"""

import re

import gevent

from freeswitch.emulator.events import Event

DEFAULT_DIGIT_TIMEOUT_MS = 1500


class Binding:
    def __init__(self, realm, pattern, action, value):
        self.realm = realm
        self.pattern = pattern
        self.action = action
        self.value = value

    def matches(self, digits):
        if self.pattern.startswith("~"):
            return re.fullmatch(self.pattern[1:], digits) is not None
        return digits == self.pattern

    def could_extend(self, digits):
        if self.pattern.startswith("~"):
            return False
        return self.pattern.startswith(digits) and self.pattern != digits


class DigitMachine:
    def __init__(self, session):
        self.session = session
        self.bindings = []
        self.realm = None
        self.buffer = ""
        self._timer = None

    @property
    def active(self):
        return bool(self.bindings)

    def _realm_bindings(self):
        realm = self.realm or (self.bindings[0].realm if self.bindings else None)
        return [b for b in self.bindings if b.realm == realm]

    def feed(self, digit):
        self.buffer += digit
        bindings = self._realm_bindings()
        for binding in bindings:
            if binding.matches(self.buffer):
                matched, self.buffer = self.buffer, ""
                self._cancel_timer()
                self._run(binding, matched)
                return
        if any(b.could_extend(self.buffer) for b in bindings):
            self._restart_timer()
            return
        self._release()

    def _restart_timer(self):
        self._cancel_timer()
        variables = self.session.channel.variables
        timeout_ms = int(variables.get("bind_digit_digit_timeout") or DEFAULT_DIGIT_TIMEOUT_MS)
        self._timer = gevent.spawn_later(self.session.switch.clock.real_seconds(timeout_ms / 1000.0), self._release)

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.kill(block=False)
            self._timer = None

    def _release(self):
        digits, self.buffer = self.buffer, ""
        self._timer = None
        session = self.session
        session.channel.variables.set("last_non_matching_digits", digits)
        for digit in digits:
            session.dtmf_queue.append((digit, 2000, "APP", True))
        session.wakeup.set()

    def _run(self, binding, matched):
        session = self.session
        session.channel.variables.set("last_matching_digits", matched)
        app_name = binding.action.split(":", 1)[1] if ":" in binding.action else binding.action
        headerless = Event([(app_name, binding.value or ""), ("digits", matched)])
        if binding.action.startswith("exec"):
            headerless.add("execute", "non-blocking")
        session.channel.event_data(headerless, True)
        session.switch.fire(headerless)
        session.switch.scenario_hook("digit_action", session, digits=matched, action=binding.action,
                                     value=binding.value)
        if binding.action.startswith("exec"):
            session.queue_app(app_name, binding.value or "")
        elif binding.action.startswith("api:"):
            result = session.switch.api(f"{app_name} {binding.value or ''}".strip())
            session.channel.variables.set("bind_digit_action_api_result", result)


def _machine(session):
    if session.digit_machine is None:
        session.digit_machine = DigitMachine(session)
    return session.digit_machine


def app_bind_digit_action(session, arg):
    parts = arg.split(",")
    if len(parts) < 3:
        return
    realm, pattern, action = parts[0].strip(), parts[1].strip(), parts[2].strip()
    value = parts[3] if len(parts) > 3 else ""
    machine = _machine(session)
    machine.bindings = [b for b in machine.bindings if not (b.realm == realm and b.pattern == pattern)]
    machine.bindings.append(Binding(realm, pattern, action, value))


def app_digit_action_set_realm(session, arg):
    realm = arg.split(",")[0].strip()
    if realm:
        _machine(session).realm = realm


def app_clear_digit_action(session, arg):
    realm = arg.split(",")[0].strip()
    machine = _machine(session)
    if realm == "all":
        machine.bindings = []
    else:
        machine.bindings = [b for b in machine.bindings if b.realm != realm]
