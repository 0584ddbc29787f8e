"""Same floor, scenario and seed: byte-identical injected log (dry runs, flat out)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from simulators import cli
from simulators.model import DEMO_FLOOR, load_floor
from simulators.runner import ScenarioRun, dump_log
from simulators.scenario import load_scenario
from simulators.transport import NullTransport


def _run(name: str, seed: int) -> str:
    floor = load_floor(DEMO_FLOOR)
    return dump_log(ScenarioRun(load_scenario(name, floor), floor, NullTransport(), seed=seed, speed=0).run())


@pytest.mark.parametrize("name", ["strip-overload", "fire-drill", "visitor-tailgated"])
def test_same_seed_same_bytes(name: str) -> None:
    assert _run(name, 1) == _run(name, 1)


def test_other_seed_other_background() -> None:
    one, two = json.loads(_run("strip-overload", 1)), json.loads(_run("strip-overload", 2))
    assert one["published"]["sha256"] != two["published"]["sha256"]
    assert [i["step"] for i in one["injections"]] == [i["step"] for i in two["injections"]]


def test_cli_writes_the_log_and_prints_the_expectations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "log.json"
    assert cli.main(["--scenario", "fire-real", "--dry-run", "--speed", "0", "--seed", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "fire.confirmed" in printed and "second_detector" in printed
    log = json.loads(out.read_text(encoding="utf-8"))
    assert [e["rule"] for e in log["expected_alarms"]][:1] == ["fire.smoke_alarm"]
    steps = {i["step"] for i in log["injections"]}
    assert {"first_smoke", "heat_rise", "second_detector"} <= steps
    heat = [
        json.loads(m["payload"])["temperature"]
        for i in log["injections"]
        if i["step"] == "heat_rise"
        for m in i["messages"]
    ]
    assert heat[-1] == 68.0 and max(b - a for a, b in itertools.pairwise(heat)) <= 1.6  # 6 degC/min, 15 s


def test_cli_rejects_a_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\ntitle: x\nstart: 2026-11-30T10:00:00+08:00\nduration: 1m\ntimeline: []\n"
        "expect: [{rule: no.such_rule}]\n",
        encoding="utf-8",
    )
    assert cli.main(["--scenario", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5: timeline" in err and f"{bad}:6: expect[0].rule" in err


def test_ac_failure_drives_the_machine_room_as_documented() -> None:
    log = json.loads(_run("mr-ac-failure", 1))
    assert log["injections"][0]["step"] == "ac_off"
    assert log["published"]["by_dialect"]["probe"] > 100


def test_a_run_whose_start_is_already_past_sends_what_is_due_at_once() -> None:
    """`run(t0_monotonic)` in the past (a set-up that took longer than the clock it shares): the run catches
    up at once and sends what a flat-out run sends, so the simulator's t stays on the caller's clock."""
    floor = load_floor(DEMO_FLOOR)
    scenario = load_scenario("door-forced", floor)
    speed = 10.0
    started = time.monotonic()
    late = ScenarioRun(scenario, floor, NullTransport(), seed=1, speed=speed).run(
        started - scenario.duration / speed)
    assert time.monotonic() - started < scenario.duration / speed  # it waited for nothing
    flat_out = json.loads(_run("door-forced", 1))
    assert {**late, "speed": 0} == flat_out
