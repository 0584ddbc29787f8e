"""`python -m simulators.cli` (wired as `floorwatch simulate`): run a scenario, or load mode.

    python -m simulators.cli --scenario strip-overload --speed 10 --seed 1 [--broker host:port] [--floor DIR]
    python -m simulators.cli --scenario fire-drill --server http://127.0.0.1:8000 --token T   # with operator steps
    python -m simulators.cli --scenario fire-real --dry-run --speed 0       # compute the injected log only
    python -m simulators.cli --list
    python -m simulators.cli --load --devices 2000 --rate 20000 --duration 30 [--qos 0] [--verify]

A scenario run prints what it injected and when, and the alarms it expects, and writes the same as JSON
(`--out`, default var/simulators/<scenario>-seed<seed>.json); with `--server`, also which of them the
server raised since the run started, and any it must not raise (`verdict.py`). A scenario's operator
steps (a drill's start, an acknowledgement, an all-clear) are done through the server's API (`--server`,
`--token` or FLOORWATCH_TOKEN); a scenario with such steps needs them, or `--dry-run`. One simulator plays
a floor on a broker at a time (`simulators/presence.py`): a run is refused while another one (a demo's own,
or another `simulate`) plays the same floor there. Exit status: 0 done (with `--server`: and every expectation
met), 1 with `--server` an expected alarm not raised or a forbidden one raised, 2 bad arguments, scenario
file, a step that could not be done or a floor already played on that broker, 3 broker unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from gateway.cli_args import host_port, non_negative, positive, positive_int
from gateway.mqtt import MqttSettings
from simulators import load as load_mode
from simulators import presence, verdict
from simulators.model import load_floor
from simulators.operator import OperatorApi, OperatorError
from simulators.runner import ScenarioRun, StepError, dump_log
from simulators.scenario import Operator, ScenarioError, floor_dir, list_scenarios, load_scenario, scenario_path
from simulators.transport import MqttTransport, NullTransport, Transport


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="floorwatch simulate", description="Floorwatch virtual floor")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--scenario", help="scenario name (simulators/scenarios/NAME.yaml) or a path to one")
    mode.add_argument("--load", action="store_true", help="load mode: many devices at a fixed total rate")
    mode.add_argument("--list", action="store_true", help="list the scenarios")
    parser.add_argument("--broker", type=host_port, default=("127.0.0.1", 1883), help="floor broker host:port")
    parser.add_argument("--username", default=None, help="MQTT user name for the floor broker")
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    parser.add_argument("--seed", type=int, default=None, help="RNG seed (default: the scenario's)")
    parser.add_argument("--speed", type=non_negative, default=10.0,
                        help="simulated seconds per wall second; 0 = flat out")
    parser.add_argument("--floor", type=Path, default=None, help="floor directory (default: the scenario's)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the injected log (JSON)")
    parser.add_argument("--dry-run", action="store_true", help="publish nothing; compute the log only")
    parser.add_argument("--server", default=None,
                        help="the server's URL, e.g. http://127.0.0.1:8000: the scenario's operator steps go there")
    parser.add_argument("--token", default=None,
                        help="bearer token for --server (default: $FLOORWATCH_TOKEN)")
    parser.add_argument("--print-json", action="store_true", help="also print the JSON log on stdout")
    parser.add_argument("--devices", type=positive_int, default=1000, help="load mode: number of devices")
    parser.add_argument("--rate", type=positive, default=10_000, help="load mode: messages per second, in total")
    parser.add_argument("--duration", type=positive, default=10.0, help="load mode: seconds")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=0, help="load mode: QoS of the readings")
    parser.add_argument("--connections", type=positive_int, default=1, help="load mode: parallel MQTT connections")
    parser.add_argument("--verify", action="store_true", help="load mode: count deliveries with a subscriber")
    parser.add_argument("--no-progress", action="store_true", help="load mode: no progress bar")
    return parser


def _summary(result: dict[str, Any], out: TextIO) -> None:
    print(
        f"scenario {result['scenario']} (seed {result['seed']}, floor {result['floor']}): "
        f"{result['start']} .. {result['end']}, {result['devices_running']} devices, "
        f"{result['published']['messages']} messages",
        file=out,
    )
    print("injected:", file=out)
    for entry in result["injections"]:
        topics = sorted({m["topic"] for m in entry["messages"]})
        shown = ", ".join(topics[:3]) + (f" (+{len(topics) - 3})" if len(topics) > 3 else "")
        print(
            f"  t={entry['t']:>8.1f}s {entry['at']}  {entry['step']:<18} {entry.get('action', ''):<16} "
            f"{entry.get('target') or '':<26} {len(entry['messages'])} msg {shown}",
            file=out,
        )
    for step in result["operator_steps"]:
        done = "operator" if step["performed"] else "operator (not performed)"
        print(f"  t={step['t']:>8.1f}s {step['at']}  {done}: {step['request']}", file=out)
    marks = result["roll_call_marks"]
    if marks:
        done = "" if marks[0]["performed"] else " (not performed: pass --server and --token)"
        print(f"  t={marks[0]['t']:>8.1f}s .. {marks[-1]['t']:.1f}s  the wardens' roll-call marks at the assembly "
              f"point: {len(marks)} people marked safe{done}", file=out)
    print("expected alarms:", file=out)
    for alarm in result["expected_alarms"]:
        subject = f" on {alarm['subject']}" if alarm["subject"] else ""
        severity = f" ({alarm['severity']})" if alarm["severity"] else ""
        print(
            f"  {alarm['rule']}{severity}{subject} by t={alarm['deadline_t']:.0f}s ({alarm['deadline_at']})",
            file=out,
        )
    for alarm in result["forbidden_alarms"]:
        print(
            f"  must NOT raise {alarm['rule']}" + (f" on {alarm['subject']}" if alarm["subject"] else ""),
            file=out,
        )
    if result["commands"]:
        print(f"commands obeyed: {len(result['commands'])}", file=out)
        for cmd in result["commands"][:20]:
            print(f"  t={cmd['t']:>8.1f}s {cmd['topic']} {cmd['payload'][:80]}", file=out)


def _busy(live: dict[str, Any], floor: str, broker: tuple[str, int]) -> str:
    who = live.get("client_id", "?")
    where = f"pid {live.get('pid', '?')} on {live.get('host', '?')}, since {live.get('since', '?')}"
    what = f"playing {live['scenario']}" if "scenario" in live else "running"
    demo = (" It is a demo's own simulator: restart that demo with `--scenario none` (its server, edge and "
            "broker without a simulated floor) and play the scenario with this command beside it."
            if str(who).startswith("floorwatch-demo-") else " Stop it first (Ctrl-C in its terminal).")
    return (f"a simulator is already {what} on floor {floor} at {broker[0]}:{broker[1]} ({who}, {where}): a second "
            "one on the same devices would contradict it (a plug the server cut reports off from one and on from "
            f"the other, and the server rightly raises elec.relay_mismatch).{demo}")


def run_scenario(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        probe = load_scenario(args.scenario)  # first without the floor: its `floor:` names the floor
        directory = args.floor or floor_dir(probe.floor)
        floor = load_floor(directory)
        scenario = load_scenario(args.scenario, floor)
    except ScenarioError as exc:
        print(exc, file=err)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot load the floor: {exc}", file=err)
        return 2
    operator = None
    api: OperatorApi | None = None
    steps = [s for s in scenario.timeline if isinstance(s, Operator)]
    if args.server and not args.dry_run:
        token = args.token or os.environ.get("FLOORWATCH_TOKEN")
        if not token:
            print("--server needs a token: --token TOKEN or FLOORWATCH_TOKEN", file=err)
            return 2
        api = OperatorApi(args.server, token)
        operator = api.perform
    elif steps and not args.dry_run:
        first = steps[0]
        print(f"scenario {scenario.name} has {len(steps)} operator step(s) (first: {first.name or 'unnamed'} at "
              f"{first.at:g} s: {first.request}), done through the server's API: pass --server URL and "
              "--token TOKEN (or FLOORWATCH_TOKEN), or --dry-run to only compute the log", file=err)
        return 2
    transport: Transport
    if args.dry_run:
        transport = NullTransport()
    else:
        settings = MqttSettings(
            host=args.broker[0], port=args.broker[1], username=args.username, protocol=args.protocol
        )
        try:
            live = presence.running_on(settings, floor.directory.name)
            if live is not None:
                print(_busy(live, floor.directory.name, args.broker), file=err)
                return 2
            # its own client id: two runs of one scenario must not take each other's session over
            transport = MqttTransport(settings, client_id=f"floorwatch-sim-{scenario.name}-{os.getpid()}",
                                      announce=(floor.directory.name, scenario.name))
        except presence.FloorTaken as taken:  # another run announced itself between our look and our claim
            print(_busy(taken.live, floor.directory.name, args.broker), file=err)
            return 2
        except ConnectionError as exc:
            print(exc, file=err)
            return 3
    started = datetime.now(UTC)
    try:
        result = ScenarioRun(scenario, floor, transport, seed=args.seed, speed=args.speed, operator=operator,
                             source=str(scenario_path(args.scenario))).run()
    except StepError as exc:
        print(f"scenario {scenario.name}: {exc}", file=err)
        return 2
    except ConnectionError as exc:  # the broker went away after the connect
        print(f"scenario {scenario.name}: {exc}", file=err)
        return 3
    finally:
        transport.close()
    text = dump_log(result)
    path = args.out or Path("var/simulators") / f"{scenario.name}-seed{result['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    _summary(result, out)
    if args.print_json:
        out.write(text)
    print(f"log: {path}", file=out)
    if api is None:
        return 0
    try:
        found = verdict.check(api, started, result["expected_alarms"], result["forbidden_alarms"])
    except OperatorError as exc:
        print(f"cannot read the server's alarms: {exc}", file=err)
        return 1
    for line in found.lines:
        print(line, file=out)
    return 1 if found.unmet else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name in list_scenarios():
            print(name)
        return 0
    if args.load:
        settings = MqttSettings(
            host=args.broker[0], port=args.broker[1], username=args.username, protocol=args.protocol
        )
        return load_mode.main_load(
            settings,
            devices=args.devices,
            rate=args.rate,
            duration=args.duration,
            qos=args.qos,
            connections=args.connections,
            verify=args.verify,
            seed=args.seed or 1,
            progress=not args.no_progress,
            out=sys.stdout,
            err=sys.stderr,
        )
    return run_scenario(args, sys.stdout, sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
