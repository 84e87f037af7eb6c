"""check-config also validates the helpdesk section, whose schema lives with the webhook code."""

from pathlib import Path

from click.testing import CliRunner

from controller.cli import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "controller" / "examples" / "consentline.example.yaml"


def check_variant(tmp_path, old, new):
    """check-config on the example with one piece of text replaced (prompts shared with the example)."""
    text = EXAMPLE.read_text().replace(old, new, 1)
    assert text != EXAMPLE.read_text()
    (tmp_path / "prompts").symlink_to(EXAMPLE.parent / "prompts")
    config = tmp_path / "c.yaml"
    config.write_text(text)
    return CliRunner().invoke(cli, ["check-config", str(config)])


def test_bad_helpdesk_endpoint_is_reported_with_its_key(tmp_path):
    result = check_variant(tmp_path, "helpdesk: {}", 'helpdesk: {endpoints: [{name: x, url: "ftp://nope"}]}')
    assert result.exit_code == 1
    assert "helpdesk.endpoints[0].url: expected an http:// or https:// URL" in result.output


def test_example_config_passes(tmp_path):
    result = CliRunner().invoke(cli, ["check-config", str(EXAMPLE)])
    assert result.exit_code == 0 and "\nOK: " in "\n" + result.output


def test_bad_agent_codes_are_reported_with_their_key(tmp_path):
    result = check_variant(tmp_path, "    withdrawal: {code: \"*9\", on_withdraw: purge}\n\n  de-optout:",
                           "    withdrawal: {code: \"*9\", on_withdraw: purge}\n"
                           "    agent_codes: {fail_closed: explode}\n\n  de-optout:")
    assert result.exit_code == 1
    assert "processes.de.agent_codes.fail_closed" in result.output
