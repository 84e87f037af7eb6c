"""`consentline ropa`: the Art. 30 record from the live configuration."""

import json

from test_admin_support import audit_rows, make_world


def test_markdown_and_json_follow_the_configuration(tmp_path):
    world = make_world(tmp_path)
    md = world.cli("ropa", "--controller-name", "Example GmbH", "--dpo", "dpo@example.org")
    assert md.exit_code == 0, md.output
    text = md.stdout
    assert text.startswith("# Record of processing activities (GDPR Art. 30)")
    assert "- Name: Example GmbH" in text, "an option overrides the configuration's ropa section"
    assert "- Contact: privacy@example.com" in text and "dpo@example.org" in text
    assert "| de | yes | quality assurance and training | consent | opt-in" in text
    assert "| uk | yes | regulatory-compliance | legal-obligation |" in text and "| 365 |" in text
    assert "staff with role compliance: recordings (export, listen)" in text
    world.config.write_text(world.config.read_text().replace("retention_days: 365", "retention_days: 400"))
    out = tmp_path / "ropa.json"
    written = world.cli("ropa", "--format", "json", "--out", out, "--tag-days", "sale=30")
    assert written.exit_code == 0, written.output
    record = json.loads(out.read_text())
    assert {a["process"]: a["retention_days"] for a in record["activities"]}["uk"] == 400
    assert record["retention_rules"]["tag_rules"] == ["complaint=+365", "sale=30"], "configuration, then options"
    assert record["config_version"] == "example-1" and record["security_measures"]
    assert [r["action"] for r in audit_rows(world)] == ["ropa", "ropa"]


def test_without_a_ropa_section_the_identity_is_marked_missing(tmp_path):
    world = make_world(tmp_path)
    text = world.config.read_text()
    start = text.index("ropa:")
    end = text.index("retention:")
    world.config.write_text(text[:start] + text[end:])
    md = world.cli("ropa")
    assert md.exit_code == 0, md.output
    assert "- Name: (not given: set ropa.controller_name" in md.stdout


def test_only_configured_users(tmp_path):
    world = make_world(tmp_path)
    refused = world.cli("ropa", user="mallory")
    assert refused.exit_code == 1 and refused.stderr == "Error: refused: user:mallory is not a configured user name\n"
    assert audit_rows(world)[-1]["outcome"] == "refused"
    assert world.cli("ropa", user=None).exit_code == 2
