"""`consentline webhooks list|retry|test`: the helpdesk outbox, its dead letters, and a signed test event.

The shared CLI helpers (index location, error output, tables) come from controller.cli_common.
"""

from __future__ import annotations

import json
import time

import click

from controller import cli_common

from controller import outbox, webhooks
from controller.errors import ConsentlineError
from controller.helpdesk import parse_helpdesk

LIST_COLUMNS = ("id", "event_id", "type", "call_uuid", "endpoint", "state", "attempts", "next_attempt_at",
                "last_error")
EXIT_INTERRUPTED = 130




def _failed(exc: Exception) -> click.ClickException:
    return cli_common.CommandError(str(exc))


@click.group("webhooks")
def webhooks_group():
    """The helpdesk outbox: deliveries, dead letters, retries and a test event."""


@webhooks_group.command("list")
@cli_common.index_options
@click.option("--dead", "only_dead", is_flag=True, help="Only dead letters (out of attempts).")
@click.option("--pending", "only_pending", is_flag=True, help="Only deliveries still to be made.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--nl", "as_nl", is_flag=True, help="Print one JSON object per line.")
def webhooks_list(data_dir, config_file, only_dead, only_pending, limit, as_json, as_nl):
    """List deliveries (one per event and endpoint), newest first."""
    if as_json and as_nl:
        raise click.UsageError("give --json or --nl, not both")
    states = [state for state, wanted in (("dead", only_dead), ("pending", only_pending)) if wanted]
    with cli_common.open_index_from(data_dir, config_file) as index:
        try:
            rows = outbox.deliveries(index, states=states, limit=limit)
        except ConsentlineError as exc:
            raise _failed(exc) from exc
    if as_nl:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    if not as_json:
        rows = [{**row, "last_error": (row["last_error"] or "")[:60]} for row in rows]
    cli_common._print_rows(rows, LIST_COLUMNS, as_json, "No deliveries.")


@webhooks_group.command("retry")
@click.argument("delivery_ids", nargs=-1, type=click.IntRange(min=1), metavar="[ID]...")
@click.option("--all-dead", is_flag=True, help="Retry every dead letter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Only show which deliveries would be retried.")
@cli_common.index_options
def webhooks_retry(delivery_ids, all_dead, yes, dry_run, data_dir, config_file):
    """Make dead (or waiting) deliveries due now, with a fresh attempt count.

    The running controller's sender then delivers them, with their original idempotency keys.
    """
    if bool(delivery_ids) == all_dead:
        raise click.UsageError("give delivery IDs or --all-dead (one of them)")
    with cli_common.open_index_from(data_dir, config_file) as index:
        try:
            unknown = outbox.unknown_ids(index, delivery_ids)
            if unknown:
                raise cli_common.CommandError(f"no delivery {', '.join(map(str, unknown))} in {index.path}")
            chosen = outbox.retry(index, delivery_ids, all_dead=all_dead, dry_run=True)
            if not chosen:
                click.echo("Nothing to retry (delivered deliveries are not sent again).")
                return
            ids = ", ".join(map(str, chosen))
            if dry_run:
                click.echo(f"Would retry {len(chosen)} deliveries: {ids}")
                return
            if not yes:
                click.confirm(f"Retry {len(chosen)} deliveries ({ids})?", abort=True)
            done = outbox.retry(index, chosen)
        except ConsentlineError as exc:
            raise _failed(exc) from exc
    click.echo(f"Retrying {len(done)} deliveries: {', '.join(map(str, done))}")


@webhooks_group.command("test")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="The configuration naming the endpoints and the signing secret.")
@click.option("--endpoint", "endpoint_name", help="Only this endpoint (default: every configured one).")
def webhooks_test(config_file, endpoint_name):
    """Send a signed `webhook.test` event now and print each receiver's answer (exit 1 unless all are 2xx)."""
    try:
        settings = parse_helpdesk(cli_common._load(config_file).helpdesk)
    except ConsentlineError as exc:
        raise _failed(exc) from exc
    endpoints = [e for e in settings.endpoints if endpoint_name in (None, e.name)]
    if not endpoints:
        known = ", ".join(e.name for e in settings.endpoints) or "none configured"
        raise cli_common.CommandError(f"no endpoint {endpoint_name!r} (endpoints: {known})" if endpoint_name
                                   else "no helpdesk endpoints configured (helpdesk.endpoints)")
    failures = []
    try:
        for endpoint in endpoints:
            if not _test_one(endpoint, settings):
                failures.append(endpoint.name)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    if failures:
        raise cli_common.CommandError(f"no 2xx answer from {', '.join(failures)}")


def _test_one(endpoint, settings) -> bool:
    started = time.monotonic()
    try:
        answer = webhooks.send_test(endpoint, settings)
    except webhooks.DeliveryError as exc:
        click.echo(f"{endpoint.name}: {endpoint.url}: no answer: {exc}")
        return False
    elapsed_ms = (time.monotonic() - started) * 1000
    click.echo(f"{endpoint.name}: {endpoint.url}: {answer.status} {answer.reason} ({elapsed_ms:.0f} ms)")
    text = answer.body.decode("utf-8", errors="replace").strip()
    if text:
        click.echo(f"  {text[:500]}")
    return answer.ok
