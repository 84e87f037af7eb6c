"""Spool tailing: raw and WAV files growing the way FreeSWITCH writes them, driven by gevent greenlets."""
from pathlib import Path

import gevent
import numpy as np
import pytest
import soundfile

from media import SpoolError, SpoolReader, SpoolTailer, spool_record_vars
from media.blocks import AudioFormat

from .conftest import RATE_HZ, noise

TRACES = Path(__file__).resolve().parents[1] / "traces" / "recordings"
STEREO = AudioFormat(RATE_HZ, 2)


def test_record_vars_keep_the_spool_current():
    assert spool_record_vars() == "{RECORD_STEREO=true,enable_file_write_buffering=false,RECORD_PRE_BUFFER_FRAMES=0}"


def test_raw_reader_returns_whole_frames_in_bounded_blocks(tmp_path):
    spool = tmp_path / "u.raw"
    reader = SpoolReader(spool, STEREO, max_read_bytes=1000)
    assert reader.read() == b""  # not created yet
    data = noise(1).tobytes()
    spool.write_bytes(data[:4003])  # FreeSWITCH may be mid-frame
    got = b""
    while chunk := reader.read():
        assert len(chunk) % 4 == 0 and len(chunk) <= 1000
        got += chunk
    assert got == data[:4000]
    with open(spool, "ab") as handle:
        handle.write(data[4003:])
    while chunk := reader.read():
        got += chunk
    assert got == data


def test_raw_reader_starts_again_when_the_spool_is_truncated(tmp_path):
    spool = tmp_path / "u.raw"
    spool.write_bytes(noise(1, seed=1).tobytes())
    reader = SpoolReader(spool, STEREO)
    while reader.read():
        pass
    second = noise(0.5, seed=2).tobytes()
    spool.write_bytes(second)  # uuid_record start on the same path opens it with O_TRUNC
    assert reader.read() == second[:len(second)] and reader.restarts == 1


def growing_wav(path: Path, wav_from_trace: Path):
    """Replay a FreeSWITCH WAV as it was written: placeholder header (sizes 8/0), data, final header."""
    final = wav_from_trace.read_bytes()
    placeholder = bytearray(final[:44])
    placeholder[4:8] = (8).to_bytes(4, "little")
    placeholder[40:44] = (0).to_bytes(4, "little")
    path.write_bytes(bytes(placeholder))
    return final


def test_wav_reader_ignores_the_placeholder_sizes_and_notices_the_end(tmp_path):
    spool = tmp_path / "s.wav"
    final = growing_wav(spool, TRACES / "stereo.wav")
    reader = SpoolReader(spool, STEREO)
    assert reader.read() == b""
    got = b""
    for offset in range(44, len(final), 3000):
        with open(spool, "ab") as handle:
            handle.write(final[offset:offset + 3000])
        while chunk := reader.read():
            got += chunk
        assert not reader.finalised
    with open(spool, "r+b") as handle:
        handle.write(final[:44])  # sf_close writes the real sizes
    assert reader.read() == b"" and reader.finalised
    expected = soundfile.read(TRACES / "stereo.wav", dtype="int16")[0]
    assert got == expected.tobytes()


def test_wav_reader_rejects_a_wav_of_the_wrong_format(tmp_path):
    spool = tmp_path / "m.wav"
    spool.write_bytes((TRACES / "uuid_record.wav").read_bytes())  # mono
    with pytest.raises(SpoolError):
        SpoolReader(spool, STEREO).read()


def writer_greenlet(path: Path, data: bytes, block: int):
    def write():
        for offset in range(0, len(data), block):
            with open(path, "ab") as handle:
                handle.write(data[offset:offset + block])
            gevent.sleep(0.001)
    return gevent.spawn(write)


def test_tailer_follows_a_growing_spool_and_finishes_on_stop(store, tmp_path):
    audio = noise(6)
    spool = tmp_path / "call.raw"
    recording = store.create("call", rate_hz=RATE_HZ, channels=2)
    tailer = SpoolTailer(recording, spool, poll_s=0.005)
    tailer.start()
    writer = writer_greenlet(spool, audio.tobytes(), 960)  # 20 ms packets of 8 kHz stereo... times 4
    writer.join(timeout=30)
    assert writer.successful()
    result = tailer.stop(reason="RECORD_STOP", timeout_s=30)
    assert result.op == "finish" and result.end_sample == len(audio) and tailer.end_reason == "stopped"
    recording.export(tmp_path / "o.wav")
    assert np.array_equal(soundfile.read(tmp_path / "o.wav", dtype="int16")[0], audio)


def test_live_cut_catches_up_with_the_spool_first(store, tmp_path):
    audio = noise(5)
    spool = tmp_path / "call.raw"
    recording = store.create("call", rate_hz=RATE_HZ, channels=2)
    tailer = SpoolTailer(recording, spool, poll_s=10)  # the loop alone would not have read anything yet
    tailer.start()
    gevent.sleep(0)
    spool.write_bytes(audio.tobytes())
    result = recording.cut_last(1, "agent", "heard it")
    assert (result.start_sample, result.end_sample) == (4 * RATE_HZ, 5 * RATE_HZ)
    tailer.stop(timeout_s=30)
    assert recording.length_samples == 4 * RATE_HZ


def test_tailer_ends_by_itself_when_the_wav_is_finalised(store, tmp_path):
    spool = tmp_path / "call.wav"
    final = growing_wav(spool, TRACES / "stereo.wav")
    recording = store.create("call", rate_hz=RATE_HZ, channels=2)
    tailer = SpoolTailer(recording, spool, poll_s=0.005)
    tailer.start()
    writer = writer_greenlet(spool, final[44:], 1920)
    writer.join(timeout=30)
    with open(spool, "r+b") as handle:
        handle.write(final[:44])
    result = tailer.done.get(timeout=30)
    assert tailer.end_reason == "spool finalised" and result.end_sample == (len(final) - 44) // 4


def test_withdraw_deletes_recording_and_spool(store, tmp_path):
    spool = tmp_path / "call.raw"
    spool.write_bytes(noise(5).tobytes())
    recording = store.create("call", rate_hz=RATE_HZ, channels=2)
    tailer = SpoolTailer(recording, spool, poll_s=0.005)
    tailer.start()
    recording.source.catch_up()
    assert recording.committed_samples > 0
    result = tailer.withdraw("caller", "pressed 2: consent withdrawn")
    assert result.op == "delete" and not spool.exists()
    assert sorted(p.name for p in recording.directory.iterdir()) == ["tombstone.json"]
    assert tailer.done.get(timeout=10) is None


def test_idle_spool_finishes_the_recording(store, tmp_path):
    spool = tmp_path / "call.raw"
    spool.write_bytes(noise(1).tobytes())
    recording = store.create("call", rate_hz=RATE_HZ, channels=2)
    tailer = SpoolTailer(recording, spool, poll_s=0.005, idle_timeout_s=0.05)
    tailer.start()
    result = tailer.done.get(timeout=10)
    assert tailer.end_reason == "spool idle" and result.end_sample == RATE_HZ


def test_a_long_backlog_lets_other_greenlets_run(store, tmp_path):
    spool = tmp_path / "call.raw"
    spool.write_bytes(noise(60).tobytes())
    recording = store.create("call", rate_hz=RATE_HZ, channels=2)
    seen = []
    ticker = gevent.spawn(lambda: [seen.append(recording.input_samples) or gevent.sleep(0) for _ in range(100_000)])
    tailer = SpoolTailer(recording, spool, poll_s=0.001)
    tailer.start()
    tailer.stop(timeout_s=30)
    ticker.kill()
    assert recording.length_samples == 60 * RATE_HZ
    assert any(0 < samples < 60 * RATE_HZ for samples in seen)  # the ticker ran while the backlog was read
