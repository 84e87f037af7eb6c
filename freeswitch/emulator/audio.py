"""Audio the emulated switch hears and plays: marker tones, FreeSWITCH playback URLs and prompt files.

Everything is 16-bit signed PCM, mono, at the channel rate; positions are sample indices, never wall clock.
Sources render by position, so reading a stream in blocks of any size gives the same samples as reading it whole.
"""

from __future__ import annotations

import functools
import os
import re

import numpy as np
import soundfile

MARKER_AMPLITUDE = 8192          # a quarter of full scale
MARKER_STEP_HZ = 20
MARKER_CYCLE_S = 170
CALLER_MARKER_BASE_HZ = 300
AGENT_MARKER_BASE_HZ = 310
# FreeSWITCH fills a frame it has no audio for with 0xFF bytes: comfort-noise read frames and, in a recording,
# the write side of a channel it sends nothing to. As int16 that is -1, which is why idle mono recordings hold -2.
FILL_SAMPLE = -1
MAX_GENERATED_SAMPLES = 48000 * 600    # bound on what one tone_stream may generate
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


def atoi(text: str) -> int:
    """C's atoi: optional blanks and sign, then digits; anything else ends the number (0 if none)."""
    match = re.match(r"\s*([+-]?[0-9]+)", text)
    return int(match.group(1)) if match else 0


def atof(text: str) -> float:
    """C's atof on a decimal prefix (0.0 if none)."""
    match = re.match(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text)
    return float(match.group(0)) if match else 0.0


# ---------------------------------------------------------------------------------------------------- tone_stream

_MAX_TONES = 18
_DTMF_HZ = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
            "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
            "7": (859, 1209), "8": (859, 1336), "9": (859, 1477), "C": (859, 1633),
            "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633)}
# libteletone's quarter-wave table: sample i is 32768 * sin((i + 0.5) * pi / 256).
_SINES = np.minimum(np.round(32768 * np.sin((np.arange(128) + 0.5) * np.pi / 256)), 32767).astype(np.int64)


def tone_stream(spec: str, rate_hz: int) -> tuple[np.ndarray, int | None]:
    """The samples of a tone_stream:// script and how many times they play (None: forever), as mod_tone_stream.

    `;loops=N` (any case) is cut from the script and repeats the generated buffer N times in all (-1: forever).
    The script itself is teletone's: `%(on_ms,off_ms,f1[,f2...])` tones, DTMF digits, `;`-separated settings
    `v=` (dB), `d=`/`w=` (default on/off ms), `l=N` (next tone N times), `L=N` (whole script N times), and
    `>=`/`<=`/`+=` (volume decay). Generation is DDS-exact, including the phase restart at every tone.
    """
    position = spec.lower().find(";loops=")
    plays: int | None = 1
    if position >= 0:
        loops = atoi(spec[position + 7:])
        spec = spec[:position]
        plays = None if loops < 0 else max(loops, 1)
    generator = _Teletone(rate_hz)
    generator.run(spec)
    samples = np.concatenate(generator.chunks) if generator.chunks else np.zeros(0, np.int16)
    return samples, plays


def _strchr(text: bytearray, start: int, char: str) -> int:
    """Index of `char` at or after `start` but before the next NUL, or -1 (C's strchr on the in-place string)."""
    return text.find(char.encode(), start, text.index(0, start))


def _cstr(text: bytearray, start: int) -> str:
    return text[start:text.index(0, start)].decode("latin-1")


def _scale_factor(level_db: np.float32) -> int:
    power = np.float32(10.0) ** ((np.float32(level_db) - np.float32(6.16)) / np.float32(20.0))
    return int(power * np.float32(32767.0 * 1.414214))


def _dds(frequency_hz: float, n: int, rate_hz: int) -> np.ndarray:
    step = int(frequency_hz * 4294967296.0 / rate_hz)
    step = step & 0xFFFFFFFF if -2**31 <= step < 2**31 else 0x80000000
    accumulator = (np.arange(n, dtype=np.uint64) * np.uint64(step)) & np.uint64(0xFFFFFFFF)
    top = (accumulator >> np.uint64(23)).astype(np.int64)
    index = np.where(top & 128, 127 - (top & 127), top & 127)
    return np.where(top & 256, -_SINES[index], _SINES[index])


class _Teletone:
    """A port of libteletone's generator (teletone_run and teletone_mux_tones), parser quirks included."""

    def __init__(self, rate_hz: int):
        self.rate, self.duration, self.wait = rate_hz, 2000, 500
        self.volume, self.decay_factor = np.float32(-7.0), np.float32(1.0)
        self.decay_step = self.decay_direction = self.loops = self.script_loops = 0
        self.tmp_duration = self.tmp_wait = -1
        self.chunks: list[np.ndarray] = []
        self._generated = 0
        self._looping = False

    def run(self, script: str) -> None:
        while True:
            self._run_pass(bytearray(script.encode("latin-1", "replace")) + b"\0")
            if self.script_loops > 0:
                self.script_loops -= 1
            if not self.script_loops:
                return

    def _run_pass(self, text: bytearray) -> None:
        cur = 0
        while text[cur]:
            if text[cur] in b" \r\n":
                cur += 1
                continue
            end = _strchr(text, cur, ";")
            if end >= 0:
                text[end] = 0
                end += 1
            if text[cur + 1] == ord("="):
                self._set(chr(text[cur]), _cstr(text, cur + 2))
            else:
                cur = self._tones(text, cur)
                if cur is None:
                    return                                  # syntax error: the rest of this pass is skipped
            if end >= 0:
                cur = end
            elif text[cur]:
                cur += 1

    def _set(self, name: str, value: str) -> None:
        ms = atoi(value) * (self.rate // 1000)
        if name == "v" and -63 <= atof(value) <= 0:
            self.volume = np.float32(atof(value))
        elif name == "d":
            self.duration = ms
        elif name == "w":
            self.wait = ms
        elif name in (">", "<"):
            self.decay_step, self.decay_direction = ms, (-1 if name == ">" else 1)
        elif name == "+":
            self.decay_factor = np.float32(atof(value))
        elif name == "l":
            self.loops = atoi(value)
        elif name == "L" and not self._looping and atoi(value) > 0:
            self.script_loops, self._looping = atoi(value), True
        elif name == "r" and atoi(value) > 0:
            self.rate = atoi(value)

    def _tones(self, text: bytearray, cur: int) -> int | None:
        while text[cur]:
            if text[cur] in b" \r\n":
                cur += 1
                continue
            self.tmp_duration = self.tmp_wait = -1
            frequencies: tuple[float, ...] | None = None
            after = -1
            if text[cur + 1] == ord("("):
                after, fields, parsed = self._fields(text, cur + 2)
                if fields > 2 and text[cur] == ord("%"):
                    frequencies = parsed
                elif fields != 2 or text[cur] == ord("%"):
                    return None
            if frequencies is None and 0 < text[cur] < 127:
                frequencies = _DTMF_HZ.get(chr(text[cur]), ())
            if frequencies and frequencies[0]:
                self._emit(frequencies)
            cur = after if after >= 0 else cur + 1
        return cur

    def _fields(self, text: bytearray, start: int) -> tuple[int, int, tuple[float, ...]]:
        """Parse `on,off,f1,...)` in place: (index after ')' or -1, number of fields, frequencies)."""
        after = _strchr(text, start, ")")
        if after >= 0:
            text[after] = 0
            after += 1
        count, field_start, frequencies = 0, start, []
        while True:
            following = _strchr(text, field_start, ",")
            if following >= 0:
                text[following] = 0
                following += 1
            value = _cstr(text, field_start)
            if count == 0:
                self.tmp_duration = atoi(value) * (self.rate // 1000)
            elif count == 1:
                self.tmp_wait = atoi(value) * (self.rate // 1000)
            else:
                frequencies.append(atof(value))
            count += 1
            if following < 0 or count - 2 >= _MAX_TONES:
                break
            field_start = following
        return after, count, tuple(frequencies)

    def _emit(self, frequencies: tuple[float, ...]) -> None:
        while True:
            self._mux(frequencies)
            if self.loops > 0:
                self.loops -= 1
            if not self.loops:
                return

    def _mux(self, frequencies: tuple[float, ...]) -> None:
        duration = self.tmp_duration if self.tmp_duration > -1 else self.duration
        wait = self.tmp_wait if self.tmp_wait > -1 else self.wait
        active = []
        for frequency in frequencies[:_MAX_TONES]:
            if not frequency:
                break
            active.append(frequency)
        self._generated += max(duration, 0) + max(wait, 0)
        if self._generated > MAX_GENERATED_SAMPLES:
            raise AudioError("tone_stream script generates too much audio")
        if active and active[0] > 0 and duration > 0:
            scale = self._levels(duration)
            total = np.full(duration, 128, np.int64)
            for frequency in active:
                total += (_dds(frequency, duration, self.rate) * scale) >> 15
            self.chunks.append((np.sign(total) * (np.abs(total) // len(active))).astype(np.int16))
        if wait > 0:
            self.chunks.append(np.zeros(wait, np.int16))

    def _levels(self, n: int) -> np.ndarray | int:
        """Per-sample DDS scale factors: the volume steps by the decay factor every decay_step samples."""
        level = self.volume
        if not self.decay_direction:
            return _scale_factor(level)
        step = max(self.decay_step, 1)
        delta = np.float32(self.decay_direction * self.decay_factor)
        levels = [level]
        while len(levels) <= n // step and delta:
            following = np.float32(levels[-1] + delta)
            if not -63 <= following <= 0:
                break
            levels.append(following)
        scales = np.array([_scale_factor(value) for value in levels], np.int64)
        return scales[np.minimum((np.arange(n) + 1) // step, len(levels) - 1)]
