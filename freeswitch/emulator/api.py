"""API commands (mod_commands) with FreeSWITCH 1.10.12's exact reply texts."""

import json
import logging

from freeswitch.emulator.bridge import set_hold
from freeswitch.emulator.recording import find_bugs, parse_recording_vars, start_recording
from freeswitch.emulator.transfer import uuid_bridge_api, uuid_transfer_api

log = logging.getLogger(__name__)

VERSION = "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit"
UUID_RECORD_USAGE = "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
SHOW_CHANNEL_COLUMNS = (
    "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,application,application_data,"
    "dialplan,context,read_codec,read_rate,read_bit_rate,write_codec,write_rate,write_bit_rate,secure,hostname,"
    "presence_id,presence_data,accountcode,callstate,callee_name,callee_num,callee_direction,call_uuid,"
    "sent_callee_name,sent_callee_num,initial_cid_name,initial_cid_num,initial_ip_addr,initial_dest,"
    "initial_dialplan,initial_context").split(",")


class ApiCommands:
    def __init__(self, switch):
        self.switch = switch
        self.commands = {
            "status": self.status, "version": self.version, "global_getvar": self.global_getvar,
            "eval": self.eval, "uuid_record": self.uuid_record, "uuid_broadcast": self.uuid_broadcast,
            "uuid_break": self.uuid_break, "uuid_kill": self.uuid_kill, "uuid_getvar": self.uuid_getvar,
            "uuid_setvar": self.uuid_setvar, "uuid_exists": self.uuid_exists,
            "uuid_send_dtmf": self.uuid_send_dtmf, "uuid_recv_dtmf": self.uuid_recv_dtmf, "show": self.show,
            "hupall": self.hupall, "originate": self.originate, "uuid_hold": self.uuid_hold,
            "uuid_bridge": lambda arg: uuid_bridge_api(self.switch, arg),
            "uuid_transfer": lambda arg: uuid_transfer_api(self.switch, arg),
        }

    def execute(self, command_line, listener=None) -> str:
        name, _, arg = command_line.strip().partition(" ")
        arg = arg.strip()
        self._fire_api_event(name, arg)
        handler = self.commands.get(name)
        if handler is None:
            return f"-ERR {name} Command not found!\n"
        result = handler(arg)
        return result if result else "-ERR no reply\n"

    def _fire_api_event(self, name, arg):
        event = self.switch.core.new_event("API")
        event.add("API-Command", name)
        event.add("API-Command-Argument", arg)
        self.switch.fire(event)

    def _session(self, uuid):
        session = self.switch.sessions.get(uuid)
        if session is not None and not session.channel.up:
            return None  # a lingering channel is gone for the APIs (uuid_exists says false)
        return session

    # -- system ----------------------------------------------------------------------------------------------

    def status(self, arg):
        s = self.switch
        up = int(s.clock.now())
        days, rest = divmod(up, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        return (f"UP 0 years, {days} days, {hours} hours, {minutes} minutes, {seconds} seconds, 0 milliseconds, "
                f"0 microseconds\n"
                f"FreeSWITCH (Version 1.10.12-release git a88d069 2024-08-02 21:02:27Z 64bit) is ready\n"
                f"{s.sessions_since_start} session(s) since startup\n"
                f"{len(s.sessions)} session(s) - peak {s.peak_sessions}, last 5min {s.peak_sessions} \n"
                f"0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
                f"100 session(s) max\n"
                f"min idle cpu 0.00/99.90\n"
                f"Current Stack Size/Max 240K/8192K\n")

    def version(self, arg):
        return f"FreeSWITCH Version {VERSION} (git a88d069 2024-08-02 21:02:27Z 64bit)\n"

    def global_getvar(self, arg):
        return {"hostname": self.switch.core.hostname}.get(arg, "")

    def eval(self, arg):
        return arg

    def originate(self, arg):
        return "-ERR NO_ROUTE_DESTINATION\n"

    def hupall(self, arg):
        cause = arg.split()[0] if arg else "MANAGER_REQUEST"
        for session in list(self.switch.sessions.values()):
            session.hangup(cause, initiator="kill")
        return "+OK hangup all channels with cause " + cause + "\n"

    # -- channels -------------------------------------------------------------------------------------------

    def uuid_kill(self, arg):
        tokens = arg.split()
        session = self._session(tokens[0]) if tokens else None
        if session is None:
            return "-ERR No such channel!\n"
        session.hangup(tokens[1] if len(tokens) > 1 else "NORMAL_CLEARING", initiator="kill")
        return "+OK\n"

    def uuid_hold(self, arg):
        """uuid_hold [off|toggle] <uuid> [<display>]: as the phone's hold key on that leg."""
        tokens = arg.split()
        mode = tokens.pop(0) if tokens and tokens[0] in ("off", "toggle") else "on"
        session = self._session(tokens[0]) if tokens else None
        if session is None:
            return "-ERR No such channel!\n" if tokens else "-USAGE: [off|toggle] <uuid> [<display>]\n"
        held = {"on": True, "off": False, "toggle": not session.channel.held}[mode]
        set_hold(session, held)
        return "+OK Success\n"

    def uuid_exists(self, arg):
        return "true" if self._session(arg.strip()) is not None else "false"

    def uuid_getvar(self, arg):
        tokens = arg.split()
        session = self.switch.sessions.get(tokens[0]) if tokens else None
        if session is None or len(tokens) < 2:
            return "-ERR No such channel!\n" if session is None else "-USAGE: <uuid> <var>\n"
        return session.channel.variables.get(tokens[1]) or "_undef_"

    def uuid_setvar(self, arg):
        tokens = arg.split(None, 2)
        session = self.switch.sessions.get(tokens[0]) if tokens else None
        if session is None:
            return "-ERR No such channel!\n"
        if len(tokens) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        session.channel.variables.set(tokens[1], tokens[2] if len(tokens) > 2 else None)
        return "+OK\n"

    def uuid_break(self, arg):
        tokens = arg.split()
        session = self._session(tokens[0]) if tokens else None
        if session is None:
            return "-ERR No such channel!\n"
        session.request_break(all_=len(tokens) > 1 and tokens[1] == "all")
        return "+OK\n"

    def uuid_broadcast(self, arg):
        tokens = arg.split()
        if len(tokens) < 2:
            return "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
        session = self._session(tokens[0])
        if session is None:
            return "-ERR invalid uuid\n"
        legs = tokens[2] if len(tokens) > 2 else "aleg"
        targets = []
        if legs in ("aleg", "both"):
            targets.append(session)
        if legs in ("bleg", "both") and session.channel.peer is not None:
            peer = self.switch.sessions.get(session.channel.peer.uuid)
            if peer is not None:
                targets.append(peer)
        app, _, app_arg = tokens[1].partition("::")
        for target in targets:
            if app_arg:
                target.queue_app(app, app_arg)
            else:
                target.queue_app("playback", tokens[1])
        return "+OK Message sent\n"

    def _dtmf_target(self, arg):
        """(session, digits) for uuid_send_dtmf / uuid_recv_dtmf, or (None, the error reply)."""
        tokens = arg.split()
        if len(tokens) < 2:
            return None, "-USAGE: <uuid> <dtmf_data>\n"
        session = self._session(tokens[0])
        if session is None:
            return None, "-ERR Cannot locate session!\n"
        return session, tokens[1].split("@")[0]

    def uuid_send_dtmf(self, arg):
        """Digits sent out to the far end: no DTMF event on this channel."""
        session, digits = self._dtmf_target(arg)
        if session is None:
            return digits
        self.switch.scenario_hook("dtmf_sent", session, digits=digits)
        return f"+OK {session.uuid} sent DTMF {digits}.\n"

    def uuid_recv_dtmf(self, arg):
        """Digits injected as if received (source APP); they do not pass digit bindings."""
        session, digits = self._dtmf_target(arg)
        if session is None:
            return digits
        session.receive_dtmf(digits, source="APP", duration=2000, from_endpoint=False)
        return f"+OK {session.uuid} received DTMF {arg.split()[1]}.\n"

    # -- recording ------------------------------------------------------------------------------------------

    def uuid_record(self, arg):
        tokens = arg.split(None, 4)
        if len(tokens) < 3 or tokens[1] not in ("start", "stop", "mask", "unmask", "pause", "resume"):
            return UUID_RECORD_USAGE
        uuid, action, path = tokens[0], tokens[1], tokens[2]
        session = self._session(uuid)
        if session is None:
            return "-ERR Cannot locate session!\n"
        if action == "start":
            limit_s = int(tokens[3]) if len(tokens) > 3 and tokens[3].isdigit() else 0
            variables = parse_recording_vars(tokens[4]) if len(tokens) > 4 else []
            ok = start_recording(session, path, limit_s, variables)
            return "+OK Success\n" if ok else "-ERR Cannot record session!\n"
        bugs = find_bugs(session, path)
        if not bugs:
            return {"stop": "-ERR Cannot stop record session!\n", "mask": "-ERR Cannot mask recording session!\n",
                    "unmask": "-ERR Cannot unmask recording session!\n",
                    "pause": "-ERR Cannot pause recording session!\n",
                    "resume": "-ERR Cannot resume recording session!\n"}[action]
        self.switch.media.flush(session)
        for bug in bugs:
            if action == "stop":
                bug.stop("stop")
            else:
                getattr(bug.recorder, action)()
        return "+OK Success\n"

    # -- show -----------------------------------------------------------------------------------------------

    def show(self, arg):
        tokens = arg.split()
        if not tokens or tokens[0] not in ("channels", "calls"):
            return "-USAGE: show channels [as json]\n"
        rows = [self._channel_row(s) for s in self.switch.sessions.values() if s.channel.up]
        if tokens[-2:] == ["as", "json"]:
            if not rows:
                return json.dumps({"row_count": 0})
            return json.dumps({"row_count": len(rows), "rows": rows}, indent=1)
        lines = [",".join(SHOW_CHANNEL_COLUMNS)]
        lines += [",".join(row[c] for c in SHOW_CHANNEL_COLUMNS) for row in rows]
        return "\n".join(lines) + f"\n\n{len(rows)} total.\n"

    def _channel_row(self, session):
        c = session.channel
        created_s = c.times.get("created", 0) // 1_000_000
        import time
        row = dict.fromkeys(SHOW_CHANNEL_COLUMNS, "")
        row.update({
            "uuid": c.uuid, "direction": c.direction,
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created_s)),
            "created_epoch": str(created_s), "name": c.name, "state": c.running_state,
            "cid_name": c.profile.caller_id_name, "cid_num": c.profile.caller_id_number,
            "ip_addr": c.profile.network_addr, "dest": c.profile.destination_number,
            "application": c.variables.get("current_application", ""),
            "application_data": c.variables.get("current_application_data", ""),
            "dialplan": c.profile.dialplan, "context": c.profile.context,
            "read_codec": c.codec, "read_rate": str(c.rate_hz), "read_bit_rate": str(c.codec_bit_rate),
            "write_codec": c.codec, "write_rate": str(c.rate_hz), "write_bit_rate": str(c.codec_bit_rate),
            "hostname": self.switch.core.hostname, "callstate": c.call_state, "call_uuid": c.uuid,
            "initial_cid_name": c.profile.caller_id_name, "initial_cid_num": c.profile.caller_id_number,
            "initial_ip_addr": c.profile.network_addr, "initial_dest": c.profile.destination_number,
            "initial_dialplan": c.profile.dialplan, "initial_context": c.profile.context,
        })
        return row
