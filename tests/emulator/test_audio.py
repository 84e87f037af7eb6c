"""Audio sources: marker audio, its detector, tone_stream (checked against FreeSWITCH's own output), files."""

import pathlib

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from freeswitch.emulator import audio, tonestream

RECORDINGS = pathlib.Path(__file__).resolve().parents[1] / "traces" / "recordings"


# ---------------------------------------------------------------------------------------------------- markers

def test_marker_frequency_steps_20_hz_a_second_and_wraps_after_170_seconds():
    assert audio.marker_frequency(300, 0) == 300
    assert audio.marker_frequency(300, 1) == 320
    assert audio.marker_frequency(300, 169) == 300 + 20 * 169
    assert audio.marker_frequency(300, 170) == 300
    assert audio.marker_frequency(310, 171) == 330


@pytest.mark.parametrize("rate_hz", [8000, 16000])
@pytest.mark.parametrize("base_hz", [audio.CALLER_MARKER_BASE_HZ, audio.AGENT_MARKER_BASE_HZ])
def test_each_second_of_marker_audio_is_identified_by_its_frequency(base_hz, rate_hz):
    for second in (0, 1, 57, 169, 170, 342):
        samples = audio.marker_block(base_hz, rate_hz, second * rate_hz, rate_hz)
        found = audio.dominant_frequency(samples, rate_hz)
        assert abs(found - audio.marker_frequency(base_hz, second)) < 0.5
        assert audio.marker_index(base_hz, found) == second % 170


def test_a_tenth_of_a_second_is_enough_to_tell_caller_from_agent():
    rate = 8000
    span = audio.marker_block(audio.AGENT_MARKER_BASE_HZ, rate, 12 * rate + 3000, rate // 10)
    found = audio.dominant_frequency(span, rate)
    assert audio.marker_index(audio.AGENT_MARKER_BASE_HZ, found) == 12
    assert audio.marker_index(audio.CALLER_MARKER_BASE_HZ, found) is None


def test_marker_audio_is_a_quarter_of_full_scale():
    samples = audio.marker_block(300, 8000, 0, 8000)
    assert np.abs(samples).max() == audio.MARKER_AMPLITUDE


@settings(max_examples=60, deadline=None)
@given(start=st.integers(0, 3 * 16000), cuts=st.lists(st.integers(0, 40000), max_size=6))
def test_marker_audio_read_in_blocks_equals_read_whole(start, cuts):
    whole = audio.marker_block(310, 16000, start, 40000)
    edges = [0, *sorted(cuts), 40000]
    parts = [audio.marker_block(310, 16000, start + a, b - a) for a, b in zip(edges, edges[1:])]
    assert np.array_equal(np.concatenate(parts), whole)


def test_marker_source_continues_from_its_start_sample():
    source = audio.MarkerSource(300, 8000, start_sample=8000 * 5)
    first = source.read(160)
    assert np.array_equal(first, audio.marker_block(300, 8000, 40000, 160))
    assert np.array_equal(source.read(160), audio.marker_block(300, 8000, 40160, 160))
    assert source.duration_samples is None and not source.done


def test_dominant_frequency_of_silence_is_zero_and_of_a_mix_is_the_louder_tone():
    assert audio.dominant_frequency(np.zeros(800, np.int16), 8000) == 0.0
    mix = audio.marker_block(300, 8000, 0, 8000) // 2 + audio.marker_block(310, 8000, 8000, 8000) // 4
    assert abs(audio.dominant_frequency(mix, 8000) - 300) < 0.5


# ---------------------------------------------------------------------------------------------------- tone_stream

def test_tone_stream_is_sample_exact_against_what_freeswitch_played():
    # stereo.wav: FreeSWITCH played tone_stream://%(3000,0,300) to the caller; the right channel holds it.
    recorded, _ = soundfile.read(RECORDINGS / "stereo.wav", dtype="int16")
    right = recorded[:, 1]
    tone_starts = int(np.flatnonzero(right != audio.FILL_SAMPLE)[0])
    samples, plays = tonestream.tone_stream("%(3000,0,300)", 8000)
    assert plays == 1
    assert samples.shape == (24000,)
    assert np.array_equal(right[tone_starts:tone_starts + 24000], samples)


@pytest.mark.parametrize("url, rate_hz, duration_samples", [
    ("tone_stream://%(200,0,440)", 8000, 1600),
    ("tone_stream://%(300,0,800)", 16000, 4800),
    ("tone_stream://%(500,500,440);loops=2", 8000, 16000),        # the trace: 2.0 s between EXECUTE and COMPLETE
    ("tone_stream://%(500,500,440);LOOPS=1", 8000, 8000),
    ("tone_stream://L=3;%(100,100,350,440)", 8000, 4800),
    ("tone_stream://l=2;%(100,0,350);%(100,0,440)", 8000, 2400),
    ("tone_stream://d=100;w=50;123", 8000, 3 * 1200),
    ("tone_stream://1", 8000, 2500),                               # teletone's defaults: 2000 + 500 samples
    ("tone_stream://%(100,50)", 8000, 0),                          # no frequency: a syntax error, nothing
    ("silence_stream://250", 8000, 2000),
    ("silence_stream://250", 16000, 4000),
    ("silence_stream://-1", 8000, None),
    ("silence_stream://0", 8000, None),
])
def test_playback_url_lengths(url, rate_hz, duration_samples):
    assert audio.open_playback(url, rate_hz).duration_samples == duration_samples


def test_tone_stream_loops_minus_one_plays_forever_and_repeats_the_buffer():
    source = audio.open_playback("tone_stream://%(100,100,440);loops=-1", 8000)
    assert source.duration_samples is None
    first, second = source.read(1600), source.read(1600)
    assert np.array_equal(first, second)
    assert not source.done


def test_tone_frequencies_and_silence_gaps():
    samples, _ = tonestream.tone_stream("%(250,250,1000)", 8000)
    assert abs(audio.dominant_frequency(samples[:2000], 8000) - 1000) < 1
    assert not samples[2000:].any()
    quieter, _ = tonestream.tone_stream("v=-20;%(250,0,1000)", 8000)
    assert np.abs(quieter).max() < np.abs(samples).max() / 3


def test_dtmf_digit_holds_both_of_its_frequencies():
    samples, _ = tonestream.tone_stream("d=500;w=0;5", 8000)
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    peaks = sorted(np.argsort(spectrum)[-2:] * 8000 / samples.size)
    assert abs(peaks[0] - 770) < 3 and abs(peaks[1] - 1336) < 3


def test_source_reads_exactly_n_samples_with_silence_after_the_end():
    source = audio.open_playback("tone_stream://%(20,0,440)", 8000)
    assert source.remaining_samples == 160
    block = source.read(300)
    assert block.shape == (300,) and block[:160].any() and not block[160:].any()
    assert source.done and source.remaining_samples == 0
    assert not source.read(10).any()


def test_silence_stream_with_noise_is_quiet_comfort_noise():
    source = audio.open_playback("silence_stream://1000,400", 8000)
    noise = source.read(8000)
    assert noise.any() and np.abs(noise).max() <= 32768 // 400
    assert source.done


# ---------------------------------------------------------------------------------------------------- files

def test_missing_files_and_unknown_schemes_are_not_found(tmp_path):
    with pytest.raises(audio.PlaybackNotFound):
        audio.open_playback(str(tmp_path / "missing.wav"), 8000)
    with pytest.raises(audio.PlaybackNotFound):
        audio.open_playback("shout://example/stream.mp3", 8000)
    (tmp_path / "broken.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(audio.PlaybackNotFound):
        audio.open_playback(str(tmp_path / "broken.wav"), 8000)


def test_wav_prompt_at_another_rate_is_resampled_to_the_channel(tmp_path):
    prompt = audio.marker_block(300, 16000, 0, 16000)
    soundfile.write(tmp_path / "prompt.wav", prompt, 16000, subtype="PCM_16")
    source = audio.open_playback(str(tmp_path / "prompt.wav"), 8000)
    assert abs(source.duration_samples - 8000) <= 1
    assert abs(audio.dominant_frequency(source.read(8000), 8000) - 300) < 1


def test_stereo_prompt_is_mixed_down_by_a_saturating_sum(tmp_path):
    left = np.full(800, 30000, np.int16)
    right = np.concatenate([np.full(400, 10000, np.int16), np.full(400, -10000, np.int16)])
    soundfile.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 8000, subtype="PCM_16")
    mono = audio.open_playback(str(tmp_path / "stereo.wav"), 8000).read(800)
    assert (mono[:400] == 32767).all() and (mono[400:] == 20000).all()


def test_raw_prompt_is_headerless_pcm(tmp_path):
    samples = audio.marker_block(300, 8000, 0, 1600)
    samples.astype("<i2").tofile(tmp_path / "prompt.r8")
    source = audio.open_playback(str(tmp_path / "prompt.r8"), 8000)
    assert np.array_equal(source.read(1600), samples)


# ---------------------------------------------------------------------------------------------------- resampling

@settings(max_examples=40, deadline=None)
@given(rates=st.sampled_from([(8000, 16000), (16000, 8000), (8000, 44100), (48000, 8000), (8000, 12000)]),
       cuts=st.lists(st.integers(1, 999), max_size=5))
def test_streaming_resampler_blockwise_equals_whole(rates, cuts):
    signal = audio.marker_block(300, 8000, 0, 1000)
    whole = audio.resample(signal, *rates)
    resampler = audio.LinearResampler(*rates)
    edges = [0, *sorted(cuts), 1000]
    parts = np.concatenate([resampler.process(signal[a:b]) for a, b in zip(edges, edges[1:])])
    assert np.array_equal(parts, whole)


def test_c_number_parsing_matches_atoi_and_atof():
    assert tonestream.atoi(" 12abc") == 12 and tonestream.atoi("-3") == -3 and tonestream.atoi("x") == 0 and tonestream.atoi("") == 0
    assert tonestream.atof("440.5Hz") == 440.5 and tonestream.atof("junk") == 0.0
