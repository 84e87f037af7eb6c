"""Every registered `consentline` command path is documented in README.md.

The admin commands' documentation lives in controller/admin/README-section.md until it is pasted into
README.md; the second test keeps that section complete, the first checks the README itself.
"""

from pathlib import Path

import click

from controller.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ADMIN_SECTION = ROOT / "controller" / "admin" / "README-section.md"


def command_paths(command: click.Command = cli, prefix: tuple[str, ...] = ()):
    """(path, module of its callback) for every leaf command, e.g. ("recordings list", "controller.admin...")."""
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from command_paths(sub, prefix + (name,))
    else:
        yield " ".join(prefix), getattr(command.callback, "__module__", "")


def test_every_command_is_in_the_readme():
    readme = README.read_text()
    missing = [path for path, _ in command_paths() if f"consentline {path}" not in readme]
    in_section = [path for path in missing if f"consentline {path}" in ADMIN_SECTION.read_text()]
    assert not missing, (f"README.md does not mention: {', '.join(f'consentline {p}' for p in missing)}"
                         + (f" ({len(in_section)} of them are in {ADMIN_SECTION.relative_to(ROOT)}: paste it)"
                            if in_section else ""))


def test_the_admin_section_documents_every_admin_command():
    section = ADMIN_SECTION.read_text()
    admin = [path for path, module in command_paths() if module.startswith("controller.admin")]
    assert len(admin) >= 15
    assert [path for path in admin if f"consentline {path}" not in section] == []
