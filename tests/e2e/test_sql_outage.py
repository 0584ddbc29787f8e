"""PostgreSQL goes away for 30 s during an overload: ingest keeps its alarm change and commits it when
the database is back (it retries rather than drops), health reports the outage meanwhile, and nothing is
lost or doubled. A private PostgreSQL (initdb in a temp folder) is stopped and started by the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway import contract
from gateway.broker import EmbeddedBroker, free_port
from gateway.mqtt import MqttClient
from server.runtime import Runtime
from server.settings import Settings
from tests.conftest import require_service
from tests.support.wait import wait_until

HERE = Path(__file__).resolve().parent
OUTAGE_S = 30.0
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None) if Path("/usr/lib/postgresql").exists() \
    else None


class PrivatePostgres:
    def __init__(self) -> None:
        assert PG_BIN is not None
        # Not under pytest's tmp_path: as root, PostgreSQL runs as `postgres`, who cannot enter root's 0700 folders.
        self.root = Path(tempfile.mkdtemp(prefix="floorwatch-pg-"))
        self.data, self.port = self.root / "pg", free_port()
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run([*self.run_as, str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True)

    def start(self) -> None:
        subprocess.run([*self.run_as, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                        str(self.data / "log"), "-o", f"-p {self.port} -k {self.data} -h 127.0.0.1", "start"],
                       check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run([*self.run_as, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop"],
                       check=False, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    require_service(PG_BIN is not None and shutil.which("runuser") is not None, "PostgreSQL server binaries")
    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.stop()
    shutil.rmtree(pg.root, ignore_errors=True)


def test_an_alarm_raised_while_the_database_is_down_is_committed_when_it_returns(
    mosquitto: EmbeddedBroker, postgres: PrivatePostgres, tmp_path: Path,
) -> None:
    settings = Settings(site_file=HERE / "site.yaml", data_dir=tmp_path / "server", mqtt=mosquitto.client_settings(),
                        admin_token=SecretStr("t"), database_url=postgres.url)
    runtime = Runtime(settings)
    runtime.start()
    edge = MqttClient(mosquitto.client_settings(), "sql-outage-edge")
    edge.start()
    topic = contract.edge_topic("e2e", "edge-e2e", contract.Channel.TELEMETRY)
    seq = 0

    def report(amps: float) -> None:
        nonlocal seq
        now = datetime.now(UTC)
        edge.publish_payload(topic, contract.TelemetryBatch(edge="edge-e2e", seq=seq, sent_at=now, readings=[
            contract.Reading(device="strip-z1-01", ts=now, metrics={"current_a": amps})]))
        seq += 1

    try:
        # The edge publishes once the server's subscriptions are granted (health: broker.subscribed).
        assert edge.wait_connected(10) and runtime.mqtt is not None and runtime.mqtt.wait_subscribed(10)
        report(2.0)
        assert wait_until(lambda: runtime.ingest.stats.readings == 1, 30), "the first reading was not applied"
        postgres.stop()
        outage_started = time.monotonic()
        for _ in range(10):  # 5 s of overload (the test site's hold is 3 s) with the database gone
            report(13.0)
            time.sleep(0.5)
        assert wait_until(lambda: runtime.ingest.stats.sql_retries > 0, 20), "ingest never noticed the outage"
        assert runtime.alarms.open_alarms() == [], "nothing may count as stored while it is not"
        from server.api.routes.system import health

        assert health(runtime).dependencies["sql"]["up"] is False
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))  # the 30 s outage
        postgres.start()
        outage_s = time.monotonic() - outage_started
        assert wait_until(lambda: any(a.rule == "elec.strip_overload" for a in runtime.alarms.open_alarms()), 30)
        stored = [a for a in runtime.repository.query() if a.rule == "elec.strip_overload"]
        assert len(stored) == 1 and stored[0].value == 13.0
        assert health(runtime).dependencies["sql"]["up"] is True
        print(f"[sql outage] {outage_s:.1f} s down, {runtime.ingest.stats.sql_retries} retries, alarm kept")
    finally:
        edge.stop()
        runtime.stop()
