"""`consentline run`: the controller itself."""

import logging
import signal
import sys

import click
import gevent

from controller.cli_common import CommandError, _load
from controller.errors import ConsentlineError
from controller.gcpacing import FULL_EVERY_S as GC_FULL_EVERY_S, GcPacer


def _host_port(value, option):
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}", param_hint=option)
    return host or "127.0.0.1", int(port)


def _raise_open_files_limit():
    """Each call holds a socket, a spool and a chunk file: the usual soft limit of 1,024 runs out near 300 calls."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ImportError, ValueError, OSError):  # not on this platform, or not allowed: run with what we have
        pass


@click.command("run")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="The Consentline configuration (YAML).")
@click.option("--esl", help="FreeSWITCH's inbound Event Socket, HOST:PORT (overrides controller.esl).")
@click.option("--password", help="Event Socket password (overrides controller.esl.password).")
@click.option("--listen", help="Where FreeSWITCH's `socket` app connects, HOST:PORT (overrides controller.listen).")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), help="Index directory (overrides controller.data_dir).")
@click.option("--max-calls", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Concurrent calls; above it FreeSWITCH is told to move on.")
@click.option("--drain-s", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="On SIGTERM: how long running calls may go on before they are cut.")
@click.option("--gc-full-every-s", type=click.FloatRange(min=0), default=GC_FULL_EVERY_S, show_default=True,
              help="Run Python's full garbage collection on this timer instead of on heap growth (0: Python's own "
                   "pacing). Keeps collection pauses out of consent-key reactions.")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def run(config_file, esl, password, listen, data_dir, max_calls, drain_s, gc_full_every_s, verbose):
    """Run the controller: accept FreeSWITCH's calls, ask for consent, record only when lawful.

    SIGTERM stops accepting calls and lets running ones finish for up to --drain-s seconds.
    """
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)],
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    _raise_open_files_limit()
    gevent.config.track_greenlet_tree = False  # the spawn tree is debugging aid: tens of objects per greenlet
    config = _load(config_file)
    for warning in config.warnings:
        click.echo(f"Warning: {warning}", err=True)
    from controller.app import Controller
    try:
        controller = Controller(config, listen=_host_port(listen, "--listen"), esl=_host_port(esl, "--esl"),
                                password=password, data_dir=data_dir, max_calls=max_calls).start()
    except (ConsentlineError, OSError) as exc:
        raise CommandError(str(exc)) from exc
    click.echo(f"consentline: accepting calls on {controller.listen_host}:{controller.port}, "
               f"FreeSWITCH ESL at {controller.esl_host}:{controller.esl_port}", err=True)
    pacer = GcPacer(gc_full_every_s).start() if gc_full_every_s > 0 else None
    controller.install_signal_handlers(drain_s)
    interrupted = []
    gevent.signal_handler(signal.SIGINT, lambda: (interrupted.append(1),
                                                  gevent.spawn(controller.server.stop, 0)))
    while not controller.server.wait_stopped(1.0):
        pass
    controller.stop(drain_timeout_s=0)
    if pacer is not None:
        pacer.stop()
    if interrupted:
        sys.exit(130)
