"""The GDPR Art. 30 record of processing activities, built from the live configuration (pure).

The configuration has no controller identity yet, so the caller passes it (`ControllerIdentity`, from
command options). Everything else comes from the config: one activity per recording process (purpose,
lawful basis, consent mechanism, retention), the helpdesk endpoints as recipients, the roles that can
listen to or export recordings, and the security measures this system itself implements.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from controller.admin.retention import RetentionRules, retention_days
from controller.config import Config, Process

__all__ = ["ControllerIdentity", "build_ropa", "render_markdown"]

NOT_GIVEN = "(not given: set ropa.controller_name, controller_contact and dpo in the configuration)"
CONSENT_MECHANISMS = {
    "de": "opt-in: the caller presses the agree key before anything is recorded",
    "de-optout": "opt-out menu: recording unless the caller presses the opt-out key",
    "uk": "notice played in full before recording (permitted business purpose)",
    "us-all-party": "notice to every party before recording",
    "none": "never recorded",
}
DATA_SUBJECTS = ("callers (customers and prospects)", "agents and staff on the call")
DATA_CATEGORIES = (
    "call audio of the caller and the agent (voice), after any cuts and redactions",
    "phone numbers (caller and dialled number)",
    "call times, routing inputs and the process applied",
    "consent evidence: prompts played (with their SHA-256), keys pressed with times, outcome",
    "customer record: country, do-not-record flag, preferred process",
    "tags and flags set by agents and staff",
)
SECURITY_MEASURES = (
    "fail-closed consent: any error before consent is confirmed leaves the call unrecorded",
    "role-based permissions for every action on a recording (agents by extension, staff by user name)",
    "append-only, hash-chained audit log of every action, refusals included",
    "audio stored as chunks with a SHA-256 each in an append-only manifest; integrity verifiable",
    "redaction, cuts and deletion rewrite or destroy the audio; a tombstone without personal data remains",
    "legal hold blocks deletion; its release needs two different authorised users",
    "erasure by phone number (Art. 17) and access export (Art. 15) as audited commands",
    "helpdesk webhooks signed with HMAC; recording links signed and expiring",
    "raw audio spooled on a local (tmpfs) directory only while the call runs",
)


@dataclass(frozen=True)
class ControllerIdentity:
    name: str | None = None
    contact: str | None = None
    dpo: str | None = None  # data protection officer


def build_ropa(config: Config, identity: ControllerIdentity, rules: RetentionRules, generated_at: str) -> dict:
    """The record as plain data (the JSON form)."""
    return {
        "generated_at": generated_at,
        "config_version": config.config_version,
        "controller": {key: value or NOT_GIVEN for key, value in asdict(identity).items()},
        "activities": [_activity(p, rules) for _, p in sorted(config.processes.items())],
        "data_subjects": list(DATA_SUBJECTS),
        "data_categories": list(DATA_CATEGORIES),
        "recipients": _recipients(config),
        "retention_rules": rules.describe(),
        "security_measures": list(SECURITY_MEASURES),
    }


def _activity(process: Process, rules: RetentionRules) -> dict[str, Any]:
    days = retention_days(process.retention_days, process.purpose, (), rules)
    return {"process": process.name, "records": process.records, "pack": process.pack,
            "country": process.country, "purpose": process.purpose, "lawful_basis": process.lawful_basis,
            "consent": CONSENT_MECHANISMS.get(process.pack, process.pack) + (
                " (strict: consent asked as in de)" if process.pack == "us-all-party" and process.strict else ""),
            "withdrawal": (f"code {process.withdrawal.code}: {process.withdrawal.on_withdraw} what was kept"
                           if process.withdrawal.code and process.records else None),
            "retention_days": days if process.records else None}


def _recipients(config: Config) -> list[dict[str, str]]:
    helpdesk: Mapping[str, Any] = config.helpdesk or {}
    masking = helpdesk.get("mask_numbers", False)
    recipients = []
    for endpoint in helpdesk.get("endpoints", ()) or ():
        if isinstance(endpoint, Mapping):
            host = urlsplit(str(endpoint.get("url", ""))).hostname or "?"
            recipients.append({"name": f"helpdesk endpoint {endpoint.get('name', '?')} ({host})",
                               "receives": "recording events with call facts; phone numbers "
                                           + ("as dialled" if masking is False else f"masked ({masking})")})
    for role, granted in sorted(config.roles.items()):
        access = sorted(granted & {"listen", "export"})
        if access:
            recipients.append({"name": f"staff with role {role}", "receives": f"recordings ({', '.join(access)})"})
    return recipients


def render_markdown(record: dict) -> str:
    c = record["controller"]
    lines = ["# Record of processing activities (GDPR Art. 30)", "",
             f"Generated {record['generated_at']} from configuration version {record['config_version']}.", "",
             "## Controller", "", f"- Name: {c['name']}", f"- Contact: {c['contact']}",
             f"- Data protection officer: {c['dpo']}", "", "## Processing activities", "",
             "| process | recorded | purpose | lawful basis | consent | withdrawal | retention (days) |",
             "|---|---|---|---|---|---|---|"]
    for a in record["activities"]:
        cells = [a["process"], "yes" if a["records"] else "no", a["purpose"], a["lawful_basis"], a["consent"],
                 a["withdrawal"], a["retention_days"]]
        lines.append("| " + " | ".join("-" if v is None else str(v) for v in cells) + " |")
    rules = record["retention_rules"]
    lines += ["", "Retention rules beyond the processes: "
              + ("; ".join([f"purpose {k}: {v} days" for k, v in rules["purpose_days"].items()]
                           + [f"tag {t}" for t in rules["tag_rules"]]) or "none") + ".", ""]
    for title, key in (("Data subjects", "data_subjects"), ("Categories of personal data", "data_categories"),
                       ("Technical and organisational security measures", "security_measures")):
        lines += [f"## {title}", "", *(f"- {item}" for item in record[key]), ""]
    lines += ["## Recipients", "", *(f"- {r['name']}: {r['receives']}" for r in record["recipients"])]
    if not record["recipients"]:
        lines.append("- none configured")
    return "\n".join(lines) + "\n"
