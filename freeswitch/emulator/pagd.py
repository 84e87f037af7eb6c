"""play_and_get_digits, with the argument handling and result variables FreeSWITCH 1.10.12 showed live."""

import re
import shlex

from freeswitch.emulator.playback import open_source, play_source, set_playback_variables

ALL_DIGITS = "0123456789*#ABCD"


class PagdArgs:
    def __init__(self, arg):
        tokens = shlex.split(arg, posix=True) if "'" in arg else arg.split()
        if len(tokens) < 9:
            raise ValueError("play_and_get_digits needs at least 9 arguments")
        self.min_digits = int(tokens[0])
        self.max_digits = max(int(tokens[1]), self.min_digits)
        self.tries = max(1, int(tokens[2]))
        self.timeout_ms = max(1000, int(tokens[3]))
        terminators = tokens[4]
        self.terminator_required = terminators.startswith("=")
        self.append_terminator = "+" in terminators or "x" in terminators
        self.terminators = terminators.strip("=+x") or "#"
        self.prompt = tokens[5]
        self.invalid_prompt = tokens[6]
        self.var_name = tokens[7]
        self.regex = tokens[8]
        self.digit_timeout_ms = max(1000, int(tokens[9])) if len(tokens) > 9 else self.timeout_ms
        self.failure_ext = tokens[10] if len(tokens) > 10 else ""


def app_play_and_get_digits(session, arg):
    try:
        args = PagdArgs(arg)
    except ValueError:
        return
    variables = session.channel.variables
    for _ in range(args.tries):
        if not session.channel.up:
            return
        digits, result, terminator = _read_once(session, args)
        if terminator:
            variables.set("read_terminator_used", terminator)
        variables.set("read_result", result)
        if result == "failure":
            if digits:
                variables.set(args.var_name, digits)
            _play_invalid(session, args)
            continue
        if not _matches(args.regex, digits):
            variables.unset(args.var_name)
            variables.set(args.var_name + "_invalid", digits)
            _play_invalid(session, args)
            continue
        variables.set(args.var_name, digits)
        return


def _matches(regex, digits):
    try:
        return re.search(regex, digits) is not None
    except re.error:
        return False


def _play_invalid(session, args):
    if args.invalid_prompt and args.invalid_prompt != "silence" and session.channel.up:
        source = open_source(session, args.invalid_prompt)
        if source is not None:
            play_source(session, source)


def _read_once(session, args):
    """One try: the prompt (any digit barges in), then digits until max, a terminator or a timeout."""
    collected = []
    if args.prompt != "silence":
        source = open_source(session, args.prompt)
        if source is not None:
            _, collected, samples = play_source(session, source, stop_digits=ALL_DIGITS)
            set_playback_variables(session, samples)
    pending = list(collected)
    digits = ""
    clock = session.switch.clock
    deadline = clock.now() + args.timeout_ms / 1000.0
    while session.channel.up:
        while pending:
            digit = pending.pop(0)
            if digit in args.terminators:
                if args.max_digits == 1 and not digits:
                    return "", "success", digit
                if args.append_terminator:
                    digits += digit
                ok = len(digits) >= args.min_digits
                return digits, "success" if ok else "failure", digit
            digits += digit
            if len(digits) >= args.max_digits and not args.terminator_required:
                return digits, "success", None
            deadline = clock.now() + args.digit_timeout_ms / 1000.0
        remaining = deadline - clock.now()
        if remaining <= 0:
            break
        session.wait(remaining)
        pending.extend(session.pump())
    if not digits or len(digits) < args.min_digits:
        return digits, "failure", None
    return digits, "timeout", None
