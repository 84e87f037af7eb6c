"""The SQLite index: schema, migrations, WAL on disk, evidence round trip, failed writes, queries."""

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

import controller
from controller.config import load_config
from controller.customers import CustomerRecord
from controller.errors import IndexSchemaError, IndexStoreError, IndexWriteError
from controller.index import MIGRATIONS, SCHEMA_VERSION, Index, timestamp
from controller.routing import route

EXAMPLE = Path(controller.__file__).parent / "examples" / "consentline.example.yaml"


@pytest.fixture
def index(tmp_path):
    with Index(tmp_path / "consentline.db") as opened:
        yield opened


def test_schema_tables_and_version(index):
    tables = set(index.db.table_names())
    assert {"calls", "recordings", "consent_evidence", "customers"} <= tables
    assert index.version == SCHEMA_VERSION == len(MIGRATIONS)
    assert {"uuid", "caller", "dialed", "process", "routing", "consent_outcome", "started_at", "ended_at",
            "hangup_cause"} <= set(index.db["calls"].columns_dict)
    assert {"call_uuid", "path", "state", "duration_s"} <= set(index.db["recordings"].columns_dict)


def test_wal_mode_is_on_disk(tmp_path):
    path = tmp_path / "consentline.db"
    with Index(path) as index:
        index.call_started("c1", "+4915112345678", "+4930100100", 0)
        assert Path(f"{path}-wal").exists()
    plain = sqlite3.connect(path)  # a fresh connection sees the mode stored in the file
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert plain.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        plain.close()


def test_migration_from_version_1_keeps_data(tmp_path):
    path = tmp_path / "consentline.db"
    with Index(path, upto_version=1) as old:
        assert old.version == 1
        assert "customers" not in old.db.table_names()
        old.call_started("c1", "+4915112345678", "+4930100100", "2024-05-01T10:00:00Z")
    with Index(path) as index:
        assert index.version == SCHEMA_VERSION
        assert index.call("c1")["started_at"] == "2024-05-01T10:00:00.000Z"
        assert "customers" in index.db.table_names()
        assert any(ix.columns == ["caller"] for ix in index.db["calls"].indexes)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "consentline.db"
    Index(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(IndexSchemaError, match="newer than this program"):
        Index(path)


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "consentline.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(IndexSchemaError, match="expected a Consentline index"):
        Index(path)


def test_open_without_create_needs_the_file(tmp_path):
    with pytest.raises(IndexStoreError, match="no index here"):
        Index(tmp_path / "absent" / "consentline.db", create=False)
    assert not (tmp_path / "absent").exists()


def test_evidence_round_trip(index):
    config = load_config(EXAMPLE)
    decision = route("+447700900123", "+4930100100", CustomerRecord("+447700900123", "US-CA", False), config)
    prompt = config.processes["de"].prompts["consent"]
    index.call_started("c1", "+447700900123", "+4930100100", datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc))
    index.routing_decided("c1", decision)
    index.evidence_prompt("c1", prompt.id, prompt.sha256, "2024-05-01T12:00:01Z")
    index.evidence_digit("c1", "1", "2024-05-01T12:00:04.250Z")
    index.consent_decided("c1", "agreed", "agree key 1 pressed", decision.process, decision.config_version,
                          "2024-05-01T12:00:04.300Z")
    recording = index.recording_opened("c1", "/spool/c1.raw", "2024-05-01T12:00:05Z")
    index.recording_state(recording, "completed", "2024-05-01T12:03:05Z", duration_s=180.0)
    index.call_ended("c1", "NORMAL_CLEARING", "2024-05-01T12:03:05Z")

    call = index.call("c1")
    assert call["routing"] == decision.to_dict()
    assert call["routing_conflict"] is True
    assert (call["process"], call["config_version"], call["consent_outcome"]) == ("de", "example-1", "agreed")
    assert (call["ended_at"], call["hangup_cause"]) == ("2024-05-01T12:03:05.000Z", "NORMAL_CLEARING")
    assert index.evidence("c1") == [
        {"call_uuid": "c1", "seq": 1, "kind": "prompt", "at": "2024-05-01T12:00:01.000Z",
         "prompt_id": "consent", "sha256": prompt.sha256},
        {"call_uuid": "c1", "seq": 2, "kind": "digit", "at": "2024-05-01T12:00:04.250Z", "digit": "1"},
        {"call_uuid": "c1", "seq": 3, "kind": "outcome", "at": "2024-05-01T12:00:04.300Z", "outcome": "agreed",
         "reason": "agree key 1 pressed", "process": "de", "config_version": "example-1"},
    ]
    [row] = index.recordings()
    assert (row["id"], row["state"], row["duration_s"], row["caller"]) == (recording, "completed", 180.0,
                                                                           "+447700900123")


def test_failed_writes_raise_and_change_nothing(index):
    index.call_started("c1", "+4915112345678", "+4930100100")
    with pytest.raises(IndexWriteError, match="call_started c1"):
        index.call_started("c1", "+4915112345678", "+4930100100")
    with pytest.raises(IndexWriteError, match="evidence_digit nope"):
        index.evidence_digit("nope", "1")
    with pytest.raises(IndexWriteError, match="no call nope"):
        index.call_ended("nope", "NORMAL_CLEARING")
    with pytest.raises(IndexWriteError, match="expected one of opened"):
        index.recording_state("r1", "misplaced")
    with pytest.raises(IndexWriteError, match="recording_state r1"):
        index.recording_state("r1", "completed")
    assert index.evidence("nope") == [] and index.recordings() == []


def test_consent_decision_is_all_or_nothing(index):
    index.call_started("c1", "+4915112345678", "+4930100100")
    index.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON consent_evidence "
                     "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    with pytest.raises(IndexWriteError, match="disk full"):
        index.consent_decided("c1", "agreed", "key 1", "de", "v1")
    assert index.call("c1")["consent_outcome"] is None  # the call row update was rolled back too
    index.db.execute("DROP TRIGGER refuse")
    index.consent_decided("c1", "declined", "key 2", "de", "v1")
    assert index.call("c1")["consent_outcome"] == "declined"


def test_timestamps_are_utc_with_milliseconds():
    assert timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert timestamp(datetime(2024, 5, 1, 14, 0, 0, 123456)) == "2024-05-01T14:00:00.123Z"
    assert timestamp("2024-05-01T16:00:00+02:00") == "2024-05-01T14:00:00.000Z"


def test_call_queries_filter_by_phone_and_time(index):
    index.call_started("a", "+4915112345678", "+4930100100", "2024-05-01T10:00:00Z")
    index.call_started("b", "+447700900123", "+4930100100", "2024-05-02T10:00:00Z")
    index.call_started("c", "+447700900123", "+442070100100", "2024-05-03T10:00:00Z")
    index.recording_opened("b", "/spool/b.raw", "2024-05-02T10:01:00Z", recording_id="rb")
    assert [c["uuid"] for c in index.calls()] == ["c", "b", "a"]
    assert [c["uuid"] for c in index.calls(phone="0044 7700 900123")] == ["c", "b"]
    assert [c["uuid"] for c in index.calls(phone="+4930100100")] == ["b", "a"]
    assert [c["uuid"] for c in index.calls(since="2024-05-02T00:00:00Z", until="2024-05-03T00:00:00Z")] == ["b"]
    assert [c["uuid"] for c in index.calls(limit=1)] == ["c"]
    assert [c["recordings"] for c in index.calls()] == [0, 1, 0]
    assert [r["id"] for r in index.recordings(phone="+447700900123")] == ["rb"]
    assert index.recordings(since="2024-05-03T00:00:00Z") == []


def test_customers_upsert_replace_and_lookup(index):
    index.import_customers([CustomerRecord("+4915112345678", "DE", False, None),
                            CustomerRecord("+447700900123", "GB", True, "uk")])
    assert index.customer("0044 7700 900123") == CustomerRecord("+447700900123", "GB", True, "uk")
    index.import_customers([CustomerRecord("+447700900123", "US-CA", False, None)])
    assert index.customer("+447700900123") == CustomerRecord("+447700900123", "US-CA", False, None)
    assert index.customer("+4915112345678") is not None
    index.import_customers([CustomerRecord("+447700900123", "GB", False, None)], replace_all=True)
    assert index.customer("+4915112345678") is None
    assert index.customer("+33612345678") is None


def test_a_second_connection_reads_while_the_first_writes(tmp_path):
    path = tmp_path / "consentline.db"
    with Index(path) as writer, Index(path, create=False) as reader:
        writer.call_started("c1", "+4915112345678", "+4930100100")
        assert reader.call("c1")["caller"] == "+4915112345678"
