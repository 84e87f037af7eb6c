"""The admin commands through click's CliRunner: exit codes, stderr messages, --json output."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import controller
from controller.cli import cli
from controller.customers import CustomerRecord
from controller.index import Index

EXAMPLE = Path(controller.__file__).parent / "examples" / "consentline.example.yaml"
BAD_CONFIGS = Path(__file__).parent / "fixtures" / "config" / "bad"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_check_config_accepts_the_example_and_prints_warnings_on_stderr():
    result = run("check-config", EXAMPLE)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK: {EXAMPLE}: config_version example-1, 5 processes, 8 routing rules")
    warnings = result.stderr.splitlines()
    assert any(line.startswith("Warning: ") and "processes.de-optout.pack" in line for line in warnings)
    assert all(line.startswith("Warning: ") for line in warnings)


def test_check_config_rejects_a_bad_file_with_error_and_exit_1():
    path = BAD_CONFIGS / "country_unquoted_no.yaml"
    result = run("check-config", path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {path}:9: processes.de.country: expected a quoted ISO 3166")
    assert 'quote the country code: "NO"' in result.stderr


def test_check_config_prints_one_error_line_per_problem(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("processes: {}\nrouting: 3\nextra: 1\n")
    result = run("check-config", path)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"Error: {path}:") for line in lines)


def test_check_config_usage_error_exits_2():
    assert run("check-config").exit_code == 2


def _csv(tmp_path, text):
    path = tmp_path / "customers.csv"
    path.write_text("phone,country,do_not_record,process\n" + text)
    return path


def test_customers_import_then_lookup(tmp_path):
    data = tmp_path / "data"
    result = run("customers", "import", _csv(tmp_path, "+4915112345678,DE,false,\n+447700900123,GB,true,uk\n"),
                 "--data", data)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Imported 2 customers into {data / 'consentline.db'}"
    with Index(data / "consentline.db") as index:
        assert index.customer("+447700900123") == CustomerRecord("+447700900123", "GB", True, "uk")


def test_customers_import_with_bad_rows_imports_nothing(tmp_path):
    data = tmp_path / "data"
    with Index(data / "consentline.db") as index:
        index.import_customers([CustomerRecord("+4915112345678", "DE", False, None)])
    csv_path = _csv(tmp_path, "+4915112345678,DE,true,\n+447700900123,XX,true,\n+33612345678,FR,sometimes,\n")
    result = run("customers", "import", csv_path, "--data", data)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {csv_path}:3: country: expected an ISO 3166 country code like \"DE\" or \"US-CA\" "
        f"(unknown country code), got 'XX'",
        f"Error: {csv_path}:4: do_not_record: expected true or false, got 'sometimes'",
    ]
    with Index(data / "consentline.db") as index:
        assert index.customer("+4915112345678").do_not_record is False  # the good row 2 was not applied either
        assert index.customer("+447700900123") is None


def test_customers_import_checks_processes_against_the_config(tmp_path):
    csv_path = _csv(tmp_path, "+4915112345678,DE,false,gdpr-max\n")
    result = run("customers", "import", csv_path, "--config", EXAMPLE, "--data", tmp_path)
    assert result.exit_code == 2 and "give --data or --config, not both" in result.stderr
    config = tmp_path / "c.yaml"
    config.write_text(EXAMPLE.read_text().replace("prompts_dir: prompts", f"prompts_dir: {EXAMPLE.parent / 'prompts'}"))
    result = run("customers", "import", csv_path, "--config", config)
    assert result.exit_code == 1
    assert "process: expected a configured process (de, de-optout, none, uk, us-all-party), got 'gdpr-max'" \
        in result.stderr
    assert not (tmp_path / "data").exists()


@pytest.fixture
def data_dir(tmp_path):
    data = tmp_path / "data"
    with Index(data / "consentline.db") as index:
        index.call_started("a", "+4915112345678", "+4930100100", "2024-05-01T10:00:00Z")
        index.consent_decided("a", "agreed", "key 1", "de", "example-1", "2024-05-01T10:00:06Z")
        index.recording_opened("a", "/spool/a.raw", "2024-05-01T10:00:07Z", recording_id="ra")
        index.recording_state("ra", "completed", "2024-05-01T10:05:00Z", duration_s=293.0)
        index.call_ended("a", "NORMAL_CLEARING", "2024-05-01T10:05:00Z")
        index.call_started("b", "+447700900123", "+4930100100", "2024-05-02T23:59:59Z")
        index.consent_decided("b", "declined", "key 2", "de", "example-1", "2024-05-02T23:59:59Z")
        index.call_started("c", "+447700900123", "+442070100100", "2024-05-03T08:00:00Z")
        index.recording_opened("c", "/spool/c.raw", "2024-05-03T08:00:10Z", recording_id="rc")
    return data


@pytest.mark.parametrize("filters, expected", [
    ([], ["c", "b", "a"]),
    (["--phone", "+447700900123"], ["c", "b"]),
    (["--phone", "0049 30 100100"], ["b", "a"]),
    (["--since", "2024-05-02"], ["c", "b"]),
    (["--until", "2024-05-02"], ["b", "a"]),  # a bare date includes that whole day
    (["--until", "2024-05-02T12:00:00"], ["a"]),
    (["--since", "2024-05-02", "--until", "2024-05-02"], ["b"]),
    (["--limit", "1"], ["c"]),
])
def test_calls_list_json_with_filters(data_dir, filters, expected):
    result = run("calls", "list", "--json", "--data", data_dir, *filters)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["uuid"] for row in rows] == expected


def test_calls_list_table(data_dir):
    result = run("calls", "list", "--data", data_dir, "--phone", "+4915112345678")
    assert result.exit_code == 0
    header, rule, row = result.stdout.splitlines()
    assert header.split() == ["started_at", "uuid", "caller", "dialed", "process", "consent_outcome", "recordings",
                              "hangup_cause"]
    assert set(rule) <= {"-", " "}
    assert row.split() == ["2024-05-01T10:00:00.000Z", "a", "+4915112345678", "+4930100100", "agreed", "1",
                           "NORMAL_CLEARING"]


def test_empty_results(data_dir):
    assert run("calls", "list", "--data", data_dir, "--phone", "+1999").stdout == "No calls.\n"
    assert json.loads(run("recordings", "list", "--json", "--data", data_dir, "--phone", "+1999").stdout) == []


def test_recordings_list_json(data_dir):
    result = run("recordings", "list", "--json", "--data", data_dir)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["id"], r["call_uuid"], r["state"]) for r in rows] == [("rc", "c", "opened"), ("ra", "a", "completed")]
    assert rows[1]["duration_s"] == 293.0 and rows[1]["caller"] == "+4915112345678"
    only = json.loads(run("recordings", "list", "--json", "--data", data_dir, "--until", "2024-05-01").stdout)
    assert [r["id"] for r in only] == ["ra"]


def test_calls_show(data_dir):
    result = run("calls", "show", "a", "--json", "--data", data_dir)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["call"]["consent_outcome"] == "agreed"
    assert [e["kind"] for e in shown["evidence"]] == ["outcome"]
    assert [r["id"] for r in shown["recordings"]] == ["ra"]
    text = run("calls", "show", "a", "--data", data_dir).stdout
    assert "consent_reason:  key 1" in text and "outcome" in text
    missing = run("calls", "show", "zzz", "--data", data_dir)
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: no call zzz")


def test_index_found_through_the_config(tmp_path, data_dir):
    config = tmp_path / "c.yaml"
    config.write_text(EXAMPLE.read_text().replace("prompts_dir: prompts", f"prompts_dir: {EXAMPLE.parent / 'prompts'}"))
    result = run("calls", "list", "--json", "--config", config)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 3


def test_list_errors(tmp_path):
    missing = run("calls", "list", "--data", tmp_path / "nowhere")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: ") and "no index here" in missing.stderr
    assert not (tmp_path / "nowhere").exists()
    bad_date = run("recordings", "list", "--since", "yesterday", "--data", tmp_path)
    assert bad_date.exit_code == 2 and "expected a date like 2024-05-01" in bad_date.stderr
    assert run("calls", "list", "--limit", "0", "--data", tmp_path).exit_code == 2
