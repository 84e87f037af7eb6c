"""`consentline-switch`: the FreeSWITCH emulator's command line."""

import json
import logging
import sys

import click
import gevent

from freeswitch.emulator.runner import ScenarioRunner
from freeswitch.emulator.scenario import ScenarioError, load_scenario
from freeswitch.emulator.server import Emulator


def _host_port(value, name):
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint=name)
    return host or "127.0.0.1", int(port)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--esl", default="127.0.0.1:8021", show_default=True, help="Inbound Event Socket address (port 0: any).")
@click.option("--password", default="ClueCon", show_default=True, help="Inbound Event Socket password.")
@click.option("--socket", "socket_addr", default="127.0.0.1:8084", show_default=True,
              help="The controller's outbound socket address, as in the dialplan's `socket` application.")
@click.option("--speed", type=float, default=None, help="Virtual clock speed (1 = real time). Default: the scenario's, else 1.")
@click.option("--recordings", "recordings_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for recordings given with relative paths.")
@click.option("--sounds", "sounds_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for prompts given with relative paths.")
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the JSON summary of the scenario run here (default: standard output).")
@click.option("-v", "--verbose", is_flag=True, help="Log what the switch does.")
@click.argument("scenario", required=False, type=click.Path(exists=True, dir_okay=False))
def main(esl, password, socket_addr, speed, recordings_dir, sounds_dir, summary_path, verbose, scenario):
    """Run a FreeSWITCH 1.10 stand-in that speaks the Event Socket protocol.

    With SCENARIO, place its calls to the controller at --socket and exit when all have ended, writing a JSON
    summary. Without, serve inbound ESL until stopped.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    esl_host, esl_port = _host_port(esl, "--esl")
    _host_port(socket_addr, "--socket")
    specs = None
    if scenario:
        try:
            scenario_speed, specs = load_scenario(scenario)
        except ScenarioError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        speed = speed or scenario_speed
    emulator = Emulator(esl_host, esl_port, password, speed=speed or 1.0, recordings_dir=recordings_dir,
                        sounds_dir=sounds_dir).start()
    host, port = emulator.esl_address
    click.echo(f"ESL listening on {host}:{port}", err=True)
    if specs is None:
        try:
            gevent.wait()
        except KeyboardInterrupt:
            pass
        emulator.stop()
        return
    summary = ScenarioRunner(emulator.switch, socket_addr, specs).run()
    emulator.stop()
    text = json.dumps(summary, indent=2)
    if summary_path:
        with open(summary_path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        click.echo(text)
