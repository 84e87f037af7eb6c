"""The garbage-collection pacer: full collections on its timer, never on heap growth, and CPython's pacing back
after stop()."""

import gc

import gevent.event
import pytest

from controller.gcpacing import MIDDLE_EVERY, NEVER, GcPacer


class _Watched(GcPacer):
    def __init__(self, full_every_s):
        super().__init__(full_every_s)
        self.collected = gevent.event.Event()

    def collect_now(self):
        super().collect_now()
        self.collected.set()


@pytest.fixture
def full_collections():
    """Generation-2 collections that finish while the test runs, whoever started them."""
    seen = []

    def callback(phase, info):
        if phase == "stop" and info["generation"] == 2:
            seen.append(info)
    gc.callbacks.append(callback)
    yield seen
    gc.callbacks.remove(callback)


def test_heap_growth_alone_starts_no_full_collection(full_collections):
    pacer = GcPacer(full_every_s=3600).start()
    try:
        assert gc.get_threshold()[1:] == (MIDDLE_EVERY, NEVER)
        assert gc.get_freeze_count() > 0, "start-up objects are frozen, out of every later collection's walk"
        before = len(full_collections)
        kept = [[i] for i in range(300_000)]  # far past the growth that starts a full collection by default
        assert len(kept) == 300_000
        assert len(full_collections) == before
    finally:
        pacer.stop()


def test_full_collection_runs_on_the_timer(full_collections):
    pacer = _Watched(full_every_s=0.05).start()
    try:
        assert pacer.collected.wait(timeout=5.0), "no paced full collection within 5 s"
        assert pacer.full_collections >= 1 and pacer.last_full_ms is not None
        assert full_collections, "the paced collection is a generation-2 collection"
    finally:
        pacer.stop()


def test_stop_restores_cpythons_pacing():
    saved = gc.get_threshold()
    pacer = GcPacer(full_every_s=3600).start()
    pacer.stop()
    assert gc.get_threshold() == saved
    assert gc.get_freeze_count() == 0


def test_a_period_must_be_positive():
    with pytest.raises(ValueError):
        GcPacer(full_every_s=0)
