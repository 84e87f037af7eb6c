"""`consentline audit verify` and `consentline audit list`: check and read the audit log.

The shared CLI helpers (index location, error output, date parsing) come from controller.cli_common.
"""

from __future__ import annotations

import json
import re

import click

from controller import cli_common

from controller import audit as audit_log
from controller.errors import ConsentlineError

LIST_COLUMNS = ("id", "at", "actor", "action", "outcome", "call_uuid", "recording_id", "samples", "reason")




def _when(whole_day: bool):
    def convert(ctx, param, value):
        return None if value is None else cli_common.When(whole_day).convert(value, param, ctx)
    return convert


def _anchor(ctx, param, value):
    if value is None:
        return None
    match = re.fullmatch(r"([1-9][0-9]*):([0-9a-f]{64})", value.strip().lower())
    if not match:
        raise click.BadParameter(f"expected ROW_ID:SHA256 as printed by `audit verify`, got {value!r}")
    return int(match.group(1)), match.group(2)


@click.group("audit")
def audit():
    """The append-only, hash-chained audit log of every action on recordings."""


@audit.command("verify")
@cli_common.index_options
@click.option("--anchor", callback=_anchor, metavar="ROW_ID:SHA256",
              help="A head printed by an earlier verify and kept elsewhere: detects a rewritten log.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def audit_verify(data_dir, config_file, anchor, as_json):
    """Check the hash chain; exit 1 naming the first broken row."""
    with cli_common.open_index_from(data_dir, config_file) as index:
        try:
            result = audit_log.verify(index, anchor=anchor)
        except ConsentlineError as exc:
            raise cli_common.CommandError(str(exc)) from exc
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    elif result.ok:
        click.echo(f"OK: {result.rows_checked} rows, chain intact")
        if result.head_id is not None:
            click.echo(f"Head: {result.head_id}:{result.head_hash} (keep it elsewhere; check with --anchor)")
    if not result.ok:
        raise cli_common.CommandError(f"audit log broken at row {result.first_broken_id}: {result.problem} "
                                   f"({result.rows_checked} rows before it are intact)")


@audit.command("list")
@cli_common.index_options
@click.option("--call", "call_uuid", metavar="UUID", help="Only rows about this call.")
@click.option("--recording", "recording_id", metavar="ID", help="Only rows about this recording.")
@click.option("--actor", help="Only this actor: a name (1001, anna) or kind:name (agent:1001).")
@click.option("--since", callback=_when(False), help="Only from this date or time on (UTC unless given).")
@click.option("--until", callback=_when(True), help="Only before this time; a bare date includes that whole day.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--nl", "as_nl", is_flag=True, help="Print one JSON object per line.")
def audit_list(data_dir, config_file, call_uuid, recording_id, actor, since, until, limit, as_json, as_nl):
    """List audit rows, oldest first."""
    if as_json and as_nl:
        raise click.UsageError("give --json or --nl, not both")
    with cli_common.open_index_from(data_dir, config_file) as index:
        rows = audit_log.entries(index, call_uuid=call_uuid, recording_id=recording_id, actor=actor,
                                 since=since, until=until, limit=limit)
    if as_nl:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True, default=str))
        return
    if not as_json:
        rows = [_for_table(row) for row in rows]
    cli_common._print_rows(rows, LIST_COLUMNS, as_json, "No audit rows.")


def _for_table(row: dict) -> dict:
    start, end = row["start_sample"], row["end_sample"]
    samples = "" if start is None and end is None else f"{'' if start is None else start}-{'' if end is None else end}"
    return {**row, "actor": f"{row['actor_kind']}:{row['actor']}", "samples": samples}
