"""The demo that README's first command runs: every sample call ends, and the index agrees with the law."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_every_call_and_records_only_consented_ones(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out)],
                            capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()
             if line.startswith(("de-", "uk-", "us-", "do-"))}
    recording_state = {call: fields[6] for call, fields in lines.items() if len(fields) > 6}
    assert recording_state["de-agrees"] == "completed"
    assert recording_state["de-declines"] == "none"
    assert recording_state["de-hangs-up-in-menu"] == "none"
    assert recording_state["de-withdraws-mid-call"] == "purged"
    assert recording_state["do-not-record-customer"] == "none"
    assert recording_state["uk-notice"] == "completed"
    assert recording_state["de-transferred"] == "completed"
    assert "  de-transferred           1001 pause done, transfer to 1002, 1002 resume done" in result.stdout
    assert not any((out / "spool").glob("*.raw")), "spool files must not outlive their calls"
