"""What a SIP channel looks like on FreeSWITCH 1.10.12: its name, caller profile and channel variables.

The variable names and their order follow the captured traces of a mod_sofia call; values come from the call.
"""

import random

from freeswitch.emulator.channel import CallerProfile, Channel

TRUNK_PROFILE = "external"
AGENT_PROFILE = "internal"
TRUNK_ADDR = "192.0.2.10"
TRUNK_PORT = 5060
LOCAL_ADDR = "127.0.0.1"
LOCAL_SIP_PORT = 5080


def _sdp(ip, port, pt, codec, rate):
    return (f"v=0\r\no=- {random.randint(10**7, 10**8)} {random.randint(10**7, 10**8)} IN IP4 {ip}\r\ns=-\r\n"
            f"c=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {codec}/{rate}\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n")


class Profiles:
    def __init__(self, switch):
        self.switch = switch
        self._session_ids = iter(range(1, 10**9))

    def trunk_channel(self, *, uuid, caller, dialed, rate_hz=8000, caller_name=None):
        """An inbound call from a SIP trunk, before the dialplan ran."""
        codec, pt = ("PCMA", 8) if rate_hz == 8000 else ("L16", 97)
        name = f"sofia/{TRUNK_PROFILE}/{caller}@{TRUNK_ADDR}:{TRUNK_PORT}"
        now_us = self.switch.clock.epoch_us()
        profile = CallerProfile(uuid=uuid, channel_name=name, direction="inbound", username=caller,
                                caller_id_name=caller_name or caller, caller_id_number=caller,
                                destination_number=dialed, network_addr=TRUNK_ADDR, source="mod_sofia",
                                context="public", created_us=now_us)
        call_id = f"{random.randint(1, 10**6)}-{random.randint(1, 10**5)}@{TRUNK_ADDR}"
        from_tag = f"{random.randint(10**8, 10**9)}"
        media_port = random.randrange(10000, 20000, 2)
        variables = [
            ("direction", "inbound"), ("uuid", uuid), ("session_id", str(next(self._session_ids))),
            ("sip_from_user", caller), ("sip_from_port", str(TRUNK_PORT)),
            ("sip_from_uri", f"{caller}@{TRUNK_ADDR}:{TRUNK_PORT}"), ("sip_from_host", TRUNK_ADDR),
            ("video_media_flow", "disabled"), ("text_media_flow", "disabled"), ("channel_name", name),
            ("sip_call_id", call_id), ("sip_local_network_addr", LOCAL_ADDR), ("sip_network_ip", TRUNK_ADDR),
            ("sip_network_port", str(TRUNK_PORT)), ("sip_invite_stamp", str(now_us)),
            ("sip_received_ip", TRUNK_ADDR), ("sip_received_port", str(TRUNK_PORT)), ("sip_via_protocol", "udp"),
            ("sip_from_user_stripped", caller), ("sip_from_tag", from_tag),
            ("sofia_profile_name", TRUNK_PROFILE), ("sofia_profile_url", f"sip:mod_sofia@{LOCAL_ADDR}:{LOCAL_SIP_PORT}"),
            ("recovery_profile_name", TRUNK_PROFILE),
            ("sip_full_via", f"SIP/2.0/UDP {TRUNK_ADDR}:{TRUNK_PORT};branch=z9hG4bK-{from_tag}"),
            ("sip_from_display", caller_name or caller),
            ("sip_full_from", f'"{caller_name or caller}" <sip:{caller}@{TRUNK_ADDR}:{TRUNK_PORT}>;tag={from_tag}'),
            ("sip_full_to", f"<sip:{dialed}@{LOCAL_ADDR}:{LOCAL_SIP_PORT}>"),
            ("sip_req_user", dialed), ("sip_req_port", str(LOCAL_SIP_PORT)),
            ("sip_req_uri", f"{dialed}@{LOCAL_ADDR}:{LOCAL_SIP_PORT}"), ("sip_req_host", LOCAL_ADDR),
            ("sip_to_user", dialed), ("sip_to_port", str(LOCAL_SIP_PORT)),
            ("sip_to_uri", f"{dialed}@{LOCAL_ADDR}:{LOCAL_SIP_PORT}"), ("sip_to_host", LOCAL_ADDR),
            ("sip_contact_user", caller), ("sip_contact_port", str(TRUNK_PORT)),
            ("sip_contact_uri", f"{caller}@{TRUNK_ADDR}:{TRUNK_PORT}"), ("sip_contact_host", TRUNK_ADDR),
            ("sip_via_host", TRUNK_ADDR), ("sip_via_port", str(TRUNK_PORT)), ("max_forwards", "70"),
            ("switch_r_sdp", _sdp(TRUNK_ADDR, media_port, pt, codec, rate_hz)),
            ("ep_codec_string", f"CORE_PCM_MODULE.{codec}@{rate_hz}h@20i@{16 * rate_hz if codec == 'L16' else 64000}b"),
            ("rtp_use_codec_string", "PCMU,PCMA"),
            ("remote_video_media_flow", "inactive"), ("remote_text_media_flow", "inactive"),
            ("remote_audio_media_flow", "sendrecv"), ("audio_media_flow", "sendrecv"),
            ("remote_media_ip", TRUNK_ADDR), ("remote_media_port", str(media_port)),
            ("rtp_audio_recv_pt", str(pt)), ("rtp_use_codec_name", codec), ("rtp_use_codec_rate", str(rate_hz)),
            ("rtp_use_codec_ptime", "20"), ("rtp_use_codec_channels", "1"),
            ("rtp_last_audio_codec_string", f"{codec}@{rate_hz}h@20i@1c"),
            ("read_codec", codec), ("original_read_codec", codec), ("read_rate", str(rate_hz)),
            ("original_read_rate", str(rate_hz)), ("write_codec", codec), ("write_rate", str(rate_hz)),
            ("dtmf_type", "rfc2833"), ("endpoint_disposition", "RECEIVED"),
            ("DP_MATCH", f"ARRAY::{dialed}|:{dialed}"), ("call_uuid", uuid),
        ]
        channel = Channel(profile=profile, direction="inbound", rate_hz=rate_hz, codec=codec, uuid=uuid,
                          variables=variables)
        channel.times["created"] = now_us
        return channel

    def agent_channel(self, *, uuid, extension, a_channel, rate_hz):
        """The B-leg `bridge user/<ext>` reaches: an outbound sofia leg to the agent's phone."""
        name = f"sofia/{AGENT_PROFILE}/{extension}@{LOCAL_ADDR}:5062"
        now_us = self.switch.clock.epoch_us()
        a_profile = a_channel.profile
        profile = CallerProfile(uuid=uuid, channel_name=name, direction="outbound", username=extension,
                                caller_id_name=a_profile.caller_id_name, caller_id_number=a_profile.caller_id_number,
                                callee_id_name="Outbound Call", callee_id_number=extension,
                                destination_number=extension, network_addr=LOCAL_ADDR, source="mod_sofia",
                                context="default", created_us=now_us)
        codec = a_channel.codec
        variables = [
            ("direction", "outbound"), ("is_outbound", "true"), ("uuid", uuid),
            ("session_id", str(next(self._session_ids))), ("sip_profile_name", AGENT_PROFILE),
            ("video_media_flow", "disabled"), ("text_media_flow", "disabled"), ("channel_name", name),
            ("sip_destination_url", f"sip:{extension}@{LOCAL_ADDR}:5062"),
            ("dialed_user", extension), ("dialed_domain", LOCAL_ADDR),
            ("originator_codec", f"{codec}@{rate_hz}h@20i"), ("originator", a_channel.uuid),
            ("read_codec", codec), ("read_rate", str(rate_hz)), ("write_codec", codec), ("write_rate", str(rate_hz)),
            ("dtmf_type", "rfc2833"), ("call_uuid", a_channel.uuid),
        ]
        channel = Channel(profile=profile, direction="outbound", rate_hz=rate_hz, codec=codec, uuid=uuid,
                          variables=variables)
        channel.hit_dialplan = False
        channel.times["created"] = now_us
        return channel

    def phone_channel(self, *, uuid, extension, dialed, a_channel):
        """A call from an agent's phone into the switch (the consult call of a transfer), before its dialplan."""
        name = f"sofia/{AGENT_PROFILE}/{extension}@{LOCAL_ADDR}"
        now_us = self.switch.clock.epoch_us()
        profile = CallerProfile(uuid=uuid, channel_name=name, direction="inbound", username=extension,
                                caller_id_name=extension, caller_id_number=extension, destination_number=dialed,
                                network_addr=LOCAL_ADDR, source="mod_sofia", context="default", created_us=now_us)
        codec, rate_hz = a_channel.codec, a_channel.rate_hz
        variables = [
            ("direction", "inbound"), ("uuid", uuid), ("session_id", str(next(self._session_ids))),
            ("sip_from_user", extension), ("sip_from_host", LOCAL_ADDR), ("channel_name", name),
            ("sip_req_user", dialed), ("sip_to_user", dialed), ("sofia_profile_name", AGENT_PROFILE),
            ("read_codec", codec), ("read_rate", str(rate_hz)), ("write_codec", codec), ("write_rate", str(rate_hz)),
            ("dtmf_type", "rfc2833"), ("endpoint_disposition", "RECEIVED"), ("call_uuid", uuid),
        ]
        channel = Channel(profile=profile, direction="inbound", rate_hz=rate_hz, codec=codec, uuid=uuid,
                          variables=variables)
        channel.times["created"] = now_us
        return channel

    def on_answer(self, channel):
        """mod_sofia sets the media variables when it answers."""
        v = channel.variables
        if channel.profile.source != "mod_sofia":
            return
        port = random.randrange(16384, 32768, 2)
        v.set("rtp_local_sdp_str", _sdp(LOCAL_ADDR, port, 8, channel.codec, channel.rate_hz))
        v.set("local_media_ip", LOCAL_ADDR)
        v.set("local_media_port", str(port))
        v.set("advertised_media_ip", LOCAL_ADDR)
        v.set("rtp_use_timer_name", "soft")
        v.set("rtp_use_pt", "8")
        v.set("rtp_use_ssrc", str(random.randint(10**9, 4 * 10**9)))
        v.set("rtp_2833_send_payload", "101")
        v.set("rtp_2833_recv_payload", "101")
        v.set("remote_media_ip", v.get("remote_media_ip") or TRUNK_ADDR)
        v.set("remote_media_port", v.get("remote_media_port") or "16000")
        v.set("endpoint_disposition", "ANSWER")
