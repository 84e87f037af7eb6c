"""The demo behind ./scripts/demo: the emulator runs the sample calls against the test application and prints
what happened to each call (digits, recording, hangup cause) and where the files are.

Until the controller exists, freeswitch.emulator.testapp answers the calls: a prompt, one digit (1 records,
2 does not), a bridge to the agent. Pass --controller HOST:PORT to send the calls to a running controller instead.
"""

import argparse
import json
import os
import shutil
import sys

import soundfile

from freeswitch.emulator.runner import ScenarioRunner
from freeswitch.emulator.scenario import ScenarioError, load_scenario
from freeswitch.emulator.server import Emulator
from freeswitch.emulator.testapp import TestApp

HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = ("call", "caller", "dialed", "digits", "recording", "rec_s", "call_s", "hangup cause")


def agent_routes(specs):
    """dialed number -> the agent extension the scenario puts behind it (the test app bridges by number)."""
    routes = {}
    for spec in specs:
        if spec.agent is None:
            continue
        known = routes.setdefault(spec.dialed, spec.agent["extension"])
        if known != spec.agent["extension"]:
            raise ScenarioError(f"{spec.id}: dialed {spec.dialed} reaches {known} in another call; "
                                "the demo routes by dialled number")
    return routes


def run(scenario_path, out_dir, speed=None, controller=None):
    """Run the scenario; returns (summary dict, the test app's per-call results or {})."""
    scenario_speed, specs = load_scenario(scenario_path)
    recordings = os.path.join(out_dir, "recordings")
    shutil.rmtree(recordings, ignore_errors=True)
    os.makedirs(recordings)
    app = None
    if controller is None:
        app = TestApp(("127.0.0.1", 0), recordings, routes=agent_routes(specs)).start()
        controller = "%s:%d" % app.address
    emulator = Emulator("127.0.0.1", 0, speed=speed or scenario_speed, recordings_dir=recordings).start()
    try:
        summary = ScenarioRunner(emulator.switch, controller, specs).run()
        if app is not None:
            app.wait_for_calls(sum(1 for c in summary["calls"] if c["hangup_cause"]), timeout_s=15)
    finally:
        emulator.stop()
        if app is not None:
            app.stop()
    return summary, (dict(app.calls) if app is not None else {})


def rows(summary, app_calls):
    for call in summary["calls"]:
        digits = "".join(d["digits"] for d in call["dtmf"] if d["leg"] == "caller") or "-"
        result = app_calls.get(call["uuid"], {})
        path, rec_s = "-", "-"
        for rec in call["recordings"]:
            path = os.path.basename(rec["path"])
            rec_s = f"{soundfile.info(rec['path']).duration:.2f}" if os.path.exists(rec["path"]) else "missing"
        call_s = "-"
        if result.get("answered_us") and result.get("hangup_us"):
            call_s = f"{(result['hangup_us'] - result['answered_us']) / 1e6:.2f}"
        cause = call["hangup_cause"] or "did not end"
        if result.get("error"):
            cause += f" ({result['error']})"
        yield (call["id"], call["caller"], call["dialed"], digits, path, rec_s, call_s, cause)


def print_table(table):
    widths = [max(len(str(r[i])) for r in [COLUMNS] + table) for i in range(len(COLUMNS))]
    for row in [COLUMNS, tuple("-" * w for w in widths)] + table:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the sample calls through the FreeSWITCH emulator.")
    parser.add_argument("--calls", default=os.path.join(HERE, "demo-calls.yaml"), help="scenario file")
    parser.add_argument("--out", default="demo-out", help="output directory (default: demo-out)")
    parser.add_argument("--speed", type=float, default=None, help="virtual clock speed (default: the scenario's)")
    parser.add_argument("--controller", default=None, metavar="HOST:PORT",
                        help="send the calls to this controller instead of the built-in test application")
    args = parser.parse_args(argv)
    try:
        summary, app_calls = run(args.calls, args.out, args.speed, args.controller)
    except ScenarioError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    summary_path = os.path.join(args.out, "summary.json")
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump({"calls": summary["calls"], "controller": app_calls}, f, indent=2)
    table = list(rows(summary, app_calls))
    print(f"\n{len(table)} calls from {os.path.relpath(args.calls)}; digits: 1 = record, 2 = do not record\n")
    print_table(table)
    print(f"\nrec_s: seconds in the WAV (stereo, caller left, agent right); call_s: answer to hangup.")
    print(f"Recordings: {os.path.abspath(os.path.join(args.out, 'recordings'))}")
    print(f"Summary:    {os.path.abspath(summary_path)}")
    problems = [r[0] for r, c in zip(table, summary["calls"]) if not c["hangup_cause"]]
    problems += [r.get("uuid") for r in app_calls.values() if r.get("error")]
    if problems:
        print(f"\nProblems with {len(problems)} call(s): {', '.join(map(str, problems))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
