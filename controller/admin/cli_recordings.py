"""`consentline recordings ...`: list, show, export, tag, untag, flag, unflag, cut, redact, delete.

Added to the `recordings` group of controller.cli (imported there). `list` replaces the basic list with
more filters and keeps its options; it alone works without `--as` (reads only). Cut and redact need the
`cut` permission, delete `delete`, export `export`, show and an audited list `listen`.
"""

from __future__ import annotations

from pathlib import Path

import click

from controller import audit, tags
from controller.admin import queries, removal
from controller.legalholds import held_among
from controller.admin.output import (confirm, destructive_options, emit_object, emit_rows, fail, guarded,
                                     output_options)
from controller.admin.session import AdminSession, open_session, session_options
from controller.cli import When, recordings
from controller.config import INDEX_FILENAME
from controller.index import RECORDING_STATES, Index, timestamp
from media import MediaError, RecordingGone

EXPORT_FORMATS = ("wav", "flac")


def _recording_row(session: AdminSession, recording_id: str) -> dict:
    row = queries.recording(session.index, recording_id)
    if row is None:
        raise fail(f"no recording {recording_id} in {session.index.path}")
    return row


@recordings.command("list")
@click.option("--phone", help="Only recordings of calls from or to this number.")
@click.option("--since", type=When(), help="Only from this date or time on (UTC unless given).")
@click.option("--until", type=When(whole_day=True), help="Only before this time; a bare date includes that day.")
@click.option("--process", help="Only recordings of calls routed to this process.")
@click.option("--tag", "tag_names", multiple=True, help="Only recordings with this tag (repeat: with all of them).")
@click.option("--flagged/--not-flagged", default=None, help="Only flagged, or only unflagged, recordings.")
@click.option("--state", type=click.Choice(RECORDING_STATES), help="Only recordings in this state.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows, newest first.")
@output_options
@session_options(user_required=False)
@guarded
def recordings_list(phone, since, until, process, tag_names, flagged, state, limit, output, config_file, data_dir,
                    user):
    """List recordings, newest first (with --as: checked for `listen` and audited)."""
    if user and not config_file:
        raise click.UsageError("--as needs --config (the permission matrix)")
    filters = dict(phone=phone, since=since, until=until, process=process, tags=tag_names, flagged=flagged,
                   state=state, limit=limit)
    if user:
        with open_session(config_file, data_dir, user) as session:
            decision = session.require("listen", "list", details={"filters": _shown(filters)})
            rows = queries.search_recordings(session.index, **filters)
            session.record(decision, action="list", details={"filters": _shown(filters), "rows": len(rows)})
    else:
        with Index(_index_path(config_file, data_dir), create=False) as index:
            rows = queries.search_recordings(index, **filters)
    emit_rows(rows, queries.LIST_COLUMNS, output, "No recordings.")


def _index_path(config_file, data_dir) -> Path:
    if data_dir:
        return Path(data_dir) / INDEX_FILENAME
    if config_file:
        from controller.config import load_config  # noqa: PLC0415
        return load_config(config_file).controller.index_path
    return Path("data") / INDEX_FILENAME


def _shown(filters: dict) -> dict:
    """Filters for the audit row: which were used, never the phone number itself."""
    return {key: (True if key == "phone" else timestamp(value) if key in ("since", "until") else
                  list(value) if isinstance(value, tuple) else value)
            for key, value in filters.items() if value not in (None, ())}


@recordings.command("show")
@click.argument("recording_id")
@output_options
@session_options
@guarded
def recordings_show(recording_id, output, config_file, data_dir, user):
    """One recording: call, consent evidence, tags, flag, holds, segment manifest and audit trail."""
    with open_session(config_file, data_dir, user) as session:
        decision = session.require("listen", "show", recording_id=recording_id)
        row = _recording_row(session, recording_id)
        shown = {"recording": row, "call": session.index.call(row["call_uuid"]),
                 "evidence": session.index.evidence(row["call_uuid"]), "flag": tags.flag_of(session.index,
                                                                                            recording_id),
                 "holds": session.index.query("SELECT * FROM legal_holds WHERE recording_id = ? ORDER BY id",
                                              [recording_id]),
                 "tombstone": (session.index.query("SELECT * FROM recording_tombstones WHERE recording_id = ?",
                                                   [recording_id]) or [None])[0],
                 "manifest": _manifest(session, recording_id)}
        session.record(decision, action="show", call_uuid=row["call_uuid"], recording_id=recording_id)
        shown["audit"] = audit.entries(session.index, recording_id=recording_id)
    emit_object(shown, output, _show_text)


def _manifest(session: AdminSession, recording_id: str) -> dict | None:
    """Format, length, chunks (first sample, samples, file) and operations; None when no audio is left."""
    from media.manifest import parse  # noqa: PLC0415  (the op lines are not in the Recording API)
    try:
        recording = session.store.open(recording_id)
    except RecordingGone:
        return None
    except MediaError as exc:
        raise fail(f"recording {recording_id}: its manifest is damaged or incomplete: {exc}") from exc
    try:
        entries, _ = parse((recording.directory / "manifest.jsonl").read_bytes())
        ops = [{k: v for k, v in e.items() if k not in ("t", "remove", "insert")} for e in entries if e["t"] == "op"]
        return {"rate_hz": recording.fmt.rate_hz, "channels": recording.fmt.channels,
                "length_samples": recording.length_samples,
                "chunks": [{"first_sample": s, "samples": n, "file": f} for s, n, f in recording.chunk_layout()],
                "operations": ops}
    finally:
        session.store.forget(recording_id)


def _show_text(shown: dict) -> str:
    rec, call, lines = shown["recording"], shown["call"], []
    for key in ("id", "call_uuid", "state", "opened_at", "updated_at", "duration_s", "tags", "flagged", "held"):
        value = rec.get(key)
        lines.append(f"{key + ':':13}{', '.join(value) if isinstance(value, list) else '' if value is None else value}")
    lines += [f"{'caller:':13}{call['caller']}", f"{'dialed:':13}{call['dialed']}",
              f"{'process:':13}{call['process'] or ''}",
              f"{'consent:':13}{call['consent_outcome'] or ''} ({call['consent_reason'] or ''})", "evidence:"]
    for item in shown["evidence"]:
        details = ", ".join(f"{k}={v}" for k, v in item.items() if k not in ("call_uuid", "seq", "at", "kind"))
        lines.append(f"  {item['seq']:>3}  {item['at']}  {item['kind']:8} {details}")
    for hold in shown["holds"]:
        lines.append(f"hold {hold['id']}: {'released ' + hold['released_at'] if hold['released_at'] else 'active'}"
                     f" ({hold['reason']})")
    if shown["tombstone"]:
        t = shown["tombstone"]
        lines.append(f"removed:     {t['removed_at']} by {t['actor']} ({t['cause']}: {t['reason']})")
    manifest = shown["manifest"]
    if manifest:
        lines.append(f"manifest:    {manifest['length_samples']} samples at {manifest['rate_hz']} Hz, "
                     f"{manifest['channels']} channels, {len(manifest['chunks'])} chunks")
        lines += [f"  chunk {c['file']}  from {c['first_sample']}  {c['samples']} samples" for c in manifest["chunks"]]
        lines += [f"  op {o.get('op_id')}: {o.get('op')} [{o.get('start_sample')}, {o.get('end_sample')}) by "
                  f"{o.get('actor')}: {o.get('reason')}" for o in manifest["operations"]]
    lines.append("audit:")
    lines += [f"  {a['id']:>5}  {a['at']}  {a['actor_kind']}:{a['actor']}  {a['action']}  {a['outcome']}  "
              f"{a['reason'] or ''}" for a in shown["audit"]]
    return "\n".join(lines)


@recordings.command("export")
@click.argument("recording_id")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False), help="The audio file to write.")
@click.option("--format", "audio_format", type=click.Choice(EXPORT_FORMATS),
              help="wav or flac (default: from the file name's extension).")
@click.option("--channel", type=click.IntRange(0, 1), help="Only one channel: 0 the caller, 1 the agent.")
@session_options
@guarded
def recordings_export(recording_id, out_file, audio_format, channel, config_file, data_dir, user):
    """Export a recording's audio to WAV or FLAC."""
    if audio_format is None and Path(out_file).suffix.lower() not in (".wav", ".flac"):
        raise click.UsageError("give --format, or an --out name ending in .wav or .flac")
    with open_session(config_file, data_dir, user) as session:
        decision = session.require("export", "export", recording_id=recording_id)
        row = _recording_row(session, recording_id)
        try:
            result = session.store.open(recording_id).export(out_file, format=audio_format, channel=channel)
        finally:
            session.store.forget(recording_id)
        session.record(decision, action="export", call_uuid=row["call_uuid"], recording_id=recording_id,
                       start_sample=0, end_sample=result.samples, details={"format": result.format})
    click.echo(f"Exported {recording_id}: {result.samples} samples at {result.rate_hz} Hz, {result.channels} "
               f"channel(s), {result.format}, to {result.path}")


@recordings.command("tag")
@click.argument("recording_id")
@click.argument("names", nargs=-1, required=True)
@session_options
@guarded
def recordings_tag(recording_id, names, config_file, data_dir, user):
    """Add tags to a recording (permission `tag`)."""
    _tag_or_flag("tag", recording_id, names, config_file, data_dir, user)


@recordings.command("untag")
@click.argument("recording_id")
@click.argument("names", nargs=-1, required=True)
@session_options
@guarded
def recordings_untag(recording_id, names, config_file, data_dir, user):
    """Remove tags from a recording (permission `tag`)."""
    _tag_or_flag("untag", recording_id, names, config_file, data_dir, user)


@recordings.command("flag")
@click.argument("recording_id")
@click.option("--reason", help="Why (kept in the audit log).")
@session_options
@guarded
def recordings_flag(recording_id, reason, config_file, data_dir, user):
    """Flag a recording for review (permission `flag`)."""
    _tag_or_flag("flag", recording_id, [reason], config_file, data_dir, user)


@recordings.command("unflag")
@click.argument("recording_id")
@click.option("--reason", help="Why (kept in the audit log).")
@session_options
@guarded
def recordings_unflag(recording_id, reason, config_file, data_dir, user):
    """Clear a recording's flag (permission `flag`)."""
    _tag_or_flag("unflag", recording_id, [reason], config_file, data_dir, user)


TAG_ACTIONS = {"tag": tags.tag, "untag": tags.untag, "flag": tags.flag, "unflag": tags.unflag}


def _tag_or_flag(action: str, recording_id: str, values, config_file, data_dir, user) -> None:
    """Through controller.tags, which authorises and audits each change; a refusal ends the command."""
    with open_session(config_file, data_dir, user) as session:
        for value in values:
            error = None
            with session.index.transaction(f"{action} {recording_id}") as db:  # the change and its event together
                try:
                    result = TAG_ACTIONS[action](session.index, session.config, session.actor, recording_id, value)
                except tags.TagError as exc:  # its `failed` audit row must still commit
                    error = exc
                else:
                    if result.allowed and result.changed and action in ("tag", "flag"):
                        removal.report(db, session.helpdesk, _recording_row(session, recording_id),
                                f"recording.{action}ged",
                                {"tag": tags.normalise_tag(value)} if action == "tag" else {"reason": value})
            if error is not None:
                raise error
            if not result.allowed:
                raise fail(f"refused: {result.reason}")
            what = f"{action} {tags.normalise_tag(value)}" if action in ("tag", "untag") else action
            click.echo(f"{recording_id}: {what}" + ("" if result.changed else " (no change)"))


def _edit_options(fn):
    fn = click.option("--reason", required=True, help="Why (kept in the manifest and the audit log).")(fn)
    fn = click.option("--end-s", type=click.FloatRange(min=0), required=True, help="End, seconds from the start.")(fn)
    return click.option("--start-s", type=click.FloatRange(min=0), required=True,
                        help="Start, seconds from the start of the recording as it is now.")(fn)


@recordings.command("cut")
@click.argument("recording_id")
@_edit_options
@destructive_options
@session_options
@guarded
def recordings_cut(recording_id, start_s, end_s, reason, yes, dry_run, config_file, data_dir, user):
    """Remove [START, END) from a finished recording; later audio moves up (permission `cut`)."""
    _edit(recording_id, start_s, end_s, reason, yes, dry_run, config_file, data_dir, user, "cut", {})


@recordings.command("redact")
@click.argument("recording_id")
@_edit_options
@click.option("--fill", type=click.Choice(("silence", "tone")), default="silence", show_default=True)
@click.option("--channel", type=click.IntRange(0, 1), help="Only one channel: 0 the caller, 1 the agent.")
@destructive_options
@session_options
@guarded
def recordings_redact(recording_id, start_s, end_s, reason, fill, channel, yes, dry_run, config_file, data_dir,
                      user):
    """Replace [START, END) by silence or tone; the length stays (permission `cut`)."""
    options = {"fill": fill, "channels": None if channel is None else (channel,)}
    _edit(recording_id, start_s, end_s, reason, yes, dry_run, config_file, data_dir, user, "redact", options)


def _edit(recording_id, start_s, end_s, reason, yes, dry_run, config_file, data_dir, user, op, options) -> None:
    if end_s <= start_s:
        raise click.UsageError(f"--end-s ({end_s:g}) must be after --start-s ({start_s:g})")
    with open_session(config_file, data_dir, user) as session:
        decision = session.require("cut", op, recording_id=recording_id)
        row = _not_held(session, decision, _recording_row(session, recording_id), op)
        try:
            recording = session.store.open(recording_id)
            rate = recording.fmt.rate_hz
            start, end = round(start_s * rate), round(end_s * rate)
            if end > recording.length_samples:
                raise fail(f"{recording_id} is {recording.length_samples / rate:g} s long: "
                           f"[{start_s:g} s, {end_s:g} s) is outside it; nothing changed")
            if dry_run:
                click.echo(f"Would {op} samples [{start}, {end}) of {recording_id} ({end_s - start_s:g} s)")
                return
            confirm(f"{op} {end_s - start_s:g} s of {recording_id}?", yes)
            method = recording.cut if op == "cut" else recording.redact
            result = method(start, end, str(session.actor), reason, **options)
            length = recording.length_samples
        finally:
            session.store.forget(recording_id)
        with session.index.transaction(f"{op} {recording_id}") as db:
            db.execute("UPDATE recordings SET duration_s = ?, updated_at = ? WHERE id = ?",
                       [length / rate, timestamp(), recording_id])
            session.record(decision, action=op, db=db, call_uuid=row["call_uuid"], recording_id=recording_id,
                           start_sample=start, end_sample=end, reason=reason,
                           details={"manifest_op_id": result.op_id, **({"fill": options["fill"]} if options else {})})
            if op == "cut":
                _report_cut(db, session.helpdesk, row, start, end, length / rate)
    click.echo(f"{recording_id}: {op} samples [{start}, {end}); now {length / rate:g} s")


def _report_cut(db, helpdesk, row: dict, start: int, end: int, duration_s: float) -> None:
    """`recording.cut` for the helpdesk, in the cut's transaction: its copy must lose the same audio."""
    removal.report(db, helpdesk, row, "recording.cut",
                   {"start_sample": start, "end_sample": end, "duration_s": duration_s})


def _not_held(session: AdminSession, decision, row: dict, action: str) -> dict:
    """The row, unless a legal hold covers it: then the refusal is audited and the command ends."""
    if held_among(session.index, [row["id"]]):
        session.record(decision, "refused", action=action, call_uuid=row["call_uuid"], recording_id=row["id"],
                       reason="under legal hold")
        raise fail(f"refused: {row['id']} is under legal hold; nothing changed")
    return row


@recordings.command("delete")
@click.argument("recording_id")
@click.option("--reason", required=True, help="Why (kept in the tombstone and the audit log).")
@destructive_options
@session_options
@guarded
def recordings_delete(recording_id, reason, yes, dry_run, config_file, data_dir, user):
    """Destroy a recording's audio; a tombstone with the reason stays (permission `delete`)."""
    with open_session(config_file, data_dir, user) as session:
        decision = session.require("delete", "delete", recording_id=recording_id)
        row = _not_held(session, decision, _recording_row(session, recording_id), "delete")
        if row["state"] == "purged":
            raise fail(f"{recording_id} was already removed; nothing changed")
        samples = removal.check_audio(session.store, recording_id)
        if dry_run:
            click.echo(f"Would delete {recording_id} ({'no audio left' if samples is None else f'{samples} samples'})"
                       f" and keep a tombstone")
            return
        confirm(f"Delete recording {recording_id} for good?", yes)
        removal.destroy_audio(session.store, recording_id, str(session.actor), reason)
        with session.index.transaction(f"delete {recording_id}") as db:
            removal.mark_removed(db, row, "delete", str(session.actor), reason, helpdesk=session.helpdesk)
            session.record(decision, action="delete", db=db, call_uuid=row["call_uuid"], recording_id=recording_id,
                           reason=reason)
    click.echo(f"Deleted {recording_id}; a tombstone remains")
