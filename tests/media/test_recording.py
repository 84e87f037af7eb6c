"""Recording operations, checked on the audio that survives (marker seconds) and on the disk itself."""
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media import IntegrityError, MediaError, MediaStore, RecordingGone, RecordingSettings

from .conftest import RATE_HZ, FakeClock, contains_audio, disk_bytes, feed, noise


def marker_second(k: int) -> np.ndarray:
    """One second whose frequency (300 + 150 k Hz) names it; the same on both channels."""
    t = np.arange(RATE_HZ) / RATE_HZ
    mono = np.round(8000 * np.sin(2 * np.pi * (300 + 150 * k) * t)).astype("<i2")
    return np.stack([mono, mono], axis=1)


def identify(second: np.ndarray):
    """The marker number of a one-second mono block, 'T' for the 1 kHz redaction tone, '-' for silence."""
    if not second.any():
        return "-"
    peak = int(np.argmax(np.abs(np.fft.rfft(second.astype(float)))))
    if peak == 1000:
        return "T"
    k, rest = divmod(peak - 300, 150)
    assert rest == 0, f"unexpected peak at {peak} Hz"
    return k


def read_seconds(path, channel):
    audio, rate = soundfile.read(path, dtype="int16", always_2d=True)
    assert rate == RATE_HZ and len(audio) % RATE_HZ == 0
    return [identify(audio[i:i + RATE_HZ, channel]) for i in range(0, len(audio), RATE_HZ)]


def feed_markers(recording, numbers, block=777):
    feed(recording, np.concatenate([marker_second(k) for k in numbers]), block)


def test_marker_seconds_survive_exactly_after_a_sequence_of_operations(store, tmp_path):
    rec = store.create("call-1", rate_hz=RATE_HZ, channels=2)
    feed_markers(rec, range(0, 5))
    paused = rec.pause("agent:1001", "card number")
    feed_markers(rec, [5, 6])
    resumed = rec.resume("agent:1001", "done")
    feed_markers(rec, range(7, 15))
    rec.mask("agent:1001", "caller spells password", channels=(0,))
    feed_markers(rec, [15, 16])
    unmasked = rec.unmask("agent:1001", "done", channels=(0,))
    feed_markers(rec, range(17, 20))
    cut = rec.cut(2 * RATE_HZ, 4 * RATE_HZ, "staff:anna", "personal data")
    redacted = rec.redact(5 * RATE_HZ, 6 * RATE_HZ, "staff:anna", "name", fill="tone")
    last = rec.cut_last(1, "agent:1001", "oops")
    rec.finish()

    assert (paused.start_sample, paused.input_start_sample) == (5 * RATE_HZ, 5 * RATE_HZ)
    assert (resumed.input_start_sample, resumed.input_end_sample) == (5 * RATE_HZ, 7 * RATE_HZ)
    assert resumed.start_sample == resumed.end_sample == 5 * RATE_HZ  # skip: no gap in the recording
    assert (unmasked.start_sample, unmasked.end_sample) == (13 * RATE_HZ, 15 * RATE_HZ)
    assert cut.removed_samples == 2 * RATE_HZ and cut.rewritten_chunks and cut.in_window_samples == 0
    assert redacted.rewritten_chunks and last.in_window_samples == RATE_HZ and not last.rewritten_chunks

    rec.export(tmp_path / "out.wav")
    assert read_seconds(tmp_path / "out.wav", 0) == [0, 1, 4, 7, 8, "T", 10, 11, 12, 13, 14, "-", "-", 17, 18]
    assert read_seconds(tmp_path / "out.wav", 1) == [0, 1, 4, 7, 8, "T", 10, 11, 12, 13, 14, 15, 16, 17, 18]
    rec.export(tmp_path / "caller.flac", channel=0)
    assert read_seconds(tmp_path / "caller.flac", 0)[11:13] == ["-", "-"]
    assert rec.verify().ok

    reopened = MediaStore(store.root, clock=FakeClock()).open("call-1")  # state rebuilt from the manifest
    assert reopened.length_samples == 15 * RATE_HZ
    reopened.export(tmp_path / "again.wav")
    assert soundfile.read(tmp_path / "again.wav", dtype="int16")[0].tobytes() == \
        soundfile.read(tmp_path / "out.wav", dtype="int16")[0].tobytes()


@pytest.mark.parametrize("gap_fill, expected", [
    ("skip", [0, 1, 4]), ("silence", [0, 1, "-", "-", 4]), ("tone", [0, 1, "T", "T", 4])])
def test_pause_gap_fill(tmp_path, gap_fill, expected):
    store = MediaStore(tmp_path / "s", settings=RecordingSettings(holdback_s=1, chunk_s=2, gap_fill=gap_fill))
    rec = store.create("r", rate_hz=RATE_HZ, channels=2)
    feed_markers(rec, [0, 1])
    rec.pause("a", "r")
    feed_markers(rec, [2, 3])
    rec.resume("a", "r")
    feed_markers(rec, [4])
    rec.finish()
    rec.export(tmp_path / "o.wav")
    assert read_seconds(tmp_path / "o.wav", 0) == expected


def test_noise_gap_is_quiet_but_not_silent(tmp_path):
    store = MediaStore(tmp_path / "s", settings=RecordingSettings(holdback_s=1, chunk_s=2, gap_fill="noise"))
    rec = store.create("r", rate_hz=RATE_HZ, channels=1)
    rec.pause("a", "r")
    rec.append(np.full((RATE_HZ, 1), 20000, dtype="<i2"))
    rec.finish()
    rec.export(tmp_path / "o.wav")
    audio = soundfile.read(tmp_path / "o.wav", dtype="int16")[0]
    assert len(audio) == RATE_HZ and audio.any() and np.abs(audio).max() <= 300


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(block=st.integers(50, 9000), seconds_before=st.floats(3, 9), cut_s=st.floats(0.1, 2.0))
def test_audio_cut_inside_the_window_never_reaches_the_disk(block, seconds_before, cut_s):
    with tempfile.TemporaryDirectory() as tmp:
        store = MediaStore(Path(tmp), settings=RecordingSettings(holdback_s=2, chunk_s=1), clock=FakeClock())
        rec = store.create("r", rate_hz=RATE_HZ, channels=2)
        audio = noise(seconds_before, seed=block)
        feed(rec, audio, block)
        cut_len = min(int(round(cut_s * RATE_HZ)), len(audio))
        doomed = audio[len(audio) - cut_len:]
        assert not contains_audio(disk_bytes(Path(tmp)), doomed)
        result = rec.cut_last(cut_s, "agent", "said too much")
        assert result.rewritten_chunks == () and result.in_window_samples == cut_len
        tail = noise(3, seed=block + 1)
        feed(rec, tail, block)
        rec.finish()
        on_disk = disk_bytes(Path(tmp))
        assert not contains_audio(on_disk, doomed)
        assert contains_audio(on_disk, audio[:len(audio) - cut_len][-64:]) and contains_audio(on_disk, tail)


def test_committed_cut_rewrites_only_overlapping_chunks_and_removes_old_files(store):
    rec = store.create("r", rate_hz=RATE_HZ, channels=2)
    audio = noise(20)
    feed(rec, audio)
    before = {file: (start, count) for start, count, file in rec.chunk_layout()}
    result = rec.cut(4 * RATE_HZ, 5 * RATE_HZ, "staff", "why")
    touched = [f for f, (s, n) in before.items() if s < 5 * RATE_HZ and s + n > 4 * RATE_HZ]
    assert sorted(int(f[:8]) for f in touched) == sorted(result.rewritten_chunks)
    files_now = {p.name for p in rec.directory.iterdir()}
    assert not files_now & set(touched)
    assert set(before) - set(touched) <= files_now
    assert not contains_audio(disk_bytes(rec.directory), audio[4 * RATE_HZ:5 * RATE_HZ])
    rec.finish()
    assert rec.length_samples == 19 * RATE_HZ


def test_mask_only_the_callers_side_of_a_committed_interval(store, tmp_path):
    rec = store.create("r", rate_hz=RATE_HZ, channels=2)
    audio = noise(12)
    feed(rec, audio)
    rec.redact(RATE_HZ, 7 * RATE_HZ, "staff", "caller's card", channels=(0,))
    rec.finish()
    rec.export(tmp_path / "o.wav")
    out = soundfile.read(tmp_path / "o.wav", dtype="int16")[0]
    assert not out[RATE_HZ:7 * RATE_HZ, 0].any()
    assert np.array_equal(out[:, 1], audio[:, 1])
    assert np.array_equal(out[:RATE_HZ], audio[:RATE_HZ]) and np.array_equal(out[7 * RATE_HZ:], audio[7 * RATE_HZ:])


def test_delete_leaves_only_a_tombstone(store):
    rec = store.create("r", rate_hz=RATE_HZ, channels=2)
    feed(rec, noise(8))
    result = rec.delete("caller", "consent withdrawn")
    files = sorted(p.name for p in rec.directory.iterdir())
    assert files == ["tombstone.json"]
    tombstone = json.loads((rec.directory / "tombstone.json").read_text())
    assert tombstone["actor"] == "caller" and tombstone["reason"] == "consent withdrawn"
    assert "sha256" not in json.dumps(tombstone) and result.op == "delete"
    with pytest.raises(RecordingGone):
        rec.append(noise(1))
    with pytest.raises(RecordingGone):
        store.open("r")
    assert store.recording_ids() == [] and store.tombstone("r")["recording_id"] == "r"


def test_pending_consent_writes_nothing_until_granted(store):
    rec = store.create("r", rate_hz=RATE_HZ, channels=2, consent_granted=False)
    feed(rec, noise(6))
    rec.pause("agent", "x")
    assert not store.root.joinpath("r").exists()
    rec.grant_consent("caller", "pressed 1")
    held = rec.length_samples - rec.committed_samples  # the window: 2 s plus less than one write unit
    assert 2 * RATE_HZ <= held < 2 * RATE_HZ + rec.fmt.write_unit_samples
    assert any(p.suffix == ".pcm" for p in rec.directory.iterdir())
    denied = store.create("d", rate_hz=RATE_HZ, channels=2, consent_granted=False)
    feed(denied, noise(6, seed=2))
    assert denied.finish().op == "discard"
    assert not store.root.joinpath("d").exists()


def test_pending_consent_is_bounded(tmp_path):
    store = MediaStore(tmp_path, settings=RecordingSettings(max_pending_s=1))
    rec = store.create("r", rate_hz=RATE_HZ, channels=1, consent_granted=False)
    with pytest.raises(MediaError):
        feed(rec, noise(2, channels=1))


def test_verify_and_export_detect_a_tampered_chunk(store, tmp_path):
    rec = store.create("r", rate_hz=RATE_HZ, channels=2)
    feed(rec, noise(10))
    rec.finish()
    victim = sorted(rec.directory.glob("*.pcm"))[1]
    data = bytearray(victim.read_bytes())
    data[100] ^= 1
    victim.write_bytes(bytes(data))
    report = rec.verify()
    assert not report.ok and report.bad_chunks[0][1] == "SHA-256 mismatch"
    with pytest.raises(IntegrityError):
        rec.export(tmp_path / "o.wav")
    assert not (tmp_path / "o.wav").exists()


def test_operations_are_in_the_manifest_with_who_when_why(store, clock):
    rec = store.create("r", rate_hz=RATE_HZ, channels=2)
    feed(rec, noise(5))
    rec.mask("agent:7", "pin", channels=(1,))
    feed(rec, noise(1))
    rec.unmask("agent:7", "pin done")
    rec.finish()
    ops = [json.loads(line) for line in (rec.directory / "manifest.jsonl").read_text().splitlines()]
    ops = [o for o in ops if o["t"] == "op"]
    assert [o["op"] for o in ops] == ["mask", "unmask", "finish"]
    assert ops[1]["actor"] == "agent:7" and ops[1]["reason"] == "pin done" and ops[1]["at"] > 1.7e9
    assert (ops[1]["start_sample"], ops[1]["end_sample"]) == (5 * RATE_HZ, 6 * RATE_HZ)
    assert ops[1]["channels"] == [1]
