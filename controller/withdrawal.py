"""The caller's withdrawal code (e.g. `*9`), watched on the caller's DTMF while the call is recorded.

A pure matcher (`CodeMatcher`: digits in, "matched" out, with an inter-digit timeout) and a greenlet that feeds it
from the call's DTMF events and runs the withdrawal once. Never resumed automatically.
"""

import logging

import gevent

from controller.eslerrors import CallGone, ESLError, ESLTimeout

log = logging.getLogger(__name__)

INTER_DIGIT_TIMEOUT_S = 3.0
POLL_S = 1.0


class CodeMatcher:
    """Matches a DTMF code in a stream of (digit, time) pairs; digits further apart than the timeout start over."""

    def __init__(self, code, inter_digit_timeout_s=INTER_DIGIT_TIMEOUT_S):
        self.code = code
        self.timeout_s = inter_digit_timeout_s
        self._typed = ""
        self._last_at = None

    def feed(self, digit, at_s):
        if self._last_at is not None and at_s - self._last_at > self.timeout_s:
            self._typed = ""
        self._last_at = at_s
        self._typed = (self._typed + digit)[-len(self.code):]
        if self._typed == self.code:
            self._typed = ""
            return True
        return False


class WithdrawalWatcher:
    def __init__(self, call, code, on_withdraw, clock=None):
        import time
        self.call = call
        self.matcher = CodeMatcher(code)
        self.on_withdraw = on_withdraw
        self.clock = clock or time.monotonic
        self.withdrawn = False
        self._greenlet = None

    def start(self):
        self._greenlet = gevent.spawn(self._run)
        self._greenlet.name = f"withdrawal-{self.call.uuid}"
        return self._greenlet

    def stop(self):
        if self._greenlet is not None and not self.withdrawn:
            self._greenlet.kill(block=False)

    def _run(self):
        while True:
            try:
                frame = self.call.next_event(POLL_S)
            except ESLTimeout:
                continue
            except (CallGone, ESLError):
                return
            if frame.headers.get("Event-Name") != "DTMF":
                continue
            if self.matcher.feed(frame.headers.get("DTMF-Digit", ""), self.clock()):
                self.withdrawn = True
                try:
                    self.on_withdraw()
                except Exception:  # the recording is stopped first inside on_withdraw; log the rest
                    log.exception("call %s: withdrawal bookkeeping failed", self.call.uuid)
                return
