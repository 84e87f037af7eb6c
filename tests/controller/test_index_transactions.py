"""Index transactions: a change and its outbox event commit together; no greenlet joins another's transaction."""

import gevent
import pytest

from controller.errors import IndexWriteError
from controller.index import Index


def test_nested_writes_join_the_outer_transaction_and_roll_back_with_it(tmp_path):
    index = Index(tmp_path / "i.db")
    with pytest.raises(RuntimeError):
        with index.transaction("outer"):
            index.call_started("u1", "+4915112345678", "+4930100100", 0)
            raise RuntimeError("the event could not be written")
    assert index.call("u1") is None
    with index.transaction("outer"):
        index.call_started("u2", "+4915112345678", "+4930100100", 0)
    assert index.call("u2") is not None


def test_another_greenlet_cannot_join_an_open_transaction(tmp_path):
    index = Index(tmp_path / "i.db")
    errors = []

    def intruder():
        try:
            index.call_started("intruder", "+4915112345678", "+4930100100", 0)
        except IndexWriteError as exc:
            errors.append(exc)

    with pytest.raises(RuntimeError):
        with index.transaction("outer"):
            index.call_started("owner", "+4915112345678", "+4930100100", 0)
            gevent.spawn(intruder).join()   # the owner yields inside its transaction
            raise RuntimeError("roll back")
    assert errors and index.call("intruder") is None and index.call("owner") is None
