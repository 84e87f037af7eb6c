"""The console scripts exist and answer --version and --help."""

import subprocess
import sys

from click.testing import CliRunner

from controller import __version__
from controller.cli import cli


def test_version_names_the_program_and_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"consentline, version {__version__}"


def test_help_lists_usage():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_installed_console_script_runs():
    bindir = __import__("pathlib").Path(sys.executable).parent
    out = subprocess.run([str(bindir / "consentline"), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert __version__ in out.stdout
