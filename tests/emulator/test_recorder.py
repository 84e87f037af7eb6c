"""The recording writer against the files FreeSWITCH 1.10.12 wrote (tests/traces/recordings) and its own rules."""

import os
import pathlib

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from freeswitch.emulator import audio, tonestream
from freeswitch.emulator.recordfile import wav_header
from freeswitch.emulator.recorder import (MediaBug, Recorder, RecordOpenError, RecordSettings, RecordStateError,
                                          switch_true)

RECORDINGS = pathlib.Path(__file__).resolve().parents[1] / "traces" / "recordings"
PACKET_30MS = 240          # the traces' SIPp calls sent 30 ms packets at 8 kHz


def real(name):
    samples, rate = soundfile.read(RECORDINGS / name, dtype="int16")
    return samples, (RECORDINGS / name).read_bytes()


def header_fields(path):
    head = pathlib.Path(path).read_bytes()[:44]
    return int.from_bytes(head[4:8], "little"), int.from_bytes(head[40:44], "little")


def caller_heard_in(idle_mono_file):
    """A mono recording of an idle call holds caller + (-1): the write side is filled with 0xFFFF."""
    return (idle_mono_file.astype(np.int32) - audio.FILL_SAMPLE).astype(np.int16)


def packets(samples, step=PACKET_30MS):
    return [samples[i:i + step] for i in range(0, samples.shape[0], step)]


# ---------------------------------------------------------------------------------------------------- the traces

def test_uuid_record_with_mask_is_byte_identical_and_grows_in_64k_writes(tmp_path):
    # uuid_record_mask.txt: default variables, mask 2.03 s after start, unmask 1.52 s later, stop at 5.05 s.
    # uuid_record_nobuffer.wav, recorded in parallel and never masked, gives the caller's audio.
    expected_samples, expected_bytes = real("uuid_record.wav")
    parallel, _ = real("uuid_record_nobuffer.wav")
    caller = np.concatenate([caller_heard_in(parallel), np.full(25 * PACKET_30MS, 99, np.int16)])
    path = tmp_path / "rec" / "uuid_record.wav"
    recorder = Recorder(str(path), 8000, packet_samples=PACKET_30MS, variables={})
    recorder.open()
    seen = {(os.path.getsize(path), header_fields(path))}
    for index, packet in enumerate(packets(caller)):
        if index == 68:
            recorder.mask()
        if index == 118:
            recorder.unmask()
        recorder.feed(packet)
        seen.add((os.path.getsize(path), header_fields(path)))
    assert seen == {(44, (8, 0)), (65580, (8, 0))}
    result = recorder.close("stop")
    assert path.read_bytes() == expected_bytes
    assert (result.record_samples, result.record_seconds, result.record_ms) == (34320, 4, 4290)
    assert result.channel_variables() == {"record_file_size": "68684", "record_samples": "34320",
                                          "record_seconds": "4", "record_ms": "4290",
                                          "record_completion_cause": "success-maxtime"}


def test_unbuffered_recording_grows_per_packet_after_the_pre_buffer_gap(tmp_path):
    parallel, expected_bytes = real("uuid_record_nobuffer.wav")
    caller = np.concatenate([caller_heard_in(parallel), np.zeros(25 * PACKET_30MS, np.int16)])
    path = tmp_path / "uuid_record_nobuffer.wav"
    recorder = Recorder(str(path), 8000, packet_samples=PACKET_30MS,
                        variables={"enable_file_write_buffering": "false"})
    recorder.open()
    sizes = [os.path.getsize(path)]
    for packet in packets(caller):
        recorder.feed(packet)
        sizes.append(os.path.getsize(path))
    recorder.close("stop")
    # As the trace's poll: 44, 524 at the first packet, then nothing for 25 packets, then +480 per packet.
    assert sizes[:3] == [44, 524, 524] and sizes[26] == 524 and sizes[27] == 1004
    assert set(np.diff(sizes[26:])) == {480}
    assert header_fields(path) == (68676, 68640)
    assert path.read_bytes() == expected_bytes


@pytest.mark.parametrize("variables, expected", [
    ({"enable_file_write_buffering": "false"}, "lag_default.wav"),
    ({"enable_file_write_buffering": "false", "RECORD_PRE_BUFFER_FRAMES": "0"}, "lag_prebuf0.wav"),
])
def test_pre_buffer_loses_the_last_25_packets_at_stop(tmp_path, variables, expected):
    complete, _ = real("lag_prebuf0.wav")            # 3.0 s: every packet of the call
    _, expected_bytes = real(expected)
    path = tmp_path / expected
    recorder = Recorder(str(path), 8000, packet_samples=PACKET_30MS, variables=variables)
    recorder.open()
    for block in np.split(caller_heard_in(complete), 20):      # 5 packets a block
        recorder.feed(block)
    recorder.close("stop")
    assert path.read_bytes() == expected_bytes


def test_stereo_recording_is_byte_identical_caller_left_and_prompt_right(tmp_path):
    # record_stereo_esl.txt: one packet before the 3 s tone_stream started, then the tone, then nothing sent.
    recorded, expected_bytes = real("stereo.wav")
    caller = recorded[:, 0].copy()
    tone, _ = tonestream.tone_stream("%(3000,0,300)", 8000)
    path = tmp_path / "stereo.wav"
    recorder = Recorder(str(path), 8000, packet_samples=PACKET_30MS, variables={"RECORD_STEREO": "true"})
    recorder.open()
    recorder.feed(caller[:240])
    recorder.feed(caller[240:24240], tone)
    recorder.feed(caller[24240:])
    result = recorder.close("stop")
    assert path.read_bytes() == expected_bytes
    assert result.channel_variables()["record_ms"] == "4050"


def test_record_session_apps_mask_and_pause_give_the_real_file_layout(tmp_path):
    # record_session_mask_pause_apps.txt: mask 1.10 s after start for 1.08 s, pause 3.25 s after start for
    # 1.08 s, stop at 5.43 s. The real file: 3.60 s, one zero run from 0.36 s to 1.44 s.
    expected, expected_bytes = real("record_session_apps.wav")
    caller = audio.marker_block(audio.CALLER_MARKER_BASE_HZ, 8000, 0, 181 * PACKET_30MS)
    path = tmp_path / "record_session_apps.wav"
    recorder = Recorder(str(path), 8000, packet_samples=PACKET_30MS, variables={})
    recorder.open()
    kept = []
    for index, packet in enumerate(packets(caller)):
        {37: recorder.mask, 73: recorder.unmask, 108: recorder.pause, 144: recorder.resume}.get(index, int)()
        recorder.feed(packet)
        if not 108 <= index < 144:
            kept.append(packet)
    recorder.close("stop")
    written, _ = soundfile.read(path, dtype="int16")
    assert written.shape == expected.shape
    assert path.read_bytes()[:44] == expected_bytes[:44]
    assert np.array_equal(np.flatnonzero(written == 0), np.flatnonzero(expected == 0))
    # Outside the mask the file is the caller's unpaused audio, less one, 25 packets late at the end.
    heard = (np.concatenate(kept).astype(np.int32) - 1)[:written.shape[0]]
    heard[12 * PACKET_30MS:48 * PACKET_30MS] = 0
    assert np.array_equal(written, heard)


# ---------------------------------------------------------------------------------------------------- rules

def test_mask_writes_exact_zeros_of_the_masked_length_on_both_channels(tmp_path):
    path = tmp_path / "mask.wav"
    recorder = Recorder(str(path), 8000, stereo=True, variables={"RECORD_PRE_BUFFER_FRAMES": "0"})
    recorder.open()
    caller = audio.MarkerSource(300, 8000)
    agent = audio.MarkerSource(310, 8000)
    for second in range(6):
        if second == 2:
            recorder.mask()
        if second == 5:
            recorder.unmask()
        recorder.feed(caller.read(8000), agent.read(8000))
    recorder.close("stop")
    written, _ = soundfile.read(path, dtype="int16")
    assert written.shape == (48000, 2)
    assert not written[16000:40000].any()
    for unmasked in (written[:16000], written[40000:]):
        assert (np.abs(unmasked).max(axis=0) > 8000).all()
        assert (unmasked == 0).all(axis=1).mean() < 0.01         # only where both sines cross zero


def test_pause_leaves_the_paused_span_out(tmp_path):
    path = tmp_path / "pause.raw"
    recorder = Recorder(str(path), 8000, variables={"RECORD_PRE_BUFFER_FRAMES": "0", "RECORD_READ_ONLY": "true"})
    recorder.open()
    caller = audio.MarkerSource(300, 8000)
    for second in range(6):
        if second == 2:
            recorder.pause()
        if second == 4:
            recorder.resume()
        recorder.feed(caller.read(8000))
    recorder.close("stop")
    written = np.fromfile(path, dtype="<i2")
    assert written.shape == (32000,)
    seconds_heard = [audio.marker_index(300, audio.dominant_frequency(written[i:i + 8000], 8000))
                     for i in range(0, 32000, 8000)]
    assert seconds_heard == [0, 1, 4, 5]


@pytest.mark.parametrize("variables, left_base, right_base", [
    ({"RECORD_STEREO": "true"}, 300, 310),
    ({"RECORD_STEREO_SWAP": "true"}, 310, 300),
])
def test_stereo_channel_order(tmp_path, variables, left_base, right_base):
    path = tmp_path / "order.wav"
    recorder = Recorder(str(path), 16000, variables=dict(variables, RECORD_PRE_BUFFER_FRAMES="0"))
    recorder.open()
    recorder.feed(audio.marker_block(300, 16000, 0, 16000), audio.marker_block(310, 16000, 0, 16000))
    recorder.close("stop")
    written, rate = soundfile.read(path, dtype="int16")
    assert rate == 16000
    assert abs(audio.dominant_frequency(written[:, 0], rate) - left_base) < 1
    assert abs(audio.dominant_frequency(written[:, 1], rate) - right_base) < 1


def test_bridge_drops_the_held_back_audio_and_the_bridged_audio_then_lines_up(tmp_path):
    # The stereo bridge check: 25 packets lost at the bridge, none at stop while both sides carry audio.
    path = tmp_path / "bridge.wav"
    recorder = Recorder(str(path), 8000, packet_samples=PACKET_30MS, variables={"RECORD_STEREO": "true"})
    recorder.open()
    caller = audio.marker_block(300, 8000, 0, 300 * PACKET_30MS)
    agent = audio.marker_block(310, 8000, 0, 300 * PACKET_30MS)
    recorder.feed(caller[:100 * PACKET_30MS])
    assert recorder.held_back_frames == 25
    recorder.drop_pre_buffer()
    assert recorder.held_back_frames == 0
    for start in range(100 * PACKET_30MS, 300 * PACKET_30MS, 5 * PACKET_30MS):
        recorder.feed(caller[start:start + 5 * PACKET_30MS], agent[start:start + 5 * PACKET_30MS])
    result = recorder.close("hangup")
    written, _ = soundfile.read(path, dtype="int16")
    assert result.record_samples == 275 * PACKET_30MS
    lost = slice(75 * PACKET_30MS, 100 * PACKET_30MS)
    assert np.array_equal(written[:, 0], np.delete(caller, lost))
    assert (written[:75 * PACKET_30MS, 1] == audio.FILL_SAMPLE).all()
    assert np.array_equal(written[75 * PACKET_30MS:, 1], agent[100 * PACKET_30MS:])
    assert result.completion_cause == "success-silence"


def test_a_prompt_during_the_pre_buffer_shortens_the_lag(tmp_path):
    # outbound_connect_answer_playback.txt: a 300 ms tone_stream played from the second packet of the recording,
    # then silence from the switch until hangup. The 10 tone packets pair off 10 held packets, so 16 remain held
    # and are lost at hangup: a 6.69 s recording gives the 6.21 s outbound_x.wav.
    expected, _ = real("outbound_x.wav")
    path = tmp_path / "outbound_x.wav"
    recorder = Recorder(str(path), 8000, packet_samples=PACKET_30MS, variables={})
    recorder.open()
    tone, _ = tonestream.tone_stream("%(300,0,800)", 8000)
    caller = audio.MarkerSource(300, 8000)
    recorder.feed(caller.read(PACKET_30MS))
    recorder.feed(caller.read(tone.shape[0]), tone)
    for _ in range(223 - 11):
        recorder.feed(caller.read(PACKET_30MS))
    assert recorder.held_back_frames == 16
    result = recorder.close("hangup")
    assert result.record_samples == expected.shape[0] == 207 * PACKET_30MS
    assert result.channel_variables()["record_ms"] == "6210"


def test_no_pre_buffer_keeps_the_whole_call(tmp_path):
    path = tmp_path / "whole.wav"
    recorder = Recorder(str(path), 8000, stereo=True, variables={"RECORD_PRE_BUFFER_FRAMES": "0"})
    recorder.open()
    recorder.feed(audio.marker_block(300, 8000, 0, 8000))
    recorder.drop_pre_buffer()
    recorder.feed(audio.marker_block(300, 8000, 8000, 8000), audio.marker_block(310, 8000, 0, 8000))
    assert recorder.close("stop").record_samples == 16000


def test_empty_recording_is_deleted_and_reported(tmp_path):
    path = tmp_path / "empty.wav"
    recorder = Recorder(str(path), 8000, variables={})
    recorder.open()
    assert path.read_bytes() == wav_header(8000, 1)
    result = recorder.close("hangup")
    assert not path.exists()
    assert result.discarded and result.file_size is None
    assert result.channel_variables() == {"RECORD_DISCARDED": "true", "record_samples": "0", "record_seconds": "0",
                                          "record_ms": "0", "record_completion_cause": "empty-file"}


def test_recording_shorter_than_record_min_sec_is_deleted(tmp_path):
    path = tmp_path / "short.wav"
    recorder = Recorder(str(path), 8000, variables={"RECORD_MIN_SEC": "3", "RECORD_PRE_BUFFER_FRAMES": "0"})
    recorder.open()
    recorder.feed(np.ones(9600, np.int16))
    result = recorder.close("stop")
    assert (result.completion_cause, result.discarded, path.exists()) == ("input-too-short", True, False)
    assert result.record_ms == 1200


@pytest.mark.parametrize("extension", [".raw", ".r8", ".r16"])
def test_raw_spool_is_headerless_and_current_to_the_packet(tmp_path, extension):
    path = tmp_path / f"spool{extension}"
    recorder = Recorder(str(path), 8000, variables={"enable_file_write_buffering": "false",
                                                    "RECORD_PRE_BUFFER_FRAMES": "0"})
    recorder.open()
    caller = audio.MarkerSource(300, 8000)
    for packet_count in range(1, 101):
        recorder.feed(caller.read(160))
        assert os.path.getsize(path) == packet_count * 320
    recorder.close("stop")
    assert os.path.getsize(path) == 32000                # 16,000 bytes a second
    written = np.fromfile(path, dtype="<i2")
    assert np.array_equal(written, audio.marker_block(300, 8000, 0, 16000) - 1)


def test_numeric_write_buffer_writes_in_steps_of_that_size(tmp_path):
    path = tmp_path / "steps.raw"
    recorder = Recorder(str(path), 8000, variables={"enable_file_write_buffering": "1000",
                                                    "RECORD_PRE_BUFFER_FRAMES": "0"})
    recorder.open()
    sizes = set()
    for _ in range(50):
        recorder.feed(np.zeros(160, np.int16))
        sizes.add(os.path.getsize(path))
    assert sizes == set(range(0, 16001, 1000))
    recorder.close("stop")
    assert os.path.getsize(path) == 16000


def test_record_sample_rate_writes_the_file_at_that_rate(tmp_path):
    path = tmp_path / "wide.wav"
    recorder = Recorder(str(path), 8000, variables={"record_sample_rate": "16000", "RECORD_PRE_BUFFER_FRAMES": "0"})
    recorder.open()
    recorder.feed(audio.marker_block(300, 8000, 0, 8000))
    result = recorder.close("stop")
    written, rate = soundfile.read(path, dtype="int16")
    assert rate == 16000 and abs(written.shape[0] - 16000) <= 2
    assert result.record_samples == 8000                 # counted at the channel's rate
    assert abs(audio.dominant_frequency(written, rate) - 299) < 2


def test_record_append_adds_to_the_existing_file(tmp_path):
    path = tmp_path / "append.wav"
    variables = {"RECORD_APPEND": "true", "RECORD_PRE_BUFFER_FRAMES": "0"}
    for second in range(2):
        recorder = Recorder(str(path), 8000, variables=variables)
        recorder.open()
        recorder.feed(audio.marker_block(300, 8000, second * 32000, 32000))
        assert recorder.close("stop").record_samples == 32000
    written, _ = soundfile.read(path, dtype="int16")
    assert np.array_equal(written, audio.marker_block(300, 8000, 0, 64000) - 1)
    short = Recorder(str(path), 8000, variables=variables)
    short.open()
    short.feed(np.zeros(8000, np.int16))
    assert short.close("stop").completion_cause == "input-too-short"    # RECORD_APPEND's default min_sec is 3
    assert not path.exists()


def test_missing_directories_are_created_and_bad_targets_refused(tmp_path):
    nested = tmp_path / "a" / "b" / "c.wav"
    recorder = Recorder(str(nested), 8000, variables={})
    recorder.open()
    assert nested.exists()
    with pytest.raises(RecordOpenError):
        Recorder(str(tmp_path / "x.mp3"), 8000, variables={}).open()
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(RecordOpenError):
        Recorder(str(tmp_path / "dir.wav"), 8000, variables={}).open()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_write_failure_is_reported_as_uri_failure(tmp_path):
    path = tmp_path / "full.raw"
    path.symlink_to("/dev/full")
    recorder = Recorder(str(path), 8000, variables={"enable_file_write_buffering": "false",
                                                    "RECORD_PRE_BUFFER_FRAMES": "0"})
    recorder.open()
    recorder.feed(np.zeros(160, np.int16))
    assert recorder.write_failed
    assert recorder.close("stop").completion_cause == "uri-failure"


def test_feeding_outside_open_and_close_is_refused(tmp_path):
    recorder = Recorder(str(tmp_path / "s.wav"), 8000, variables={})
    with pytest.raises(RecordStateError):
        recorder.feed(np.zeros(160, np.int16))
    recorder.open()
    with pytest.raises(ValueError):
        recorder.feed(np.zeros(100, np.int16))
    with pytest.raises(ValueError):
        recorder.feed(np.zeros(160, np.float32))
    with pytest.raises(RecordStateError):
        recorder.open()
    first = recorder.close("stop")
    assert recorder.close("hangup") is first
    with pytest.raises(RecordStateError):
        recorder.feed(np.zeros(160, np.int16))


def test_variables_are_read_as_freeswitch_reads_them():
    assert [switch_true(v) for v in ("true", "YES", "on", "t", "1", "-2", "0", "false", "maybe", None)] == \
        [True, True, True, True, True, True, False, False, False, False]
    both = RecordSettings.from_variables({"RECORD_WRITE_ONLY": "true", "RECORD_READ_ONLY": "true"})
    assert (both.read_stream, both.write_stream) == (True, False)
    assert RecordSettings.from_variables({}).pre_buffer_frames == 25
    assert RecordSettings.from_variables({"RECORD_PRE_BUFFER_FRAMES": "-3"}).pre_buffer_frames == 0
    assert [RecordSettings.from_variables({"enable_file_write_buffering": v}).file_buffer_bytes
            for v in ("false", "0", "true", "4096")] == [0, 0, 65536, 4096]
    assert RecordSettings.from_variables({"record_sample_rate": "12345"}).file_rate_hz is None
    assert RecordSettings.from_variables({"RECORD_STEREO": "true"}, stereo=False).stereo is False


@pytest.mark.parametrize("pre_buffer, tossed", [(25, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]),
                                                 (24, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23])])
def test_write_only_recording_tosses_every_other_held_frame(pre_buffer, tossed):
    # switch_core_media_bug_read tosses a write frame while the write side holds more than the read side and
    # more than two frames: with no read stream, half the pre-buffer is thrown away when it is released.
    bug = MediaBug(RecordSettings(write_stream=True, read_stream=False, pre_buffer_frames=pre_buffer), 10)
    frames = [np.full(10, k, np.int16) for k in range(40)]
    out = np.concatenate([bug.push(np.zeros(10, np.int16), frame) for frame in frames])
    kept = [k for k in range(40) if k not in tossed]
    assert np.array_equal(out, np.repeat(np.array(kept, np.int16), 10))


# ---------------------------------------------------------------------------------------------------- the core

class ReferenceBug(MediaBug):
    """FreeSWITCH's algorithm packet by packet throughout: the vectorised settled path is never taken."""

    def _is_settled(self):
        return False


@settings(max_examples=80, deadline=None)
@given(data=st.data(), stereo=st.booleans(), streams=st.sampled_from(["both", "read", "write"]),
       pre_buffer=st.sampled_from([0, 1, 3, 25]))
def test_block_feeding_equals_freeswitch_packet_by_packet(data, stereo, streams, pre_buffer):
    settings_ = RecordSettings(stereo=stereo, read_stream=streams != "write", write_stream=streams != "read",
                               pre_buffer_frames=pre_buffer)
    step, count = 20, data.draw(st.integers(1, 90))
    write_present = data.draw(st.lists(st.booleans(), min_size=count, max_size=count))
    actions = data.draw(st.dictionaries(st.integers(0, count - 1), st.sampled_from(["mask", "unmask", "flush"])))
    read = audio.marker_block(300, 8000, 0, count * step)
    write = audio.marker_block(310, 8000, 0, count * step)
    fast, reference = MediaBug(settings_, step), ReferenceBug(settings_, step)
    expected, got = [], []
    for index in range(count):
        apply_action(reference, actions.get(index))
        piece = slice(index * step, (index + 1) * step)
        expected.append(reference.push(read[piece], write[piece] if write_present[index] else None))
    start = 0
    while start < count:                         # blocks end where the write side or an action changes
        apply_action(fast, actions.get(start))
        end = start + 1
        while end < count and write_present[end] == write_present[start] and end not in actions:
            end += 1
        end = data.draw(st.integers(start + 1, end))
        piece = slice(start * step, end * step)
        got.append(fast.push(read[piece], write[piece] if write_present[start] else None))
        start = end
    assert np.array_equal(np.concatenate(got), np.concatenate(expected))


def apply_action(bug, action):
    if action == "mask":
        bug.masked = True
    elif action == "unmask":
        bug.masked = False
    elif action == "flush":
        bug.flush()
