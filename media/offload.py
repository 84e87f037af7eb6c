"""Run blocking file work (fsync, close, large reads and writes) in gevent's threadpool, with a timeout."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import gevent

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
