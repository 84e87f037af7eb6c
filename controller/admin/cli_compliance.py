"""`consentline erase`, `consentline access` and `consentline ropa`: the data-subject and Art. 30 commands."""

from __future__ import annotations

import json
from pathlib import Path

import click

from controller.admin import access as access_export
from controller.admin import erasure
from controller.admin.output import (confirm, destructive_options, emit_object, emit_rows, guarded, output_options,
                                     progress)
from controller.admin.retention import merged, rules_from_config
from controller.admin.retention_options import retention_options
from controller.admin.ropa import ControllerIdentity, build_ropa, render_markdown
from controller.admin.session import open_session, session_options
from controller.index import timestamp

ERASE_COLUMNS = ("what", "id", "call_uuid", "result")


@click.command("erase")
@click.option("--phone", required=True, help="The data subject's number, international format (+49...).")
@click.option("--reason", default="data subject request", show_default=True,
              help="Why (kept in every tombstone and in the audit log).")
@destructive_options
@output_options
@session_options
@guarded
def erase(phone, reason, yes, dry_run, output, config_file, data_dir, user):
    """Erase everything about a phone number, leaving tombstones (GDPR Article 17; permission `erase`).

    Recordings under legal hold, and their calls, are kept; a hold on the number stops the erasure.
    """
    with open_session(config_file, data_dir, user) as session:
        decision = session.require("erase", "erase", details={"dry_run": dry_run})  # before anything is read
        plan = erasure.plan_erasure(session.index, phone)
        rows = _plan_rows(plan, "would go" if dry_run else "erased")
        if dry_run:
            session.record(decision, action="erase", reason="dry run: nothing changed",
                           details={"dry_run": True, "recordings": len(plan.recordings), "calls": len(plan.calls)})
            emit_rows(rows, ERASE_COLUMNS, output, "Nothing about this number in the index.")
            return
        if plan.empty:
            emit_rows([], ERASE_COLUMNS, output, "Nothing about this number in the index.")
            return
        confirm(f"Erase {len(plan.recordings)} recordings and {len(plan.calls)} calls' personal data for good?", yes)
        with progress(len(plan.recordings), "Erasing") as advance:
            erasure.erase(session, plan, reason, advance=advance)
    emit_rows(rows, ERASE_COLUMNS, output, "")


def _plan_rows(plan: erasure.ErasurePlan, verb: str) -> list[dict]:
    rows = [{"what": "recording", "id": r["id"], "call_uuid": r["call_uuid"], "result": f"{verb}: audio and tags"}
            for r in plan.recordings]
    rows += [{"what": "recording", "id": r["id"], "call_uuid": r["call_uuid"], "result": f"kept: {r['why']}"}
             for r in plan.kept]
    rows += [{"what": "call", "id": uuid, "call_uuid": uuid, "result": f"{verb}: the number"} for uuid in plan.calls]
    if plan.customer:
        rows.append({"what": "customer", "id": None, "call_uuid": None, "result": f"{verb}: customer record"})
    if plan.outbox_events:
        rows.append({"what": "outbox", "id": None, "call_uuid": None,
                     "result": f"{verb}: the number in {plan.outbox_events} helpdesk events"})
    rows += [{"what": "number", "id": hold, "call_uuid": None, "result": "under legal hold: erasure refused"}
             for hold in plan.number_holds]
    return rows


@click.command("access")
@click.option("--phone", required=True, help="The data subject's number, international format (+49...).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="A new (or empty) folder for the export.")
@click.option("--format", "audio_format", type=click.Choice(access_export.FORMATS), default="wav",
              show_default=True, help="Audio format of the recordings.")
@output_options
@session_options
@guarded
def access(phone, out_dir, audio_format, output, config_file, data_dir, user):
    """Export a data subject's recordings, consent evidence and calls (GDPR Article 15; permission `export`)."""
    with open_session(config_file, data_dir, user) as session:
        count = len(access_export.collect(session.index, access_export.check_phone(phone))["recordings"])
        with progress(count, "Exporting") as advance:
            data = access_export.export_access(session, phone, out_dir, audio_format, advance=advance)
    summary = {"out": str(Path(out_dir)), "calls": len(data["calls"]), "recordings": len(data["recordings"]),
               "audio_files": [r["audio_file"] for r in data["recordings"] if r["audio_file"]],
               "customer_record": data["customer"] is not None}
    emit_object(summary, output, lambda s: (
        f"Exported {s['calls']} calls, {s['recordings']} recordings ({len(s['audio_files'])} with audio) "
        f"to {s['out']}; start with {Path(s['out']) / 'index.md'}"))


@click.command("ropa")
@click.option("--format", "out_format", type=click.Choice(("markdown", "json")), default="markdown",
              show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--controller-name", help="The controller's legal name (default: ropa.controller_name in the config).")
@click.option("--controller-contact", help="The controller's address or contact (default: ropa.controller_contact).")
@click.option("--dpo", help="The data protection officer's contact (default: ropa.dpo).")
@retention_options
@session_options
@guarded
def ropa(out_format, out_file, controller_name, controller_contact, dpo, rules, config_file, data_dir, user):
    """The record of processing (GDPR Article 30), from the live configuration (any configured user)."""
    with open_session(config_file, data_dir, user, create_index=True) as session:  # the audit log needs one
        decision = session.require_configured("ropa")
        identity = session.config.ropa
        rules = merged(rules_from_config(session.config.retention), rules)
        record = build_ropa(session.config,
                            ControllerIdentity(controller_name or identity.get("controller_name"),
                                               controller_contact or identity.get("controller_contact"),
                                               dpo or identity.get("dpo")), rules, timestamp())
        text = json.dumps(record, indent=2, sort_keys=True) + "\n" if out_format == "json" else render_markdown(record)
        if out_file:
            Path(out_file).write_text(text)
        session.record(decision, action="ropa", details={"format": out_format})
    if out_file:
        click.echo(f"Wrote the record of processing ({out_format}) to {out_file}")
    else:
        click.echo(text, nl=False)
