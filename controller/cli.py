"""The `consentline` command: one click group for the controller and the admin scripts.

Failures print `Error: <message>` on stderr and exit 1; usage errors exit 2 (click's own).
Commands that read the index find it with `--data DIR` (the file DIR/consentline.db), else
`--config FILE` (its controller.data_dir), else ./data.
"""

from __future__ import annotations

import json

import click

from controller import __version__
from controller.cli_common import (CommandError, When, _index_path, _load, _open_index, _print_rows,  # noqa: F401
                                   index_options, list_options, open_index_from)
from controller.customers import read_customers_csv
from controller.errors import ConsentlineError
from controller.tags import recordings_with

CALL_COLUMNS = ("started_at", "uuid", "caller", "dialed", "process", "consent_outcome", "recordings",
                "hangup_cause")
RECORDING_COLUMNS = ("opened_at", "id", "call_uuid", "caller", "dialed", "process", "state", "duration_s")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="consentline")
def cli():
    """Consentline: lawful call recording for FreeSWITCH."""


def main():
    cli()


@cli.command("check-config")
@click.argument("config_file", type=click.Path(dir_okay=False))
def check_config(config_file):
    """Validate a configuration file; print warnings for doubtful settings."""
    config = _load(config_file)
    from controller.admin.retention import rules_from_config  # these sections have their own schemas
    from controller.agentcodes import parse_all
    from controller.helpdesk import parse_helpdesk
    try:
        parse_helpdesk(config.helpdesk)
        parse_all(config)
        rules_from_config(config.retention)
        unknown = set(config.ropa) - {"controller_name", "controller_contact", "dpo"}
        if unknown:
            raise CommandError(f"ropa.{sorted(unknown)[0]}: expected controller_name, controller_contact or dpo")
    except ConsentlineError as exc:
        raise CommandError(f"{config_file}: {exc}") from exc
    for warning in config.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"OK: {config_file}: config_version {config.config_version}, {len(config.processes)} processes, "
               f"{len(config.routing)} routing rules, {len(config.warnings)} warnings")


@cli.group()
def customers():
    """Customer records used by routing (country, do-not-record, preferred process)."""


@customers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Replace every customer record instead of adding and updating.")
@index_options
def customers_import(csv_file, replace, data_dir, config_file):
    """Import customers from CSV: phone, country, do_not_record (true/false), optional process.

    Nothing is imported if any row is bad. With --config, each process must be configured.
    """
    index_path = _index_path(data_dir, config_file)  # usage errors first
    known = set(_load(config_file).processes) if config_file else None
    try:
        records = read_customers_csv(csv_file, known_processes=known)
    except ConsentlineError as exc:
        raise CommandError(str(exc)) from exc
    with _open_index(index_path, create=True) as index:
        try:
            count = index.import_customers(records, replace_all=replace)
        except ConsentlineError as exc:
            raise CommandError(str(exc)) from exc
        click.echo(f"Imported {count} customers into {index.path}" + (" (replacing all)" if replace else ""))


@cli.group()
def calls():
    """Calls in the index."""


@calls.command("list")
@list_options
def calls_list(as_json, phone, since, until, limit, data_dir, config_file):
    """List calls, newest first."""
    with open_index_from(data_dir, config_file) as index:
        rows = index.calls(phone=phone, since=since, until=until, limit=limit)
    _print_rows(rows, CALL_COLUMNS, as_json, "No calls.")


@calls.command("show")
@click.argument("call_uuid")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@index_options
def calls_show(call_uuid, as_json, data_dir, config_file):
    """Show one call: routing decision, consent evidence and recordings."""
    with open_index_from(data_dir, config_file) as index:
        call = index.call(call_uuid)
        if call is None:
            raise CommandError(f"no call {call_uuid} in {index.path}")
        evidence = index.evidence(call_uuid)
        recordings = index.recordings(call_uuid=call_uuid)
    if as_json:
        click.echo(json.dumps({"call": call, "evidence": evidence, "recordings": recordings}, indent=2,
                              sort_keys=True))
        return
    for key in ("uuid", "caller", "dialed", "started_at", "ended_at", "hangup_cause", "process", "config_version",
                "consent_outcome", "consent_reason"):
        click.echo(f"{key + ':':17}{'' if call.get(key) is None else call[key]}")
    if call["routing"]:
        click.echo(f"{'routing:':17}{call['routing']['reason']}")
    click.echo("evidence:")
    for item in evidence:
        details = ", ".join(f"{k}={v}" for k, v in item.items() if k not in ("call_uuid", "seq", "at", "kind"))
        click.echo(f"  {item['seq']:>3}  {item['at']}  {item['kind']:8} {details}")
    _print_rows(recordings, RECORDING_COLUMNS, False, "No recordings.")


@cli.group()
def recordings():
    """Recordings in the index."""


@recordings.command("list")
@list_options
@click.option("--tag", "tags", multiple=True, help="Only recordings with this tag (repeat: with all of them).")
@click.option("--flagged/--not-flagged", default=None, help="Only flagged, or only unflagged, recordings.")
def recordings_list(as_json, phone, since, until, limit, data_dir, config_file, tags, flagged):
    """List recordings, newest first."""
    with open_index_from(data_dir, config_file) as index:
        try:
            rows = recordings_with(index, tags, flagged, phone=phone, since=since, until=until, limit=limit)
        except ConsentlineError as exc:
            raise CommandError(str(exc)) from exc
    _print_rows(rows, RECORDING_COLUMNS, as_json, "No recordings.")


from controller.cli_run import run  # noqa: E402  (command modules import helpers from this one)
cli.add_command(run)
from controller.cli_audit import audit  # noqa: E402
cli.add_command(audit)
from controller.cli_webhooks import webhooks_group  # noqa: E402
cli.add_command(webhooks_group)
from controller.admin import cli_recordings  # noqa: E402,F401  (adds its subcommands to `recordings`)
from controller.admin.cli_compliance import access, erase, ropa  # noqa: E402
cli.add_command(erase)
cli.add_command(access)
cli.add_command(ropa)
from controller.admin.cli_retention import hold, purge  # noqa: E402
cli.add_command(purge)
cli.add_command(hold)
