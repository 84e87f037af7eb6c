"""The pure frame parser against every captured trace and the cases that break greenswitch."""

import json
import re
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given, settings, strategies as st

import fakefs
from controller.eslerrors import ESLProtocolError
from controller.eslparse import FrameParser, parse_header_block, parse_stream

TRACES = sorted(p.name for p in fakefs.TRACES_DIR.glob("*.txt") if fakefs.trace_stream(p.name))
_LINE = re.compile(rb"^([^:\n]+): ?(.*)$", re.M)


def reference_headers(block):
    """An independent decode: regex over bytes, percent-decoding with the stdlib, first duplicate wins."""
    headers = {}
    for name, value in _LINE.findall(block):
        headers.setdefault(name.decode(), unquote_to_bytes(value).decode("utf-8", "replace"))
    return headers


def reference_frame(raw):
    """(outer headers, inner headers or None, inner body) of one raw frame, decoded independently."""
    head, _, body = raw.partition(b"\n\n")
    outer = reference_headers(head)
    kind = outer.get("Content-Type")
    if kind == "text/event-plain":
        inner_head, _, inner_body = body.partition(b"\n\n")
        return outer, reference_headers(inner_head), inner_body.decode()
    if kind == "text/event-json":
        obj = json.loads(body)
        flat = {k: ("ARRAY::" + "|:".join(v) if isinstance(v, list) else v) for k, v in obj.items()}
        return outer, flat, flat.pop("_body", "")
    return outer, None, body.decode()


@pytest.mark.parametrize("trace", TRACES)
def test_every_trace_parses_and_every_value_matches_an_independent_decode(trace):
    stream = fakefs.trace_stream(trace)
    raw_frames = fakefs.split_frames(stream)
    frames, leftover = parse_stream(stream)
    assert leftover == 0
    assert len(frames) == len(raw_frames) > 0
    for frame, raw in zip(frames, raw_frames):
        outer, inner, body = reference_frame(raw)
        if frame.content_type == "text/event-xml":
            assert frame.headers["Event-Name"] == "CHANNEL_CREATE"
            continue
        if inner is None:
            assert frame.headers == outer and frame.body == body
        else:
            assert frame.envelope == outer
            assert frame.headers == inner
            assert frame.body == body


@pytest.mark.parametrize("trace", ["outbound_connect_answer_playback.txt", "event_json_sample.txt",
                                   "inbound_auth_api.txt"])
def test_any_split_gives_the_same_frames(trace):
    stream = fakefs.trace_stream(trace)
    whole, _ = parse_stream(stream)
    for chunk_size in (1, 2, 7, 1000, 4096):
        parser = FrameParser()
        frames = []
        for start in range(0, len(stream), chunk_size):
            frames += parser.feed(stream[start:start + chunk_size])
        assert [(f.headers, f.body) for f in frames] == [(f.headers, f.body) for f in whole]
        assert parser.buffered_bytes == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=40))
def test_random_splits_give_the_same_frames(cut_sizes):
    stream = fakefs.trace_stream("inbound_auth_api.txt") + fakefs.trace_stream("hangup_disconnect_linger3.txt")
    whole, _ = parse_stream(stream)
    parser, frames, pos = FrameParser(), [], 0
    for size in cut_sizes:
        frames += parser.feed(stream[pos:pos + size])
        pos += size
    frames += parser.feed(stream[pos:])
    assert [(f.content_type, f.headers, f.body) for f in frames] == \
        [(f.content_type, f.headers, f.body) for f in whole]


def test_encoded_newline_stays_inside_its_value():
    forged = "x%0AEvent-Name%3A%20CHANNEL_HANGUP%0AUnique-ID%3A%20other"
    raw = fakefs.TraceEvent(fakefs.CONNECT_TRACE, "CHANNEL_EXECUTE_COMPLETE").build()
    raw = raw.replace(b"\n\nEvent-Name:", b"\n\nvariable_x: " + forged.encode() + b"\nEvent-Name:")
    raw = re.sub(rb"^Content-Length: \d+", b"Content-Length: %d" % (len(raw.split(b"\n\n", 1)[1])), raw)
    [frame] = FrameParser().feed(raw)
    assert frame.headers["variable_x"] == "x\nEvent-Name: CHANNEL_HANGUP\nUnique-ID: other"
    assert frame.event_name == "CHANNEL_EXECUTE_COMPLETE"
    assert frame.headers["Unique-ID"] == fakefs.CALL_UUID


def test_duplicate_header_keeps_the_first_and_the_order():
    headers = parse_header_block("Event-Name: X\nHangup-Cause: NORMAL_CLEARING\nA: 1\nHangup-Cause: OTHER")
    assert headers["Hangup-Cause"] == "NORMAL_CLEARING"
    assert list(headers) == ["Event-Name", "Hangup-Cause", "A"]


def test_hangup_complete_from_trace_has_its_first_hangup_cause():
    frames, _ = parse_stream(fakefs.trace_stream("hangup_disconnect.txt"))
    [complete] = [f for f in frames if f.event_name == "CHANNEL_HANGUP_COMPLETE"]
    assert complete.headers["Hangup-Cause"] == "NORMAL_CLEARING"


def test_background_job_body_follows_the_inner_content_length():
    frames, _ = parse_stream(fakefs.trace_stream("inbound_auth_api.txt"))
    jobs = [f for f in frames if f.event_name == "BACKGROUND_JOB"]
    assert [j.body for j in jobs][1] == "-ERR NO_ROUTE_DESTINATION\n"
    assert jobs[0].body.startswith("UP 0 years") and jobs[0].body.endswith("240K/8192K\n")
    assert jobs[0].headers["Content-Length"] == str(len(jobs[0].body.encode()))
    assert jobs[1].headers["Job-Command-Arg"] == "loopback/doesnotexist_9 &park"


def test_custom_event_body_with_header_like_lines_stays_body():
    body = "line one: looks like a header\nEvent-Name: FORGED\n\nünïcode body\n"
    raw = fakefs.event_frame([("Event-Name", "CUSTOM"), ("Event-Subclass", "consent::digit")], body)
    [frame] = FrameParser().feed(raw)
    assert frame.event_name == "CUSTOM" and frame.headers["Event-Subclass"] == "consent::digit"
    assert frame.body == body
    assert "line one" not in frame.headers


def test_content_length_counts_bytes_not_characters():
    body = "ü" * 10 + "\n"
    stream = fakefs.api_frame(body) + fakefs.reply_frame("+OK next")
    frames, leftover = parse_stream(stream)
    assert [f.body for f in frames[:1]] == [body] and frames[1].reply_text == "+OK next"
    assert leftover == 0


def test_json_events_keep_arrays_like_plain_does_and_the_body():
    frames, _ = parse_stream(fakefs.trace_stream("dtmf_events.txt"))
    digits = [f.headers["DTMF-Digit"] for f in frames if f.event_name == "DTMF"]
    assert digits and all(len(d) == 1 for d in digits)
    execute = next(f for f in frames if f.event_name == "CHANNEL_EXECUTE")
    assert execute.headers["variable_DP_MATCH"] == "ARRAY::8084|:8084"
    [frame] = FrameParser().feed(fakefs.json_event_frame('{"Event-Name":"BACKGROUND_JOB","_body":"+OK x\\n"}'))
    assert frame.body == "+OK x\n" and "_body" not in frame.headers


def test_headerless_digit_action_event_has_no_name():
    raw = fakefs.event_frame([("agent_code", "tag"), ("digits", "12"), ("execute", "non-blocking"),
                              ("Unique-ID", fakefs.CALL_UUID)])
    [frame] = FrameParser().feed(raw)
    assert frame.is_event and frame.event_name is None
    assert frame.headers["agent_code"] == "tag" and frame.headers["digits"] == "12"


def test_connect_reply_is_one_block_with_decoded_reply_text():
    [frame] = FrameParser().feed(fakefs.connect_reply())
    assert frame.content_type == "command/reply" and frame.reply_text == "+OK\n"
    assert frame.headers["Unique-ID"] == fakefs.CALL_UUID
    assert frame.headers["Channel-Channel-Name"] == "sofia/peer/sipp@127.0.0.1:5062"
    assert frame.headers["Socket-Mode"] == "async" and frame.headers["Control"] == "full"


def test_bgapi_reply_carries_job_uuid_header():
    frames, _ = parse_stream(fakefs.trace_stream("inbound_auth_api.txt"))
    reply = next(f for f in frames if f.reply_text.startswith("+OK Job-UUID"))
    assert reply.headers["Job-UUID"] == reply.reply_text.split(": ", 1)[1]


def test_disconnect_notices_linger_and_final_with_body():
    frames, _ = parse_stream(fakefs.disconnect_frame(linger=True) + fakefs.disconnect_frame())
    assert frames[0].is_linger_notice and frames[0].headers["Linger-Time"] == "-1"
    assert not frames[1].is_linger_notice and frames[1].body == fakefs.GOODBYE.decode()


def test_rude_rejection_and_auth_request():
    raw = b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n"
    frames, _ = parse_stream(b"Content-Type: auth/request\n\n" + raw)
    assert [f.content_type for f in frames] == ["auth/request", "text/rude-rejection"]
    assert frames[1].body == "Access Denied, go away.\n"


def test_bad_content_length_and_endless_header_are_rejected():
    with pytest.raises(ESLProtocolError):
        FrameParser().feed(b"Content-Type: api/response\nContent-Length: x\n\n")
    with pytest.raises(ESLProtocolError):
        FrameParser(max_head_bytes=100).feed(b"A: " + b"b" * 200)
    with pytest.raises(ESLProtocolError):
        FrameParser(max_body_bytes=10).feed(b"Content-Length: 11\n\n")
