"""Index benchmark: load N recordings (default 1,000,000) and time what the admin commands do.

Prints: bulk load rate through controller.admin.bulkload against raw sqlite3 executemany into the same
schema in one transaction (same run, same rows); p99 of a lookup by phone number; p99 of a tag search
for a page of 50; erasure of one number (its recordings with audio on disk); purge rate over the
recordings that have expired. `--json` prints the figures as one object.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.admin import erasure, purge, queries  # noqa: E402
from controller.admin.bulkload import bulk_load  # noqa: E402
from controller.admin.retention import RetentionRules  # noqa: E402
from controller.admin.session import AdminSession  # noqa: E402
from controller.config import load_config  # noqa: E402
from controller.index import Index  # noqa: E402
from controller.permissions import Actor  # noqa: E402
from media import MediaStore  # noqa: E402

EXAMPLE = ROOT / "controller" / "examples" / "consentline.example.yaml"
START = datetime(2023, 1, 1, tzinfo=timezone.utc)
SPAN_DAYS = 730
PROCESSES = (("de", 0.6), ("uk", 0.25), ("us-all-party", 0.15))
# Tag frequencies from common to rare: the search must stay fast for all of them.
TAGS = (("sale", 0.05), ("training", 0.03), ("complaint", 0.01), ("escalated", 0.001), ("fraud", 0.0001))
DIDS = ("+4930100100", "+4930100200", "+442070100100", "+14155550100")


def numbers(count: int) -> list[str]:
    return [f"+49151{n:08d}" for n in range(count)]


def generate(count: int, phones: list[str], seed: int = 7):
    """calls, recordings and tags as lists of tuples (same values for both loaders)."""
    rng = random.Random(seed)
    step_s = SPAN_DAYS * 86400 / count
    process_names = [name for name, _ in PROCESSES]
    process_weights = [weight for _, weight in PROCESSES]
    calls, recordings, tags = [], [], []
    for i in range(count):
        at = (START + timedelta(seconds=i * step_s)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        uuid = f"call-{i:08d}"
        process = rng.choices(process_names, process_weights)[0]
        calls.append((uuid, rng.choice(phones), rng.choice(DIDS), at, process, process, "bench-1", "agreed", "key 1"))
        recordings.append((uuid, uuid, f"/recordings/{uuid}", "completed", at, at, 120.0))
        for tag, share in TAGS:
            if rng.random() < share:
                tags.append((uuid, tag, "agent:1001", at, at))
    return calls, recordings, tags


CALL_COLUMNS = ("uuid", "caller", "dialed", "started_at", "process", "pack", "config_version", "consent_outcome",
                "consent_reason")
RECORDING_COLUMNS = ("id", "call_uuid", "path", "state", "opened_at", "updated_at", "duration_s")
TAG_COLUMNS = ("recording_id", "tag", "actor", "at", "opened_at")


def load_ours(path: Path, calls, recordings, tags) -> float:
    with Index(path) as index:
        started = time.perf_counter()
        bulk_load(index, calls=(dict(zip(CALL_COLUMNS, row)) for row in calls),
                  recordings=(dict(zip(RECORDING_COLUMNS, row)) for row in recordings),
                  tags=(dict(zip(TAG_COLUMNS, row)) for row in tags))
        return time.perf_counter() - started


def load_raw(path: Path, calls, recordings, tags) -> float:
    Index(path).close()  # the same schema, indexes and triggers, then plain sqlite3
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    started = time.perf_counter()
    conn.execute("BEGIN")
    for table, columns, rows in (("calls", CALL_COLUMNS, calls), ("recordings", RECORDING_COLUMNS, recordings),
                                 ("recording_tags", TAG_COLUMNS, tags)):
        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def p99_ms(fn, arguments) -> float:
    timings = []
    for argument in arguments:
        started = time.perf_counter()
        fn(argument)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.quantiles(timings, n=100)[98]


def bench_config(root: Path) -> Path:
    text = EXAMPLE.read_text()
    text = text.replace("prompts_dir: prompts", f"prompts_dir: {EXAMPLE.parent / 'prompts'}")
    text = text.replace("data_dir: data", f"data_dir: {root / 'data'}")
    text = text.replace("recordings_dir: recordings", f"recordings_dir: {root / 'recordings'}")
    path = root / "bench.yaml"
    path.write_text(text)
    return path


def erase_one_number(session: AdminSession, phone: str) -> tuple[float, int]:
    """With a second of stereo audio on disk for each of the number's recordings."""
    ids = [row["id"] for row in queries.recordings_of_number(session.index, phone)]
    for recording_id in ids:
        recording = session.store.create(recording_id, rate_hz=8000, channels=2, holdback_s=0)
        recording.append(np.ones((8000, 2), dtype=np.int16))
        recording.finish()
        session.store.forget(recording_id)
    started = time.perf_counter()
    erasure.erase(session, erasure.plan_erasure(session.index, phone), "bench")
    return (time.perf_counter() - started) * 1000, len(ids)


def purge_expired(session: AdminSession, extra_days: float) -> tuple[float, int]:
    """Purge as of 90 days (de's retention) plus `extra_days` after the first recording."""
    now = START + timedelta(days=90 + extra_days)
    started = time.perf_counter()
    rules = RetentionRules()
    items = list(purge.expired_recordings(session.index, session.config, rules, now))
    results = purge.purge(session, items, rules, now)
    elapsed = time.perf_counter() - started
    return len([r for r in results if r["result"] == "purged"]) / elapsed, len(results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000, help="lookups and searches each")
    parser.add_argument("--purge-days", type=float, default=20.0,
                        help="how many days of de recordings are past retention at purge time")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        figures = run(root, args)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
    else:
        print_figures(figures)
    return 0


def run(root: Path, args) -> dict:
    phones = numbers(max(10, args.recordings // 5))  # about five recordings per number
    calls, recordings, tags = generate(args.recordings, phones)
    rows = len(calls) + len(recordings) + len(tags)
    raw_s = load_raw(root / "raw.db", calls, recordings, tags)
    config = load_config(bench_config(root))
    ours_s = load_ours(config.controller.index_path, calls, recordings, tags)
    del calls, recordings
    rng = random.Random(11)
    figures = {"recordings": args.recordings, "rows_loaded": rows, "tag_rows": len(tags),
               "bulk_rows_per_s": round(rows / ours_s), "raw_rows_per_s": round(rows / raw_s)}
    figures["bulk_vs_raw"] = round(figures["bulk_rows_per_s"] / figures["raw_rows_per_s"], 3)
    with Index(config.controller.index_path) as index:
        figures["phone_lookup_p99_ms"] = round(p99_ms(lambda phone: queries.recordings_of_number(index, phone),
                                                      [rng.choice(phones) for _ in range(args.queries)]), 3)
        tag_names = [name for name, _ in TAGS]
        figures["tag_search_p99_ms"] = round(p99_ms(
            lambda tag: queries.search_recordings(index, tags=[tag], limit=50),
            [tag_names[i % len(tag_names)] for i in range(args.queries)]), 3)
        session = AdminSession(config, index, Actor.user("compliance-officer"), MediaStore(root / "recordings"))
        figures["erase_one_number_ms"], figures["erased_recordings"] = (
            round(value, 3) for value in erase_one_number(session, rng.choice(phones)))
        rate, purged = purge_expired(session, args.purge_days)
        figures["purge_rows_per_s"], figures["purged_recordings"] = round(rate), purged
    return figures


def print_figures(f: dict) -> None:
    print(f"index benchmark: {f['recordings']:,} recordings ({f['rows_loaded']:,} rows with calls and "
          f"{f['tag_rows']:,} tags)")
    print(f"  bulk load          {f['bulk_rows_per_s']:>12,} rows/s  ({f['bulk_vs_raw']:.0%} of raw sqlite3 "
          f"{f['raw_rows_per_s']:,} rows/s, one transaction; target >= 30%)")
    print(f"  phone lookup p99   {f['phone_lookup_p99_ms']:>12.3f} ms      (target < 1 ms)")
    print(f"  tag search p99     {f['tag_search_p99_ms']:>12.3f} ms      (page of 50; target < 10 ms)")
    print(f"  erase one number   {f['erase_one_number_ms']:>12.1f} ms      ({f['erased_recordings']} recordings "
          f"with audio)")
    print(f"  purge              {f['purge_rows_per_s']:>12,} rows/s  ({f['purged_recordings']:,} expired "
          f"recordings)")


if __name__ == "__main__":
    sys.exit(main())
