"""`consentline ropa`: the Art. 30 record from the live configuration."""

import json

from test_admin_support import audit_rows, make_world


def test_markdown_and_json_follow_the_configuration(tmp_path):
    world = make_world(tmp_path)
    md = world.cli("ropa", "--controller-name", "Example GmbH", "--dpo", "dpo@example.org")
    assert md.exit_code == 0, md.output
    text = md.stdout
    assert text.startswith("# Record of processing activities (GDPR Art. 30)")
    assert "- Name: Example GmbH" in text and "- Contact: (not given" in text
    assert "| de | yes | quality assurance and training | consent | opt-in" in text
    assert "| uk | yes | regulatory-compliance | legal-obligation |" in text and "| 365 |" in text
    assert "staff with role compliance: recordings (export, listen)" in text
    world.config.write_text(world.config.read_text().replace("retention_days: 365", "retention_days: 400"))
    out = tmp_path / "ropa.json"
    written = world.cli("ropa", "--format", "json", "--out", out, "--tag-days", "complaint=+365")
    assert written.exit_code == 0, written.output
    record = json.loads(out.read_text())
    assert {a["process"]: a["retention_days"] for a in record["activities"]}["uk"] == 400
    assert record["retention_rules"]["tag_rules"] == ["complaint=+365"]
    assert record["config_version"] == "example-1" and record["security_measures"]
    assert [r["action"] for r in audit_rows(world)] == ["ropa", "ropa"]


def test_only_configured_users(tmp_path):
    world = make_world(tmp_path)
    refused = world.cli("ropa", user="mallory")
    assert refused.exit_code == 1 and refused.stderr == "Error: refused: user:mallory is not a configured user name\n"
    assert audit_rows(world)[-1]["outcome"] == "refused"
    assert world.cli("ropa", user=None).exit_code == 2
