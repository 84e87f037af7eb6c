"""Events as FreeSWITCH 1.10 builds them: the 13 common headers, then channel data, then event-specific headers."""

import itertools
import socket
import time
import uuid as uuidlib

from freeswitch.emulator import wire

# Where FreeSWITCH 1.10.12 creates each event (Event-Calling-File/Function/Line-Number), as seen in the traces.
CALLING_SITE = {
    "API": ("switch_loadable_module.c", "switch_api_execute", 2954),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", 1572),
    "CALL_UPDATE": ("switch_channel.c", "switch_channel_flip_cid", 3277),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", 3846),
    "CHANNEL_PROGRESS_MEDIA": ("switch_channel.c", "switch_channel_perform_mark_pre_answered", 3646),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", 3560),
    "CHANNEL_CALLSTATE": ("switch_channel.c", "switch_channel_perform_set_callstate", 301),
    "CHANNEL_HOLD": ("switch_channel.c", "switch_channel_perform_mark_hold", 1148),
    "CHANNEL_UNHOLD": ("switch_channel.c", "switch_channel_perform_mark_hold", 1148),
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", 626),
    "CHANNEL_DATA": ("mod_event_socket.c", "parse_command", 2021),
    "CHANNEL_DESTROY": ("switch_core_session.c", "switch_core_session_perform_destroy", 1584),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", 2944),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", 2967),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", 3445),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c", "switch_core_session_reporting_state", 943),
    "CHANNEL_ORIGINATE": ("switch_core_state_machine.c", "switch_core_session_run", 632),
    "CHANNEL_OUTGOING": ("switch_core_session.c", "switch_core_session_outgoing_channel", 768),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", 1002),
    "CHANNEL_UNPARK": ("switch_ivr.c", "switch_ivr_park", 1213),
    "CHANNEL_STATE": ("switch_channel.c", "switch_channel_perform_set_running_state", 2408),
    "CHANNEL_UUID": ("switch_core_session.c", "switch_core_session_set_uuid", 2051),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "audio_bridge_on_exchange_media", 1025),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "audio_bridge_on_exchange_media", 1141),
    "CHANNEL_APPLICATION": ("mod_dptools.c", "event_function", 1432),
    "CUSTOM": ("mod_dptools.c", "event_function", 1432),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", 677),
    "HEARTBEAT": ("switch_core.c", "send_heartbeat", 88),
    "PLAYBACK_START": ("switch_ivr_play_say.c", "switch_ivr_play_file", 1652),
    "PLAYBACK_STOP": ("switch_ivr_play_say.c", "switch_ivr_play_file", 2034),
    "RECORD_START": ("switch_ivr_async.c", "record_callback", 1481),
    "RECORD_STOP": ("switch_ivr_async.c", "send_record_stop_event", 1240),
}
_DEFAULT_SITE = ("switch_event.c", "switch_event_fire_detailed", 2000)


class Event:
    """An ordered header list and an optional body; repeated names are allowed (CHANNEL_HANGUP_COMPLETE has two)."""

    __slots__ = ("headers", "body")

    def __init__(self, headers=None, body=None):
        self.headers = list(headers or [])
        self.body = body

    @property
    def name(self):
        return self.get("Event-Name")

    def get(self, name, default=None):
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def get_ci(self, name, default=None):
        want = name.lower()
        for key, value in self.headers:
            if key.lower() == want:
                return value
        return default

    def add(self, name, value):
        if value is not None and value != "":
            self.headers.append((name, str(value)))

    def extend(self, pairs):
        for name, value in pairs:
            self.add(name, value)

    def serialize(self, fmt="plain") -> bytes:
        return wire.SERIALIZERS[fmt](self.headers, self.body)


class Core:
    """The switch's identity and the global event sequence; stamps the common headers on every new event."""

    def __init__(self, clock, hostname=None, ipv4="127.0.0.1", ipv6="::1"):
        self.clock = clock
        self.core_uuid = str(uuidlib.uuid4())
        self.hostname = hostname or socket.gethostname()
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self._sequence = itertools.count(1)

    def new_event(self, name, subclass=None) -> Event:
        now_us = self.clock.epoch_us()
        seconds = now_us // 1_000_000
        calling_file, function, line = CALLING_SITE.get(name, _DEFAULT_SITE)
        event = Event([
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname),
            ("FreeSWITCH-IPv4", self.ipv4),
            ("FreeSWITCH-IPv6", self.ipv6),
            ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))),
            ("Event-Date-GMT", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(seconds))),
            ("Event-Date-Timestamp", str(now_us)),
            ("Event-Calling-File", calling_file),
            ("Event-Calling-Function", function),
            ("Event-Calling-Line-Number", str(line)),
            ("Event-Sequence", str(next(self._sequence))),
        ])
        if subclass:
            event.add("Event-Subclass", subclass)
        return event


# Events that carry every channel variable (switch_channel_event_set_extended_data's list).
EXTENDED_DATA_EVENTS = frozenset("""
CHANNEL_CREATE CHANNEL_ORIGINATE CHANNEL_UUID CHANNEL_ANSWER CHANNEL_PARK CHANNEL_UNPARK CHANNEL_BRIDGE
CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE REQUEST_PARAMS
CHANNEL_DATA CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_DESTROY SESSION_HEARTBEAT API RECORD_START RECORD_STOP
PLAYBACK_START PLAYBACK_STOP CALL_UPDATE MEDIA_BUG_START MEDIA_BUG_STOP CHANNEL_HOLD CHANNEL_UNHOLD TEXT CUSTOM
CHANNEL_APPLICATION
""".split())

# Event names FreeSWITCH knows (switch_event.c EVENT_NAMES); `event` ignores any other name.
EVENT_NAMES = frozenset("""
CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE CHANNEL_CALLSTATE CHANNEL_ANSWER CHANNEL_HANGUP
CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD CHANNEL_UNHOLD CHANNEL_BRIDGE
CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK
CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID API LOG INBOUND_CHAN OUTBOUND_CHAN STARTUP SHUTDOWN PUBLISH
UNPUBLISH TALK NOTALK SESSION_CRASH MODULE_LOAD MODULE_UNLOAD DTMF MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT
PRESENCE_PROBE MESSAGE_WAITING MESSAGE_QUERY ROSTER CODEC BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE
PRIVATE_COMMAND HEARTBEAT TRAP ADD_SCHEDULE DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML NOTIFY PHONE_FEATURE
PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE REQUEST_PARAMS CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT
CLIENT_DISCONNECTED SERVER_DISCONNECTED SEND_INFO RECV_INFO RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT
RECORD_START RECORD_STOP PLAYBACK_START PLAYBACK_STOP CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START
MEDIA_BUG_STOP CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT CALL_DETAIL DEVICE_STATE
TEXT SHUTDOWN_REQUESTED ALL
""".split())

# The set an outbound `myevents` subscribes (mod_event_socket.c).
MYEVENTS = frozenset("""
CHANNEL_ANSWER CHANNEL_APPLICATION CHANNEL_BRIDGE CHANNEL_CREATE CHANNEL_DATA CHANNEL_DESTROY CHANNEL_EXECUTE
CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_ORIGINATE CHANNEL_UUID CHANNEL_OUTGOING
CHANNEL_PARK CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA CHANNEL_STATE CHANNEL_UNBRIDGE CHANNEL_UNPARK
DETECTED_SPEECH DTMF NOTALK TALK
""".split())
