"""Waits with timeouts: blocking file work (fsync, close, large reads and writes) in gevent's threadpool,
and the per-recording lock."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import gevent
import gevent.lock

from .errors import MediaTimeout

T = TypeVar("T")


def run_blocking(fn: Callable[..., T], *args: Any, timeout_s: float) -> T:
    """Call fn(*args) on a worker thread and wait for it without blocking the hub."""
    return wait(spawn_blocking(fn, *args), timeout_s=timeout_s, what=getattr(fn, "__name__", "io"))


def spawn_blocking(fn: Callable[..., Any], *args: Any) -> Any:
    """Start fn(*args) on a worker thread; the returned handle is waited on with wait()."""
    return gevent.get_hub().threadpool.spawn(fn, *args)


def wait(handle: Any, *, timeout_s: float, what: str = "io") -> Any:
    try:
        return handle.get(timeout=timeout_s)
    except gevent.Timeout as exc:
        raise MediaTimeout(f"{what} did not finish within {timeout_s} s") from exc


class TimedLock:
    """A reentrant gevent lock whose acquisition times out (MediaTimeout); a plain context manager, since a
    recording takes it on every append."""

    __slots__ = ("_lock", "_timeout_s", "_owner")

    def __init__(self, timeout_s: float, owner: str):
        self._lock = gevent.lock.RLock()
        self._timeout_s = timeout_s
        self._owner = owner

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=self._timeout_s):
            raise MediaTimeout(f"{self._owner}: busy for more than {self._timeout_s} s")

    def __exit__(self, *exc_info) -> None:
        self._lock.release()
