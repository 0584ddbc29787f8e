"""Issue 14, item 3: a full time-series buffer holds ingest (back-pressure) instead of dropping points;
only a store that writes nothing for `series_hold_s` costs points, and that raises `sup.series_dropped`.

Real parts: a private Mosquitto, the real server as its own process (`server.cli server`) on a generated
floor with its embedded SQLite series store bounded to BUFFER points, canonical QoS 1 telemetry on a raw
socket (benchmarks.traffic). The store is made to write nothing by a second SQLite connection that holds
the file's write lock (`BEGIN IMMEDIATE`), as a long purge, a backup or a full disk would.

1. Held while the store is stuck (hold bound 120 s), then released: ingest waited (applied readings stop at
   the buffer's worth, `held` >= 1), and once the store writes again every sample is stored, 0 dropped,
   no alarm.
2. Stuck for longer than the bound (2 s): ingest is held about 2 s, then applies everything (alarms are
   not stalled by history); exactly what did not fit is dropped and counted, `sup.series_dropped` is
   raised with that count, and clears once the store takes points again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.floor import make_floor
from benchmarks.traffic import Stream, send
from gateway.broker import EmbeddedBroker
from tests.faults.conftest import Record
from tests.support.server import ServerProcess
from tests.support.wait import wait_until

BUFFER = 1_000
READINGS_PER_MESSAGE = 5
MESSAGES = 600  # 3,000 readings: three buffers' worth
TOKEN = "faults-series-token"
RULE = "sup.series_dropped"


@contextmanager
def store_stuck(path: Path) -> Iterator[None]:
    """Hold the series file's write lock from another connection: the server's writer commits nothing."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def metric_samples(messages: list[tuple[str, bytes]]) -> int:
    """Samples of the sent metrics themselves (derived fields such as load_pct left out)."""
    return sum(len(r["metrics"]) for _t, p in messages for r in json.loads(p)["readings"])


def stored_metric_samples(path: Path, names: set[str]) -> int:
    with sqlite3.connect(path) as conn:
        marks = ",".join("?" * len(names))
        return int(conn.execute(f"SELECT count(*) FROM samples WHERE field IN ({marks})", sorted(names)).fetchone()[0])


def start(mosquitto: EmbeddedBroker, tmp_path: Path, hold_s: float
          ) -> tuple[ServerProcess, list[tuple[str, bytes]], set[str]]:
    """The server with a BUFFER-point series buffer, the messages to send and the metric names they carry."""
    floor = make_floor(100, tmp_path / "floor")
    server = ServerProcess(mosquitto.client_settings(), tmp_path / "server", floor.site_file, TOKEN,
                           env={"FLOORWATCH_SERIES_BUFFER_POINTS": str(BUFFER),
                                "FLOORWATCH_SERIES_HOLD_S": str(hold_s)})
    server.start()
    messages = Stream(floor, READINGS_PER_MESSAGE).telemetry(MESSAGES)
    return server, messages, {k for _t, p in messages for r in json.loads(p)["readings"] for k in r["metrics"]}


def test_full_buffer_holds_ingest_until_the_store_writes_again_and_drops_nothing(
    mosquitto: EmbeddedBroker, tmp_path: Path, record: Record,
) -> None:
    server, messages, names = start(mosquitto, tmp_path, hold_s=120)
    total = MESSAGES * READINGS_PER_MESSAGE
    try:
        series = server.data / "series.sqlite"
        with store_stuck(series):
            sent = send(mosquitto.client_settings(), messages, timeout_s=60, client_id="fault-series-a")
            assert sent.acked == MESSAGES
            assert wait_until(lambda: server.health()["dependencies"]["timeseries"]["held"] >= 1, 60, 0.2), \
                "ingest was never held by the full buffer"
            before = server.health()
            time.sleep(2)  # a window in which a held ingest must not move on (the bound is 120 s)
            during = server.health()
        assert wait_until(lambda: server.health()["ingest"]["readings"] >= total, 120, 0.2)
        assert wait_until(lambda: server.health()["dependencies"]["timeseries"]["buffered"] == 0, 60, 0.2)
        after = server.health()
        alarms = server.alarms(RULE)
        stored = stored_metric_samples(series, names)
    finally:
        server.stop()
    store = after["dependencies"]["timeseries"]
    record("series-backpressure", {
        "buffer_points": BUFFER, "sent_readings": total,
        "applied_while_stuck": during["ingest"]["readings"],
        "buffered_while_stuck": during["dependencies"]["timeseries"]["buffered"],
        "held": store["held"], "held_s": store["held_s"], "dropped": store["dropped"],
        "samples_expected": metric_samples(messages), "samples_stored": stored, "series_dropped_alarms": len(alarms),
    })
    # Held: the drain that found the buffer full applied its readings to the rules (its alarms commit
    # before the hold), then ingest stopped: nothing more is applied while the store is stuck.
    assert during["ingest"]["readings"] == before["ingest"]["readings"] < total
    assert during["dependencies"]["timeseries"]["buffered"] > BUFFER - READINGS_PER_MESSAGE
    assert not during["dependencies"]["timeseries"]["stalled"]
    assert after["ingest"]["readings"] == total and after["ingest"]["lost"] == 0
    assert store["dropped"] == 0 and not store["stalled"]
    assert stored == metric_samples(messages), "a sample is missing from the store"
    assert alarms == [], "series_dropped_alarms: no sup.series_dropped while the store still writes"


def test_store_stuck_past_the_hold_bound_drops_counts_and_raises_sup_series_dropped(
    mosquitto: EmbeddedBroker, tmp_path: Path, record: Record,
) -> None:
    hold_s = 2.0
    server, messages, names = start(mosquitto, tmp_path, hold_s=hold_s)
    total = MESSAGES * READINGS_PER_MESSAGE
    try:
        series = server.data / "series.sqlite"
        with store_stuck(series):
            send(mosquitto.client_settings(), messages, timeout_s=60, client_id="fault-series-b")
            # Ingest goes on while the store is still stuck: the alarms are not held by history.
            applied = wait_until(lambda: server.health()["ingest"]["readings"] >= total, 60, 0.2)
            raised = wait_until(lambda: [a for a in server.alarms(RULE) if a["value"] == total - BUFFER], 30, 0.2)
            during = server.health()
        assert wait_until(lambda: server.health()["dependencies"]["timeseries"]["buffered"] == 0, 60, 0.2)
        assert wait_until(lambda: server.alarms(RULE)[0]["state"] != "active", 30, 0.2), "never cleared"
        after = server.health()
        cleared = server.alarms(RULE)
        stored = stored_metric_samples(series, names)
    finally:
        server.stop()
    store, final = during["dependencies"]["timeseries"], after["dependencies"]["timeseries"]
    # The batch the writer had taken before the lock was written once the lock went: those points,
    # counted as dropped while they were pushed out, arrived after all, and the count says so.
    in_flight = total - BUFFER - final["dropped"]
    readings = [r for _t, p in messages for r in json.loads(p)["readings"]]
    kept = readings[:in_flight] + readings[-BUFFER:]
    record("series-stalled", {
        "buffer_points": BUFFER, "hold_s": hold_s, "sent_readings": total, "held": store["held"],
        "held_s": store["held_s"], "dropped_while_stuck": store["dropped"], "stalled": store["stalled"],
        "alarm_value": raised[0]["value"] if raised else None, "state_after": cleared[0]["state"],
        "dropped_after": final["dropped"], "written_after": final["written"], "in_flight_written": in_flight,
        "samples_stored": stored,
    })
    assert applied, "ingest stalled behind a stuck time-series store"
    assert store["stalled"] and store["dropped"] == total - BUFFER
    assert store["held"] == 1 and hold_s <= store["held_s"] < hold_s + 10, "held once for the bound"
    assert raised and raised[0]["state"] == "active"
    # the writer's batch holds at most the whole buffer (a busy machine lets it fill before the take)
    assert not final["stalled"] and 0 <= in_flight <= BUFFER
    assert final["written"] + final["dropped"] == total, "a point neither stored nor counted as dropped"
    assert cleared[0]["state"] == "cleared_unacked"
    # The newest BUFFER readings were kept (the oldest made room), every one of their samples stored.
    assert stored == sum(len(r["metrics"]) for r in kept)
