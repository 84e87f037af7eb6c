"""Properties of the pure signal core (media.redact)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from media import redact
from media.redact import Interval

CHANNELS = 2
audio_st = st.integers(1, 400).flatmap(
    lambda n: arrays(np.int16, (n, CHANNELS), elements=st.integers(-32768, 32767)))
fills = st.sampled_from(["silence", "tone", "noise"])


def interval_in(n):
    return st.tuples(st.integers(0, n), st.integers(0, n)).map(lambda ab: Interval(min(ab), max(ab)))


def split_points(n):
    return st.lists(st.integers(0, n), max_size=8).map(lambda cuts: sorted(set([0, n] + cuts)))


@st.composite
def audio_and_interval(draw):
    audio = draw(audio_st)
    return audio, draw(interval_in(len(audio))), draw(split_points(len(audio)))


def blockwise(fn, audio, points):
    return np.concatenate([fn(audio[a:b], a) for a, b in zip(points, points[1:])] or [audio[:0]])


@given(audio_and_interval(), fills)
def test_replace_blockwise_equals_whole(case, fill):
    audio, interval, points = case
    whole = redact.replace(audio, 0, interval, fill, 8000)
    assert np.array_equal(blockwise(lambda b, s: redact.replace(b, s, interval, fill, 8000), audio, points), whole)


@given(audio_and_interval())
def test_cut_blockwise_equals_whole_and_shrinks_exactly(case):
    audio, interval, points = case
    whole = redact.cut(audio, 0, interval)
    assert len(whole) == len(audio) - interval.length
    assert np.array_equal(blockwise(lambda b, s: redact.cut(b, s, interval), audio, points), whole)
    assert np.array_equal(whole, np.concatenate((audio[:interval.start], audio[interval.end:])))


@given(audio_and_interval(), st.sampled_from([None, (0,), (1,)]))
def test_mute_is_idempotent_keeps_length_and_leaves_the_rest(case, channels):
    audio, interval, _ = case
    once = redact.mute(audio, 0, interval, channels)
    assert once.shape == audio.shape
    assert np.array_equal(redact.mute(once, 0, interval, channels), once)
    muted = list(range(CHANNELS)) if channels is None else list(channels)
    assert not once[interval.start:interval.end, muted].any()
    outside = np.ones(len(audio), bool)
    outside[interval.start:interval.end] = False
    assert np.array_equal(once[outside], audio[outside])  # bit-identical outside the interval
    kept = [c for c in range(CHANNELS) if c not in muted]
    assert np.array_equal(once[:, kept], audio[:, kept])


@given(audio_st.flatmap(lambda a: st.tuples(st.just(a), st.lists(interval_in(len(a)), max_size=3),
                                            split_points(len(a)))),
       st.sampled_from(redact.GAP_FILLS))
@settings(max_examples=150)
def test_render_input_blockwise_and_gap_lengths(case, gap_fill):
    audio, spans, points = case
    pauses = _disjoint(spans[:2])
    masks = [(spans[2], (0,))] if len(spans) == 3 else []
    render = lambda b, s: redact.render_input(b, s, 8000, pauses=pauses, gap_fill=gap_fill, masks=masks)
    whole = render(audio, 0)
    assert np.array_equal(blockwise(render, audio, points), whole)
    paused = sum(p.length for p in pauses)
    assert len(whole) == (len(audio) - paused if gap_fill == "skip" else len(audio))
    keep = np.ones(len(audio), bool)
    for p in pauses:
        keep[p.start:p.end] = False
    for interval, _ in masks:
        keep[interval.start:interval.end] = False
    if gap_fill == "skip":  # untouched samples come through bit-identical, in order
        positions = np.flatnonzero(keep)
        shifted = [i - sum(p.length for p in pauses if p.end <= i) for i in positions]
        assert np.array_equal(whole[shifted], audio[positions])
    else:
        assert np.array_equal(whole[keep], audio[keep])


def test_tone_table_is_cached_and_1khz():
    assert redact.tone_table(8000) is redact.tone_table(8000)
    block = redact.fill_signal("tone", 3, 8000, 8000).astype(float)
    spectrum = np.abs(np.fft.rfft(block))
    assert np.argmax(spectrum) == 1000  # 1 Hz per bin over one second


def _disjoint(intervals):
    out = []
    for interval in sorted(intervals):
        if interval.length and all(interval.clip(o.start, o.end) is None for o in out):
            out.append(interval)
    return out
