"""Our subclasses leave greenswitch itself alone: other users keep its stock behaviour."""

import gevent
import greenswitch
import greenswitch.esl as gs

import controller.esl  # noqa: F401  (import and use ours first, then look at greenswitch)
import fakefs
from controller.esl import InboundClient


def test_greenswitch_functions_are_still_its_own():
    for cls, names in [(gs.ESLProtocol, ["receive_events", "handle_event", "send", "stop", "process_events",
                                         "_safe_exec_handler", "start_event_handlers"]),
                       (gs.OutboundSession, ["connect", "call_command", "hangup", "register_expected_event"]),
                       (gs.InboundESL, ["connect", "authenticate"]),
                       (gs.ESLEvent, ["parse_data"])]:
        for name in names:
            function = cls.__dict__.get(name) or gs.ESLProtocol.__dict__[name]
            assert function.__module__ == "greenswitch.esl", (cls, name)


def test_stock_parser_still_decodes_before_splitting_while_ours_does_not():
    block = "Event-Name: CHANNEL_EXECUTE\nvariable_x: a%0AEvent-Name%3A%20CHANNEL_HANGUP"
    assert gs.ESLEvent(block).headers["Event-Name"] == "CHANNEL_HANGUP"   # greenswitch's known flaw
    from controller.eslparse import parse_header_block
    assert parse_header_block(block)["Event-Name"] == "CHANNEL_EXECUTE"


def test_stock_inbound_client_still_works_next_to_ours():
    switch = fakefs.FakeInboundSwitch(api={"status": "UP\n"}).start()
    ours = InboundClient("127.0.0.1", switch.port, "ClueCon", command_timeout_s=1)
    stock = greenswitch.InboundESL("127.0.0.1", switch.port, "ClueCon")
    try:
        with gevent.Timeout(5):
            ours.connect()
            stock.connect()
            assert stock.send("api status").data == "UP\n"
            assert ours.api("status") == "UP\n"
            assert type(stock.send("api status")) is gs.ESLEvent
            stock.stop()
    finally:
        ours.close(exit_timeout_s=0.2)
        switch.stop()
