"""GDPR Art. 15 access export: everything the index and the store hold about one phone number.

The folder gets `index.md` (readable by the data subject), `data.json` (the same, for machines) and
`recordings/<id>.wav` (or .flac) for every recording that still has audio. It is built beside the
target under a temporary name and renamed at the end: a failure leaves no half-written export.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from controller.admin.holds import check_phone
from controller.admin.queries import recordings_of_number
from controller.admin.session import AdminSession
from controller.errors import ConsentlineError
from controller.index import Index, timestamp
from media import RecordingGone

__all__ = ["AccessError", "collect", "export_access", "render_index"]

FORMATS = ("wav", "flac")


class AccessError(ConsentlineError):
    """The export folder cannot be used."""


def collect(index: Index, phone: str) -> dict[str, Any]:
    """The subject's data from the index: customer record, calls with evidence, recordings (no audio)."""
    customer = index.query("SELECT phone, country, do_not_record, process, imported_at FROM customers "
                           "WHERE phone = ?", [phone])
    calls = index.query("SELECT uuid, caller, dialed, started_at, ended_at, hangup_cause, process, config_version,"
                        " consent_outcome, consent_reason, consent_at, routing FROM calls WHERE caller = ? OR "
                        "dialed = ? ORDER BY started_at, uuid", [phone, phone])
    for call in calls:
        call["routing"] = json.loads(call["routing"]) if call["routing"] else None
        call["evidence"] = index.evidence(call["uuid"])
    recordings = []
    for row in recordings_of_number(index, phone):
        tombstone = index.query("SELECT removed_at, cause, reason FROM recording_tombstones WHERE recording_id = ?",
                                [row["id"]])
        recordings.append({key: row[key] for key in ("id", "call_uuid", "state", "opened_at", "duration_s", "tags")}
                          | {"removed": tombstone[0] if tombstone else None, "audio_file": None})
    return {"phone": phone, "customer": customer[0] if customer else None, "calls": calls,
            "recordings": recordings}


def export_access(session: AdminSession, raw_phone: str, out_dir: str | Path, audio_format: str = "wav",
                  advance: Callable[[int], None] = lambda steps=1: None) -> dict[str, Any]:
    """Write the export; returns what was collected (with each recording's `audio_file`)."""
    phone, out_dir = check_phone(raw_phone), Path(out_dir)
    if audio_format not in FORMATS:
        raise AccessError(f"format: expected one of {', '.join(FORMATS)}, got {audio_format!r}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise AccessError(f"{out_dir}: expected a new or empty folder")
    decision = session.require("export", "access_export")
    data = collect(session.index, phone)
    data["exported_at"], data["exported_by"] = timestamp(), str(session.actor)
    temp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(temp, ignore_errors=True)
    (temp / "recordings").mkdir(parents=True)
    try:
        for recording in data["recordings"]:
            recording["audio_file"] = _export_audio(session, recording["id"], temp, audio_format)
            advance(1)
        (temp / "data.json").write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        (temp / "index.md").write_text(render_index(data))
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.replace(temp, out_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    session.record(decision, action="access_export", reason="GDPR Art. 15 access request", details={
        "calls": len(data["calls"]), "recordings": len(data["recordings"]),
        "audio_files": sum(1 for r in data["recordings"] if r["audio_file"])})
    return data


def _export_audio(session: AdminSession, recording_id: str, folder: Path, audio_format: str) -> str | None:
    try:
        recording = session.store.open(recording_id)
    except RecordingGone:
        return None
    try:
        name = f"recordings/{recording_id}.{audio_format}"
        recording.export(folder / name)
        return name
    finally:
        session.store.forget(recording_id)


def render_index(data: dict[str, Any]) -> str:
    """The readable summary (Markdown)."""
    lines = [f"# Your data: {data['phone']}", "",
             f"Exported {data['exported_at']} under GDPR Art. 15 (right of access). `data.json` holds the same "
             "information for machines.", ""]
    customer = data["customer"]
    lines += ["## Customer record", "", "None." if customer is None else
              f"Country {customer['country'] or 'unknown'}; do not record: "
              f"{'yes' if customer['do_not_record'] else 'no'}; preferred process: {customer['process'] or 'none'}.",
              "", "## Calls", ""]
    if not data["calls"]:
        lines.append("None.")
    for call in data["calls"]:
        lines += [f"- {call['started_at']} call {call['uuid']} from {call['caller']} to {call['dialed']}: "
                  f"process {call['process'] or '-'}, consent {call['consent_outcome'] or '-'} "
                  f"({call['consent_reason'] or 'no reason recorded'})"]
        for item in call["evidence"]:
            details = ", ".join(f"{k}={v}" for k, v in item.items() if k not in ("call_uuid", "seq", "at", "kind"))
            lines.append(f"  - {item['at']} {item['kind']}: {details}")
    lines += ["", "## Recordings", ""]
    if not data["recordings"]:
        lines.append("None.")
    for rec in data["recordings"]:
        removed = rec["removed"]
        audio = (f"[{rec['audio_file']}]({rec['audio_file']})" if rec["audio_file"] else
                 f"audio removed {removed['removed_at']} ({removed['reason']})" if removed else "no audio kept")
        lines.append(f"- {rec['opened_at']} recording {rec['id']} of call {rec['call_uuid']}, {rec['state']}, "
                     f"{rec['duration_s'] if rec['duration_s'] is not None else '?'} s: {audio}")
    return "\n".join(lines) + "\n"
