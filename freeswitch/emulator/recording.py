"""Recording media bugs on a session: record_session and its apps, and what uuid_record drives.

The file itself is written by recorder.Recorder; this module owns the FreeSWITCH side: path resolution,
per-recording variables, RECORD_START/RECORD_STOP events and the channel variables set before RECORD_STOP.
"""

import os
import urllib.parse

from freeswitch.emulator.recorder import Recorder, RecorderError


def parse_recording_vars(text):
    """`{k=v,k2=v2}` (URL-decoded first, as FreeSWITCH does) -> ordered list of pairs."""
    text = urllib.parse.unquote(text or "").strip()
    if not (text.startswith("{") and text.endswith("}")):
        return []
    pairs = []
    for item in text[1:-1].split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            pairs.append((key.strip(), value))
    return pairs


class RecordingBug:
    def __init__(self, session, path, recording_vars, limit_s):
        self.session = session
        self.path = path
        self.recording_vars = recording_vars
        self.limit_s = limit_s
        channel = session.channel
        merged = dict(channel.variables.items())
        merged.update(recording_vars)
        self.variables = merged
        self.recorder = Recorder(path, channel.rate_hz, variables=merged,
                                 packet_samples=channel.rate_hz * channel.ptime_ms // 1000)
        self.started_at = session.switch.clock.now()
        self.stopped = False

    def start(self):
        self.recorder.open()
        self.session.switch.media.track(self.session)
        self.session.recordings[self.path] = self
        self.session.fire("RECORD_START", self._path_headers())
        self.session.switch.scenario_hook("record_start", self.session, path=self.path, bug=self)

    def _path_headers(self):
        return [("Record-File-Path", self.path)] + [(f"Recording-Variable-{k}", v) for k, v in self.recording_vars]

    def stop(self, reason):
        """reason: "stop" (explicit or limit, channel up) or "hangup"."""
        if self.stopped:
            return
        self.stopped = True
        self.session.switch.media.flush(self.session)
        self.session.recordings.pop(self.path, None)
        result = self.recorder.close(reason)
        variables = self.session.channel.variables
        for name, value in result.channel_variables().items():
            variables.set(name, value)
        self.session.fire("RECORD_STOP", self._path_headers() + [("Record-Completion-Cause", result.completion_cause)])
        self.session.switch.scenario_hook("record_stop", self.session, path=self.path, result=result)


def resolve_record_path(session, path):
    """Relative paths go under the recordings directory (FreeSWITCH uses sound_prefix or its base dir)."""
    if os.path.isabs(path) or "://" in path:
        return path
    base = session.switch.recordings_dir or os.getcwd()
    return os.path.join(base, path)


def start_recording(session, path, limit_s=0, recording_vars=()):
    """Returns True on success, including 'already recording' on that path (no second RECORD_START)."""
    if not session.channel.up:
        return False
    if session.channel.answer_state not in ("answered", "early"):
        session.pre_answer()
    path = resolve_record_path(session, path)
    if path in session.recordings:
        return True
    bug = RecordingBug(session, path, list(recording_vars), limit_s)
    try:
        bug.start()
    except (OSError, RecorderError):   # FreeSWITCH answers -ERR Cannot record session!
        return False
    return True


def find_bugs(session, path):
    if path == "all":
        return list(session.recordings.values())
    bug = session.recordings.get(resolve_record_path(session, path))
    return [bug] if bug else []


def _parse_limit(token):
    token = (token or "").lstrip("+")
    return int(token) if token.isdigit() else 0


def app_record_session(session, arg):
    tokens = arg.split(None, 2)
    if not tokens:
        return
    limit_s = _parse_limit(tokens[1]) if len(tokens) > 1 else 0
    recording_vars = parse_recording_vars(tokens[2]) if len(tokens) > 2 else []
    start_recording(session, tokens[0], limit_s, recording_vars)


def app_stop_record_session(session, arg):
    for bug in find_bugs(session, arg.strip()):
        bug.stop("stop")


def _flag_app(method):
    def app(session, arg):
        bugs = find_bugs(session, arg.strip())
        if bugs:
            session.switch.media.flush(session)  # the change applies from this sample on
        for bug in bugs:
            getattr(bug.recorder, method)()
    app.__name__ = f"app_record_session_{method}"
    return app


app_record_session_mask = _flag_app("mask")
app_record_session_unmask = _flag_app("unmask")
app_record_session_pause = _flag_app("pause")
app_record_session_resume = _flag_app("resume")
