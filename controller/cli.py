"""The `consentline` command: one click group for the controller and the admin scripts."""

import click

from controller import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="consentline")
def cli():
    """Consentline: lawful call recording for FreeSWITCH."""


def main():
    cli()
