"""The demo's test application against the emulator, in-process on ephemeral ports.

A caller who presses 1 is recorded: a stereo WAV whose length is the time from RECORD_START to the caller's hangup
(to a packet or two); a caller who presses 2 is bridged but leaves no file; one who hangs up in the menu ends cleanly.
"""

import os

import pytest
import soundfile

from freeswitch.emulator.runner import ScenarioRunner
from freeswitch.emulator.scenario import parse_scenario
from freeswitch.emulator.server import Emulator
from freeswitch.emulator.testapp import TestApp

SPEED = 10
PACKET_S = 0.02


def run_calls(tmp_path, calls):
    """Run `calls` (scenario dicts) through an emulator and the test app; (summary by id, app results by uuid)."""
    speed, specs = parse_scenario({"speed": SPEED, "calls": calls})
    app = TestApp(("127.0.0.1", 0), str(tmp_path / "rec")).start()
    emulator = Emulator("127.0.0.1", 0, speed=speed).start()
    try:
        summary = ScenarioRunner(emulator.switch, "%s:%d" % app.address, specs).run(timeout_s=30)
        assert app.wait_for_calls(len(calls), timeout_s=15), "the test app did not finish every call"
    finally:
        emulator.stop()
        app.stop()
    return {c["id"]: c for c in summary["calls"]}, app.calls


def call(call_id, digits=None, hangup_at_s=8.0, by="caller"):
    spec = {"id": call_id, "caller": "+4915112345678", "dialed": "+4930100100",
            "agent": {"extension": "1001", "answer_after_s": 1}, "hangup": {"by": by, "at_s": hangup_at_s}}
    if digits:
        spec["caller_dtmf"] = [{"at_s": 1.0, "digits": digits}]
    return spec


def test_pressing_1_records_the_call_until_hangup(tmp_path):
    summary, results = run_calls(tmp_path, [call("yes", "1")])
    result = results[summary["yes"]["uuid"]]
    assert result["error"] is None
    assert result["digits"] == "1"
    assert summary["yes"]["hangup_cause"] == "NORMAL_CLEARING"
    assert [a["name"] for a in summary["yes"]["applications"]][-2:] == ["record_session", "bridge"]

    info = soundfile.info(result["recording"])
    assert (info.samplerate, info.channels, info.format) == (8000, 2, "WAV")
    data, _ = soundfile.read(result["recording"], dtype="int16")
    assert data.shape == (info.frames, 2)
    expected_s = (result["hangup_us"] - result["record_start_us"]) / 1e6
    assert info.frames / 8000 == pytest.approx(expected_s, abs=2 * PACKET_S)
    assert result["record_samples"] == info.frames           # RECORD_STOP's record_samples is what is on disk
    assert summary["yes"]["recordings"][0]["completion_cause"] == "success-silence"


def test_pressing_2_bridges_without_a_file(tmp_path):
    summary, results = run_calls(tmp_path, [call("no", "2")])
    result = results[summary["no"]["uuid"]]
    assert result["error"] is None
    assert result["digits"] == "2"
    assert result["recording"] is None and result["record_start_us"] is None
    assert "bridge" in [a["name"] for a in summary["no"]["applications"]]
    assert "record_session" not in [a["name"] for a in summary["no"]["applications"]]
    assert summary["no"]["recordings"] == []
    assert os.listdir(tmp_path / "rec") == []


def test_hanging_up_in_the_menu_ends_the_call_unrecorded(tmp_path):
    summary, results = run_calls(tmp_path, [call("gone", hangup_at_s=0.8), call("agent-ends", "1", 6.0, "agent")])
    gone = results[summary["gone"]["uuid"]]
    assert gone["error"] is None and gone["digits"] is None and gone["recording"] is None
    assert [a["name"] for a in summary["gone"]["applications"]] == ["set", "socket", "answer", "play_and_get_digits"]
    ended_by_agent = results[summary["agent-ends"]["uuid"]]
    assert ended_by_agent["error"] is None
    assert [a["name"] for a in summary["agent-ends"]["applications"]][-1] == "hangup"
    assert soundfile.info(ended_by_agent["recording"]).frames == ended_by_agent["record_samples"] > 0
    assert os.listdir(tmp_path / "rec") == [os.path.basename(ended_by_agent["recording"])]
