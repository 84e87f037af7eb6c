"""Shared set-up for the admin command tests: a configuration, an index and a media store in tmp_path."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from click.testing import CliRunner

import controller
from controller.cli import cli
from controller.index import Index
from media import MediaStore

EXAMPLE = Path(controller.__file__).parent / "examples" / "consentline.example.yaml"
RATE_HZ = 8000
USERS = """users:
  compliance-officer: {role: compliance}
  second-officer: {role: compliance}
  sam: {role: supervisor}
  nobody: {role: agent}
"""


@dataclass
class World:
    root: Path
    config: Path
    data: Path
    recordings: Path

    def cli(self, *args, user: str | None = "compliance-officer", input: str | None = None):
        extra = ["--config", str(self.config)] + (["--as", user] if user else [])
        return CliRunner().invoke(cli, [str(a) for a in args] + extra, input=input)

    def index(self) -> Index:
        return Index(self.data / "consentline.db")

    def store(self) -> MediaStore:
        return MediaStore(self.recordings)

    def dump(self) -> str:
        """Every value in every table of the index, as text (to look for a phone number)."""
        with sqlite3.connect(self.data / "consentline.db") as conn:
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return json.dumps({t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in tables})


def make_world(tmp_path: Path) -> World:
    text = EXAMPLE.read_text()
    text = text.replace("prompts_dir: prompts", f"prompts_dir: {EXAMPLE.parent / 'prompts'}")
    text = text.replace("data_dir: data", f"data_dir: {tmp_path / 'data'}")
    text = text.replace("recordings_dir: recordings", f"recordings_dir: {tmp_path / 'recordings'}")
    text = text.replace("users:                         # staff using the admin commands\n"
                        "  compliance-officer: {role: compliance}\n", USERS)
    assert "second-officer" in text
    config = tmp_path / "consentline.yaml"
    config.write_text(text)
    return World(tmp_path, config, tmp_path / "data", tmp_path / "recordings")


def tone(seconds: float, value: int = 1000) -> np.ndarray:
    samples = np.full((int(seconds * RATE_HZ), 2), value, dtype=np.int16)
    samples[:, 1] = -value
    return samples


def add_call(world: World, call_uuid: str, caller: str, *, process: str = "de", opened_at: str = "2024-05-01T10:00:00Z",
             seconds: float | None = 3.0, dialed: str = "+4930100100", state: str = "completed") -> str:
    """A call routed to `process` with consent evidence, and (with `seconds`) a finished recording on disk."""
    with world.index() as index:
        index.call_started(call_uuid, caller, dialed, opened_at)
        index.routing_decided(call_uuid, {"process": process, "pack": process, "config_version": "example-1",
                                          "conflict": False, "caller": caller, "dialed": dialed,
                                          "reason": f"caller {caller} matched"})
        index.evidence_digit(call_uuid, "1", opened_at)
        index.consent_decided(call_uuid, "agreed", "key 1", process, "example-1", opened_at)
        if seconds is None:
            return call_uuid
        store = world.store()
        recording = store.create(call_uuid, rate_hz=RATE_HZ, channels=2, holdback_s=0.5)
        recording.append(tone(seconds))
        recording.finish()
        store.forget(call_uuid)
        index.recording_opened(call_uuid, recording.directory, opened_at, recording_id=call_uuid)
        index.recording_state(call_uuid, state, opened_at, duration_s=seconds)
        index.call_ended(call_uuid, "NORMAL_CLEARING", opened_at)
    return call_uuid


def audio_on_disk(world: World, recording_id: str) -> bool:
    return (world.recordings / recording_id / "manifest.jsonl").exists()


def tombstone(world: World, recording_id: str) -> dict | None:
    path = world.recordings / recording_id / "tombstone.json"
    return json.loads(path.read_text()) if path.exists() else None


def audit_rows(world: World) -> list[dict]:
    from controller import audit
    with world.index() as index:
        return audit.entries(index)
