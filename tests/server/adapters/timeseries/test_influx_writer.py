"""InfluxWriter against a real VictoriaMetrics (v2 write endpoint) on 127.0.0.1: values, timestamps,
an outage below the buffer bound (nothing lost), an outage above it (the drop counter is exact)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.contract import Event, EventType, Reading
from server.adapters.timeseries import (
    DeviceMeta,
    InfluxWriter,
    WriterStats,
    alarm_point,
    event_point,
    to_ms,
)
from tests.server.adapters.timeseries.services import VictoriaMetrics
from tests.support.wait import wait_for

PLUG = DeviceMeta(site="hq", zone="f3-z2", kind="smart_plug", floor="f3", rated_a=10.0)
MR = DeviceMeta(site="hq", zone="mr-1", kind="mr_probe", floor="f3")


def readings(device: str, start_ms: int, n: int, offset: int = 0) -> Iterator[tuple[Reading, DeviceMeta]]:
    base = datetime.fromtimestamp(start_ms / 1000, UTC)
    for i in range(offset, offset + n):
        yield (
            Reading(device=device, ts=base + timedelta(milliseconds=i), metrics={"power_w": float(i)}),
            PLUG,
        )


@pytest.fixture
def now_ms() -> int:
    return to_ms(datetime.now(UTC) - timedelta(hours=1))


def make_writer(vm: VictoriaMetrics, **kw: float) -> InfluxWriter:
    opts: dict[str, float] = {
        "batch_size": 500, "flush_interval_s": 0.05, "max_buffer": 200_000,
        "backoff_initial_s": 0.02, "backoff_max_s": 0.2, "timeout_ms": 2000,
    }
    opts.update(kw)
    return InfluxWriter(
        vm.url, "unused-token", "floorwatch", "floorwatch",
        batch_size=int(opts["batch_size"]), flush_interval_s=opts["flush_interval_s"],
        max_buffer=int(opts["max_buffer"]), backoff_initial_s=opts["backoff_initial_s"],
        backoff_max_s=opts["backoff_max_s"], timeout_ms=int(opts["timeout_ms"]),
    )


def test_points_read_back_with_values_and_ms_timestamps(
    victoria_metrics: VictoriaMetrics, now_ms: int
) -> None:
    w = make_writer(victoria_metrics)
    ts = datetime.fromtimestamp(now_ms / 1000, UTC) + timedelta(microseconds=123_456)
    w.write_readings([
        (Reading(device="plug-f3-s012", ts=ts,
                 metrics={"power_w": 182.4, "current_a": 8.3, "relay_on": True}), PLUG),
        (Reading(device="mr-probe-1", ts=ts,
                 metrics={"temperature_c": 27.5, "humidity_pct": 55, "water_leak": False}), MR),
    ])
    w.write([
        alarm_point(site="hq", zone="f3-z2", rule="elec.strip_load_high", severity="warning", active=True,
                    value=8.3, ts=ts),
        event_point(Event(device="door-f3-main", ts=ts, type=EventType.DOOR_FORCED),
                    DeviceMeta("hq", "f3-z1", "door_controller", "f3")),
    ])
    assert w.flush(10)
    w.close()
    st = w.stats()
    assert (st.written, st.dropped, st.rejected, st.buffered) == (4, 0, 0, 0)

    expect_ms = now_ms + 123  # microseconds truncated to the millisecond
    series = victoria_metrics.export('{__name__=~"smart_plug_.*|mr_probe_.*|alarm_.*|event_.*"}')
    flat = {k.split("{")[0]: v for k, v in series.items()}
    assert flat["smart_plug_power_w"] == {expect_ms: 182.4}
    assert flat["smart_plug_current_a"] == {expect_ms: 8.3}
    assert flat["smart_plug_relay_on"] == {expect_ms: 1}
    assert flat["smart_plug_load_pct"] == {expect_ms: 83.0}
    assert flat["mr_probe_temperature_c"] == {expect_ms: 27.5}
    assert flat["mr_probe_humidity_pct"] == {expect_ms: 55.0}
    assert flat["mr_probe_water_leak"] == {expect_ms: 0}
    assert abs(flat["mr_probe_dew_point_c"][expect_ms] - 17.7) < 0.2
    assert flat["alarm_active"] == {expect_ms: 1.0}
    assert flat["event_n"] == {expect_ms: 1.0}
    tags = next(k for k in series if k.startswith("smart_plug_power_w"))
    assert tags == "smart_plug_power_w{device=plug-f3-s012,floor=f3,kind=smart_plug,site=hq,zone=f3-z2}"


def arrived(vm: VictoriaMetrics, device: str) -> dict[int, float]:
    series = vm.export(f'smart_plug_power_w{{device="{device}"}}')
    out: dict[int, float] = {}
    for values in series.values():
        out.update(values)
    return out


def test_outage_below_the_bound_loses_nothing(victoria_metrics: VictoriaMetrics, now_ms: int) -> None:
    w = make_writer(victoria_metrics)
    before, during, after = 5_000, 20_000, 5_000
    gen = readings("plug-outage", now_ms, before + during + after)

    def chunk(n: int) -> list[tuple[Reading, DeviceMeta]]:
        return [next(gen) for _ in range(n)]

    for _ in range(before // 250):
        w.write_readings(chunk(250))
    assert w.flush(20)

    victoria_metrics.stop()  # SIGTERM mid-stream: the server is gone, the writer keeps going
    for _ in range(during // 250):
        w.write_readings(chunk(250))
    wait_for(lambda: w.stats().retries >= 3, 30.0, what="the writer to retry against the stopped server")
    st = w.stats()
    assert st.buffered == during and st.dropped == 0
    assert st.last_error

    victoria_metrics.start()  # same port, same data dir
    for _ in range(after // 250):
        w.write_readings(chunk(250))
    assert w.flush(60), w.stats()
    w.close()
    st = w.stats()
    total = before + during + after
    assert (st.written, st.dropped, st.rejected, st.buffered) == (total, 0, 0, 0)
    assert st.last_error is None, "the writes after the outage succeeded: its error is over"

    got = arrived(victoria_metrics, "plug-outage")
    assert len(got) == total
    assert got == {now_ms + i: float(i) for i in range(total)}


def test_outage_over_the_bound_counts_every_drop(victoria_metrics: VictoriaMetrics, now_ms: int) -> None:
    bound = 1_000
    w = make_writer(victoria_metrics, max_buffer=bound, batch_size=200)
    before, during = 2_000, 5_000
    gen = readings("plug-overflow", now_ms, before + during)

    for _ in range(before // 100):
        w.write_readings([next(gen) for _ in range(100)])
        assert w.flush(20)  # keep below the small bound while the server is up
    assert w.stats().dropped == 0

    victoria_metrics.stop()
    for _ in range(during // 100):
        w.write_readings([next(gen) for _ in range(100)])
    wait_for(lambda: w.stats().retries >= 2, 30.0, what="retries against the stopped server")
    st: WriterStats = w.stats()
    assert st.buffered == bound
    assert st.dropped == during - bound

    victoria_metrics.start()
    assert w.flush(60), w.stats()
    w.close()
    st = w.stats()
    got = arrived(victoria_metrics, "plug-overflow")
    total = before + during
    assert st.dropped == total - len(got) == during - bound
    assert st.written == len(got) == before + bound
    # The oldest were dropped: what arrived is everything before the outage plus the newest `bound`.
    expected = set(range(before)) | set(range(total - bound, total))
    assert {ts - now_ms for ts in got} == expected


def test_rejected_batch_is_counted_not_retried(victoria_metrics: VictoriaMetrics) -> None:
    w = make_writer(victoria_metrics)
    w.write_lines(["this is not line protocol"])
    w.flush(10)
    w.close()
    st = w.stats()
    # VictoriaMetrics answers 400 to unparseable input: counted as rejected, never retried forever.
    assert st.buffered == 0
    assert st.rejected + st.written == 1


def test_close_counts_what_it_could_not_write(tmp_path: object) -> None:
    # Nothing listens on this port: close() gives up after its timeout and counts the loss.
    from tests.server.adapters.timeseries.services import free_port

    w = InfluxWriter(f"http://127.0.0.1:{free_port()}", "", "o", "b", flush_interval_s=0.01,
                     backoff_initial_s=0.01, backoff_max_s=0.05, timeout_ms=200)
    w.write_lines(["m f=1.0 1", "m f=2.0 2"])
    w.close(timeout_s=0.5)
    st = w.stats()
    assert st.dropped == 2 and st.written == 0 and st.buffered == 0
    assert st.last_error
