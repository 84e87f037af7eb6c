"""Event parsing throughput: stock greenswitch 0.0.19 against our ESL layer, on the same byte stream.

The stream is every FS->APP frame of the captured traces that stock greenswitch
can take without desynchronising or crashing (it cannot read JSON/XML events
and does not read a disconnect notice's body), repeated to about --events
frames. Both sides run their real receive loop and frame handler in this
process, over an in-memory file: greenswitch's `receive_events` (readline,
ESLEvent, parse_data over the body) and our `OutboundCall.receive_events`
(chunked reads, FrameParser, matching and queueing). CPU seconds come from
time.process_time; each side runs --rounds times, interleaved, best kept.
"""

import argparse
import importlib.util
import io
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from greenswitch.esl import ESLProtocol  # noqa: E402

from controller import eslparse  # noqa: E402
from controller.esl import OutboundCall  # noqa: E402

TRACES_DIR = ROOT / "tests" / "traces"
SKIPPED_TYPES = (b"text/event-json", b"text/event-xml", b"text/disconnect-notice")


def load_trace_decoder():
    spec = importlib.util.spec_from_file_location("trace_decode", TRACES_DIR / "decode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def raw_frames(stream):
    frames, pos = [], 0
    while True:
        end = stream.find(b"\n\n", pos)
        if end < 0:
            return frames
        head = stream[pos:end]
        length = 0
        for line in head.split(b"\n"):
            if line.startswith(b"Content-Length:"):
                length = int(line.split(b":", 1)[1])
        frames.append((head, stream[pos:end + 2 + length]))
        pos = end + 2 + length


def build_stream(target_events):
    """(stream bytes, frame count, reply count) from the traces, repeated to about target_events."""
    decoder = load_trace_decoder()
    picked = []
    for path in sorted(TRACES_DIR.glob("*.txt")):
        streams, _, _ = decoder.streams(str(path))
        for head, raw in raw_frames(bytes(streams["FS->APP"])):
            if not any(kind in head for kind in SKIPPED_TYPES):
                picked.append((head, raw))
    replies = sum(1 for head, _ in picked if b"command/reply" in head or b"api/response" in head)
    repeats = max(1, round(target_events / len(picked)))
    return b"".join(raw for _, raw in picked) * repeats, len(picked) * repeats, replies * repeats


class _NullSocket:
    def close(self):
        pass


class _Slot:
    """Stands in for a waiting sender's AsyncResult."""
    __slots__ = ()

    def set(self, value):
        pass

    def ready(self):
        return False


def run_greenswitch(stream, replies):
    protocol = ESLProtocol()
    protocol.sock = _NullSocket()
    protocol.sock_file = io.BytesIO(stream)
    protocol.connected = True
    protocol._commands_sent = [_Slot()] * replies
    return _timed_receive(protocol)


class _FileSocket:
    """What OutboundCall needs of a socket, reading from memory."""

    def __init__(self, data):
        self._file = io.BytesIO(data)
        self.recv = self._file.read

    def makefile(self, mode):
        return io.BytesIO()

    def close(self):
        pass


def run_ours(stream, replies):
    call = OutboundCall(("bench", 0), _FileSocket(stream))
    call._receive_events_greenlet.kill(block=False)   # we drive the loop ourselves, in this greenlet
    call._process_events_greenlet.kill(block=False)
    call.session_data = {"Unique-ID": "not-a-traced-channel"}
    call._pending_replies.extend(_Slot() for _ in range(replies))
    return _timed_receive(call)


def _timed_receive(protocol):
    """Run the receive loop to EOF; return (CPU seconds, frames handled). Same counting on both sides."""
    counted = []
    original = protocol.handle_event
    protocol.handle_event = lambda frame: (counted.append(1), original(frame))
    started = time.process_time()
    protocol.receive_events()
    elapsed = time.process_time() - started
    return elapsed, len(counted)


def measure(events, rounds, use_cache):
    if not use_cache:
        eslparse._DECODE_CACHE_MAX_CHARS = -1
    stream, frames, replies = build_stream(events)
    theirs, ours = [], []
    for _ in range(rounds):
        eslparse._decode_cache.clear()
        seconds, handled = run_greenswitch(stream, replies)
        assert handled == frames, (handled, frames)
        theirs.append(seconds)
        seconds, handled = run_ours(stream, replies)
        assert handled == frames, (handled, frames)
        ours.append(seconds)
    ours_rate = frames / min(ours)
    theirs_rate = frames / min(theirs)
    return {
        "events": frames,
        "stream_bytes": len(stream),
        "rounds": rounds,
        "decode_cache": use_cache,
        "ingest_cpu_s": round(min(ours), 4),
        "greenswitch_cpu_s": round(min(theirs), 4),
        "ingest_cpu_s_median": round(statistics.median(ours), 4),
        "greenswitch_cpu_s_median": round(statistics.median(theirs), 4),
        "ingest_events_per_cpu_s": round(ours_rate),
        "greenswitch_events_per_cpu_s": round(theirs_rate),
        "ratio": round(ours_rate / theirs_rate, 3),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50000, help="about this many frames (default 50000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per side, best kept (default 3)")
    parser.add_argument("--no-cache", action="store_true", help="disable our decoded-value cache")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    logging.getLogger("controller.esl").setLevel(logging.ERROR)  # the DTMF queue overflows by design here
    result = measure(args.events, args.rounds, not args.no_cache)
    if args.json:
        print(json.dumps(result))
        return 0
    print("stream: %d frames, %.1f MB, best of %d rounds (decode cache %s)" % (
        result["events"], result["stream_bytes"] / 1e6, args.rounds, "on" if result["decode_cache"] else "off"))
    print("greenswitch 0.0.19: %8.3f CPU s  %9d events/CPU s" % (
        result["greenswitch_cpu_s"], result["greenswitch_events_per_cpu_s"]))
    print("ours (ingest):      %8.3f CPU s  %9d events/CPU s" % (
        result["ingest_cpu_s"], result["ingest_events_per_cpu_s"]))
    print("ratio: %.2f (target >= 1.5)" % result["ratio"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
