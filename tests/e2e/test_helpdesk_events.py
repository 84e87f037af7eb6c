"""Calls through the emulator and the controller reach a real helpdesk receiver: signed, in order, with a link."""

import dataclasses
import io
import urllib.parse

import soundfile

from controller.app import Controller
from tests.controller.helpdesk_receiver import HelpdeskReceiver, http_get
from tests.e2e.conftest import System

SECRET = "test-secret-0123456789abcdef"


def test_events_of_recorded_and_declined_calls_arrive_signed_in_order_with_a_working_link(tmp_path):
    receiver = HelpdeskReceiver(SECRET).start()
    system = System(tmp_path)
    system.controller.stop(drain_timeout_s=1)  # rebuild it with a helpdesk endpoint and a link server
    config = dataclasses.replace(system.config, helpdesk={
        "secret": SECRET, "links_listen": "127.0.0.1:0",
        "endpoints": [{"name": "hd", "url": receiver.url, "events": ["*"], "timeout_s": 2}]})
    system.controller = Controller(config, listen=("127.0.0.1", 0), esl=system.emulator.esl_address).start()
    try:
        summary = system.run_calls([
            {"id": "yes", "caller": "+4915112345678", "dialed": "+4930100100", "caller_dtmf": [{"at_s": 5, "digits": "1"}],
             "agent": {"extension": "1001", "answer_after_s": 1, "audio": "marker"},
             "hangup": {"by": "caller", "at_s": 15}},
            {"id": "no", "start_s": 0.5, "caller": "+4917098765432", "dialed": "+4930100100",
             "caller_dtmf": [{"at_s": 5, "digits": "2"}], "agent": {"extension": "1001"},
             "hangup": {"by": "caller", "at_s": 12}}])
        yes, no = summary["yes"]["uuid"], summary["no"]["uuid"]
        receiver.wait_until(lambda: any(r.json["type"] == "recording.completed" for r in receiver.accepted), 20)
        receiver.wait_until(lambda: sum(r.json["call_uuid"] == no for r in receiver.accepted) >= 2, 20)
        assert all(r.signature_ok for r in receiver.requests)
        types = {uuid: [r.json["type"] for r in receiver.accepted if r.json["call_uuid"] == uuid] for uuid in (yes, no)}
        assert types[yes] == ["call.routed", "consent.decided", "recording.started", "recording.completed"]
        assert types[no] == ["call.routed", "consent.decided"]
        completed = next(r.json for r in receiver.accepted if r.json["type"] == "recording.completed")
        assert completed["data"]["duration_s"] > 5 and completed["process"] == "de"
        url = urllib.parse.urlsplit(completed["data"]["link"]["url"])
        status, headers, body = http_get(system.controller.helpdesk.link_server.address[1], f"{url.path}?{url.query}")
        assert status == 200
        data, rate = soundfile.read(io.BytesIO(body), dtype="int16")
        assert data.shape[1] == 2 and abs(len(data) / rate - completed["data"]["duration_s"]) < 0.5
        status, _, _ = http_get(system.controller.helpdesk.link_server.address[1], f"{url.path}?{url.query}x")
        assert status == 403
    finally:
        system.close()
        receiver.down()
