"""Kill the writing process with a real SIGKILL at random points, recover, compare with what must survive."""
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from media import MediaStore
from media.blocks import AudioFormat

from .conftest import contains_audio, disk_bytes
from .crash_writer import CHUNK_S, CUT_AT, CUT_S, HOLDBACK_S, RATE_HZ, crash_audio, expected_recording

REPO = Path(__file__).resolve().parents[2]
UNIT = AudioFormat(RATE_HZ, 2).write_unit_samples


def run_and_kill(root: Path, seed: int, kill_after_samples: int) -> int:
    """Start the writer, SIGKILL it once it reports `kill_after_samples`; returns the last count it reported."""
    child = subprocess.Popen([sys.executable, "-m", "tests.media.crash_writer", str(root), str(seed)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    reported = 0
    try:
        for line in child.stdout:
            if line.strip() == "done":
                break
            reported = int(line)
            if reported >= kill_after_samples:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.stdout.close()
        child.wait(timeout=30)
    return reported


def recovered_audio(root: Path):
    store = MediaStore(root)
    reports = store.recover()
    recording = store.open("crash")
    chunks = [recording.read_chunk(c) for _, c in recording.committed_chunks()]
    audio = np.concatenate(chunks) if chunks else np.zeros((0, 2), "<i2")
    return reports, recording, audio


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15])
def test_sigkill_at_a_random_point_loses_only_the_hold_back_window(tmp_path, seed):
    kill_at = random.Random(seed).randrange(RATE_HZ, 29 * RATE_HZ)
    reported = run_and_kill(tmp_path, seed, kill_at)
    reports, recording, audio = recovered_audio(tmp_path)
    expected = expected_recording(crash_audio(seed))

    assert [r.status for r in reports] == ["ok"]
    assert np.array_equal(audio, expected[:len(audio)])  # a clean prefix: nothing torn, nothing spliced
    removed_before = int(CUT_S * RATE_HZ) if reported >= CUT_AT else 0
    window = int(HOLDBACK_S * RATE_HZ)
    assert len(audio) >= reported - removed_before - window - UNIT  # lost: the window and one write unit
    assert recording.verify().ok
    names = {p.name for p in (tmp_path / "crash").iterdir()}
    assert names == {c.file for _, c in recording.committed_chunks()} | {"manifest.jsonl"}  # no orphans
    cut = crash_audio(seed)[CUT_AT - int(CUT_S * RATE_HZ):CUT_AT]
    assert not contains_audio(disk_bytes(tmp_path), cut)


def unsealed_chunks(manifest: Path) -> list[int]:
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.endswith("}")]
    sealed = {e["seq"] for e in entries if e["t"] == "chunk"}
    return sorted({e["seq"] for e in entries if e["t"] == "extent"} - sealed)


def test_recovery_drops_a_torn_chunk_tail_and_a_torn_manifest_line(tmp_path):
    for attempt in range(8):  # a kill can land between two chunks; the test needs one in progress
        root = tmp_path / str(attempt)
        reported = run_and_kill(root, 21, (12 + attempt) * RATE_HZ + 2000)
        directory = root / "crash"
        manifest = directory / "manifest.jsonl"
        unsealed = unsealed_chunks(manifest)
        if unsealed:
            break
    assert unsealed
    with open(manifest, "ab") as handle:
        handle.write(b'{"t":"extent","seq":99,"sample_co')  # a line cut short by the crash
    with open(directory / f"{unsealed[-1]:08d}.pcm", "ab") as handle:
        handle.write(b"\x01\x02\x03")  # half a frame written when the power went
    reports, recording, audio = recovered_audio(root)
    assert reports[0].torn_manifest_bytes > 0 and reports[0].salvaged_samples > 0
    expected = expected_recording(crash_audio(21))
    assert np.array_equal(audio, expected[:len(audio)])
    assert len(audio) >= reported - int(CUT_S * RATE_HZ) - int(HOLDBACK_S * RATE_HZ) - UNIT
    assert manifest.read_bytes().endswith(b"\n") and b"sample_co\n" not in manifest.read_bytes()


def test_a_finished_recording_survives_a_restart_intact(tmp_path):
    run_and_kill(tmp_path, 31, 10 ** 9)  # never killed: runs to the end
    reports, recording, audio = recovered_audio(tmp_path)
    assert reports[0].salvaged_samples == 0 and reports[0].chunks_verified >= 30 / CHUNK_S
    assert np.array_equal(audio, expected_recording(crash_audio(31)))
