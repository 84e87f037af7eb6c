"""Dialplan applications (mod_dptools), each a function of (session, expanded argument).

The registry maps FreeSWITCH's application names to these functions. An unknown name is not here, and the
session then hangs up with DESTINATION_OUT_OF_ORDER, as FreeSWITCH does.
"""

import logging

from freeswitch.emulator.bridge import app_bridge
from freeswitch.emulator.digits import app_bind_digit_action, app_clear_digit_action, app_digit_action_set_realm
from freeswitch.emulator.outbound import app_socket
from freeswitch.emulator.pagd import app_play_and_get_digits
from freeswitch.emulator.playback import app_playback
from freeswitch.emulator.recording import (app_record_session, app_record_session_mask, app_record_session_pause,
                                           app_record_session_resume, app_record_session_unmask,
                                           app_stop_record_session)

log = logging.getLogger(__name__)


def app_answer(session, arg):
    session.answer()


def app_pre_answer(session, arg):
    session.pre_answer()


def app_ring_ready(session, arg):
    pass


def app_sleep(session, arg):
    """sleep <ms>: reads media; digits stay queued unless sleep_eat_digits is true."""
    try:
        remaining_s = max(0, int(arg.strip() or 0)) / 1000.0
    except ValueError:
        return
    eat = (session.channel.variables.get("sleep_eat_digits") or "").lower() == "true"
    while remaining_s > 0 and not session.interrupted():
        started = session.switch.clock.now()
        session.wait(remaining_s)
        remaining_s -= session.switch.clock.now() - started
        session.pump(dtmf=eat)


def app_park(session, arg):
    session.fire("CHANNEL_PARK")
    while session.channel.up and not session.break_requested:
        session.pump()
        session.wait(None)
    session.fire("CHANNEL_UNPARK")


def _split_assignment(arg):
    name, sep, value = arg.partition("=")
    return name.strip(), value if sep else None


def app_set(session, arg):
    name, value = _split_assignment(arg)
    if name:
        session.channel.variables.set(name, value)


def app_export(session, arg):
    name, value = _split_assignment(arg)
    if not name:
        return
    variables = session.channel.variables
    variables.set(name, value)
    exported = [v for v in (variables.get("export_vars") or "").split(",") if v]
    if name not in exported:
        exported.append(name)
    variables.set("export_vars", ",".join(exported))


def app_unset(session, arg):
    if arg.strip():
        session.channel.variables.unset(arg.strip())


def app_hangup(session, arg):
    session.hangup(arg.strip() or "NORMAL_CLEARING")


def app_event(session, arg):
    """event k=v,k=v: CHANNEL_APPLICATION by default; Event-Name=CUSTOM with Event-Subclass for a CUSTOM event."""
    name = "CHANNEL_APPLICATION"
    subclass = None
    custom = []
    for pair in arg.split(","):
        key, sep, value = pair.partition("=")
        if not sep:
            continue
        key = key.strip()
        if key.lower() == "event-name":
            name = value.strip().upper()
        elif key.lower() == "event-subclass":
            subclass = value.strip()
        else:
            custom.append((key, value))
    event = session.switch.core.new_event(name, subclass if name == "CUSTOM" else None)
    event.extend(custom)
    session.channel.event_data(event, name == "CUSTOM")
    session.switch.fire(event)


def app_log(session, arg):
    log.info("%s log: %s", session.channel.name, arg)


def app_info(session, arg):
    log.info("%s info: %d variables", session.channel.name, len(session.channel.variables.items()))


def app_transfer(session, arg):
    session.hangup("NO_ROUTE_DESTINATION")


APPLICATIONS = {
    "answer": app_answer,
    "pre_answer": app_pre_answer,
    "ring_ready": app_ring_ready,
    "playback": app_playback,
    "play_and_get_digits": app_play_and_get_digits,
    "sleep": app_sleep,
    "park": app_park,
    "set": app_set,
    "export": app_export,
    "unset": app_unset,
    "hangup": app_hangup,
    "bridge": app_bridge,
    "record_session": app_record_session,
    "stop_record_session": app_stop_record_session,
    "record_session_mask": app_record_session_mask,
    "record_session_unmask": app_record_session_unmask,
    "record_session_pause": app_record_session_pause,
    "record_session_resume": app_record_session_resume,
    "bind_digit_action": app_bind_digit_action,
    "digit_action_set_realm": app_digit_action_set_realm,
    "clear_digit_action": app_clear_digit_action,
    "event": app_event,
    "socket": app_socket,
    "log": app_log,
    "info": app_info,
    "transfer": app_transfer,
}
