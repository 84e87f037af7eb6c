"""`consentline purge` and `consentline hold apply|release|list`: retention and legal holds."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from controller.admin import holds as legal_holds
from controller.admin import purge as purging
from controller.admin.output import (confirm, destructive_options, emit_rows, fail, guarded, output_options,
                                     progress)
from controller.admin.retention import merged, rules_from_config
from controller.admin.retention_options import retention_options
from controller.admin.session import open_session, session_options
from controller.cli_common import When
from controller.index import timestamp
from controller.permissions import authorise

PURGE_COLUMNS = ("id", "process", "opened_at", "retention_days", "expired_at", "result")


@click.command("purge")
@click.option("--now", type=When(), help="Purge as if it were this time (default: the clock); audited.")
@retention_options
@destructive_options
@output_options
@session_options
@guarded
def purge(now, rules, yes, dry_run, output, config_file, data_dir, user):
    """Delete every recording past its retention that is not under legal hold (permission `purge`).

    Safe from cron (add --yes): idempotent, one recording at a time, quiet unless something is purged.
    Exit 1 when a recording could not be purged (the others still are).
    """
    now = now or datetime.now(timezone.utc)
    with open_session(config_file, data_dir, user) as session:
        decision = session.require("purge", "purge", details={"dry_run": dry_run})  # before anything is read
        rules = merged(rules_from_config(session.config.retention), rules)
        items = list(purging.expired_recordings(session.index, session.config, rules, now))
        if dry_run:
            session.record(decision, action="purge", reason="dry run: nothing changed",
                           details={"dry_run": True, "now": timestamp(now), "candidates": len(items)})
            rows = [{**item.to_dict(), "result": "kept: legal hold" if item.held else "would purge"}
                    for item in items]
        elif not items:
            rows = []
        else:
            confirm(f"Purge {sum(not i.held for i in items)} expired recordings (as of {timestamp(now)})?", yes)
            with progress(len(items), "Purging") as advance:
                rows = purging.purge(session, items, rules, now, advance=advance)
    emit_rows(rows, PURGE_COLUMNS, output, f"Nothing expired as of {timestamp(now)}.")
    failed = [row for row in rows if row["result"].startswith("failed")]
    if failed:
        raise fail(f"{len(failed)} expired recordings could not be purged (see above); the rest were")


@click.group("hold")
def hold():
    """Legal holds: held recordings cannot be deleted, cut, redacted, purged or erased."""


@hold.command("apply")
@click.option("--recording", "recording_ids", multiple=True, metavar="ID", help="Hold this recording (repeatable).")
@click.option("--phone", help="Hold everything about this number (its recordings, now and later).")
@click.option("--reason", required=True, help="The case or matter (kept with the hold and in the audit log).")
@output_options
@session_options
@guarded
def hold_apply(recording_ids, phone, reason, output, config_file, data_dir, user):
    """Put recordings, or everything about a number, under legal hold (permission `legal_hold_apply`)."""
    if not recording_ids and not phone:
        raise click.UsageError("give --recording ID (repeatable) or --phone NUMBER")
    with open_session(config_file, data_dir, user) as session:
        rows = legal_holds.apply_holds(session, reason, recording_ids, phone)
    for row in rows:
        row["result"] = "held" if row["changed"] else "already held"
    emit_rows(rows, ("hold_id", "recording_id", "phone", "result"), output, "")


@hold.command("release")
@click.argument("hold_id", type=click.IntRange(min=1))
@click.option("--reason", default="", help="Why (kept in the audit log).")
@output_options
@session_options
@guarded
def hold_release(hold_id, reason, output, config_file, data_dir, user):
    """Release a hold: one user asks, a second, different user confirms (both `legal_hold_release`)."""
    with open_session(config_file, data_dir, user) as session:
        step = legal_holds.release_hold(session, hold_id, reason)
    row = {"hold_id": step.hold_id, "step": step.step, "audit_id": step.audit_id}
    if output != "table":
        emit_rows([row], (), output, "")
    elif step.step == "requested":
        click.echo(f"Hold {hold_id}: release requested by {user}; a second user with legal_hold_release must "
                   f"run `consentline hold release {hold_id}` to release it")
    else:
        click.echo(f"Hold {hold_id}: released")


@hold.command("list")
@click.option("--all", "include_released", is_flag=True, help="Released holds too.")
@output_options
@session_options
@guarded
def hold_list(include_released, output, config_file, data_dir, user):
    """List legal holds (permission `legal_hold_apply` or `legal_hold_release`)."""
    with open_session(config_file, data_dir, user) as session:
        may_apply = authorise(session.config, session.actor, "legal_hold_apply")
        decision = may_apply if may_apply.allowed else session.require("legal_hold_release", "hold_list")
        rows = legal_holds.holds(session.index, active_only=not include_released)
        session.record(decision, action="hold_list", details={"rows": len(rows)})
    emit_rows(rows, legal_holds.HOLD_COLUMNS, output, "No legal holds.")
