"""A controller that crashed mid-recording: on restart, no orphaned spool survives and no row claims to record."""

import time

from controller.app import Controller
from tests.e2e.conftest import System


def test_restart_deletes_orphaned_spools_and_closes_live_rows(tmp_path):
    system = System(tmp_path)
    try:
        index = system.controller.index
        spool = system.dirs["spool"]
        spool.mkdir(parents=True, exist_ok=True)
        uuid = "0b3c9a52-8f0e-4d2c-9a77-3f1c2d4e5f60"
        index.call_started(uuid, "+4915112345678", "+4930100100", time.time())
        index.recording_opened(uuid, str(spool / uuid), time.time(), recording_id=uuid)
        index.recording_state(uuid, "recording", time.time())
        (spool / f"{uuid}.raw").write_bytes(b"\x01\x02" * 8000)   # what FreeSWITCH wrote before the crash
        system.controller.stop(drain_timeout_s=1)
        system.controller = Controller(system.config, listen=("127.0.0.1", 0),
                                       esl=system.emulator.esl_address).start()
        assert not list(spool.glob("*.raw"))
        assert [r["state"] for r in system.controller.index.recordings()] == ["failed"]
    finally:
        system.close()
