"""The playback application and the prompt-playing loop play_and_get_digits shares with it."""

import os

from freeswitch.emulator import audio

_STREAM_TYPES = {"tone_stream": "tone_stream", "local_stream": "local_stream"}


def resolve_sound(session, path):
    """Relative paths are under the switch's sounds directory, as FreeSWITCH prefixes sound_prefix."""
    if "://" in path or os.path.isabs(path) or not session.switch.sounds_dir:
        return path
    return os.path.join(session.switch.sounds_dir, path)


def open_source(session, path):
    try:
        return audio.open_playback(resolve_sound(session, path), session.channel.rate_hz)
    except audio.PlaybackNotFound:
        return None


def play_source(session, source, *, stop_digits=""):
    """Send a source to the caller until it ends. Returns (status, digits_seen, samples_played).

    status: "done", "break" (uuid_break, or a digit from stop_digits) or "hangup". Every digit dequeued while
    playing is returned; playback consumes them (they are not kept for a later app).
    """
    rate = session.channel.rate_hz
    duration = source.duration_samples
    remaining_s = None if duration is None else duration / rate
    played_s = 0.0
    session.playing = source
    session.switch.scenario_hook("playback", session, path=getattr(source, "path", None) or "")
    digits = []
    status = "done"
    try:
        while True:
            for digit in session.pump():
                digits.append(digit)
                if digit in stop_digits:
                    status = "break"
            if not session.channel.up:
                status = "hangup"
            elif session.break_requested:
                status = "break"
            if status != "done" or (remaining_s is not None and remaining_s <= 0):
                break
            started = session.switch.clock.now()
            session.wait(remaining_s)
            elapsed = session.switch.clock.now() - started
            played_s += elapsed
            if remaining_s is not None:
                remaining_s -= elapsed
    finally:
        session.playing = None
    samples = int(played_s * rate) if duration is None else min(duration, int(played_s * rate))
    return status, digits, samples


def _terminators(session):
    value = session.channel.variables.get("playback_terminators", "*")
    if value == "none":
        return ""
    if value == "any":
        return "0123456789*#ABCD"
    return value


def app_playback(session, arg):
    path = arg.strip()
    source = open_source(session, path)
    if source is None:
        session.set_response("FILE NOT FOUND")
        return
    start_headers = []
    scheme = path.split("://", 1)[0] if "://" in path else ""
    if scheme in _STREAM_TYPES:
        start_headers.append(("Playback-File-Type", _STREAM_TYPES[scheme]))
    start_headers.append(("Playback-File-Path", path))
    session.fire("PLAYBACK_START", start_headers)
    terminators = _terminators(session)
    status, digits, samples = play_source(session, source, stop_digits=terminators)
    variables = session.channel.variables
    if status == "break" and digits and digits[-1] in terminators:
        variables.set("playback_terminator_used", digits[-1])
    set_playback_variables(session, samples)
    session.fire("PLAYBACK_STOP", start_headers + [("Playback-Status", "break" if status == "break" else "done")])
    session.set_response("PLAYBACK ERROR" if status == "hangup" else "FILE PLAYED")


def set_playback_variables(session, samples):
    rate = session.channel.rate_hz
    variables = session.channel.variables
    variables.set("playback_last_offset_pos", str(samples))
    variables.set("playback_seconds", str(samples // rate))
    variables.set("playback_ms", str(samples * 1000 // rate))
    variables.set("playback_samples", str(samples))
