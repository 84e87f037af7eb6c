"""`consentline run` as a process: takes calls from the emulator, reconnects after a switch restart, drains on SIGTERM."""

import shutil
import signal
import sys
from pathlib import Path

import gevent
import gevent.subprocess

from controller.index import Index
from freeswitch.emulator.runner import ScenarioRunner
from freeswitch.emulator.scenario import parse_scenario
from freeswitch.emulator.server import Emulator

EXAMPLES = Path(__file__).resolve().parents[2] / "controller" / "examples"


def wait_until(predicate, timeout_s, what):
    with gevent.Timeout(timeout_s, AssertionError(f"timed out waiting for {what}")):
        while not predicate():
            gevent.sleep(0.05)


def inbound_listeners(emulator):
    return [l for l in emulator.switch.listeners if not l.outbound and l.authenticated]


def test_run_takes_calls_reconnects_and_drains_on_sigterm(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "conf")
    emulator = Emulator("127.0.0.1", 0, speed=20).start()
    host, port = emulator.esl_address
    exe = Path(sys.executable).parent / "consentline"
    proc = gevent.subprocess.Popen([str(exe), "run", "--config", str(tmp_path / "conf" / "consentline.example.yaml"),
                                    "--esl", f"{host}:{port}", "--listen", "127.0.0.1:0", "-v"],
                                   stderr=gevent.subprocess.PIPE, text=True)
    try:
        listen = None
        with gevent.Timeout(30, AssertionError("the controller did not say where it listens")):
            for line in proc.stderr:
                if "accepting calls on" in line:
                    listen = line.split("accepting calls on ")[1].split(",")[0]
                    break
        gevent.spawn(lambda: [None for _ in proc.stderr])  # keep draining its log
        wait_until(lambda: inbound_listeners(emulator), 10, "the inbound ESL connection")

        _, specs = parse_scenario({"calls": [{"id": "c", "caller": "+4915112345678", "dialed": "+4930100100",
                                              "caller_dtmf": [{"at_s": 3.0, "digits": "1"}],
                                              "agent": {"extension": "1001", "answer_after_s": 1},
                                              "hangup": {"by": "caller", "at_s": 15}}]})
        summary = ScenarioRunner(emulator.switch, listen, specs).run(timeout_s=60)
        uuid = summary["calls"][0]["uuid"]
        with Index(tmp_path / "conf" / "data" / "consentline.db") as index:
            wait_until(lambda: (index.call(uuid) or {}).get("ended_at"), 10, "the call's end in the index")
            assert index.call(uuid)["consent_outcome"] == "agreed"

        emulator.restart()
        wait_until(lambda: inbound_listeners(emulator), 20, "the inbound connection after a switch restart")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        emulator.stop()
