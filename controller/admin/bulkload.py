"""Bulk import into the index: calls, recordings and tags in one transaction.

For moving recordings in from another system (and for the index benchmark). Numbers are normalised and
times brought to the index's form, as the call flow's writes do; rows that break a constraint (a
recording of an unknown call, a duplicate id) roll the whole import back with IndexWriteError.
Tag rows may carry their recording's `opened_at`; without it a trigger looks it up row by row.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any, Iterable, Iterator, Mapping

import sqlite_utils

from controller.index import Index, timestamp
from controller.routing import normalise_number

__all__ = ["bulk_load"]

_CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
NUMBERS = {"calls": ("caller", "dialed")}
TIMES = {"calls": ("started_at", "ended_at", "consent_at"), "recordings": ("opened_at", "updated_at"),
         "recording_tags": ("at", "opened_at")}


def bulk_load(index: Index, *, calls: Iterable[Mapping[str, Any]] = (), recordings: Iterable[Mapping[str, Any]] = (),
              tags: Iterable[Mapping[str, Any]] = (), batch_rows: int = 10_000) -> dict[str, int]:
    """Insert everything in one transaction; returns rows per table. Each table's rows share the first's keys."""
    counts = {}
    with index.transaction("bulk load") as db:
        for table, rows in (("calls", calls), ("recordings", recordings), ("recording_tags", tags)):
            counts[table] = _insert(db, table, rows, batch_rows)
    return counts


def _insert(db: sqlite_utils.Database, table: str, rows: Iterable[Mapping[str, Any]], batch_rows: int) -> int:
    rows, count, sql, columns = iter(rows), 0, None, ()
    for batch in _batches(rows, batch_rows):
        if sql is None:
            columns = tuple(batch[0])
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        db.conn.executemany(sql, [_values(table, row, columns) for row in batch])
        count += len(batch)
    return count


def _values(table: str, row: Mapping[str, Any], columns: tuple[str, ...]) -> tuple:
    values = dict(row)
    for column in NUMBERS.get(table, ()):
        if values.get(column) is not None:
            values[column] = normalise_number(values[column])
    for column in TIMES.get(table, ()):
        value = values.get(column)
        if value is not None and not (isinstance(value, str) and _CANONICAL_TIME.fullmatch(value)):
            values[column] = timestamp(value)
    return tuple(values.get(column) for column in columns)


def _batches(rows: Iterator[Mapping[str, Any]], size: int) -> Iterator[list[Mapping[str, Any]]]:
    while batch := list(islice(rows, size)):
        yield batch
