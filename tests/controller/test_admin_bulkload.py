"""Bulk import: one transaction, normalised like the call flow's writes, all or nothing."""

import pytest

from controller.admin import queries
from controller.admin.bulkload import bulk_load
from controller.errors import IndexWriteError
from controller.index import Index


def test_bulk_load_normalises_and_is_searchable(tmp_path):
    with Index(tmp_path / "i.db") as index:
        counts = bulk_load(
            index,
            calls=[{"uuid": f"c{i}", "caller": "0049 151 0000000" + str(i), "dialed": "+4930100100",
                    "started_at": f"2024-05-0{i + 1}T10:00:00+02:00", "process": "de"} for i in range(3)],
            recordings=[{"id": f"c{i}", "call_uuid": f"c{i}", "path": f"/r/c{i}", "state": "completed",
                         "opened_at": f"2024-05-0{i + 1}T08:00:00.000Z", "updated_at": "2024-05-04T00:00:00Z"}
                        for i in range(3)],
            tags=[{"recording_id": "c0", "tag": "sale", "actor": "user:x", "at": "2024-05-05T00:00:00Z"},
                  {"recording_id": "c2", "tag": "sale", "actor": "user:x", "at": "2024-05-05T00:00:00Z"}])
        assert counts == {"calls": 3, "recordings": 3, "recording_tags": 2}
        assert index.call("c1")["caller"] == "+4915100000001"
        assert index.call("c1")["started_at"] == "2024-05-02T08:00:00.000Z"
        assert [r["id"] for r in queries.search_recordings(index, tags=["sale"])] == ["c2", "c0"]
        assert index.query("SELECT opened_at FROM recording_tags WHERE recording_id = 'c2'")[0]["opened_at"] == \
            "2024-05-03T08:00:00.000Z"  # filled by the trigger


def test_a_bad_row_rolls_everything_back(tmp_path):
    with Index(tmp_path / "i.db") as index:
        with pytest.raises(IndexWriteError):
            bulk_load(index, calls=[{"uuid": "c1", "caller": "+491", "dialed": "+492", "started_at": "2024-05-01"}],
                      recordings=[{"id": "r1", "call_uuid": "unknown", "path": "/r", "state": "completed",
                                   "opened_at": "2024-05-01", "updated_at": "2024-05-01"}])
        assert index.query("SELECT COUNT(*) AS n FROM calls")[0]["n"] == 0
