"""Every registered `consentline` command path is documented in README.md."""

from pathlib import Path

import click

from controller.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


def command_paths(command: click.Command = cli, prefix: tuple[str, ...] = ()):
    """Every leaf command's path, e.g. "recordings list"."""
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from command_paths(sub, prefix + (name,))
    else:
        yield " ".join(prefix)


def test_every_command_is_in_the_readme():
    paths = list(command_paths())
    assert len(paths) >= 25, paths
    readme = README.read_text()
    missing = [path for path in paths if f"consentline {path}" not in readme]
    assert not missing, f"README.md does not mention: {', '.join(f'consentline {p}' for p in missing)}"
