"""tone_stream:// as mod_tone_stream and libteletone render it, sample for sample, and C's atoi/atof that
FreeSWITCH's argument parsing relies on."""

from __future__ import annotations

import re

import numpy as np

MAX_GENERATED_SAMPLES = 48000 * 600    # bound on what one tone_stream may generate


class ToneStreamError(Exception):
    """A tone_stream script that would generate more than MAX_GENERATED_SAMPLES."""


def atoi(text: str) -> int:
    """C's atoi: optional blanks and sign, then digits; anything else ends the number (0 if none)."""
    match = re.match(r"\s*([+-]?[0-9]+)", text)
    return int(match.group(1)) if match else 0


def atof(text: str) -> float:
    """C's atof on a decimal prefix (0.0 if none)."""
    match = re.match(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text)
    return float(match.group(0)) if match else 0.0


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
            raise ToneStreamError("tone_stream script generates too much audio")
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
