"""The whole system in one process: the FreeSWITCH emulator, the controller, the media store and the index."""

import dataclasses
from pathlib import Path

import gevent
import pytest

from controller.app import Controller
from controller.config import load_config
from freeswitch.emulator.runner import ScenarioRunner
from freeswitch.emulator.scenario import parse_scenario
from freeswitch.emulator.server import Emulator
from tests.e2e.choreography import Stage
from tests.e2e.taps import ControllerTaps

EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "controller" / "examples" / "consentline.example.yaml"
SPEED = 20.0
AUDIO_SUFFIXES = (".raw", ".pcm", ".wav", ".chunk", ".r8", ".r16", ".flac")


class System:
    def __init__(self, tmp_path, speed=SPEED, config=None):
        config = config or load_config(EXAMPLE_CONFIG)
        self.tmp_path = tmp_path
        self.dirs = {name: tmp_path / name for name in ("data", "spool", "recordings", "switch")}
        settings = dataclasses.replace(config.controller, data_dir=self.dirs["data"],
                                       spool_dir=self.dirs["spool"], recordings_dir=self.dirs["recordings"])
        self.config = dataclasses.replace(config, controller=settings)
        self.emulator = Emulator("127.0.0.1", 0, speed=speed, recordings_dir=str(self.dirs["switch"])).start()
        esl_host, esl_port = self.emulator.esl_address
        self.controller = Controller(self.config, listen=("127.0.0.1", 0), esl=(esl_host, esl_port)).start()
        self.stage = Stage(self.emulator.switch)
        self.taps = ControllerTaps(self.controller, self.stage)

    @property
    def switch(self):
        return self.emulator.switch

    @property
    def index(self):
        return self.controller.index

    def run_calls(self, calls, timeout_s=60):
        """Run scenario calls (dicts as in a scenario file); returns the runner's summary by call id."""
        _, specs = parse_scenario({"calls": calls})
        runner = ScenarioRunner(self.switch, f"127.0.0.1:{self.controller.port}", specs)
        return {c["id"]: c for c in runner.run(timeout_s=timeout_s)["calls"]}

    def run(self, *plans, timeout_s=60):
        """Run CallPlans together; each gets its `summary`. Waits until the controller is done with them too."""
        for plan in plans:
            self.stage.add(plan)
        summaries = self.run_calls([plan.spec for plan in plans], timeout_s=timeout_s)
        for plan in plans:
            plan.summary = summaries[plan.id]
            plan.uuid = plan.uuid or plan.summary["uuid"]
            assert plan.summary["hangup_cause"], f"call {plan.id} did not end within {timeout_s} s"
        self.wait_controller_done(plans)
        return plans

    def wait_controller_done(self, plans, timeout_s=15):
        """The controller writes the end of the call after the switch is done: wait for that, bounded."""
        with gevent.Timeout(timeout_s, AssertionError("the controller did not finish the calls in time")):
            for plan in plans:
                greenlet = self.taps.call_greenlets.get(plan.uuid)
                if greenlet is not None:
                    greenlet.join()

    # -- what is on disk -------------------------------------------------------------------------------------

    def audio_files(self):
        """Every file that could hold audio: chunks, spools, switch recordings, manifests."""
        found = []
        for name in ("spool", "recordings", "switch"):
            root = self.dirs[name]
            if root.exists():
                found += [p for p in root.rglob("*") if p.is_file() and
                          (p.suffix in AUDIO_SUFFIXES or p.name.startswith("manifest"))]
        return sorted(found)

    def audio_of(self, call_uuid):
        """Files on disk that hold (or point to) audio of one call: its chunks and manifest, its spool, any
        switch recording whose path names it."""
        return [p for p in self.audio_files() if call_uuid in str(p.relative_to(self.tmp_path))]

    def close(self):
        self.stage.close()
        self.taps.close()
        self.controller.stop(drain_timeout_s=5)
        self.emulator.stop()


@pytest.fixture
def system(tmp_path):
    s = System(tmp_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def module_system(tmp_path_factory):
    """One system for a module whose tests share a batch of calls run together (see each module's `batch`)."""
    s = System(tmp_path_factory.mktemp("system"))
    yield s
    s.close()
