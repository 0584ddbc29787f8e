"""Scenarios as the oracle: each scenario names the alarms it must cause (and those it must not);
the real edge agent and the real server, fed by the simulated floor in the vendors' dialects through
a real broker, must raise them in time.

Everything runs on one accelerated clock (the simulator's speed), shared by the edge agent and the
server, so a 10-minute scenario takes a minute and every rule duration keeps its meaning. The quick
ones run in `make test`; all of them with FLOORWATCH_LONG=1.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from edge.agent import EdgeAgent
from edge.config import load_config
from gateway.broker import EmbeddedBroker, free_port
from gateway.contract import Severity
from server.domain.catalog import CATALOG
from server.domain.findings import SEVERITY_RANK
from server.settings import DEMO_SITE, Settings
from simulators.model import load_floor
from simulators.operator import OperatorApi
from simulators.runner import ScenarioRun, StepError
from simulators.scenario import floor_dir, load_scenario
from simulators.transport import MqttTransport
from tests.support.server import serve

SPEED = 10.0
QUICK = ["smoke-cigarette-stairwell"]
"""In `make test` (the suite's time is kept near 15 min): the fire path runs on the demo floor in
tests/e2e/test_fire_demo_e2e.py (fire-response), the strip overload in tests/e2e and tests/faults."""
ALL = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "simulators" / "scenarios").glob("*.yaml")
             if p.stem != "demo-shift-change")
LONG = os.environ.get("FLOORWATCH_LONG") == "1"
TOKEN = "oracle-token"


class ScaledClock:
    """Simulated time: starts at `start` and runs `speed` times faster than the wall clock."""

    def __init__(self, start: datetime, speed: float) -> None:
        self.start, self.speed, self.m0 = start, speed, time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.m0) * self.speed)

    def monotonic(self) -> float:
        return self.m0 + (time.monotonic() - self.m0) * self.speed

    def wall_monotonic_at(self, when: datetime) -> float:
        """The `time.monotonic()` instant at which this clock reads `when`."""
        return self.m0 + (when - self.start).total_seconds() / self.speed

    def __call__(self) -> datetime:
        return self.now()


@dataclass
class Outcome:
    result: dict[str, Any]
    alarms: list[dict[str, Any]]
    relays: dict[str, tuple[list[dict[str, Any]], object]]
    """Per expected cut: the commands sent to the plug, and the relay state it last reported."""


def play(name: str, broker: EmbeddedBroker, data: Path) -> Outcome:
    probe = load_scenario(name)
    floor = load_floor(floor_dir(probe.floor))
    scenario = load_scenario(name, floor)
    boot = timedelta(seconds=8 * SPEED)  # the stack boots in simulated time before the scenario starts
    clock = ScaledClock(scenario.start - boot, SPEED)
    mqtt = broker.client_settings()
    settings = Settings(site_file=DEMO_SITE, data_dir=data, mqtt=mqtt, http_port=free_port(),
                        admin_token=SecretStr(TOKEN), tick_s=1 / SPEED, gap_window_s=30)
    edge_config = load_config(DEMO_SITE.parent / "edge-f3.yaml")
    edge_config = edge_config.model_copy(update={
        "uplink": mqtt, "floor_broker": mqtt,
        "buffer": edge_config.buffer.model_copy(update={"path": data / "edge.sqlite"})})
    agent = EdgeAgent(edge_config, clock=clock)
    with serve(settings, clock=clock, start_timeout=60, graceful_shutdown_s=None) as server:
        try:
            agent.start()
            api = server.client(TOKEN, timeout=30)
            transport = MqttTransport(mqtt, client_id=f"oracle-{name}")
            # people act through the API at their step's simulated time (simulators/operator.py)
            performer = OperatorApi(server.url, TOKEN).perform
            try:
                # t = 0 is when the stack's clock reads the scenario's start: the set-up above runs in the boot
                # margin, and the deadlines (simulator time) and `raised_at` (the stack's clock) share one origin
                result = ScenarioRun(scenario, floor, transport, seed=1, speed=SPEED, operator=performer).run(
                    clock.wall_monotonic_at(scenario.start))
            except StepError as exc:  # a step that could not be done is a finding
                pytest.fail(str(exc))
            finally:
                transport.close()
            time.sleep(3)  # let the last batches land (3 wall s = 30 simulated s of tolerance)
            alarms = api.get("/api/alarms", params={"limit": 5000}).json()
            devices = {d["id"]: d for d in api.get("/api/devices").json()}
            relays = {plug: (api.get(f"/api/devices/{plug}/commands").json(),
                             devices[plug]["metrics"].get("relay_on"))
                      for plug in result["expected_cuts"]}
            return Outcome(result, alarms, relays)
        finally:
            agent.stop()


@pytest.fixture
def oracle(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[Any]:
    yield lambda name: play(name, mosquitto, tmp_path)


TOLERANCE = timedelta(seconds=3 * SPEED)
"""Pipeline latency in simulated time: batching, the tick, and the accelerated clock's jitter."""


@pytest.mark.timeout(1800)  # the longest scenario (85 simulated minutes) takes about 9 minutes
@pytest.mark.parametrize("name", ALL if LONG else QUICK)
def test_scenario_raises_what_it_promises_and_nothing_it_forbids(oracle: Any, name: str) -> None:
    outcome: Outcome = oracle(name)
    problems: list[str] = []
    for want in outcome.result["expected_alarms"]:
        deadline = datetime.fromisoformat(want["deadline_at"]) + TOLERANCE
        found = [a for a in outcome.alarms if a["rule"] == want["rule"]
                 and (want["subject"] is None or a["subject"] == want["subject"])]
        in_time = [a for a in found if datetime.fromisoformat(a["raised_at"]) <= deadline]
        if want["severity"]:
            in_time = [a for a in in_time if SEVERITY_RANK[a["severity"]] >= SEVERITY_RANK[want["severity"]]]
        in_time = [a for a in in_time if a["occurrences"] >= want.get("occurrences", 1)]
        if not in_time:
            seen = [(a["rule"], a["subject"], a["severity"], a["raised_at"]) for a in found]
            problems.append(f"expected {want['rule']} {want['subject'] or ''} {want['severity'] or ''} "
                            f"by {want['deadline_at']}; saw {seen or 'nothing'}")
    for plug, (commands, relay_on) in outcome.relays.items():
        if not any(c["action"] == "relay_off" for c in commands) or relay_on is not False:
            problems.append(f"expected {plug} switched off by the system: commands {commands}, relay_on={relay_on}")
    undeclared = sorted({(a["rule"], a["severity"]) for a in outcome.alarms if a["rule"] not in CATALOG
                         or Severity(a["severity"]) not in CATALOG[a["rule"]].severities})
    if undeclared:
        problems.append(f"raised at a severity the catalog does not declare: {undeclared}")
    for banned in outcome.result["forbidden_alarms"]:
        hits = [a for a in outcome.alarms if a["rule"] == banned["rule"]
                and (banned["subject"] is None or a["subject"] == banned["subject"])]
        if hits:
            problems.append(f"forbidden {banned['rule']} {banned['subject'] or ''} was raised: "
                            f"{[(a['subject'], a['raised_at']) for a in hits]}")
    assert not problems, f"scenario {name}:\n" + "\n".join(problems) + "\nall alarms: " + str(
        sorted({(a["rule"], a["subject"], a["severity"]) for a in outcome.alarms}))
