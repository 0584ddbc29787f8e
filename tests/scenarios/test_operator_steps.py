"""Issue 13 item 1, bad input: a scenario's operator step that cannot be done (unknown person, unknown door,
a request the server refuses, a server that is not there, nothing to act on) stops the scenario with a
message naming the scenario file, the step and what to do, never a silent log line. The steps go to the
real server of the end-to-end stack through `floorwatch simulate --server`, the scenario's devices to its
real broker."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.broker import EmbeddedBroker, free_port
from simulators import cli
from tests.e2e.conftest import ADMIN_TOKEN, Stack

START = ('  - {at: 1s, name: drill_start, action: operator, '
         'request: "POST /api/evacuations {\\"floor\\": \\"f1\\", \\"drill\\": true}"}\n')


def scenario(tmp: Path, steps: str) -> Path:
    path = tmp / "bad-steps.yaml"
    path.write_text(
        "name: bad-steps\ntitle: operator steps that cannot be done\nfloor: demo\n"
        "start: 2026-11-30T10:00:00+08:00\nduration: 10s\nbackground: {scope: none}\ntimeline:\n"
        + steps + "expect:\n  - {rule: evac.notice, within: 10s}\n", encoding="utf-8")
    return path


def simulate(path: Path, broker: EmbeddedBroker, server: str, capsys: pytest.CaptureFixture[str],
             *extra: str) -> tuple[int, str]:
    code = cli.main(["--scenario", str(path), "--speed", "0", "--broker", f"{broker.host}:{broker.port}",
                     "--server", server, "--token", ADMIN_TOKEN, "--out", str(path.with_suffix(".json")), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("step", "says"), [
    ('  - {at: 2s, name: mark_ghost, action: operator, '
     'request: "POST /api/evacuations/{evacuation}/roll-call/p-ghost {\\"note\\": \\"seen\\"}"}\n',
     ["answered 404", "person p-ghost is not in the site file", "check the ids in the request against the site"]),
    ('  - {at: 2s, name: secure_nowhere, action: operator, '
     'request: "POST /api/evacuations/doors/door-nowhere/secure {\\"reason\\": \\"drill over\\"}"}\n',
     ["answered 404", "device door-nowhere does not exist"]),
    ('  - {at: 2s, name: bad_floor, action: operator, '
     'request: "POST /api/evacuations {\\"floor\\": \\"f9\\", \\"drill\\": true}"}\n',
     ["answered", "f9"]),
    ('  - {at: 2s, name: ack_nothing, action: operator, '
     'request: "POST /api/alarms/{alarm:fire.confirmed:z9}/ack {}"}\n',
     ["nothing to act on: no open fire.confirmed alarm on z9", "is the step timed after what it acts on"]),
    ('  - {at: 2s, name: typo, action: operator, request: "PSOT /api/evacuations"}\n',
     ["write a request as 'METHOD /api/path [JSON body]'"]),
])
def test_a_step_that_cannot_be_done_stops_the_scenario_naming_file_step_and_what_to_do(
        stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str], step: str, says: list[str]) -> None:
    path = scenario(tmp_path, START + step)
    code, err = simulate(path, stack.broker, stack.url, capsys)
    assert code == 2, err
    name = step.split("name: ", 1)[1].split(",", 1)[0]
    assert f"{path}: timeline step '{name}' at 2 s" in err, err
    assert "could not be done" in err and "The scenario stopped there" in err, err
    for text in says:
        assert text in err, err
    assert "Traceback" not in err
    # the step before it was done through the real server: the drill started
    assert [e["drill"] for e in stack.client.get("/api/evacuations").json()] == [True]


def test_an_unreachable_server_stops_the_scenario_at_its_first_step(
        mosquitto: EmbeddedBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, START)
    code, err = simulate(path, mosquitto, f"http://127.0.0.1:{free_port()}", capsys)
    assert code == 2
    assert f"{path}: timeline step 'drill_start' at 1 s" in err and "unreachable" in err, err
    assert "check the server URL and that the server runs" in err


def test_operator_steps_without_a_server_are_refused_up_front(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = scenario(tmp_path, START)
    assert cli.main(["--scenario", str(path), "--speed", "0", "--broker", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "has 1 operator step(s) (first: drill_start at 1 s" in err and "--server URL" in err, err
    # a dry run only lists them, as not performed
    out_file = tmp_path / "dry.json"
    assert cli.main(["--scenario", str(path), "--dry-run", "--speed", "0", "--out", str(out_file)]) == 0
    assert "operator (not performed): POST /api/evacuations" in capsys.readouterr().out


def test_with_a_server_the_run_says_which_expected_alarms_the_server_raised(
        stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tester reads what happened, not only what was expected: the drill's evac.notice was raised, the
    forced door the scenario also expects was not (nothing forced it), the forbidden fire.confirmed was not;
    an unmet expectation is exit 1."""
    path = tmp_path / "verdict.yaml"
    path.write_text(
        "name: verdict\ntitle: a drill, and an expectation nothing meets\nfloor: demo\n"
        "start: 2026-11-30T10:00:00+08:00\nduration: 10s\nbackground: {scope: none}\ntimeline:\n" + START
        + "expect:\n  - {rule: evac.notice, within: 10s}\n"
        "  - {rule: door.forced_open, subject: door-f3-exit-e, within: 10s}\n"
        "forbid:\n  - {rule: fire.confirmed}\n", encoding="utf-8")
    code = cli.main(["--scenario", str(path), "--speed", "0", "--broker", f"{stack.broker.host}:{stack.broker.port}",
                     "--server", stack.url, "--token", ADMIN_TOKEN, "--out", str(tmp_path / "verdict.json")])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"on the server {stack.url} (alarms raised since the run started" in out, out
    assert re.search(r"^  raised      evac\.notice \(\w+\) at \d\d:\d\d:\d\d$", out, re.MULTILINE), out
    assert "  NOT RAISED  door.forced_open on door-f3-exit-e\n" in out
    assert "  not raised  fire.confirmed (as it must not be)\n" in out
    assert "1 expectation(s) not met" in out
