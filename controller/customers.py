"""Customer records (keyed by phone number) and their CSV import format.

CSV columns: `phone`, `country`, `do_not_record` (true/false) and an optional `process`.
Reading is all or nothing: every bad row is reported as `<file>:<line>: <column>: expected ...,
got ...` in one CustomerImportError, and no record is returned.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Collection

from controller.configyaml import country_code_problem
from controller.errors import CustomerImportError
from controller.routing import normalise_number

REQUIRED_COLUMNS = ("phone", "country", "do_not_record")
OPTIONAL_COLUMNS = ("process",)
E164 = re.compile(r"\+[1-9][0-9]{1,14}")


@dataclass(frozen=True)
class CustomerRecord:
    phone: str  # E.164, the key
    country: str | None  # ISO 3166 code or subdivision ("US-CA"); None when unknown
    do_not_record: bool
    process: str | None = None  # preferred process, if the customer has one


def read_customers_csv(path: str | Path, known_processes: Collection[str] | None = None) -> list[CustomerRecord]:
    """Parse and check the whole file; raise CustomerImportError listing every problem.

    With `known_processes`, a `process` value must name one of them.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            return _read(csv.reader(stream), str(path), known_processes)
    except (OSError, UnicodeDecodeError) as exc:
        raise CustomerImportError(f"{path}: expected a readable UTF-8 CSV file, got {exc}") from exc
    except csv.Error as exc:
        raise CustomerImportError(f"{path}: expected valid CSV, got {exc}") from exc


def _read(reader, where: str, known_processes: Collection[str] | None) -> list[CustomerRecord]:
    header = [column.strip() for column in next(reader, [])]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    unknown = [column for column in header if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        raise CustomerImportError(
            f"{where}:1: header: expected the columns {', '.join(REQUIRED_COLUMNS)} and optionally "
            f"{', '.join(OPTIONAL_COLUMNS)}, each once, got {', '.join(header) or 'an empty file'}")
    problems, records, first_line = [], [], {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"{where}:{line}: row: expected {len(header)} fields, got {len(row)}")
            continue
        record = _record(dict(zip(header, (cell.strip() for cell in row))), known_processes,
                         lambda column, expected, got: problems.append(
                             f"{where}:{line}: {column}: expected {expected}, got {got!r}"))
        if record is None:
            continue
        if record.phone in first_line:
            problems.append(f"{where}:{line}: phone: expected each number once, got {record.phone!r} "
                            f"again (first on line {first_line[record.phone]})")
        first_line.setdefault(record.phone, line)
        records.append(record)
    if problems:
        raise CustomerImportError(problems)
    return records


def _record(cells: dict[str, str], known_processes, report) -> CustomerRecord | None:
    """One row's record, or None after reporting each bad cell."""
    ok = True
    phone = normalise_number(cells["phone"])
    if not E164.fullmatch(phone):
        report("phone", 'an E.164 number like "+4930100100"', cells["phone"])
        ok = False
    country = cells["country"] or None
    if country is not None and country_code_problem(country):
        report("country", f'an ISO 3166 country code like "DE" or "US-CA" ({country_code_problem(country)})',
               cells["country"])
        ok = False
    flag = cells["do_not_record"].lower()
    if flag not in ("true", "false"):
        report("do_not_record", "true or false", cells["do_not_record"])
        ok = False
    process = cells.get("process") or None
    if process is not None and known_processes is not None and process not in known_processes:
        report("process", f"a configured process ({', '.join(sorted(known_processes))})", process)
        ok = False
    return CustomerRecord(phone, country, flag == "true", process) if ok else None
