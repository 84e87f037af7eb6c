"""Index writes off the gevent hub: SQLite's fsync would otherwise stall every call while it waits.

One worker thread serialises every index call, so the index's own lock is never contended by the hub. A call
that does not finish in time raises IndexWriteError: the call flow treats that as "not recorded".

Group commit: calls that queue up while the worker is busy run as one batch. Each keeps its own transaction
(and its own rollback and errors), but the batch runs with `synchronous = NORMAL` and the WAL is fsynced once
at its end, before any caller of the batch hears back: nobody is told "written" before it is on disk, and
under load one fsync serves many calls instead of one each (with one fsync per call the worker could not keep
up with a few hundred calls being set up at once).
"""

import collections

import gevent
import gevent.event
import gevent.threadpool

from controller.errors import IndexWriteError
from controller.index import Index

DEFAULT_TIMEOUT_S = 10.0
MAX_BATCH = 64          # calls per fsync; bounds how long the index lock is held at once
MAX_QUEUED = 4096       # calls waiting for the worker; beyond that a call fails at once (not recorded)
IDLE_CHECK_S = 1.0


class _Request:
    __slots__ = ("fn", "args", "kwargs", "what", "result", "abandoned")

    def __init__(self, fn, args, kwargs, what):
        self.fn, self.args, self.kwargs, self.what = fn, args, kwargs, what
        self.result = gevent.event.AsyncResult()
        self.abandoned = False   # its caller timed out: do not start it any more


class OffHubIndex:
    """`index_io.name(*args)` runs `index.name(*args)` in the worker thread; `run(fn, *args)` runs fn(index, ...)."""

    def __init__(self, index, timeout_s=DEFAULT_TIMEOUT_S, max_batch=MAX_BATCH, max_queued=MAX_QUEUED):
        self.index = index
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self.max_queued = max_queued
        self.batches = 0
        self._pool = gevent.threadpool.ThreadPool(1)
        self._queue = collections.deque()
        self._wakeup = gevent.event.Event()
        self._feeder = gevent.spawn(self._feed)
        self._feeder.name = "index-feeder"

    def __getattr__(self, name):
        method = getattr(self.index, name)

        def off_hub(*args, **kwargs):
            return self._call(method, args, kwargs, f"index {name}")
        return off_hub

    def run(self, fn, *args):
        """fn(index, *args) in the worker thread: several writes that must share one transaction."""
        return self._call(fn, (self.index,) + args, {}, "index write")

    def close(self):
        self._feeder.kill(block=False)
        for request in self._queue:
            request.result.set_exception(IndexWriteError(f"{request.what}: the index is closing"))
        self._queue.clear()
        self._pool.kill()

    def _call(self, fn, args, kwargs, what):
        if len(self._queue) >= self.max_queued:
            raise IndexWriteError(f"{what}: {self.max_queued} index calls already waiting")
        request = _Request(fn, args, kwargs, what)
        self._queue.append(request)
        self._wakeup.set()
        try:
            return request.result.get(timeout=self.timeout_s)
        except gevent.Timeout:
            request.abandoned = True
            raise IndexWriteError(f"{what} did not finish within {self.timeout_s:g} s") from None

    def _feed(self):
        """On the hub: hand the queued calls to the worker thread, a batch at a time, and answer them."""
        while True:
            self._wakeup.wait(timeout=IDLE_CHECK_S)
            self._wakeup.clear()
            while self._queue:
                batch = []
                while self._queue and len(batch) < self.max_batch:
                    request = self._queue.popleft()
                    if not request.abandoned:
                        batch.append(request)
                if batch:
                    self._answer(batch)

    def _answer(self, batch):
        calls = [(r.fn, r.args, r.kwargs) for r in batch]
        try:
            outcomes = self._pool.spawn(run_batch, self.index, calls).get(timeout=self.timeout_s)
        except gevent.Timeout:
            error = IndexWriteError(f"the index worker did not finish within {self.timeout_s:g} s")
            outcomes = [(False, error)] * len(batch)
        except Exception as exc:  # the batch as a whole failed (e.g. the final fsync): none of it is confirmed
            outcomes = [(False, IndexWriteError(f"index batch failed: {exc}"))] * len(batch)
        self.batches += 1
        for request, (ok, value) in zip(batch, outcomes):
            if ok:
                request.result.set(value)
            else:
                request.result.set_exception(value)


def run_batch(index, calls):
    """In the worker thread: each call as if alone (own transaction, own errors); several share one fsync.

    Returns [(ok, value or error)] in order."""
    if len(calls) == 1 or not isinstance(index, Index):
        return [_outcome(fn, args, kwargs) for fn, args, kwargs in calls]
    with index.one_fsync():
        return [_outcome(fn, args, kwargs) for fn, args, kwargs in calls]


def _outcome(fn, args, kwargs):
    try:
        return True, fn(*args, **kwargs)
    except Exception as exc:  # handed to that call's caller, as if it had run alone
        return False, exc
