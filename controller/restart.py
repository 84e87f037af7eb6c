"""What a controller restart cleans up: spools nobody tails any more, and index rows left mid-recording.

After a crash, calls that were being recorded may still be up in FreeSWITCH, but no controller follows them: nobody
could honour a withdrawal or an agent's request. So their spools are deleted (the audio not yet committed is lost:
at most the hold-back window), FreeSWITCH is asked to stop writing them, and their index rows say what is left.
"""

import logging
import os
import time
from pathlib import Path

from controller.errors import IndexStoreError

log = logging.getLogger(__name__)

LIVE_STATES = ("opened", "recording", "paused")
INBOUND_WAIT_S = 10.0


def orphaned_spools(spool_dir):
    root = Path(spool_dir)
    return sorted(root.glob("*.raw")) if root.is_dir() else []


def clean_up_after_restart(index, store, spool_dir, now_s=None):
    """Delete orphaned spools; close index rows left live. Returns (spool paths removed, {recording id: new state})."""
    now_s = time.time() if now_s is None else now_s
    removed = []
    for path in orphaned_spools(spool_dir):
        try:
            os.unlink(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    kept = set(store.recording_ids())
    states = {}
    placeholders = ",".join("?" for _ in LIVE_STATES)
    for row in index.query(f"SELECT id FROM recordings WHERE state IN ({placeholders})", LIVE_STATES):
        state = "stopped" if row["id"] in kept else "failed"
        try:
            index.recording_state(row["id"], state, now_s)
            states[row["id"]] = state
        except IndexStoreError:
            log.exception("could not close recording %s after the restart", row["id"])
    if removed or states:
        log.warning("after the restart: %d orphaned spool(s) deleted, %d recording row(s) closed",
                    len(removed), len(states))
    return removed, states


def stop_switch_recordings(inbound, spool_paths, wait_s=INBOUND_WAIT_S):
    """Ask FreeSWITCH to stop writing the deleted spools (best effort: those calls may be gone)."""
    if not spool_paths or inbound is None or not inbound.wait_connected(wait_s):
        return 0
    stopped = 0
    for path in spool_paths:
        uuid = path.stem
        try:
            reply = inbound.api(f"uuid_record {uuid} stop {path}")
            stopped += reply.startswith("+OK")
        except Exception as exc:  # one failing call must not stop the others from being cleaned up
            log.info("could not stop recording %s: %s", uuid, exc)
    return stopped
