"""`floorwatch simulate` whose broker goes away after it connected: one line and the documented exit 3."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.broker import EmbeddedBroker
from simulators import cli
from simulators.model import DEMO_FLOOR
from simulators.runner import ScenarioRun

pytestmark = pytest.mark.mosquitto


def deep_siren_floor(tmp_path: Path) -> Path:
    """The demo floor with a siren named `floor3/zone1/siren-1`: its /set is a command topic the simulator
    subscribes on its own once the run starts (no filter it subscribed at connect covers it)."""
    floor = tmp_path / "demo"
    shutil.copytree(DEMO_FLOOR, floor)
    edge = floor / "edge-f3.yaml"
    edge.write_text(edge.read_text(encoding="utf-8").replace("address: f3_z1_siren,", "address: floor3/zone1/siren-1,"),
                    encoding="utf-8")
    return floor


def test_a_broker_lost_before_the_run_listens_is_one_line_and_exit_3(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    broker = EmbeddedBroker()
    broker.start()
    original = ScenarioRun.run

    def broker_stops_first(self: ScenarioRun, *args: Any, **kwargs: Any) -> dict[str, Any]:
        broker.stop()  # the real broker goes away between the simulator's connect and its first subscription
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ScenarioRun, "run", broker_stops_first)
    try:
        code = cli.main(["--scenario", "strip-overload", "--floor", str(deep_siren_floor(tmp_path)),
                         "--broker", f"127.0.0.1:{broker.port}", "--speed", "0", "--out", str(tmp_path / "log.json")])
    finally:
        broker.stop()
    err = capsys.readouterr().err
    assert code == 3, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{broker.port}" in lines[0], err
    assert not (tmp_path / "log.json").exists(), "a run that never played writes no log"
