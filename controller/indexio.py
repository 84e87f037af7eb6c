"""Index writes off the gevent hub: SQLite's fsync would otherwise stall every call while it waits.

One worker thread serialises every index call, so the index's own lock is never contended by the hub. A call
that does not finish in time raises IndexWriteError: the call flow treats that as "not recorded".
"""

import gevent
import gevent.threadpool

from controller.errors import IndexWriteError

DEFAULT_TIMEOUT_S = 10.0


class OffHubIndex:
    """`await_call(name, *args)`: run `index.name(*args)` in the worker thread and wait for it, bounded."""

    def __init__(self, index, timeout_s=DEFAULT_TIMEOUT_S):
        self.index = index
        self.timeout_s = timeout_s
        self._pool = gevent.threadpool.ThreadPool(1)

    def __getattr__(self, name):
        method = getattr(self.index, name)

        def off_hub(*args, **kwargs):
            result = self._pool.spawn(method, *args, **kwargs)
            try:
                return result.get(timeout=self.timeout_s)
            except gevent.Timeout:
                raise IndexWriteError(f"index {name} did not finish within {self.timeout_s:g} s") from None
        return off_hub

    def run(self, fn, *args):
        """fn(index, *args) in the worker thread: several writes that must share one transaction."""
        result = self._pool.spawn(fn, self.index, *args)
        try:
            return result.get(timeout=self.timeout_s)
        except gevent.Timeout:
            raise IndexWriteError(f"index write did not finish within {self.timeout_s:g} s") from None

    def close(self):
        self._pool.kill()
