"""A channel: identity, caller profile, state, variables and the channel-data headers FreeSWITCH puts on events."""

import uuid as uuidlib

import numpy as np

STATE_NUMBERS = {
    "CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_SOFT_EXECUTE": 3, "CS_EXECUTE": 4, "CS_EXCHANGE_MEDIA": 5,
    "CS_PARK": 6, "CS_CONSUME_MEDIA": 7, "CS_HIBERNATE": 8, "CS_RESET": 9, "CS_HANGUP": 10, "CS_REPORTING": 11,
    "CS_DESTROY": 12, "CS_NONE": 13,
}

# Q.850 numbers of the causes a controller meets; unknown names become NORMAL_CLEARING.
HANGUP_CAUSES = {
    "UNSPECIFIED": 0, "UNALLOCATED_NUMBER": 1, "NO_ROUTE_DESTINATION": 3, "NORMAL_CLEARING": 16, "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "SUBSCRIBER_ABSENT": 20, "CALL_REJECTED": 21,
    "DESTINATION_OUT_OF_ORDER": 27, "INVALID_NUMBER_FORMAT": 28, "FACILITY_REJECTED": 29,
    "NORMAL_UNSPECIFIED": 31, "NORMAL_CIRCUIT_CONGESTION": 34, "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42, "REQUESTED_CHAN_UNAVAIL": 44,
    "BEARERCAPABILITY_NOTAVAIL": 58, "INCOMPATIBLE_DESTINATION": 88, "RECOVERY_ON_TIMER_EXPIRE": 102,
    "ORIGINATOR_CANCEL": 487, "LOSE_RACE": 502, "MANAGER_REQUEST": 503, "MEDIA_TIMEOUT": 604,
    "ALLOTTED_TIMEOUT": 602, "PICKED_OFF": 501, "USER_NOT_REGISTERED": 606,
}
_CAUSE_BY_NUMBER = {}
for _name, _num in HANGUP_CAUSES.items():
    _CAUSE_BY_NUMBER.setdefault(_num, _name)


def cause_from_string(text: str) -> str:
    """switch_channel_str2cause: a name or a Q.850 number; anything unknown is NORMAL_CLEARING."""
    text = (text or "").strip()
    if text.isdigit():
        return _CAUSE_BY_NUMBER.get(int(text), "NORMAL_CLEARING")
    upper = text.upper()
    return upper if upper in HANGUP_CAUSES else "NORMAL_CLEARING"


class Variables:
    """Channel variables in FreeSWITCH's order: setting a variable moves it to the end; an empty value unsets it."""

    def __init__(self, pairs=()):
        self._values = {}
        for name, value in pairs:
            self.set(name, value)

    def set(self, name, value):
        self._values.pop(name, None)
        if value is not None and value != "":
            self._values[name] = str(value)

    def get(self, name, default=None):
        return self._values.get(name, default)

    def unset(self, name):
        self._values.pop(name, None)

    def __contains__(self, name):
        return name in self._values

    def items(self):
        return list(self._values.items())


class CallerProfile:
    """switch_caller_profile: the fields serialised with a `Caller-` (or `Channel-`) prefix."""

    def __init__(self, *, uuid, channel_name, direction, caller_id_name, caller_id_number, destination_number,
                 username="", network_addr="", source="mod_sofia", context="public", dialplan="XML",
                 callee_id_name="", callee_id_number="", created_us=0):
        self.uuid = uuid
        self.channel_name = channel_name
        self.direction = direction
        self.username = username
        self.dialplan = dialplan
        self.caller_id_name = caller_id_name
        self.caller_id_number = caller_id_number
        self.callee_id_name = callee_id_name
        self.callee_id_number = callee_id_number
        self.network_addr = network_addr
        self.destination_number = destination_number
        self.source = source
        self.context = context
        self.created_us = created_us

    def headers(self, prefix, times):
        p = prefix
        pairs = [
            (f"{p}-Direction", self.direction), (f"{p}-Logical-Direction", self.direction),
            (f"{p}-Username", self.username), (f"{p}-Dialplan", self.dialplan),
            (f"{p}-Caller-ID-Name", self.caller_id_name), (f"{p}-Caller-ID-Number", self.caller_id_number),
            (f"{p}-Orig-Caller-ID-Name", self.caller_id_name), (f"{p}-Orig-Caller-ID-Number", self.caller_id_number),
            (f"{p}-Callee-ID-Name", self.callee_id_name), (f"{p}-Callee-ID-Number", self.callee_id_number),
            (f"{p}-Network-Addr", self.network_addr), (f"{p}-ANI", self.caller_id_number),
            (f"{p}-Destination-Number", self.destination_number), (f"{p}-Unique-ID", self.uuid),
            (f"{p}-Source", self.source), (f"{p}-Context", self.context), (f"{p}-Channel-Name", self.channel_name),
            (f"{p}-Profile-Index", "1"), (f"{p}-Profile-Created-Time", str(self.created_us)),
            (f"{p}-Channel-Created-Time", str(self.created_us)),
        ]
        for label, key in (("Answered-Time", "answered"), ("Progress-Time", "progress"),
                           ("Progress-Media-Time", "progress_media"), ("Hangup-Time", "hangup"),
                           ("Transfer-Time", "transfer"), ("Resurrect-Time", "resurrect"),
                           ("Bridged-Time", "bridged"), ("Last-Hold", "last_hold"), ("Hold-Accum", "hold_accum")):
            pairs.append((f"{p}-Channel-{label}", str(times.get(key, 0))))
        pairs += [(f"{p}-Screen-Bit", "true"), (f"{p}-Privacy-Hide-Name", "false"),
                  (f"{p}-Privacy-Hide-Number", "false")]
        return [(k, v) for k, v in pairs if v != ""]


class Channel:
    """One call leg. Its session (session.py) runs applications; this object holds the state they change."""

    def __init__(self, *, profile: CallerProfile, direction, rate_hz=8000, codec="PCMA", ptime_ms=20,
                 uuid=None, variables=()):
        self.uuid = uuid or profile.uuid or str(uuidlib.uuid4())
        profile.uuid = self.uuid
        self.profile = profile
        self.name = profile.channel_name
        self.direction = direction
        self.rate_hz = rate_hz
        self.codec = codec
        self.ptime_ms = ptime_ms
        self.state = "CS_NEW"
        self.running_state = "CS_NEW"
        self.call_state = "DOWN"
        self.answer_state = "ringing"
        self.hangup_cause = None
        self.hit_dialplan = direction == "inbound"
        self.times = {}
        self.variables = Variables(variables)
        self.other_leg = None          # (other_type, Channel): "originator" or "originatee"
        self.peer = None               # the bridged Channel, while bridged
        self.up = True                 # False once hangup starts
        self.answered_at = None        # virtual seconds
        self.media_started_at = None   # virtual seconds: answer or early media, whichever came first
        self.hungup_at = None          # virtual seconds: media ends here
        self.held = False              # on hold: this leg's party says nothing to the other side
        self.taken_over = False        # uuid_bridge or a transfer is taking this leg out of what it does
        self.transfer_to = None        # (destination, context) of a pending switch_ivr_session_transfer
        self.audio = None              # callable(first_sample_since_answer, n) -> int16 array: what this leg says

    @property
    def codec_bit_rate(self):
        return {"PCMA": 64000, "PCMU": 64000, "L16": 16 * self.rate_hz}.get(self.codec, 64000)

    def basic_data(self):
        """switch_channel_event_set_basic_data, in FreeSWITCH's order."""
        pairs = [
            ("Channel-State", self.running_state),
            ("Channel-Call-State", self.call_state),
            ("Channel-State-Number", str(STATE_NUMBERS[self.state])),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"),
            ("Channel-Call-UUID", self.variables.get("call_uuid", self.uuid)),
            ("Answer-State", self.answer_state),
        ]
        if self.hangup_cause:
            pairs.append(("Hangup-Cause", self.hangup_cause))
        pairs += [
            ("Channel-Read-Codec-Name", self.codec), ("Channel-Read-Codec-Rate", str(self.rate_hz)),
            ("Channel-Read-Codec-Bit-Rate", str(self.codec_bit_rate)),
            ("Channel-Write-Codec-Name", self.codec), ("Channel-Write-Codec-Rate", str(self.rate_hz)),
            ("Channel-Write-Codec-Bit-Rate", str(self.codec_bit_rate)),
        ]
        pairs += self.profile.headers("Caller", self.times)
        if self.other_leg:
            other_type, other = self.other_leg
            pairs.append(("Other-Type", other_type))
            pairs += other.profile.headers("Other-Leg", other.times)
        return pairs

    def variable_headers(self):
        return [("variable_" + k, v) for k, v in self.variables.items()]

    def event_data(self, event, extended):
        event.extend(self.basic_data())
        if extended:
            event.extend(self.variable_headers())

    def read_audio(self, position, n):
        """n samples of what this leg's far end says, from `position` samples after its media started."""
        out = np.zeros(n, dtype=np.int16)
        if self.audio is None or self.answered_at is None or self.media_started_at is None:
            return out
        offset = int(round((self.answered_at - self.media_started_at) * self.rate_hz))
        start = position - offset
        skip = max(0, -start)
        if skip < n:
            out[skip:] = self.audio(start + skip, n - skip)
        return out

    def read_audio_at(self, virtual_t, n):
        """The same, addressed by virtual time (for the other leg of a bridge)."""
        if self.media_started_at is None or self.held:
            return np.zeros(n, dtype=np.int16)
        position = int(round((virtual_t - self.media_started_at) * self.rate_hz))
        if position < 0:
            head = np.zeros(min(n, -position), dtype=np.int16)
            return np.concatenate([head, self.read_audio(0, n - len(head))]) if len(head) < n else head
        return self.read_audio(position, n)

    def set_state(self, state):
        self.state = state
        self.running_state = state
