"""`consentline webhooks list|retry|test` through click's CliRunner, against a real receiver for `test`."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import controller
from controller import outbox
from controller.cli import cli
from controller.helpdesk import CallFacts, Endpoint, HelpdeskSettings
from controller.index import Index
from tests.controller.helpdesk_receiver import HelpdeskReceiver

SECRET = "s3cret-for-tests-0123456789"
EXAMPLE = Path(controller.__file__).parent / "examples" / "consentline.example.yaml"


def run(*args, env=None, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, input=input)


@pytest.fixture
def data_dir(tmp_path):
    """Three deliveries: one delivered, one dead, one pending (newest)."""
    settings = HelpdeskSettings(secret=SECRET, endpoints=(Endpoint("desk", "http://127.0.0.1:9/"),))
    with Index(tmp_path / "consentline.db") as index:
        ids = [outbox.emit(index, settings, event_type, CallFacts(f"call-{n}"), at_s=1000.0 + n)
               for n, event_type in enumerate(("recording.completed", "recording.cut", "recording.deleted"))]
        by_event = {row["event_id"]: row["id"] for row in outbox.deliveries(index)}
        outbox.mark_delivered(index, by_event[ids[0]], 200, 1010.0)
        outbox.mark_failed(index, by_event[ids[1]], "HTTP 500 Internal Server Error: oops", 500, 1010.0, None)
    return tmp_path


def test_list_shows_every_delivery_newest_first(data_dir):
    result = run("webhooks", "list", "--data", data_dir)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "event_id", "type", "call_uuid", "endpoint", "state", "attempts",
                                "next_attempt_at", "last_error"]
    assert [line.split()[2] for line in lines[2:]] == ["recording.deleted", "recording.cut", "recording.completed"]
    assert "HTTP 500 Internal Server Error: oops" in result.stdout


def test_list_dead_as_json_and_nl(data_dir):
    rows = json.loads(run("webhooks", "list", "--dead", "--json", "--data", data_dir).stdout)
    assert [(r["type"], r["state"], r["attempts"], r["last_status"]) for r in rows] == [
        ("recording.cut", "dead", 1, 500)]
    nl = run("webhooks", "list", "--pending", "--nl", "--data", data_dir).stdout.splitlines()
    assert [json.loads(line)["type"] for line in nl] == ["recording.deleted"]
    assert json.loads(nl[0])["next_attempt_at"] == "1970-01-01T00:16:42.000Z"


def test_list_usage_and_missing_index(tmp_path):
    assert run("webhooks", "list", "--json", "--nl", "--data", tmp_path).exit_code == 2
    result = run("webhooks", "list", "--data", tmp_path / "nowhere")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ")


def dead_ids(data_dir):
    return [r["id"] for r in json.loads(run("webhooks", "list", "--dead", "--json", "--data", data_dir).stdout)]


def test_retry_all_dead_dry_run_then_confirmed(data_dir):
    (dead,) = dead_ids(data_dir)
    result = run("webhooks", "retry", "--all-dead", "--dry-run", "--data", data_dir)
    assert result.exit_code == 0 and result.stdout == f"Would retry 1 deliveries: {dead}\n"
    assert dead_ids(data_dir) == [dead]
    refused = run("webhooks", "retry", "--all-dead", "--data", data_dir, input="n\n")
    assert refused.exit_code == 1 and dead_ids(data_dir) == [dead]
    result = run("webhooks", "retry", "--all-dead", "--yes", "--data", data_dir)
    assert result.exit_code == 0 and f"Retrying 1 deliveries: {dead}" in result.stdout
    assert dead_ids(data_dir) == []
    with Index(data_dir / "consentline.db") as index:
        (row,) = [r for r in outbox.deliveries(index) if r["id"] == dead]
    assert (row["state"], row["attempts"]) == ("pending", 0)


def test_retry_by_id_and_its_errors(data_dir):
    (dead,) = dead_ids(data_dir)
    assert run("webhooks", "retry", "--data", data_dir).exit_code == 2
    assert run("webhooks", "retry", str(dead), "--all-dead", "--data", data_dir).exit_code == 2
    unknown = run("webhooks", "retry", "999", "--yes", "--data", data_dir)
    assert unknown.exit_code == 1 and unknown.stderr.startswith("Error: no delivery 999")
    delivered = run("webhooks", "retry", "1", "--yes", "--data", data_dir)
    assert delivered.exit_code == 0 and "Nothing to retry" in delivered.stdout
    assert run("webhooks", "retry", str(dead), "--yes", "--data", data_dir).exit_code == 0
    assert dead_ids(data_dir) == []


@pytest.fixture
def receiver():
    desk = HelpdeskReceiver(SECRET).start()
    yield desk
    desk.down()


def config_with(tmp_path, helpdesk_yaml):
    text = EXAMPLE.read_text().replace("prompts_dir: prompts", f"prompts_dir: {EXAMPLE.parent / 'prompts'}")
    assert "helpdesk: {}" in text
    path = tmp_path / "consentline.yaml"
    path.write_text(text.replace("helpdesk: {}", helpdesk_yaml))
    return path


def test_test_sends_a_signed_event_and_prints_the_answer(tmp_path, receiver):
    config = config_with(tmp_path, "helpdesk: {secret_env: HOOK_SECRET, endpoints: [{name: desk, url: "
                                   f"'{receiver.url}'}}, {{name: other, url: 'http://127.0.0.1:9/'}}]}}")
    result = run("webhooks", "test", "--config", config, "--endpoint", "desk", env={"HOOK_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"desk: {receiver.url}: 200 OK (")
    (request,) = receiver.requests
    assert request.signature_ok and request.json["type"] == "webhook.test"
    receiver.mode = "fail"
    failed = run("webhooks", "test", "--config", config, "--endpoint", "desk", env={"HOOK_SECRET": SECRET})
    assert failed.exit_code == 1 and "500 Error" in failed.stdout and failed.stderr == "Error: no 2xx answer from desk\n"


def test_test_errors(tmp_path):
    config = config_with(tmp_path,
                         "helpdesk: {secret_env: HOOK_SECRET, endpoints: [{name: desk, url: 'http://h/'}]}")
    no_secret = run("webhooks", "test", "--config", config, env={"HOOK_SECRET": ""})
    assert no_secret.exit_code == 1
    assert no_secret.stderr.startswith("Error: helpdesk.secret_env: expected the environment variable HOOK_SECRET")
    unknown = run("webhooks", "test", "--config", config, "--endpoint", "nope", env={"HOOK_SECRET": SECRET})
    assert unknown.exit_code == 1 and unknown.stderr == "Error: no endpoint 'nope' (endpoints: desk)\n"
    assert run("webhooks", "test").exit_code == 2
