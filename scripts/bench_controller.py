"""How many concurrent consent-flow calls one controller process sustains on one core, and how fast it reacts.

Each level N runs the FreeSWITCH emulator in a driver process (pinned to one core) placing N calls at speed 1,
--arrivals-per-s a second, into `consentline run` (another process, pinned to the other core) with the example
config and temporary data, spool (tmpfs) and recordings directories. Every caller dials the German opt-in number,
hears the 4 s prompt and presses a key 5 s after arriving: 1 to agree; every tenth caller 2 to decline; another
tenth agrees and later presses *9 (withdraw) while all N calls are up. The agent answers; the calls are held so
that all N are up together for --measure-s, then hang up in arrival order. The index must then show, per call,
process de and the outcome the keys asked for; agreeing calls one completed recording as long as the emulator
recorded (hangup minus RECORD_START, 0.3 s slack), decliners none, withdrawers one purged. A level counts when
that holds, all N were up together and the controller never used a full core (no 1 s window at or above
SATURATED_CPU_PERCENT). A last burst level (--burst) offers calls faster, for calls_per_s.

Figures (at the highest level that counts):
  calls_per_s            calls handed to their agent per second (first to last `bridge`) in the burst level;
  dtmf_reaction_ms       from the emulator generating the caller's consent key (DTMF event) to it running the
                         controller's `uuid_record <uuid> start`, both on CLOCK_MONOTONIC in the emulator's
                         process (the switch part, key to play_and_get_digits completing, is shown apart);
  withdraw_reaction_ms   the same from the 9 of *9 to `uuid_record <uuid> stop`, with all N calls up;
  cpu_s_per_1000_events  all controller CPU from first arrival to last teardown, per 1,000 event frames sent to it;
  rss_bytes_per_call     controller VmRSS at the plateau minus before the first call, divided by N (recorded audio
                         held back in memory is part of it: `holdback_audio_s` says how much per call);
  ingest/greenswitch     frames per CPU second of our receive loop and stock greenswitch's, on the outbound ESL
                         byte stream captured in this run (scripts/bench_esl_parse.py's loops and frame filter).
Other processes' CPU use during each level is reported too: on a shared machine it skews every figure.
"""

import argparse
import json
import logging
import os
import resource
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_CONFIG = os.path.join(ROOT, "controller", "examples", "consentline.example.yaml")
BIN = os.path.dirname(sys.executable)
LEVELS = (100, 250, 500, 1000, 1500)
QUICK_LEVELS = (50, 200)
ARRIVALS_PER_S = 100.0       # offered call rate of the levels
BURST = (500, 500.0)         # calls, offered per second: how fast calls can be set up (calls_per_s)
QUICK_BURST = (200, 400.0)
START_DELAY_S = 1.0          # between the go signal and the first call
KEY_AT_S = 5.0               # after arrival; the prompt is 4 s
DECLINE_EVERY = 10
SETTLE_S = 2.0
SAMPLE_S = 0.2
SATURATED_CPU_PERCENT = 97.0
TARGET_P99_MS = 50.0               # issue 3: p99 DTMF-to-reaction under 50 ms at 1,000 calls
DURATION_SLACK_S = 0.3
HOLDBACK_S = 20.0                  # the de process's hold_back_s in the example config
CAPTURE_MAX_BYTES = 64 << 20


# -- the driver: the emulator's process ------------------------------------------------------------------------

def drive(summary_path, scenario_path):
    """Runs in the emulator's process: ESL on a free port, then the scenario once told where the controller is."""
    import gevent.select
    from freeswitch.emulator.listener import Listener
    from freeswitch.emulator.runner import ScenarioRunner
    from freeswitch.emulator.scenario import load_scenario
    from freeswitch.emulator.server import Emulator
    from freeswitch.emulator.session import Session

    from controller.gcpacing import GcPacer

    logging.basicConfig(level=logging.WARNING)
    _, specs = load_scenario(scenario_path)
    # FreeSWITCH has no garbage collector: the emulator's own collection pauses must not count as the controller's
    # reaction time, so this process paces them as the controller does.
    gevent.config.track_greenlet_tree = False
    emulator = Emulator("127.0.0.1", 0).start()
    GcPacer().start()
    print("ESL %d" % emulator.esl_address[1], flush=True)
    ready, _, _ = gevent.select.select([sys.stdin], [], [], 60)
    line = sys.stdin.readline().split() if ready else []
    if len(line) != 2 or line[0] != "GO":
        return 1
    times, stats, captured = {}, {"frames": 0, "events": 0, "captured_bytes": 0}, {}
    _instrument(Session, Listener, times, stats, captured)
    runner = ScenarioRunner(emulator.switch, line[1], specs)
    emulator.switch.observers.append(lambda kind, session, **info: _observe(times, kind, session, info))
    summary = runner.run()
    emulator.stop()
    with open(summary_path + ".stream", "wb") as f:
        for chunks in captured.values():
            f.write(b"".join(chunks))
    summary.update(times=times, **stats)
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(summary, f)
    return 0


def _instrument(session_class, listener_class, times, stats, captured):
    """Time DTMF events and play_and_get_digits completions; count and capture what goes to the controller."""
    fire, send = session_class.fire, listener_class.send

    def timed_fire(session, name, extra=(), subclass=None, body=None):
        entry = times.get(session.uuid)
        if entry is not None:
            if name == "DTMF":
                entry.setdefault("dtmf", time.monotonic())
                entry["dtmf_last"] = time.monotonic()
            elif name == "CHANNEL_EXECUTE_COMPLETE" and ("Application", "play_and_get_digits") in extra:
                entry.setdefault("pagd_done", time.monotonic())
        return fire(session, name, extra, subclass, body)

    def counted_send(listener, frame):
        if listener.outbound and frame is not None and not (
                listener.closing and not frame.startswith(b"Content-Type: text/disconnect-notice")):
            stats["frames"] += 1
            stats["events"] += b"Content-Type: text/event-" in frame[:80]
            chunks = captured.get(listener)
            if chunks is None and stats["captured_bytes"] < CAPTURE_MAX_BYTES:
                chunks = captured[listener] = []
            if chunks is not None and stats["captured_bytes"] < CAPTURE_MAX_BYTES:  # whole frames only
                chunks.append(frame)
                stats["captured_bytes"] += len(frame)
        return send(listener, frame)
    session_class.fire, listener_class.send = timed_fire, counted_send


def _observe(times, kind, session, info):
    now = time.monotonic()
    if kind == "socket_connected":
        times[session.uuid] = {"arrived": now}
    entry = times.get(session.uuid)
    if entry is None:
        return
    if kind == "execute" and info["app"] == "bridge":
        entry.setdefault("bridge", now)
    elif kind == "record_start":
        entry.setdefault("record_start", now)
    elif kind == "record_stop":
        entry.setdefault("record_stop", now)
    elif kind == "hangup":
        entry.setdefault("hangup", now)
    elif kind == "destroyed":
        entry["destroyed"] = now


# -- the bench: processes, sampling ----------------------------------------------------------------------------

def scenario(n, arrivals_per_s, measure_s):
    ramp_s = n / arrivals_per_s
    hold_s = ramp_s + KEY_AT_S + SETTLE_S + measure_s + 1.0
    plateau_s = START_DELAY_S + ramp_s + KEY_AT_S + SETTLE_S     # from the go signal: all calls are up by now
    calls = []
    for i in range(n):
        start_s = START_DELAY_S + ramp_s * i / n
        keys = [{"at_s": KEY_AT_S, "digits": "2" if role(i) == "declines" else "1"}]
        if role(i) == "withdraws":  # spread over the first half of the plateau
            keys.append({"at_s": round(plateau_s + measure_s / 2 * i / n - start_s, 4), "digits": "*9"})
        calls.append({"id": f"c{i}", "start_s": round(start_s, 4), "caller": f"+49151{i:08d}",
                      "dialed": "+4930100100", "caller_audio": "marker", "caller_dtmf": keys,
                      "agent": {"extension": "1001", "answer_after_s": 0.5, "audio": "marker"},
                      "hangup": {"by": "caller", "at_s": round(hold_s, 4)}})
    return {"speed": 1, "calls": calls}


def role(i):
    """Every tenth caller declines, every tenth withdraws (*9) while all calls are up; the rest agree."""
    return {DECLINE_EVERY - 1: "declines", DECLINE_EVERY // 2: "withdraws"}.get(i % DECLINE_EVERY, "agrees")


def write_config(tmp, spool_dir):
    with open(EXAMPLE_CONFIG, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data["prompts_dir"] = os.path.join(os.path.dirname(EXAMPLE_CONFIG), data.get("prompts_dir") or ".")
    data["controller"].update(data_dir=os.path.join(tmp, "data"), recordings_dir=os.path.join(tmp, "recordings"),
                              spool_dir=spool_dir)
    path = os.path.join(tmp, "consentline.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f)
    return path, data["controller"]


def proc_sample(pid):
    """(monotonic time, CPU seconds, RSS bytes) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/status") as f:
        rss_kb = next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)  # 0: exiting
    return time.monotonic(), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss_kb * 1024


def spawn(argv, core, **kwargs):
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    return subprocess.Popen(argv, preexec_fn=pin, cwd=ROOT, **kwargs)


def wait_for_line(path, prefix, proc, timeout_s):
    """The first line of a log file that starts with prefix (a child announcing where it listens)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(prefix):
                    return line
        time.sleep(0.05)
    raise RuntimeError(f"{os.path.basename(path)}: no {prefix!r} line within {timeout_s:g} s; it ends:\n"
                       + "\n".join(_tail(path, 8)))


def run_level(n, rate, measure_s, args, cores, spool_parent):
    """One level in temporary directories; (result, the outbound ESL bytes captured)."""
    with tempfile.TemporaryDirectory(prefix="bench-controller-") as tmp, \
            tempfile.TemporaryDirectory(prefix="bench-spool-", dir=spool_parent) as spool_dir:
        config_path, dirs = write_config(tmp, spool_dir)
        scenario_path, summary_path = os.path.join(tmp, "calls.yaml"), os.path.join(tmp, "summary.json")
        with open(scenario_path, "w") as f:
            yaml.safe_dump(scenario(n, rate, measure_s), f)
        emulator_log, controller_log = (open(os.path.join(tmp, name), "w") for name in ("emulator.log", "controller.log"))
        driver = spawn([sys.executable, os.path.abspath(__file__), "--drive", summary_path, scenario_path], cores[0],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=emulator_log, text=True)
        controller = None
        try:
            readable, _, _ = select.select([driver.stdout], [], [], 30)
            esl_port = int(driver.stdout.readline().split()[1]) if readable else None
            controller = spawn(args.controller_command + ["run", "--config", config_path,
                                "--esl", f"127.0.0.1:{esl_port}", "--listen", "127.0.0.1:0",
                                "--max-calls", str(max(n, 1000)), "--drain-s", "5"], cores[1],
                               stdout=subprocess.DEVNULL, stderr=controller_log)
            line = wait_for_line(controller_log.name, "consentline: accepting calls on", controller, 30)
            listen = line.split(" on ", 1)[1].split(",")[0].strip()
            samples, switch_samples = [proc_sample(controller.pid)], [proc_sample(driver.pid)]
            machine_s = machine_busy_s()
            driver.stdin.write(f"GO {listen}\n")
            driver.stdin.flush()
            sample_until_exit(controller.pid, driver, n / rate + 120, samples, switch_samples)
            machine_s = machine_busy_s() - machine_s
            stop(controller)
            with open(summary_path, encoding="utf-8") as f:
                summary = json.load(f)
            with open(summary_path + ".stream", "rb") as f:
                stream = f.read()
            calls, recordings = read_index(dirs["data_dir"])
        finally:
            for proc in (driver, controller):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
            emulator_log.close()
            controller_log.close()
            tail = _tail(controller_log.name) + _tail(emulator_log.name)
        result = evaluate(n, summary, samples, calls, recordings)
        ours_s = samples[-1][1] - samples[0][1] + switch_samples[-1][1] - switch_samples[0][1]
        result.update(offered_per_s=rate, emulator_cpu_percent_peak_1s=_round(peak_cpu(switch_samples)),
                      other_processes_cpu_percent=_round(100 * (machine_s - ours_s) / (samples[-1][0] - samples[0][0])),
                      log_tail=tail)
        return result, stream


def machine_busy_s():
    """CPU seconds all processes on this machine have used (from /proc/stat): others' load skews every figure."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:3]) + sum(fields[5:8])) / os.sysconf("SC_CLK_TCK")


def sample_until_exit(pid, driver, timeout_s, samples, switch_samples):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(SAMPLE_S)
        samples.append(proc_sample(pid))
        try:
            switch_samples.append(proc_sample(driver.pid))
        except OSError:
            pass  # it has just exited
        if driver.poll() is not None:
            return


def stop(controller):
    controller.send_signal(signal.SIGTERM)
    try:
        controller.wait(timeout=20)
    except subprocess.TimeoutExpired:
        controller.kill()
        controller.wait(timeout=10)


def read_index(data_dir):
    sys.path.insert(0, ROOT)
    from controller.index import Index
    with Index(os.path.join(data_dir, "consentline.db"), create=False) as index:
        calls = {c["uuid"]: c for c in index.calls()}
        recordings = {}
        for rec in index.recordings():
            recordings.setdefault(rec["call_uuid"], []).append(rec)
    return calls, recordings


def _tail(path, lines=3):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip() for line in f.readlines()[-lines:]]


# -- evaluation: pure over the collected data ------------------------------------------------------------------

def flow_errors(summary, calls, recordings):
    """What the index says differently from what each caller did (empty: every consent flow correct)."""
    errors = []
    for i, call in enumerate(summary["calls"]):
        uuid, t = call["uuid"], summary["times"].get(call["uuid"], {})
        row, recs = calls.get(uuid), recordings.get(uuid, [])
        want = {"declines": "declined", "withdraws": "withdrawn"}.get(role(i), "agreed")
        if row is None or row.get("process") != "de" or row.get("consent_outcome") != want:
            errors.append(f"{call['id']}: expected de/{want}, index says "
                          f"{row and row.get('process')}/{row and row.get('consent_outcome')}")
        elif want == "declined" and recs:
            errors.append(f"{call['id']}: declined but has {len(recs)} recording(s)")
        elif want == "withdrawn" and [r["state"] for r in recs] != ["purged"]:
            errors.append(f"{call['id']}: withdrew, expected one purged recording, got {[r['state'] for r in recs]}")
        elif want == "agreed":
            expected_s = t.get("hangup", 0) - t.get("record_start", float("inf"))
            if len(recs) != 1 or recs[0]["state"] != "completed" or recs[0]["duration_s"] is None \
                    or abs(recs[0]["duration_s"] - expected_s) > DURATION_SLACK_S:
                errors.append(f"{call['id']}: expected one completed recording of {expected_s:.2f} s, got "
                              + (", ".join(f"{r['state']} {r['duration_s']}" for r in recs) or "none"))
    return errors


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))] if ordered else None


def cpu_between(samples, start, end):
    """Mean CPU percent between two times, from the samples inside."""
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2:
        return None
    return 100 * (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def peak_cpu(samples, window_s=1.0):
    peak = 0.0
    for i, (t0, c0, _) in enumerate(samples):
        for t1, c1, _ in samples[i + 1:]:
            if t1 - t0 >= window_s:
                peak = max(peak, 100 * (c1 - c0) / (t1 - t0))
                break
    return peak


def evaluate(n, summary, samples, calls, recordings):
    times = [summary["times"].get(c["uuid"], {}) for c in summary["calls"]]
    agreed = [t for i, t in enumerate(times) if role(i) != "declines"]
    reaction = [1000 * (t["record_start"] - t["dtmf"]) for t in agreed if "record_start" in t and "dtmf" in t]
    withdrawal = [1000 * (t["record_stop"] - t["dtmf_last"]) for i, t in enumerate(times)
                  if role(i) == "withdraws" and "record_stop" in t and "dtmf_last" in t]
    switch_part = [1000 * (t["pagd_done"] - t["dtmf"]) for t in agreed if "pagd_done" in t and "dtmf" in t]
    bridges = sorted(t["bridge"] for t in times if "bridge" in t)
    up_from = max((t.get("bridge", float("inf")) for t in times), default=float("inf"))
    up_from = max([up_from] + [t.get("record_start", float("inf")) for t in agreed])
    up_until = min((t.get("hangup", 0) for t in times), default=0)
    held = len(times) == n and up_until - up_from >= 1.0
    first = min((t["arrived"] for t in times if "arrived" in t), default=samples[0][0])
    last = max((t.get("destroyed", 0) for t in times), default=samples[-1][0])
    level = [s for s in samples if first - SAMPLE_S <= s[0] <= last + SAMPLE_S] or samples
    plateau = [s for s in samples if up_from <= s[0] <= up_until]
    errors = flow_errors(summary, calls, recordings)
    peak = peak_cpu(level)
    rss = sorted(s[2] for s in plateau)[len(plateau) // 2] if plateau else None
    held_audio_s = min(HOLDBACK_S, up_until - max(t.get("record_start", 0) for t in agreed)) if agreed else 0
    result = {
        "calls": n, "held_at_once": held, "flow_errors": len(errors), "first_errors": errors[:3],
        "calls_per_s": round((len(bridges) - 1) / (bridges[-1] - bridges[0]), 1) if len(bridges) > 1 else None,
        "dtmf_reaction_p50_ms": _round(percentile(reaction, 0.5)), "dtmf_reaction_p99_ms": _round(percentile(reaction, 0.99)),
        "dtmf_reaction_max_ms": _round(max(reaction, default=None)),
        "dtmf_switch_part_p50_ms": _round(percentile(switch_part, 0.5)),
        "withdraw_reaction_p50_ms": _round(percentile(withdrawal, 0.5)),
        "withdraw_reaction_p99_ms": _round(percentile(withdrawal, 0.99)),
        "cpu_percent_plateau": _round(cpu_between(samples, up_from, up_until)), "cpu_percent_peak_1s": _round(peak),
        "cpu_s_per_1000_events": round(1000 * (level[-1][1] - level[0][1]) / max(1, summary["events"]), 4),
        "events": summary["events"], "frames": summary["frames"],
        "rss_bytes": rss, "rss_bytes_per_call": round((rss - samples[0][2]) / n) if rss else None,
        "holdback_audio_s": round(held_audio_s, 1),
    }
    result["counts"] = held and not errors and peak < SATURATED_CPU_PERCENT
    return result


def _round(value, digits=1):
    return None if value is None else round(value, digits)


# -- the parse ratio ---------------------------------------------------------------------------------------------

def parse_ratio(stream, rounds):
    """Stock greenswitch vs our ingest on the captured stream, with bench_esl_parse's loops and frame filter."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import bench_esl_parse as bench
    logging.getLogger("controller.esl").setLevel(logging.ERROR)  # the DTMF queue overflows by design here
    frames = [(head, raw) for head, raw in bench.raw_frames(stream) if not any(k in head for k in bench.SKIPPED_TYPES)]
    replies = sum(1 for head, _ in frames if b"command/reply" in head or b"api/response" in head)
    picked = [raw for _, raw in frames]
    stream = b"".join(picked)
    theirs, ours = [], []
    for _ in range(rounds):
        bench.eslparse._decode_cache.clear()
        seconds, handled = bench.run_greenswitch(stream, replies)
        theirs.append(seconds)
        seconds, handled_ours = bench.run_ours(stream, replies)
        ours.append(seconds)
        if handled != len(picked) or handled_ours != len(picked):
            raise RuntimeError(f"parse bench: {len(picked)} frames, greenswitch handled {handled}, ours {handled_ours}")
    return {"parse_frames": len(picked), "parse_stream_bytes": len(stream),
            "ingest_events_per_cpu_s": round(len(picked) / min(ours)),
            "greenswitch_events_per_cpu_s": round(len(picked) / min(theirs)),
            "ingest_ratio": round(min(theirs) / min(ours), 3)}


# -- the command line --------------------------------------------------------------------------------------------

def headline(results, burst, parse):
    passing = [r for r in results if r["counts"]]
    best = max(passing, key=lambda r: r["calls"]) if passing else {}
    keys = ("dtmf_reaction_p50_ms", "dtmf_reaction_p99_ms", "withdraw_reaction_p50_ms", "withdraw_reaction_p99_ms",
            "cpu_s_per_1000_events", "rss_bytes_per_call")
    fast = [r["calls"] for r in passing if (r["dtmf_reaction_p99_ms"] or 1e9) < TARGET_P99_MS]
    return {"max_concurrent_calls": best.get("calls", 0), "max_calls_dtmf_p99_under_target": max(fast, default=0),
            "calls_per_s": burst.get("calls_per_s") if burst.get("flow_errors") == 0 else None,
            **{k: best.get(k) for k in keys}, **parse, "burst": burst,
            "dtmf_reaction_definition": "emulator generates the caller's DTMF event -> emulator runs the "
                                        "controller's `uuid_record <uuid> start` (same clock)",
            "withdraw_reaction_definition": "emulator generates the 9 of *9 -> emulator runs `uuid_record <uuid> "
                                            "stop` (all calls up)",
            "levels": results}


def print_level(r):
    if "error" in r:
        print(f"{r['calls']:5d} calls @{r['offered_per_s']:g}/s: FAIL {r['error']}", flush=True)
        return
    print(f"{r['calls']:5d} calls @{r['offered_per_s']:g}/s: {'ok  ' if r['counts'] else 'FAIL'} held {'yes' if r['held_at_once'] else 'no '} "
          f"flow errors {r['flow_errors']}  set up {r['calls_per_s']}/s  DTMF->uuid_record p50 "
          f"{r['dtmf_reaction_p50_ms']} p99 {r['dtmf_reaction_p99_ms']} max {r['dtmf_reaction_max_ms']} ms "
          f"(switch part p50 {r['dtmf_switch_part_p50_ms']})  *9->stop p50 {r['withdraw_reaction_p50_ms']} "
          f"p99 {r['withdraw_reaction_p99_ms']} ms  CPU plateau {r['cpu_percent_plateau']} % "
          f"peak {r['cpu_percent_peak_1s']} % (emulator peak {r['emulator_cpu_percent_peak_1s']} %)  "
          f"{r['cpu_s_per_1000_events']} CPU s/1000 events  "
          f"RSS/call {(r['rss_bytes_per_call'] or 0) / 1024:.0f} KiB ({r['holdback_audio_s']} s audio held)  "
          f"other processes {r['other_processes_cpu_percent']} % CPU",
          flush=True)
    for error in r["first_errors"]:
        print(f"        {error}")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run: %s calls" % ", ".join(map(str, QUICK_LEVELS)))
    parser.add_argument("--levels", help="comma-separated call counts (default %s)" % ",".join(map(str, LEVELS)))
    parser.add_argument("--measure-s", type=float, default=None, help="seconds all calls are up together (default 3)")
    parser.add_argument("--arrivals-per-s", type=float, default=ARRIVALS_PER_S,
                        help=f"offered call rate of the levels (default {ARRIVALS_PER_S:g})")
    parser.add_argument("--burst", default=None, help="CALLS@RATE for calls_per_s (default %d@%g, quick %d@%g; "
                        "0 skips it)" % (BURST + QUICK_BURST))
    parser.add_argument("--parse-rounds", type=int, default=3, help="parse runs per side, best kept (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--controller-command", default=os.path.join(BIN, "consentline"),
                        help="how to start `consentline` (e.g. under python -m cProfile -o FILE)")
    parser.add_argument("--drive", nargs=2, metavar=("SUMMARY", "SCENARIO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.levels = [int(x) for x in args.levels.split(",")] if args.levels else list(
            QUICK_LEVELS if args.quick else LEVELS)
        calls, _, rate = (args.burst or "%d@%g" % (QUICK_BURST if args.quick else BURST)).partition("@")
        args.burst = (int(calls), float(rate or BURST[1])) if calls != "0" else None
    except ValueError as exc:
        parser.error(f"--levels/--burst: {exc}")
    args.measure_s = args.measure_s or (2.0 if args.quick else 3.0)
    args.controller_command = shlex.split(args.controller_command)
    return args


def run_all(args):
    """Every level, then the burst; (level results, burst result, the largest level's captured ESL stream)."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cores = cores[:2] if len(cores) >= 2 else [None, None]
    spool_parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None   # the spool belongs on tmpfs
    runs = [(n, args.arrivals_per_s, args.measure_s) for n in args.levels]
    results, stream = [], b""
    for n, rate, measure_s in runs + ([args.burst + (1.0,)] if args.burst else []):
        try:
            result, captured = run_level(n, rate, measure_s, args, cores, spool_parent)
        except (RuntimeError, OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
            result, captured = {"calls": n, "offered_per_s": rate, "counts": False, "error": str(exc)}, b""
        results.append(result)
        stream = stream if len(results) > len(runs) else (captured or stream)
        if not args.json:
            print_level(result)
    return results[:len(runs)], (results[len(runs)] if args.burst else {}), stream


def print_summary(summary, burst):
    print(f"max_concurrent_calls: {summary['max_concurrent_calls']} (every consent flow correct, all up at once, "
          f"controller under one core)\n"
          f"calls_per_s: {summary['calls_per_s']} (handed to the agent, first to last; {burst.get('calls', 0)} "
          f"calls offered at {burst.get('offered_per_s', 0):g}/s)\n"
          f"dtmf_reaction p50/p99: {summary['dtmf_reaction_p50_ms']}/{summary['dtmf_reaction_p99_ms']} ms "
          f"({summary['dtmf_reaction_definition']}); p99 under {TARGET_P99_MS:g} ms up to "
          f"{summary['max_calls_dtmf_p99_under_target']} calls\n"
          f"withdraw_reaction p50/p99: {summary['withdraw_reaction_p50_ms']}/{summary['withdraw_reaction_p99_ms']} "
          f"ms ({summary['withdraw_reaction_definition']})\n"
          f"cpu_s_per_1000_events: {summary['cpu_s_per_1000_events']}\n"
          f"rss_bytes_per_call: {summary['rss_bytes_per_call']}\n"
          f"event ingest: ours {summary['ingest_events_per_cpu_s']} vs greenswitch "
          f"{summary['greenswitch_events_per_cpu_s']} frames/CPU s, ratio {summary['ingest_ratio']} (target >= 1.5)")


def main(argv=None):
    args = parse_args(argv)
    if args.drive:
        return drive(*args.drive)
    try:
        results, burst, stream = run_all(args)
        if not stream:
            raise RuntimeError("no level produced an event stream to parse")
        summary = headline(results, burst, parse_ratio(stream, args.parse_rounds))
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary, burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
