"""Full garbage collections on a timer instead of on heap growth, for the controller process.

Why: every greenlet waits while CPython collects. With 1,000 calls up, a full (generation 2) collection takes
100–200 ms here, because it walks every live call's objects scattered over a few hundred MB. CPython starts one
each time the long-lived heap has grown by a quarter, which, while calls are arriving, is several times a
minute, and a key pressed during one waits for it: those pauses were the whole p99 of the DTMF reaction.

So the pacer (1) collects and freezes what start-up built (modules, configuration, prompts), which no later
collection then walks; (2) lifts generation 2's threshold so that heap growth alone never starts a full
collection; (3) runs one full collection every `full_every_s` from a greenlet of its own. Young collections
(generations 0 and 1) still run on allocation and take care of short-lived cycles; generation 1 is collected
every 3 young collections instead of 10, which keeps each of its pauses near 10 ms at 1,000 calls (about 20 ms
with 10) for the same total work. A call's cycles that outlive them wait at most `full_every_s` for the next
full collection.
"""

import gc
import logging
import time

import gevent

log = logging.getLogger(__name__)

FULL_EVERY_S = 120.0
NEVER = 2**30        # generation 2's threshold: growth alone never starts a full collection
MIDDLE_EVERY = 3     # young collections per middle one (CPython: 10): smaller, more frequent middle pauses
SLOW_FULL_MS = 250.0  # a paced full collection slower than this is logged


class GcPacer:
    """Start it once, after start-up, in the process that runs the controller; stop() restores CPython's pacing."""

    def __init__(self, full_every_s=FULL_EVERY_S):
        if full_every_s <= 0:
            raise ValueError("full_every_s must be positive")
        self.full_every_s = full_every_s
        self.full_collections = 0
        self.last_full_ms = None
        self._saved_threshold = None
        self._greenlet = None

    def start(self):
        gc.collect()
        gc.freeze()
        self._saved_threshold = gc.get_threshold()
        young = self._saved_threshold[0]
        gc.set_threshold(young, MIDDLE_EVERY, NEVER)
        self._greenlet = gevent.spawn(self._run)
        self._greenlet.name = "gc-pacer"
        return self

    def stop(self):
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
        if self._saved_threshold is not None:
            gc.set_threshold(*self._saved_threshold)
            gc.unfreeze()
            self._saved_threshold = None

    def collect_now(self):
        started = time.perf_counter()
        gc.collect()
        self.last_full_ms = (time.perf_counter() - started) * 1000
        self.full_collections += 1
        if self.last_full_ms > SLOW_FULL_MS:
            log.warning("full garbage collection took %.0f ms", self.last_full_ms)

    def _run(self):
        while True:
            gevent.sleep(self.full_every_s)
            self.collect_now()
