"""The ingest hot path: write-unit sizing, the per-stream buffer bound, one write call per append, salvage."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media import MediaStore, RecordingSettings, SpoolReader
from media.blocks import BUFFER_BYTES_PER_STREAM, PAGE_BYTES, SUPPORTED_RATES_HZ, AudioFormat
from media.chunkstore import WRITEV_MAX_PIECES
from media.holdback import HoldbackWindow
from media.recovery import recover_directory

from .conftest import FakeClock, noise

FORMATS = [AudioFormat(rate, channels) for rate in SUPPORTED_RATES_HZ for channels in (1, 2)]


def manifest_entries(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "manifest.jsonl").read_text().splitlines()]


def extent_steps(entries: list[dict]) -> list[int]:
    """Samples added by each write call, from the extent lines of every chunk."""
    steps, last = [], {}
    for entry in entries:
        if entry["t"] == "extent":
            steps.append(entry["sample_count"] - last.get(entry["seq"], 0))
            last[entry["seq"]] = entry["sample_count"]
    return steps


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_write_unit_is_the_fewest_whole_pages_holding_half_a_second(fmt):
    unit_bytes = fmt.samples_to_bytes(fmt.write_unit_samples)
    assert unit_bytes % PAGE_BYTES == 0
    assert fmt.write_unit_samples >= fmt.rate_hz // 2
    assert unit_bytes - PAGE_BYTES < fmt.samples_to_bytes(fmt.rate_hz // 2)
    assert fmt.read_block_bytes + unit_bytes == BUFFER_BYTES_PER_STREAM and fmt.read_block_bytes % fmt.frame_bytes == 0


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_a_spool_backlog_stays_within_64_kib_beyond_the_window(tmp_path, fmt):
    spool = tmp_path / "call.raw"
    audio = noise(20, channels=fmt.channels, rate_hz=fmt.rate_hz)
    spool.write_bytes(audio.tobytes())
    store = MediaStore(tmp_path / "s", settings=RecordingSettings(holdback_s=3, chunk_s=4), clock=FakeClock())
    rec = store.create("r", rate_hz=fmt.rate_hz, channels=fmt.channels)
    reader = SpoolReader(spool, fmt)
    while data := reader.read():
        rec.append_bytes(data)
        if rec.input_samples >= 7 * fmt.rate_hz and rec.length_samples == rec.input_samples:
            rec.cut_last(0.3, "agent", "misalign the window")  # units no longer line up with read blocks
    rec.finish()
    window_bytes = fmt.samples_to_bytes(fmt.seconds_to_samples(3))
    assert 0 < rec.peak_buffer_bytes - window_bytes <= BUFFER_BYTES_PER_STREAM
    rec.export(tmp_path / "o.wav")
    assert rec.verify().ok and rec.length_samples == len(audio) - fmt.seconds_to_samples(0.3)


def test_each_append_is_one_write_call_of_whole_units(store):
    rec = store.create("r", rate_hz=8000, channels=2)
    unit = rec.fmt.write_unit_samples
    audio = noise(12)
    for start in range(0, len(audio), 3 * unit + 100):  # every append ages out three or four units
        rec.append(audio[start:start + 3 * unit + 100])
    rec.finish()
    steps = extent_steps(manifest_entries(rec.directory))
    *full, last = steps
    assert all(step % unit == 0 and step >= unit for step in full)  # >= 0.5 s per write call
    assert any(step > unit for step in full)  # several units went out in one call
    assert 0 < last and sum(steps) == len(audio)
    chunk_samples = [e["sample_count"] for e in manifest_entries(rec.directory) if e["t"] == "chunk"]
    assert all(count % unit == 0 for count in chunk_samples[:-1])


def test_many_small_live_reads_are_written_in_one_call(store):
    rec = store.create("r", rate_hz=8000, channels=2)
    audio = noise(5)
    for start in range(0, len(audio), 160):  # 20 ms packets, as a live spool grows
        rec.append(audio[start:start + 160])
    rec.finish()
    unit = rec.fmt.write_unit_samples
    assert unit // 160 > WRITEV_MAX_PIECES  # so the pieces were joined before writev
    *full, _ = extent_steps(manifest_entries(rec.directory))
    assert full and all(step == unit for step in full)
    chunks = [rec.read_chunk(c) for _, c in rec.committed_chunks()]
    assert np.array_equal(np.concatenate(chunks), audio)


def test_append_checks_its_input_and_copes_with_non_contiguous_blocks(store):
    rec = store.create("r", rate_hz=8000, channels=2)
    with pytest.raises(ValueError):
        rec.append(np.zeros((10, 2), dtype=np.int32))
    with pytest.raises(ValueError):
        rec.append(np.zeros((10, 1), dtype=np.int16))
    audio = noise(6)
    swapped = audio[:, ::-1]  # a strided view: both channels exchanged
    rec.append(swapped)
    rec.finish()
    chunks = [rec.read_chunk(c) for _, c in rec.committed_chunks()]
    assert np.array_equal(np.concatenate(chunks), swapped)


def test_a_killed_backlog_ingest_keeps_every_acknowledged_write_unit(tmp_path):
    """What a SIGKILL leaves is what the files hold at that moment: copy them mid-ingest and recover the copy."""
    store = MediaStore(tmp_path / "live", settings=RecordingSettings(holdback_s=1, chunk_s=3), clock=FakeClock())
    rec = store.create("r", rate_hz=8000, channels=2)
    audio = noise(10)
    block = 3 * rec.fmt.write_unit_samples + 77
    fed = 0
    while fed < 8 * 8000:
        rec.append(audio[fed:fed + block])
        fed += len(audio[fed:fed + block])
    rec._files.wait_pending()  # the last sealed chunk's commit, as a kill after it would find it
    shutil.copytree(rec.directory, tmp_path / "killed" / "r")
    state, report = recover_directory(tmp_path / "killed" / "r", FakeClock())
    assert report.status == "ok" and report.salvaged_samples > 0
    recovered = MediaStore(tmp_path / "killed").open("r")
    kept = np.concatenate([recovered.read_chunk(c) for _, c in recovered.committed_chunks()])
    assert np.array_equal(kept, audio[:len(kept)])
    assert len(kept) >= fed - 8000 - rec.fmt.write_unit_samples  # only the window and part of one unit
    rec.finish()


def test_recovery_falls_back_to_the_previous_extent_when_a_multi_unit_write_is_torn(tmp_path):
    store = MediaStore(tmp_path / "live", settings=RecordingSettings(holdback_s=1, chunk_s=30), clock=FakeClock())
    rec = store.create("r", rate_hz=8000, channels=2)
    unit = rec.fmt.write_unit_samples
    audio = noise(8)
    for start in range(0, 6 * 8000, 2 * unit):
        rec.append(audio[start:start + 2 * unit])
    killed = tmp_path / "killed" / "r"
    shutil.copytree(rec.directory, killed)
    extents = [e for e in manifest_entries(killed) if e["t"] == "extent"]
    assert len(extents) >= 3 and extents[-1]["sample_count"] - extents[-2]["sample_count"] == 2 * unit
    chunk = killed / "00000000.pcm"
    chunk.write_bytes(chunk.read_bytes()[:-100])  # the last write call only partly reached the file
    _, report = recover_directory(killed, FakeClock())
    assert report.salvaged_samples == extents[-2]["sample_count"]
    rec.finish()


@settings(max_examples=60, deadline=None)
@given(unit=st.integers(1, 50), window=st.integers(0, 200),
       blocks=st.lists(st.integers(0, 120), min_size=1, max_size=30), room=st.integers(1, 400))
def test_window_releases_only_whole_aged_out_units_and_loses_nothing(unit, window, blocks, room):
    held = HoldbackWindow(1, window, unit)
    pushed, popped = [], []
    for index, size in enumerate(blocks):
        block = np.arange(sum(blocks[:index]), sum(blocks[:index + 1]), dtype=np.int16).reshape(-1, 1)
        held.push(block)
        pushed.append(block)
        limit = room * unit
        pieces = held.pop_ready(limit)
        count = sum(len(p) for p in pieces)
        assert count % unit == 0 and count <= limit
        popped.extend(pieces)
        if count < limit:  # not capped: everything that aged out in whole units is gone
            assert held.length - window < unit
    popped.extend(held.pop_oldest(10 ** 6))
    assert held.length == 0
    everything = np.concatenate(pushed) if pushed else np.zeros((0, 1), np.int16)
    assert np.array_equal(np.concatenate(popped) if popped else everything[:0], everything)


def test_reader_notices_a_restart_in_the_middle_of_a_backlog(tmp_path):
    spool = tmp_path / "u.raw"
    fmt = AudioFormat(8000, 2)
    spool.write_bytes(noise(10, seed=1).tobytes())
    reader = SpoolReader(spool, fmt)
    first = reader.read()
    assert len(first) == fmt.read_block_bytes
    again = noise(0.5, seed=2).tobytes()
    spool.write_bytes(again)  # uuid_record start on the same path: O_TRUNC, then new audio
    got = b""
    while chunk := reader.read():
        got += chunk
    assert reader.restarts == 1 and got == again
