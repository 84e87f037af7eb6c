import numpy as np
import pytest

from media import MediaStore, RecordingSettings

RATE_HZ = 8000


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def store(tmp_path, clock):
    return MediaStore(tmp_path / "store", settings=RecordingSettings(holdback_s=2, chunk_s=3), clock=clock)


def noise(seconds: float, channels: int = 2, seed: int = 1, rate_hz: int = RATE_HZ) -> np.ndarray:
    """Random audio: any 16 consecutive samples are unique in practice, so they can be searched on disk."""
    rng = np.random.default_rng(seed)
    return rng.integers(-20000, 20000, size=(int(seconds * rate_hz), channels)).astype("<i2")


def feed(recording, audio: np.ndarray, block: int = 1234) -> None:
    for start in range(0, len(audio), block):
        recording.append(audio[start:start + block])


def disk_bytes(directory) -> bytes:
    """Every byte of every file under a directory, concatenated."""
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def contains_audio(haystack: bytes, audio: np.ndarray, probe_samples: int = 64) -> bool:
    """Whether any probe from the audio (whole frames, every probe_samples) occurs in the bytes."""
    for start in range(0, max(1, len(audio) - probe_samples + 1), probe_samples):
        if audio[start:start + probe_samples].tobytes() in haystack:
            return True
    return False
