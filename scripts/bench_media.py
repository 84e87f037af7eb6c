"""Measure the media pipeline on this machine; prints readable figures, or one JSON object with --json.

All figures come from one run: ingest of 8 kHz stereo from a spool file into committed chunks (with 1%
of the audio redacted) against a raw os.write of the same bytes in 1 s blocks; the cost of a 30 s cut
and a 30 s redaction in a 1-hour and a 10-minute recording; export speed; buffer bytes per stream.
"Per core" divides audio time by the process's CPU time (all threads), "wall" by elapsed time.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from media import MediaStore, RecordingSettings, SpoolReader  # noqa: E402

RATE_HZ, CHANNELS = 8000, 2
FRAME_BYTES = 2 * CHANNELS


def make_spool(path: Path, seconds: int) -> None:
    rng = np.random.default_rng(7)
    second = rng.integers(-3000, 3000, size=(RATE_HZ * 60, CHANNELS)).astype("<i2").tobytes()
    with open(path, "wb") as handle:
        for _ in range(seconds // 60):
            handle.write(second)


def clock():
    return time.perf_counter(), time.process_time()


def ingest(store: MediaStore, recording_id: str, spool: Path, seconds: int, redact_every_s: int = 100) -> dict:
    """Spool -> committed chunks; every `redact_every_s` the newest 1% is redacted (inside the window)."""
    recording = store.create(recording_id, rate_hz=RATE_HZ, channels=CHANNELS)
    reader = SpoolReader(spool, recording.fmt)
    next_redact = redact_every_s * RATE_HZ
    redact_len = redact_every_s * RATE_HZ // 100
    wall0, cpu0 = clock()
    while data := reader.read():
        recording.append_bytes(data)
        if recording.input_samples >= next_redact:
            end = recording.length_samples
            recording.redact(end - redact_len, end, "bench", "1% redaction")
            next_redact += redact_every_s * RATE_HZ
    recording.finish()
    wall1, cpu1 = clock()
    reader.close()
    peak_extra = recording.peak_buffer_bytes - recording.fmt.samples_to_bytes(
        recording.fmt.seconds_to_samples(recording.settings.holdback_s))
    return {"seconds": seconds, "wall_s": wall1 - wall0, "cpu_s": cpu1 - cpu0,
            "buffer_bytes": max(0, peak_extra), "recording": recording}  # read blocks live in the window


def raw_write(spool: Path, target: Path) -> dict:
    block = RATE_HZ * FRAME_BYTES
    data = spool.read_bytes()
    wall0, cpu0 = clock()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    view = memoryview(data)
    for offset in range(0, len(data), block):
        os.write(fd, view[offset:offset + block])
    os.fsync(fd)
    os.close(fd)
    wall1, cpu1 = clock()
    target.unlink()
    return {"wall_s": wall1 - wall0, "cpu_s": cpu1 - cpu0, "seconds": len(data) / block}


def hash_write_floor(spool: Path, target: Path) -> dict:
    """The bare minimum of an ingest: pread 32 KiB, SHA-256 it, os.write it; no pipeline at all."""
    block, size = 32 * 1024, spool.stat().st_size
    source = os.open(spool, os.O_RDONLY)
    wall0, cpu0 = clock()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    hasher = hashlib.sha256()
    for offset in range(0, size, block):
        data = os.pread(source, block, offset)
        hasher.update(data)
        os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    wall1, cpu1 = clock()
    os.close(source)
    target.unlink()
    return {"wall_s": wall1 - wall0, "cpu_s": cpu1 - cpu0, "seconds": size / (RATE_HZ * FRAME_BYTES)}


def edit_cost_ms(recording, op: str, repeats: int = 5) -> float:
    """Median time of a 30 s cut or redaction at spread-out positions."""
    times = []
    span = 30 * RATE_HZ
    for index in range(repeats):
        start = (recording.length_samples - span) * (index + 1) // (repeats + 2) + 1234
        t0 = time.perf_counter()
        if op == "cut":
            recording.cut(start, start + span, "bench", "cost of a cut")
        else:
            recording.redact(start, start + span, "bench", "cost of a redaction", fill="tone")
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def export_speed(recording, path: Path) -> float:
    t0 = time.perf_counter()
    result = recording.export(path)
    elapsed = time.perf_counter() - t0
    path.unlink()
    return result.samples / RATE_HZ / elapsed


def run(workdir: Path, long_s: int, short_s: int, chunk_s: float) -> dict:
    store = MediaStore(workdir / "store", settings=RecordingSettings(holdback_s=10, chunk_s=chunk_s))
    spool_long, spool_short = workdir / "long.raw", workdir / "short.raw"
    make_spool(spool_long, long_s)
    make_spool(spool_short, short_s)
    raw_write(spool_long, workdir / "raw.out")  # warm-up: a VM's first touch of fresh pages costs several x
    raw_before = raw_write(spool_long, workdir / "raw.out")
    long_run = ingest(store, "long", spool_long, long_s)
    raw_after = raw_write(spool_long, workdir / "raw.out")
    raw = min(raw_before, raw_after, key=lambda run: run["cpu_s"])  # the higher ceiling of the two
    floor = hash_write_floor(spool_long, workdir / "floor.out")
    short_run = ingest(store, "short", spool_short, short_s)
    long_rec, short_rec = long_run["recording"], short_run["recording"]
    os.sync()  # flush the ingest's dirty pages first, so the edit figures measure the edit, not writeback
    figures = {
        "ingest_x_realtime_per_core": round(long_s / long_run["cpu_s"]),
        "ingest_x_realtime_wall": round(long_s / long_run["wall_s"]),
        "raw_write_x_realtime_per_core": round(raw["seconds"] / raw["cpu_s"]),
        "raw_write_x_realtime_wall": round(raw["seconds"] / raw["wall_s"]),
        "read_sha256_write_x_realtime_per_core": round(floor["seconds"] / floor["cpu_s"]),
        "cut_30s_in_1h_ms": round(edit_cost_ms(long_rec, "cut"), 2),
        "cut_30s_in_10min_ms": round(edit_cost_ms(short_rec, "cut"), 2),
        "redact_30s_in_1h_ms": round(edit_cost_ms(long_rec, "redact"), 2),
        "redact_30s_in_10min_ms": round(edit_cost_ms(short_rec, "redact"), 2),
        "export_x_realtime": round(export_speed(long_rec, workdir / "export.wav")),
        "export_flac_x_realtime": round(export_speed(short_rec, workdir / "export.flac")),
        "buffer_bytes_per_stream": long_run["buffer_bytes"],
        "holdback_bytes_per_stream": long_rec.fmt.samples_to_bytes(long_rec.fmt.seconds_to_samples(10)),
        "chunk_s": chunk_s, "long_recording_s": long_s, "short_recording_s": short_s, "format": "8 kHz stereo PCM16",
    }
    figures["ingest_vs_raw_ratio"] = round(figures["ingest_x_realtime_per_core"]
                                           / figures["raw_write_x_realtime_per_core"], 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dir", help="work directory (default: a temporary one under the system temp dir)")
    parser.add_argument("--long-s", type=int, default=3600)
    parser.add_argument("--short-s", type=int, default=600)
    parser.add_argument("--chunk-s", type=float, default=RecordingSettings.chunk_s, help="chunk length")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-media-") as workdir:
        figures = run(Path(workdir), args.long_s, args.short_s, args.chunk_s)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return
    print(f"ingest, 8 kHz stereo, 1% redacted : {figures['ingest_x_realtime_per_core']:>9,} x real time per core"
          f" ({figures['ingest_x_realtime_wall']:,} wall)")
    print(f"raw os.write, 1 s blocks (ceiling): {figures['raw_write_x_realtime_per_core']:>9,} x real time per core"
          f" ({figures['raw_write_x_realtime_wall']:,} wall); ratio {figures['ingest_vs_raw_ratio']}")
    print(f"pread + SHA-256 + os.write floor : {figures['read_sha256_write_x_realtime_per_core']:>9,} x real time per core")
    print(f"cut 30 s     : {figures['cut_30s_in_1h_ms']:7.2f} ms in 1 h, {figures['cut_30s_in_10min_ms']:7.2f} ms in 10 min")
    print(f"redact 30 s  : {figures['redact_30s_in_1h_ms']:7.2f} ms in 1 h, "
          f"{figures['redact_30s_in_10min_ms']:7.2f} ms in 10 min")
    print(f"export       : {figures['export_x_realtime']:,} x real time (WAV), "
          f"{figures['export_flac_x_realtime']:,} x (FLAC)")
    print(f"buffer/stream: {figures['buffer_bytes_per_stream']:,} bytes beyond the hold-back window "
          f"({figures['holdback_bytes_per_stream']:,} bytes)")


if __name__ == "__main__":
    main()
