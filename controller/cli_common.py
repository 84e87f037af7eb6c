"""What every `consentline` command module shares: errors, dates, where the index is, tables.

Kept apart from `controller.cli` (which imports every command module) so command modules can import it at the
top without a circular import.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from controller.config import INDEX_FILENAME, load_config
from controller.errors import ConsentlineError
from controller.index import Index


class CommandError(click.ClickException):
    """A failure the user can act on: each line of the message is printed as `Error: ...`."""

    def show(self, file=None) -> None:
        for line in self.format_message().splitlines():
            click.echo(f"Error: {line}", err=True)


class When(click.ParamType):
    """A date (YYYY-MM-DD) or ISO 8601 date and time; naive times are UTC.

    As an upper bound (`whole_day=True`) a bare date includes that whole day.
    """

    name = "DATE"

    def __init__(self, whole_day: bool = False):
        self.whole_day = whole_day

    def convert(self, value, param, ctx):
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"expected a date like 2024-05-01 or 2024-05-01T12:30:00Z, got {value!r}", param, ctx)
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        return parsed + timedelta(days=1) if self.whole_day and len(value) == 10 else parsed


def _index_path(data_dir: str | None, config_file: str | None) -> Path:
    if data_dir and config_file:
        raise click.UsageError("give --data or --config, not both")
    if data_dir:
        return Path(data_dir) / INDEX_FILENAME
    if config_file:
        return _load(config_file).controller.index_path
    return Path("data") / INDEX_FILENAME


def _load(config_file: str):
    try:
        return load_config(config_file)
    except ConsentlineError as exc:
        raise CommandError(str(exc)) from exc


def _open_index(index_path: Path, create: bool = False) -> Index:
    try:
        return Index(index_path, create=create)
    except ConsentlineError as exc:
        raise CommandError(str(exc)) from exc


def index_options(fn):
    """--data and --config: where the index is."""
    fn = click.option("--config", "config_file", type=click.Path(dir_okay=False),
                      help="Find the index through this configuration's controller.data_dir.")(fn)
    return click.option("--data", "data_dir", type=click.Path(file_okay=False),
                        help=f"Directory holding {INDEX_FILENAME} (default ./data).")(fn)


def list_options(fn):
    """Output and filter options shared by the list commands."""
    fn = click.option("--limit", type=click.IntRange(min=1), help="At most this many rows, newest first.")(fn)
    fn = click.option("--until", type=When(whole_day=True),
                      help="Only before this time; a bare date includes that whole day.")(fn)
    fn = click.option("--since", type=When(), help="Only from this date or time on (UTC unless given).")(fn)
    fn = click.option("--phone", help="Only calls from or to this number.")(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")(fn)
    return index_options(fn)


def _print_rows(rows: list[dict], columns: tuple[str, ...], as_json: bool, empty: str) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True, default=str))
        return
    if not rows:
        click.echo(empty)
        return
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    for line in [list(columns), ["-" * w for w in widths], *cells]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def open_index_from(data_dir: str | None, config_file: str | None) -> Index:
    """The index named by --data / --config (see index_options)."""
    return _open_index(_index_path(data_dir, config_file))
