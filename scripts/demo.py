"""The demo behind ./scripts/demo: the FreeSWITCH emulator sends the sample calls to the Consentline controller
(both in this process, on free loopback ports), then the demo prints what the index says about each call and
what is on disk.

The controller uses the example configuration (controller/examples/consentline.example.yaml) with its data,
spool and recordings directories moved under --out, and the customers in scripts/demo-customers.csv.
"""

import argparse
import dataclasses
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(ROOT, "scripts")
EXAMPLE_CONFIG = os.path.join(ROOT, "controller", "examples", "consentline.example.yaml")
COLUMNS = ("call", "caller", "dialed", "process", "keys", "consent", "recording", "rec_s", "hangup")


def build_config(out_dir):
    from controller.config import load_config
    config = load_config(EXAMPLE_CONFIG)
    settings = dataclasses.replace(config.controller, data_dir=os.path.join(out_dir, "data"),
                                   spool_dir=os.path.join(out_dir, "spool"),
                                   recordings_dir=os.path.join(out_dir, "recordings"))
    return dataclasses.replace(config, controller=settings)


def run(scenario_path, out_dir, speed=None):
    from controller.app import Controller
    from controller.customers import read_customers_csv
    from freeswitch.emulator.runner import ScenarioRunner
    from freeswitch.emulator.scenario import load_scenario
    from freeswitch.emulator.server import Emulator

    scenario_speed, specs = load_scenario(scenario_path)
    shutil.rmtree(out_dir, ignore_errors=True)
    config = build_config(out_dir)
    emulator = Emulator("127.0.0.1", 0, speed=speed or scenario_speed,
                        recordings_dir=os.path.join(out_dir, "switch")).start()
    controller = Controller(config, listen=("127.0.0.1", 0), esl=emulator.esl_address)
    controller.index.import_customers(read_customers_csv(os.path.join(HERE, "demo-customers.csv"),
                                                         set(config.processes)))
    controller.start()
    try:
        summary = ScenarioRunner(emulator.switch, f"127.0.0.1:{controller.port}", specs).run()
    finally:
        controller.stop(drain_timeout_s=10)
        emulator.stop()
    from controller import audit
    from controller.index import Index
    with Index(os.path.join(out_dir, "data", "consentline.db")) as index:
        calls = {c["uuid"]: c for c in index.calls()}
        recordings = {r["call_uuid"]: r for r in index.recordings()}
        for uuid, call in calls.items():
            call["actions"] = audit.entries(index, call_uuid=uuid)
    return summary, calls, recordings


def agent_actions(summary, calls):
    """(call id, "1001 pause done, transfer to 1002, 1002 resume done") for calls with agent codes or a transfer,
    in time order (audit rows and the switch's transfers are both ordered by when they happened)."""
    for call in summary["calls"]:
        actions = [f"{a['actor']} {a['action']} {a['outcome']}" for a in calls.get(call["uuid"], {}).get("actions", [])]
        transfers = [h for h in call["heard"] if h["what"] == "transfer"]
        if transfers:  # the audit log has no times on the emulator's clock: place the transfer by who acted
            before = [a for a in actions if a.split()[0] != transfers[0]["to"]]
            after = [a for a in actions if a.split()[0] == transfers[0]["to"]]
            actions = before + [f"transfer to {t['to']}" for t in transfers] + after
        if actions:
            yield call["id"], ", ".join(actions)


def rows(summary, calls, recordings):
    for call in summary["calls"]:
        row = calls.get(call["uuid"], {})
        rec = recordings.get(call["uuid"])
        keys = "".join(d["digits"] for d in call["dtmf"] if d["leg"] == "caller") or "-"
        duration = f"{rec['duration_s']:.1f}" if rec and rec.get("duration_s") is not None else "-"
        yield (call["id"], call["caller"], call["dialed"], row.get("process") or "-", keys,
               row.get("consent_outcome") or "-", rec["state"] if rec else "none", duration,
               call["hangup_cause"] or "did not end")


def print_table(table):
    widths = [max(len(str(r[i])) for r in [COLUMNS] + table) for i in range(len(COLUMNS))]
    for row in [COLUMNS, tuple("-" * w for w in widths)] + table:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


def audio_on_disk(out_dir):
    found = {}
    for sub in ("recordings", "spool", "switch"):
        for base, _, files in os.walk(os.path.join(out_dir, sub)):
            for name in files:
                if not name.endswith((".json", ".jsonl")):
                    found.setdefault(sub, 0)
                    found[sub] += os.path.getsize(os.path.join(base, name))
    return found


def main(argv=None):
    import logging
    logging.basicConfig(level=logging.ERROR)  # the table says what happened; warnings would only clutter it
    parser = argparse.ArgumentParser(description="Run the sample calls through the emulator and the controller.")
    parser.add_argument("--calls", default=os.path.join(HERE, "demo-calls.yaml"), help="scenario file")
    parser.add_argument("--out", default="demo-out", help="output directory, emptied first (default: demo-out)")
    parser.add_argument("--speed", type=float, default=None, help="virtual clock speed (default: the scenario's)")
    args = parser.parse_args(argv)
    args.out = os.path.abspath(args.out)
    from freeswitch.emulator.scenario import ScenarioError
    try:
        summary, calls, recordings = run(args.calls, args.out, args.speed)
    except ScenarioError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    table = list(rows(summary, calls, recordings))
    print(f"\n{len(table)} calls from {os.path.relpath(args.calls)}, through the emulator and the controller:\n")
    print_table(table)
    print("\nconsent: the outcome in the index; recording: its state there (purged = deleted after withdrawal);")
    print("rec_s: seconds kept. Why each call was or was not recorded:")
    for call in summary["calls"]:
        row = calls.get(call["uuid"], {})
        print(f"  {call['id']:24} {row.get('consent_reason', '-')}")
    actions = list(agent_actions(summary, calls))
    if actions:
        print("\nAgent feature codes (from the audit log) and transfers:")
        for call_id, text in actions:
            print(f"  {call_id:24} {text}")
    print(f"\nAudio bytes on disk by directory: {audio_on_disk(args.out) or 'none'}")
    print(f"Index: {os.path.abspath(os.path.join(args.out, 'data', 'consentline.db'))}  "
          f"(try: consentline calls list --data {os.path.join(args.out, 'data')})")
    ended = all(c["hangup_cause"] for c in summary["calls"])
    if not ended or len(calls) != len(summary["calls"]):
        print("\nSome calls did not end or are missing from the index.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
