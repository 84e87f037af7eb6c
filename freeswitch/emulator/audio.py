"""Audio the emulated switch hears and plays: marker tones, FreeSWITCH playback URLs and prompt files.

Everything is 16-bit signed PCM, mono, at the channel rate; positions are sample indices, never wall clock.
Sources render by position, so reading a stream in blocks of any size gives the same samples as reading it whole.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import soundfile

from freeswitch.emulator.tonestream import atoi, tone_stream

MARKER_AMPLITUDE = 8192          # a quarter of full scale
MARKER_STEP_HZ = 20
MARKER_CYCLE_S = 170
CALLER_MARKER_BASE_HZ = 300
AGENT_MARKER_BASE_HZ = 310
# FreeSWITCH fills a frame it has no audio for with 0xFF bytes: comfort-noise read frames and, in a recording,
# the write side of a channel it sends nothing to. As int16 that is -1, which is why idle mono recordings hold -2.
FILL_SAMPLE = -1
RAW_EXTENSIONS = {".raw": None, ".r8": 8000, ".r16": 16000}   # None: the channel's rate


class AudioError(Exception):
    """Base of this module's errors."""


class PlaybackNotFound(AudioError):
    """The file behind a playback path is missing or unreadable (FreeSWITCH answers FILE NOT FOUND)."""


# ---------------------------------------------------------------------------------------------------- markers

def marker_frequency(base_hz: int, second: int) -> int:
    """Frequency of second `second` (counted from the leg's answer) of marker audio with base `base_hz`."""
    return base_hz + MARKER_STEP_HZ * (second % MARKER_CYCLE_S)


def marker_index(base_hz: int, frequency_hz: float, tolerance_hz: float = 5.0) -> int | None:
    """Which second (mod 170) of marker audio with base `base_hz` has this frequency, or None if none does."""
    index = round((frequency_hz - base_hz) / MARKER_STEP_HZ)
    if 0 <= index < MARKER_CYCLE_S and abs(frequency_hz - marker_frequency(base_hz, index)) <= tolerance_hz:
        return index
    return None


@functools.lru_cache(maxsize=1024)
def _one_second_of(frequency_hz: int, rate_hz: int) -> np.ndarray:
    # Whole-hertz tones hold a whole number of cycles per second, so every second starts at phase 0.
    phase = 2 * np.pi * frequency_hz * np.arange(rate_hz) / rate_hz
    table = np.round(MARKER_AMPLITUDE * np.sin(phase)).astype(np.int16)
    table.flags.writeable = False
    return table


def marker_block(base_hz: int, rate_hz: int, start_sample: int, n: int) -> np.ndarray:
    """Samples [start_sample, start_sample + n) of marker audio, from cached one-second tables."""
    if start_sample < 0 or n < 0:
        raise ValueError("marker audio starts at sample 0")
    second, offset = divmod(start_sample, rate_hz)
    if offset + n <= rate_hz:
        return _one_second_of(marker_frequency(base_hz, second), rate_hz)[offset:offset + n].copy()
    out = np.empty(n, np.int16)
    filled = 0
    while filled < n:
        take = min(n - filled, rate_hz - offset)
        out[filled:filled + take] = _one_second_of(marker_frequency(base_hz, second), rate_hz)[offset:offset + take]
        filled, second, offset = filled + take, second + 1, 0
    return out


def dominant_frequency(samples: np.ndarray, rate_hz: int) -> float:
    """The strongest frequency in a span (Hann window, zero-padded FFT, parabolic peak); 0.0 for silence."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size < 16:
        raise ValueError("need at least 16 samples")
    x = (x - x.mean()) * np.hanning(x.size)
    n_fft = 1 << int(np.ceil(np.log2(max(4 * x.size, rate_hz))))
    spectrum = np.abs(np.fft.rfft(x, n_fft))
    peak = int(np.argmax(spectrum[1:-1])) + 1
    if spectrum[peak] <= 1e-9:
        return 0.0
    left, centre, right = np.log(spectrum[peak - 1:peak + 2] + 1e-12)
    denominator = left - 2 * centre + right
    shift = 0.5 * (left - right) / denominator if denominator else 0.0
    return (peak + shift) * rate_hz / n_fft


# ---------------------------------------------------------------------------------------------------- resampling

class LinearResampler:
    """Streaming linear-interpolation resampler over axis 0 (mono or frames x channels).

    Feeding blocks gives the same output as feeding the whole signal: output sample j sits at input
    position j * from_hz / to_hz, computed exactly in integers.
    """

    def __init__(self, from_hz: int, to_hz: int):
        self.from_hz, self.to_hz = from_hz, to_hz
        self._in_count = 0            # input samples seen
        self._out_count = 0           # output samples produced
        self._last: np.ndarray | None = None     # the previous block's last sample, for interpolation

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block)
        if self.from_hz == self.to_hz or block.shape[0] == 0:
            return block
        x = block.astype(np.float64) if self._last is None else np.concatenate((self._last, block))
        base = self._in_count - (0 if self._last is None else 1)          # global index of x[0]
        end = (self._in_count + block.shape[0] - 1) * self.to_hz // self.from_hz + 1
        whole, remainder = np.divmod(np.arange(self._out_count, end, dtype=np.int64) * self.from_hz, self.to_hz)
        i0 = whole - base
        i1 = np.minimum(i0 + 1, x.shape[0] - 1)
        frac = (remainder / self.to_hz).reshape((-1,) + (1,) * (x.ndim - 1))
        out = x[i0] * (1.0 - frac) + x[i1] * frac
        self._in_count += block.shape[0]
        self._out_count = end
        self._last = x[-1:]
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """A whole mono int16 signal at another rate."""
    return LinearResampler(from_hz, to_hz).process(np.asarray(samples, dtype=np.int16))


# ---------------------------------------------------------------------------------------------------- sources

class Source:
    """Mono int16 audio read in blocks. `read(n)` always returns exactly n samples; silence after the end."""

    path = ""
    duration_samples: int | None = None        # None: endless

    def __init__(self) -> None:
        self.position_samples = 0

    @property
    def done(self) -> bool:
        return self.duration_samples is not None and self.position_samples >= self.duration_samples

    @property
    def remaining_samples(self) -> int | None:
        if self.duration_samples is None:
            return None
        return max(0, self.duration_samples - self.position_samples)

    def read(self, n: int) -> np.ndarray:
        if n < 0:
            raise ValueError("cannot read a negative number of samples")
        out = self._render(self.position_samples, n)
        self.position_samples += n
        return out

    def _render(self, start_sample: int, n: int) -> np.ndarray:
        raise NotImplementedError


class MarkerSource(Source):
    """Endless marker audio of one leg; `start_sample` is how far past the leg's answer the source begins."""

    def __init__(self, base_hz: int, rate_hz: int, start_sample: int = 0):
        super().__init__()
        self.base_hz, self.rate_hz, self.start_sample = base_hz, rate_hz, start_sample
        self.path = f"marker://{base_hz}"

    def _render(self, start_sample: int, n: int) -> np.ndarray:
        return marker_block(self.base_hz, self.rate_hz, self.start_sample + start_sample, n)


class SilenceSource(Source):
    """Digital silence, or FreeSWITCH's comfort noise when `noise_divisor` > 0 (bigger is quieter)."""

    def __init__(self, duration_samples: int | None = None, noise_divisor: int = 0, seed: int | None = None):
        super().__init__()
        self.duration_samples = duration_samples
        self.noise_divisor = noise_divisor
        self._random = np.random.default_rng(seed)

    def _render(self, start_sample: int, n: int) -> np.ndarray:
        audible = n if self.duration_samples is None else max(0, min(n, self.duration_samples - start_sample))
        out = np.zeros(n, np.int16)
        if self.noise_divisor > 0 and audible:
            noise = self._random.integers(-32768, 32768, audible)
            out[:audible] = np.trunc(noise / self.noise_divisor).astype(np.int16)
        return out


class BufferSource(Source):
    """A finite signal played `plays` times (None: forever), as FreeSWITCH's looping audio buffer does."""

    def __init__(self, samples: np.ndarray, plays: int | None = 1, path: str = ""):
        super().__init__()
        self.samples = np.asarray(samples, dtype=np.int16)
        self.path = path
        length = self.samples.shape[0]
        self.duration_samples = 0 if not length else None if plays is None else length * plays

    def _render(self, start_sample: int, n: int) -> np.ndarray:
        length = self.samples.shape[0]
        end = n if self.duration_samples is None else max(0, min(n, self.duration_samples - start_sample))
        out = np.zeros(n, np.int16)
        offset = start_sample % length if length else 0
        if offset + end <= length:
            out[:end] = self.samples[offset:offset + end]
        else:                                       # the end of one play runs into the next
            out[:end] = self.samples[(start_sample + np.arange(end)) % length]
        return out


class WavFileSource(BufferSource):
    """A prompt file (WAV or any format libsndfile reads; headerless .raw/.r8/.r16), mixed to mono, resampled."""

    def __init__(self, path: str, rate_hz: int):
        super().__init__(_load_file(os.path.abspath(path), rate_hz), plays=1, path=path)


def _load_file(path: str, rate_hz: int) -> np.ndarray:
    try:
        stat = os.stat(path)
    except OSError as error:
        raise PlaybackNotFound(f"{path}: {error.strerror}") from error
    return _decode_cached(path, stat.st_mtime_ns, stat.st_size, rate_hz)


@functools.lru_cache(maxsize=64)
def _decode_cached(path: str, mtime_ns: int, size: int, rate_hz: int) -> np.ndarray:
    extension = os.path.splitext(path)[1].lower()
    try:
        if extension in RAW_EXTENSIONS:
            file_rate = RAW_EXTENSIONS[extension] or rate_hz
            frames = np.fromfile(path, dtype="<i2").reshape(-1, 1)
        else:
            frames, file_rate = soundfile.read(path, dtype="int16", always_2d=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise PlaybackNotFound(f"{path}: {error}") from error
    # FreeSWITCH mixes a multi-channel file down to a mono leg by a saturating sum of the channels.
    mono = np.clip(frames.astype(np.int32).sum(axis=1), -32768, 32767).astype(np.int16)
    mono = resample(mono, file_rate, rate_hz)
    mono.flags.writeable = False
    return mono


def open_playback(url_or_path: str, rate_hz: int) -> Source:
    """A source for what the playback application accepts: tone_stream://, silence_stream:// or a file path."""
    if url_or_path.startswith("tone_stream://"):
        samples, plays = tone_stream(url_or_path[len("tone_stream://"):], rate_hz)
        return BufferSource(samples, plays, path=url_or_path)
    if url_or_path.startswith("silence_stream://"):
        source = silence_stream(url_or_path[len("silence_stream://"):], rate_hz)
        source.path = url_or_path
        return source
    if "://" in url_or_path:
        raise PlaybackNotFound(f"no file module for {url_or_path}")
    return WavFileSource(url_or_path, rate_hz)


def silence_stream(spec: str, rate_hz: int) -> SilenceSource:
    """`<ms>[,<noise divisor>]`: a number of ms <= 0 (e.g. -1) plays forever, as mod_tone_stream does."""
    duration_ms, _, noise = spec.partition(",")
    ms = atoi(duration_ms)
    duration = (rate_hz // 1000) * ms if ms > 0 else None
    return SilenceSource(duration, noise_divisor=max(0, atoi(noise)))
