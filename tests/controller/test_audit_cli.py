"""`consentline audit verify` and `audit list`: output, exit codes, filters."""

import json
import sqlite3

import pytest
from click.testing import CliRunner

from controller import audit
from controller.audit import AuditEntry
from controller.cli import cli
from controller.index import Index
from controller.permissions import Actor


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def data(tmp_path):
    """An index with five audit rows over two calls and three actors."""
    data_dir = tmp_path / "data"
    with Index(data_dir / "consentline.db") as index:
        for n, (actor, call, at) in enumerate([
            (Actor.agent("1001"), "call-a", "2024-05-01T10:00:00Z"),
            (Actor.agent("1002"), "call-a", "2024-05-01T11:00:00Z"),
            (Actor.user("anna"), "call-b", "2024-05-02T09:00:00Z"),
            (Actor.agent("1001"), "call-b", "2024-05-03T09:00:00Z"),
            (Actor.system("withdrawal"), "call-b", "2024-05-03T09:30:00Z"),
        ]):
            audit.append(index, AuditEntry(actor, "cut", "refused" if n == 1 else "done", call_uuid=call,
                                           recording_id=f"rec-{call}", start_sample=8000 * n,
                                           end_sample=8000 * n + 800, reason=f"reason {n}", details={"n": n}, at=at))
    return data_dir


def tamper(data_dir, statement):
    raw = sqlite3.connect(data_dir / "consentline.db")
    raw.execute("DROP TRIGGER audit_log_no_update")
    raw.execute("DROP TRIGGER audit_log_no_delete")
    raw.execute(statement)
    raw.commit()
    raw.close()


def test_verify_ok(data):
    result = run("audit", "verify", "--data", data)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "OK: 5 rows, chain intact"
    assert lines[1].startswith("Head: 5:") and result.stderr == ""


def test_verify_names_the_first_broken_row_and_exits_1(data):
    tamper(data, "UPDATE audit_log SET reason = 'nothing happened' WHERE id = 3")
    result = run("audit", "verify", "--data", data)
    assert result.exit_code == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == ["Error: audit log broken at row 3: row 3 was changed: its fields do not match its hash "
                      "(2 rows before it are intact)"]
    assert "Warning: trigger audit_log_no_update is missing" in result.stderr


def test_verify_json(data):
    tamper(data, "DELETE FROM audit_log WHERE id >= 4")
    result = run("audit", "verify", "--data", data, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["ok"], report["first_broken_id"], report["rows_checked"], report["head_id"]) == (False, 4, 3, 3)
    assert "missing at the end" in report["problem"]
    assert len(report["warnings"]) == 2


def test_verify_with_an_anchor(data):
    head = run("audit", "verify", "--data", data).stdout.splitlines()[1].split()[1]
    assert run("audit", "verify", "--data", data, "--anchor", head).exit_code == 0
    wrong = head.split(":")[0] + ":" + "0" * 64
    result = run("audit", "verify", "--data", data, "--anchor", wrong)
    assert result.exit_code == 1 and "does not match the anchor" in result.stderr


@pytest.mark.parametrize("args", [["--anchor", "5"], ["--anchor", "0:" + "a" * 64], ["--config", "x.yaml"]])
def test_verify_usage_errors_exit_2(data, args):
    assert run("audit", "verify", "--data", data, *args).exit_code == 2


def test_verify_without_an_index_is_an_error(tmp_path):
    result = run("audit", "verify", "--data", tmp_path / "none")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "no index here" in result.stderr


def test_list_table(data):
    result = run("audit", "list", "--data", data)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "at", "actor", "action", "outcome", "call_uuid", "recording_id", "samples",
                                "reason"]
    assert len(lines) == 2 + 5
    assert lines[3].split()[:5] == ["2", "2024-05-01T11:00:00.000Z", "agent:1002", "cut", "refused"]
    assert "8000-8800" in lines[3]


def test_list_json_and_filters(data):
    def ids(*args):
        result = run("audit", "list", "--data", data, "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["id"] for row in json.loads(result.stdout)]
    assert ids() == [1, 2, 3, 4, 5]
    assert ids("--call", "call-a") == [1, 2]
    assert ids("--actor", "1001") == [1, 4]
    assert ids("--actor", "user:anna") == [3]
    assert ids("--actor", "agent:anna") == []
    assert ids("--since", "2024-05-02") == [3, 4, 5]
    assert ids("--until", "2024-05-02") == [1, 2, 3]  # a bare date includes the whole day
    assert ids("--since", "2024-05-01T10:30:00Z", "--until", "2024-05-03T09:00:00Z") == [2, 3]
    assert ids("--limit", "2") == [4, 5]
    assert ids("--recording", "rec-call-a", "--actor", "1002") == [2]
    row = json.loads(run("audit", "list", "--data", data, "--json", "--call", "call-a").stdout)[0]
    assert row["details"] == {"n": 0} and len(row["row_hash"]) == 64


def test_list_nl(data):
    result = run("audit", "list", "--data", data, "--nl", "--call", "call-b")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["actor"] for row in rows] == ["anna", "1001", "withdrawal"]


def test_list_empty_and_usage_errors(data, tmp_path):
    assert run("audit", "list", "--data", data, "--call", "nope").stdout == "No audit rows.\n"
    assert run("audit", "list", "--data", data, "--json", "--nl").exit_code == 2
    assert run("audit", "list", "--data", data, "--since", "yesterday").exit_code == 2
    assert run("audit", "list", "--data", data, "--limit", "0").exit_code == 2
