"""The whole system in one process: the FreeSWITCH emulator, the controller, the media store and the index."""

import dataclasses
from pathlib import Path

import pytest

from controller.app import Controller
from controller.config import load_config
from freeswitch.emulator.runner import ScenarioRunner
from freeswitch.emulator.scenario import parse_scenario
from freeswitch.emulator.server import Emulator

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "controller" / "examples" / "consentline.example.yaml"
SPEED = 20.0


class System:
    def __init__(self, tmp_path, speed=SPEED):
        config = load_config(EXAMPLE_CONFIG)
        self.dirs = {name: tmp_path / name for name in ("data", "spool", "recordings", "switch")}
        settings = dataclasses.replace(config.controller, data_dir=self.dirs["data"],
                                       spool_dir=self.dirs["spool"], recordings_dir=self.dirs["recordings"])
        self.config = dataclasses.replace(config, controller=settings)
        self.emulator = Emulator("127.0.0.1", 0, speed=speed, recordings_dir=str(self.dirs["switch"])).start()
        esl_host, esl_port = self.emulator.esl_address
        self.controller = Controller(self.config, listen=("127.0.0.1", 0), esl=(esl_host, esl_port)).start()

    def run_calls(self, calls, timeout_s=60):
        _, specs = parse_scenario({"calls": calls})
        runner = ScenarioRunner(self.emulator.switch, f"127.0.0.1:{self.controller.port}", specs)
        return {c["id"]: c for c in runner.run(timeout_s=timeout_s)["calls"]}

    @property
    def index(self):
        return self.controller.index

    def audio_files(self):
        """Every file that could hold audio: chunks, spools, switch recordings."""
        found = []
        for name in ("spool", "recordings", "switch"):
            root = self.dirs[name]
            if root.exists():
                found += [p for p in root.rglob("*") if p.is_file() and p.suffix in (".raw", ".pcm", ".wav", ".chunk")]
        return found

    def close(self):
        self.controller.stop(drain_timeout_s=5)
        self.emulator.stop()


@pytest.fixture
def system(tmp_path):
    s = System(tmp_path)
    yield s
    s.close()
