"""Scenario runs end to end: 50 calls at speed 50 through the test application, the summary, the recordings,
and the `consentline-switch` command line with good and bad scenario files."""

import json
import os
import sys

import gevent.subprocess
import numpy as np
import pytest
import soundfile
import yaml
from click.testing import CliRunner

from freeswitch.emulator import audio
from freeswitch.emulator.cli import main as switch_cli
from freeswitch.emulator.runner import ScenarioRunner
from freeswitch.emulator.scenario import parse_scenario
from freeswitch.emulator.server import Emulator
from freeswitch.emulator.testapp import TestApp

SPEED = 50
CALLS = 50


def scenario_calls(n):
    """Calls arriving 2.5 s apart (about 17 at once): every other caller presses 1; some agents end the call; every 5th is 16 kHz.
    At speed 50 a millisecond of real latency is 50 ms of call time, so digits come 15 s after arrival: a digit
    that arrived before play_and_get_digits ran would be eaten by park, as in FreeSWITCH."""
    calls = []
    for i in range(n):
        calls.append({
            "id": f"call-{i:02d}", "start_s": 2.5 * i, "caller": f"+49151{i:08d}", "dialed": "+4930100100",
            "rate_hz": 16000 if i % 5 == 4 else 8000, "caller_audio": "marker",
            "caller_dtmf": [{"at_s": 15.0 + (i % 3) * 0.3, "digits": "1" if i % 2 == 0 else "2"}],
            "agent": {"extension": "1001", "answer_after_s": 1 + i % 3, "audio": "marker"},
            "hangup": {"by": "agent" if i % 4 == 3 else "caller", "at_s": 40.0 + i % 4},
        })
    return calls


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The 50-call run, shared by the tests below: (scenario calls, summary by id, test-app results by uuid)."""
    calls = scenario_calls(CALLS)
    speed, specs = parse_scenario({"speed": SPEED, "calls": calls})
    app = TestApp(("127.0.0.1", 0), str(tmp_path_factory.mktemp("rec"))).start()
    emulator = Emulator("127.0.0.1", 0, speed=speed).start()
    try:
        summary = ScenarioRunner(emulator.switch, "%s:%d" % app.address, specs).run(timeout_s=30)
        assert app.wait_for_calls(CALLS, timeout_s=15), "the test app did not finish every call"
    finally:
        emulator.stop()
        app.stop()
    return calls, {c["id"]: c for c in summary["calls"]}, app.calls


def test_every_call_ends_and_is_listed_with_its_fields(run):
    calls, summary, results = run
    assert sorted(summary) == sorted(c["id"] for c in calls)
    for spec in calls:
        entry = summary[spec["id"]]
        assert (entry["caller"], entry["dialed"]) == (spec["caller"], spec["dialed"])
        assert entry["hangup_cause"] == "NORMAL_CLEARING", spec["id"]
        assert entry["uuid"] in results and entry["agent_uuid"], json.dumps(entry)
        assert results[entry["uuid"]]["error"] is None, spec["id"]
        pressed = spec["caller_dtmf"][0]["digits"]
        assert [d["digits"] for d in entry["dtmf"] if d["leg"] == "caller"] == [pressed]
        names = [a["name"] for a in entry["applications"]]
        assert names[:4] == ["set", "socket", "answer", "play_and_get_digits"] and "bridge" in names
        assert ("record_session" in names) == (pressed == "1")
        if pressed == "1":
            (rec,) = entry["recordings"]
            assert rec["path"] == results[entry["uuid"]]["recording"]
            assert (rec["format"], rec["channels"], rec["rate_hz"], rec["leg"]) == ("wav", 2, spec["rate_hz"], "caller")
            assert rec["completion_cause"] == "success-silence"
            assert rec["duration_s"] == pytest.approx(soundfile.info(rec["path"]).duration, abs=1e-9)
        else:
            assert entry["recordings"] == []


def marker_seconds(channel, rate_hz, first_second_at, base_hz):
    """(expected index, heard index) for every whole marker second in the file; the middle half of each second
    is analysed, so packet-level timing differences do not matter. first_second_at: file index of second 0."""
    pairs = []
    for second in range(0, 170):
        start = int(first_second_at + (second + 0.25) * rate_hz)
        end = start + rate_hz // 2
        if start < 0:
            continue
        if end > len(channel):
            break
        heard = audio.marker_index(base_hz, audio.dominant_frequency(channel[start:end], rate_hz))
        pairs.append((second, heard))
    return pairs


def test_recordings_hold_the_caller_left_and_the_agent_right_second_by_second(run):
    calls, summary, results = run
    recorded = [summary[c["id"]] for c in calls if c["caller_dtmf"][0]["digits"] == "1"]
    assert len(recorded) == CALLS // 2
    for entry in recorded:
        result = results[entry["uuid"]]
        data, rate = soundfile.read(result["recording"], dtype="int16")
        assert data.ndim == 2 and data.shape[1] == 2
        caller_at = (result["answered_us"] - result["record_start_us"]) / 1e6 * rate
        agent_at = (result["agent_answered_us"] - result["record_start_us"]) / 1e6 * rate
        left = marker_seconds(data[:, 0], rate, caller_at, audio.CALLER_MARKER_BASE_HZ)
        right = marker_seconds(data[:, 1], rate, agent_at, audio.AGENT_MARKER_BASE_HZ)
        assert len(left) >= 5 and len(right) >= 2, entry["id"]
        assert [heard for _, heard in left] == [second for second, _ in left], entry["id"]
        assert [heard for _, heard in right] == [second for second, _ in right], entry["id"]
        before_agent = data[: max(0, int(agent_at) - rate // 50), 1]
        assert np.all(np.abs(before_agent) <= 1), "agent audio before the agent answered (only 0 or the -1 fill)"


def test_cli_runs_a_scenario_file_and_writes_the_summary(tmp_path):
    calls = scenario_calls(3)
    scenario = tmp_path / "calls.yaml"
    scenario.write_text(yaml.safe_dump({"speed": SPEED, "calls": calls}))
    app = TestApp(("127.0.0.1", 0), str(tmp_path / "rec")).start()
    summary_path = tmp_path / "summary.json"
    cli = os.path.join(os.path.dirname(sys.executable), "consentline-switch")
    try:
        done = gevent.subprocess.run([cli, str(scenario), "--esl", "127.0.0.1:0", "--socket", "%s:%d" % app.address,
                                      "--summary", str(summary_path)], capture_output=True, text=True, timeout=40)
    finally:
        app.stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    summary = json.loads(summary_path.read_text())
    assert [c["id"] for c in summary["calls"]] == [c["id"] for c in calls]
    assert all(c["hangup_cause"] == "NORMAL_CLEARING" for c in summary["calls"])
    recorded = [c for c in summary["calls"] if c["recordings"]]
    assert [c["id"] for c in recorded] == ["call-00", "call-02"]
    for entry in recorded:
        assert soundfile.info(entry["recordings"][0]["path"]).duration == pytest.approx(
            entry["recordings"][0]["duration_s"], abs=1e-9)


BAD_SCENARIOS = [
    ("calls: []\n", "calls: expected a non-empty list"),
    ("speed: fast\ncalls: [{caller: '+4915112345678', dialed: '+4930100100'}]\n", "speed: expected a positive number"),
    ("calls: [{caller: +4915112345678, dialed: '+4930100100'}]\n", "calls[0].caller: expected a quoted phone number"),
    ("calls: [{caller: '+4915112345678', dialed: '+4930100100', rate_hz: 44100}]\n",
     "calls[0].rate_hz: expected 8000 or 16000"),
    ("calls: [{caller: '+4915112345678', dialed: '+4930100100', caller_dtmf: [{at_s: 1, digits: 'x'}]}]\n",
     "calls[0].caller_dtmf[0].digits: expected DTMF digits (0-9, *, #, A-D)"),
    ("calls: [{caller: '+4915112345678', dialed: '+4930100100', hangup: {by: nobody, at_s: 3}}]\n",
     "calls[0].hangup: expected {by: caller|agent, at_s: seconds}"),
    ("calls: [{caller: '+4915112345678', dialed: '+4930100100', agent: {extension: 1001}}]\n",
     'calls[0].agent.extension: expected a quoted extension like "1001"'),
    ("calls: [{caller: '+4915112345678', dialed: '+4930100100', caller_audio: missing.wav}]\n",
     "calls[0].caller_audio: expected an existing WAV file (not found: missing.wav)"),
    ("calls: [{caller: '+4915112345678', dialed: '+4930100100', agent: {extension: '1001', transfer: {at_s: -1, "
     "to: {extension: '1002'}}}}]\n", "calls[0].agent.transfer: expected {at_s: seconds after the agent answers, "
     "consult_s: seconds talking to the colleague (or blind: true, no consultation), to: {extension, ...}}"),
    ("calls: [{caller: '+4915112345678', dialed: '+4930100100', agent: {extension: '1001', transfer: {to: "
     "{extension: '1002', transfer: {to: {extension: '1003'}}}}}}]\n",
     "calls[0].agent.transfer.to: expected a mapping of ['answer_after_s', 'audio', 'dtmf', 'extension', 'hold', "
     "'reject']"),
]


@pytest.mark.parametrize("text, message", BAD_SCENARIOS, ids=[m.split(":")[0] for _, m in BAD_SCENARIOS])
def test_bad_scenario_files_exit_1_naming_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = CliRunner().invoke(switch_cli, [str(path), "--esl", "127.0.0.1:0"])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: {message}\n"


def test_a_bad_scenario_file_exits_1_from_the_installed_command(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("calls: [{caller: '+4915112345678', dialed: '+4930100100', colour: blue}]\n")
    cli = os.path.join(os.path.dirname(sys.executable), "consentline-switch")
    done = gevent.subprocess.run([cli, str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {path}: calls[0].colour: expected one of ['agent', ")


def test_a_transfer_in_a_scenario_names_the_colleague():
    _, (spec,) = parse_scenario({"calls": [{"caller": "+4915112345678", "dialed": "+4930100100", "agent": {
        "extension": "1001", "transfer": {"at_s": 5, "consult_s": 2, "to": {"extension": "1002", "dtmf": [
            {"at_s": 4, "digits": "*4"}]}}}}]})
    transfer = spec.agent["transfer"]
    assert (transfer["at_s"], transfer["consult_s"]) == (5.0, 2.0)
    assert transfer["to"]["extension"] == "1002" and transfer["to"]["dtmf"] == [(4.0, "*4")]
