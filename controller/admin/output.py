"""Output conventions shared by the admin commands.

A readable table by default, `--json` (one array) or `--nl` (one JSON object per line) for machines;
`Error: ...` on stderr and exit 1 for failures (click's usage errors exit 2); Ctrl-C exits 130;
destructive commands ask unless given `--yes`; progress bars only when stderr is a terminal.
"""

from __future__ import annotations

import functools
import json
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import click

from controller.errors import ConsentlineError
from media import MediaError

__all__ = ["EXIT_INTERRUPTED", "confirm", "emit_object", "emit_rows", "fail", "guarded", "output_options",
           "progress", "destructive_options"]

EXIT_INTERRUPTED = 130


def fail(message: str) -> click.ClickException:
    """The shared `Error: ...` exception (controller.cli.CommandError), to raise."""
    from controller.cli_common import CommandError
    return CommandError(message)


def output_options(fn):
    """--json and --nl, delivered to the command as `output` ("table", "json" or "nl")."""
    fn = click.option("--nl", "output", flag_value="nl", help="Print one JSON object per line.")(fn)
    return click.option("--json", "output", flag_value="json", help="Print a JSON array.")(
        click.option("--table", "output", flag_value="table", default=True, hidden=True)(fn))


def destructive_options(fn):
    fn = click.option("--dry-run", is_flag=True, help="Show exactly what would change; change nothing.")(fn)
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(fn)


def emit_rows(rows: Sequence[dict], columns: Sequence[str], output: str, empty: str) -> None:
    if output == "json":
        click.echo(json.dumps(list(rows), indent=2, sort_keys=True, default=str))
    elif output == "nl":
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True, default=str))
    elif not rows:
        click.echo(empty)
    else:
        click.echo(table(rows, columns))


def emit_object(obj: dict, output: str, as_text: Callable[[dict], str]) -> None:
    """One result: a one-element array for --json, one line for --nl, else `as_text(obj)`."""
    if output == "table":
        click.echo(as_text(obj))
    else:
        emit_rows([obj], (), output, "")


def table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = [list(columns), ["-" * width for width in widths], *cells]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def confirm(question: str, yes: bool) -> None:
    """Go on only with --yes or a "y" answer; anything else changes nothing and exits 1."""
    if yes:
        return
    try:
        answer = click.confirm(question, default=False, err=True)
    except click.Abort:
        answer = False
    if not answer:
        raise fail("not confirmed: nothing changed (give --yes to skip the question)")


@contextmanager
def progress(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """An `advance(n)` function: a bar on a terminal, silent in a pipe or a log."""
    stream = sys.stderr
    if length <= 0 or not stream.isatty():
        yield lambda steps=1: None
        return
    with click.progressbar(length=length, label=label, file=stream) as bar:
        yield bar.update


def guarded(fn):
    """Turn expected failures into `Error: ...` (exit 1) and Ctrl-C into exit 130."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo("Interrupted: every step already reported is complete; the rest was not started.",
                       err=True)
            sys.stdout.flush()
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except (ConsentlineError, MediaError) as exc:
            raise fail(str(exc)) from exc
    return wrapper
