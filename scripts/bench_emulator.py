"""How many concurrent recorded calls and events per second the FreeSWITCH emulator sustains on one core.

For each N: start the emulator in its own process (pinned to one core), place N calls at speed 1 against a
lightweight controller in this process (raw-socket outbound ESL: connect, myevents, linger, answer, record_session
in stereo without write buffering or pre-buffer, park, exit on the linger notice), and check every call:
  setup   RECORD_START arrived;
  growth  while all N calls are up, every file grows by 32,000 bytes/s (stereo 8 kHz PCM16), within 3 %;
  final   RECORD_STOP arrived, its record_samples cover RECORD_START to CHANNEL_HANGUP (two packets' slack),
          and the WAV on disk is 44 + 4 * record_samples bytes. Audio written after the hangup is reported as
          "file end vs hangup" (FreeSWITCH stops at the hangup; the emulator keeps feeding until it tears down).
The emulator's CPU use (from /proc/<pid>/stat) is measured over the window in which all N calls are up;
max_concurrent_calls is the largest N with every call correct and the emulator under one core. events_per_s is the
highest rate of events the controller received in any one second of those runs (the hangup burst, all calls ending
at once, is where the emulator runs flat out).
"""

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time

import gevent
import gevent.server
import yaml

from freeswitch.emulator.testapp import OutboundCall

LEVELS = (250, 500, 1000, 1500)
QUICK_LEVELS = (100, 250)
RATE_HZ = 8000
BYTES_PER_S = RATE_HZ * 2 * 2          # stereo PCM16
RECORD_VARS = "{RECORD_STEREO=true,enable_file_write_buffering=false,RECORD_PRE_BUFFER_FRAMES=0}"
GROWTH_TOLERANCE = 0.03
TEARDOWN_TIMEOUT_S = 5.0               # from CHANNEL_HANGUP to HANGUP_COMPLETE and the linger notice


class Controller:
    """The lightweight controller: one greenlet per call, counting every event frame it receives."""

    def __init__(self, recordings_dir):
        self.recordings_dir = recordings_dir
        self.server = gevent.server.StreamServer(("127.0.0.1", 0), self._handle, backlog=4096)
        self.calls = []
        self.event_times = []

    def _handle(self, sock, address):
        call = OutboundCall(sock)
        self.calls.append(call)
        read_frame = call._frame

        def counting_frame():
            frame = read_frame()
            if "Event-Name" in frame:
                self.event_times.append(time.monotonic())
            return frame
        call._frame = counting_frame
        try:
            uuid = call.command("connect")["Unique-ID"]
            call.path = os.path.join(self.recordings_dir, f"{uuid}.wav")
            for text in ("myevents", "event plain RECORD_START RECORD_STOP", "linger"):
                call.command(text)
            for app, arg in (("answer", ""), ("record_session", f"{call.path} 0 {RECORD_VARS}"), ("park", "")):
                call.command(f"sendmsg\ncall-command: execute\nexecute-app-name: {app}\nexecute-app-arg: {arg}")
            call.until(lambda f: call.hung_up, timeout_s=600)
            call.until(lambda f: call.notice and call.reported, timeout_s=TEARDOWN_TIMEOUT_S)
        except Exception as exc:  # one call's failure is a finding, not the end of the benchmark
            call.result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                sock.sendall(b"exit\n\n")
            except OSError:
                pass
            sock.close()
            call.result["finished"] = True


def scenario(n, ramp_s, end_s):
    calls = [{"id": f"c{i}", "start_s": round(ramp_s * i / n, 4), "caller": f"+49151{i:08d}", "dialed": "+4930100100",
              "rate_hz": RATE_HZ, "caller_audio": "marker",
              "hangup": {"by": "caller", "at_s": round(end_s - ramp_s * i / n, 4)}} for i in range(n)]
    return {"speed": 1, "calls": calls}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sizes(calls):
    return {id(c): os.path.getsize(c.path) if os.path.exists(getattr(c, "path", "")) else 0 for c in calls}


def wait_until(condition, timeout_s, step_s=0.1):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        gevent.sleep(step_s)
    return condition()


def run_level(n, command, measure_s, emulator_core):
    ramp_s = max(1.0, n / 250)
    settle_s = 2.0
    end_s = 1.5 + ramp_s + settle_s + measure_s + 1.0       # every call hangs up at this emulator time
    with tempfile.TemporaryDirectory(prefix="bench-emulator-") as tmp:
        controller = Controller(tmp)
        controller.server.start()
        path = os.path.join(tmp, "calls.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(scenario(n, ramp_s, end_s), f)
        argv = command + [path, "--esl", "127.0.0.1:0", "--socket", "127.0.0.1:%d" % controller.server.address[1],
                          "--summary", os.path.join(tmp, "summary.json")]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if emulator_core is not None:
            os.sched_setaffinity(proc.pid, {emulator_core})
        up = wait_until(lambda: sum(1 for c in controller.calls if c.result["record_start_us"]) >= n,
                        timeout_s=ramp_s + 10)
        gevent.sleep(settle_s if up else 0)
        cpu0, t0, sizes0, events0 = cpu_seconds(proc.pid), time.monotonic(), sizes(controller.calls), len(controller.event_times)
        gevent.sleep(measure_s)
        cpu1, t1, sizes1 = cpu_seconds(proc.pid), time.monotonic(), sizes(controller.calls)
        all_up = up and all(not c.hung_up for c in controller.calls)
        wait_until(lambda: len(controller.calls) >= n and all(c.result["finished"] for c in controller.calls),
                   timeout_s=end_s + TEARDOWN_TIMEOUT_S + 10)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        stderr = proc.stderr.read().decode("utf-8", "replace")
        window_s = t1 - t0
        checks = {"setup": 0, "growth": 0, "final": 0}
        deviations_ms = []
        for call in controller.calls:
            r = call.result
            checks["setup"] += bool(r["record_start_us"])
            growth = (sizes1[id(call)] - sizes0[id(call)]) / (BYTES_PER_S * window_s)
            checks["growth"] += abs(growth - 1) <= GROWTH_TOLERANCE
            if r["record_samples"] and r["hangup_us"] and r["record_start_us"]:
                expected = (r["hangup_us"] - r["record_start_us"]) / 1e6 * RATE_HZ
                deviations_ms.append(round((r["record_samples"] - expected) * 1000 / RATE_HZ))
                on_disk = os.path.getsize(call.path) if os.path.exists(call.path) else -1
                checks["final"] += (r["record_samples"] >= expected - 2 * RATE_HZ // 50
                                    and on_disk == 44 + 4 * r["record_samples"])
        times = controller.event_times
        peak = max((sum(1 for t in times if s <= t < s + 1) for s in times[::max(1, len(times) // 2000)]), default=0)
        controller.server.stop()
    return {"calls": n, "connected": len(controller.calls), "held": all_up, **checks,
            "correct": all_up and len(controller.calls) == n and all(v == n for v in checks.values()),
            "cpu_percent": round(100 * (cpu1 - cpu0) / window_s, 1),
            "steady_events_per_s": round((len(times) - events0 and sum(1 for t in times if t0 <= t < t1)) / window_s, 1),
            "peak_events_per_s": peak, "final_deviation_ms": [min(deviations_ms, default=0), max(deviations_ms, default=0)], "total_events": len(times), "emulator_exit": proc.returncode,
            "emulator_stderr": stderr.strip().splitlines()[-3:]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run: %s calls" % ", ".join(map(str, QUICK_LEVELS)))
    parser.add_argument("--levels", default=None, help="comma-separated call counts (default %s)" % ",".join(map(str, LEVELS)))
    parser.add_argument("--measure-s", type=float, default=None, help="seconds of steady state measured per level")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--emulator-command", default=None,
                        help="command that starts the emulator (default: consentline-switch next to this Python)")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")] if args.levels else list(QUICK_LEVELS if args.quick else LEVELS)
    measure_s = args.measure_s or (2.0 if args.quick else 3.0)
    command = shlex.split(args.emulator_command) if args.emulator_command else [
        os.path.join(os.path.dirname(sys.executable), "consentline-switch")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # N sockets and N open recordings per process
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    emulator_core = cores[0] if cores else None
    if len(cores) > 1:
        os.sched_setaffinity(0, set(cores[1:]))                # keep the controller off the emulator's core
    results = []
    for n in levels:
        result = run_level(n, command, measure_s, emulator_core)
        results.append(result)
        if not args.json:
            print(f"{n:5d} calls: {'ok  ' if result['correct'] else 'FAIL'} emulator CPU {result['cpu_percent']:5.1f} %  "
                  f"setup {result['setup']}/{n}  growth {result['growth']}/{n}  final {result['final']}/{n}  "
                  f"events/s steady {result['steady_events_per_s']:.0f} peak {result['peak_events_per_s']}  "
                  f"file end vs hangup {result['final_deviation_ms'][0]}..{result['final_deviation_ms'][1]} ms",
                  flush=True)
    passing = [r for r in results if r["correct"] and r["cpu_percent"] < 100]
    summary = {"max_concurrent_calls": max((r["calls"] for r in passing), default=0),
               "events_per_s": max((r["peak_events_per_s"] for r in passing), default=0),
               "emulator_core": emulator_core, "levels": results}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"max_concurrent_calls: {summary['max_concurrent_calls']} (every call recorded correctly, "
              f"emulator under one core)\nevents_per_s: {summary['events_per_s']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
