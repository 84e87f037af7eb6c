"""Pure helpers: the text of the commands we send, event predicates, back-off.

Everything we put on the wire is one header block ending in a blank line, so
a newline inside an application argument would let the caller (or whoever
controls that string) add headers of their own. Such text is refused.
"""

import re

EXECUTE_COMPLETE = "CHANNEL_EXECUTE_COMPLETE"
HANGUP_EVENTS = frozenset({"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"})

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_CAUSE = re.compile(r"^(?:[A-Z][A-Z0-9_]*|[0-9]{1,3})$")
_EVENT_FORMATS = ("plain", "json", "xml")


def check_line(text, what):
    """Return `text` if it is safe inside one header line, else raise ValueError."""
    if not isinstance(text, str):
        raise TypeError("%s must be a str, not %s" % (what, type(text).__name__))
    if "\n" in text or "\r" in text:
        raise ValueError("%s must not contain a line break: %r" % (what, text))
    return text


def check_name(text, what):
    if not _NAME.match(check_line(text, what)):
        raise ValueError("%s is not a valid name: %r" % (what, text))
    return text


def execute_command(app, arg, app_uuid, event_lock=True):
    """`sendmsg` that runs `app arg`; FreeSWITCH echoes `app_uuid` as Application-UUID."""
    lines = ["sendmsg", "call-command: execute", "execute-app-name: " + check_name(app, "app")]
    if arg is not None and arg != "":
        lines.append("execute-app-arg: " + check_line(str(arg), "app arg"))
    if event_lock:
        lines.append("event-lock: true")
    lines.append("Event-UUID: " + check_line(app_uuid, "app uuid"))
    return "\n".join(lines)


def hangup_command(cause="NORMAL_CLEARING"):
    if not _CAUSE.match(check_line(cause, "hangup cause")):
        raise ValueError("not a hangup cause: %r" % cause)
    return "sendmsg\ncall-command: hangup\nhangup-cause: " + cause


def api_command(command):
    return "api " + check_line(command, "api command").strip()


def bgapi_command(command, job_uuid):
    return "bgapi %s\nJob-UUID: %s" % (check_line(command, "bgapi command").strip(),
                                       check_line(job_uuid, "job uuid"))


def getvar_command(name):
    return "getvar " + check_name(name, "variable name")


def linger_command(linger_s=None):
    """`linger` alone lingers until we close; `linger N` for N seconds."""
    return "linger" if linger_s is None else "linger %d" % int(linger_s)


def event_command(event_names, event_format="plain"):
    if event_format not in _EVENT_FORMATS:
        raise ValueError("event format must be one of %s" % (_EVENT_FORMATS,))
    names = [check_name(name, "event name") for name in event_names]
    if not names:
        raise ValueError("no event names")
    return "event %s %s" % (event_format, " ".join(names))


def auth_command(password):
    return "auth " + check_line(password, "password")


def is_ok(text):
    return text.startswith("+OK")


def completion_of(app_uuid):
    """Predicate: the CHANNEL_EXECUTE_COMPLETE of the execute we stamped with `app_uuid`."""
    def matches(frame):
        return (frame.headers.get("Application-UUID") == app_uuid
                and frame.headers.get("Event-Name") == EXECUTE_COMPLETE)
    return matches


def background_job_of(job_uuid):
    def matches(frame):
        return frame.headers.get("Job-UUID") == job_uuid and frame.headers.get("Event-Name") == "BACKGROUND_JOB"
    return matches


def is_hangup_of(frame, call_uuid):
    """True for CHANNEL_HANGUP(_COMPLETE) of this call (of any call while the uuid is unknown)."""
    if frame.headers.get("Event-Name") not in HANGUP_EVENTS:
        return False
    unique_id = frame.headers.get("Unique-ID")
    return call_uuid is None or unique_id is None or unique_id == call_uuid


def backoff_delay_s(attempt, initial_s=0.5, max_s=30.0, random_unit=0.5):
    """Exponential back-off with jitter: between half and all of min(max_s, initial_s * 2**attempt).

    `random_unit` is a number in [0, 1) (pass random.random() in production).
    """
    ceiling_s = min(max_s, initial_s * (2 ** min(attempt, 32)))
    return ceiling_s * (0.5 + 0.5 * random_unit)
