"""Virtual time for the emulator: real time multiplied by a speed factor.

Everything the switch does (prompt lengths, DTMF timing, recording growth, event timestamps) runs on this clock,
so a 45 s call takes 45 s at speed 1 for the demo and under a second at speed 50 in tests.
"""

import time

import gevent


class VirtualClock:
    def __init__(self, speed: float = 1.0, epoch_s: float | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._real_start = time.monotonic()
        self._epoch_start = time.time() if epoch_s is None else epoch_s

    def set_speed(self, speed: float) -> None:
        """Change the speed without a jump in virtual time."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        now = self.now()
        self.speed = float(speed)
        self._real_start = time.monotonic() - now / self.speed

    def now(self) -> float:
        """Virtual seconds since the clock started."""
        return (time.monotonic() - self._real_start) * self.speed

    def epoch(self) -> float:
        """Virtual wall-clock time, seconds since the Unix epoch."""
        return self._epoch_start + self.now()

    def epoch_us(self) -> int:
        return int(self.epoch() * 1_000_000)

    def real_seconds(self, virtual_s: float) -> float:
        return max(0.0, virtual_s) / self.speed

    def sleep(self, virtual_s: float) -> None:
        gevent.sleep(self.real_seconds(virtual_s))

    def sleep_until(self, virtual_t: float) -> None:
        self.sleep(virtual_t - self.now())
