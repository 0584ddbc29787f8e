"""`floorwatch bench --smoke` works end to end: every section present with positive numbers, no gap.
It never asserts speed (CI machines vary); docs/performance.md has the figures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.cli import main
from gateway.broker import mosquitto_binary
from tests.conftest import require_service


def test_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a missing broker fails under CI=true (require_service), never skips silently there
    require_service(mosquitto_binary() is not None and shutil.which("mosquitto_sub") is not None,
                    "mosquitto and mosquitto_sub (apt-get install mosquitto mosquitto-clients)")
    out = tmp_path / "bench.json"
    assert main(["--smoke", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["machine"]["cpus"] >= 1
    batches = report["ingest"]["batches"]
    assert set(batches) == {"1", "50", "200"}
    for b in batches.values():
        assert b["server_readings_per_s"] > 0
        assert b["mosquitto_sub_readings_per_s"] > 0
        assert b["ratio_server_to_mosquitto_sub"] > 0
        assert b["peak_rss_mb"] > 0
        assert b["gaps"] == 0
        for rep in b["reps"]:
            assert rep["server"]["complete"] and rep["server"]["lost"] == 0 and rep["server"]["series_dropped"] == 0
            assert len(rep["load_avg"]) == 3 and all(x >= 0 for x in rep["load_avg"])  # the shared machine's load
        if b["node_red_readings_per_s"] is not None:  # None: Node-RED not installed, said in the notes
            assert b["node_red_readings_per_s"] > 0 and b["ratio_server_to_node_red"] > 0
    if batches["1"]["node_red_readings_per_s"] is None:
        assert any("Node-RED" in note for note in report["notes"])
    for load in ("50%", "90%"):
        lat = report["ingest"]["latency"][load]
        assert lat["samples"] > 0 and lat["alarm_p50_ms"] > 0 and lat["alarm_p99_ms"] > 0
        assert lat["pushes"] > 0 and lat["push_p99_ms"] > 0
        assert lat["gaps"] == 0
        # probes do not interfere: none met a confirmed fire, so no page was inhibited by one
        assert lat["confirmed_fires"] == 0 and lat["pushes_inhibited"] == 0
    runs = report["ingest"]["latency_runs"]
    assert [r["fraction"] for r in runs] == [0.5, 0.9]
    for run in runs:
        # one detector per zone, and the 90 % run probes the same detectors again: each raised a new alarm,
        # which it can only do if the 50 % run's reset cleared and closed it and re-armed its zone
        assert run["probe_zones"] == run["probes"] == run["alarms"] > 0
        assert run["pushes"] + run["pushes_inhibited"] + run["pushes_late"] == run["alarms"]
        assert run["reset"]["zones_not_rearmed"] == [] and run["reset"]["latching_still_open"] == []
        assert run["reset"]["closed"] >= run["probes"]
        assert run["series_dropped"] == 0
    assert "| batch |" in capsys.readouterr().out


def test_sections_other_than_ingest_and_growth_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["--sections", "ingest,startup"])
    assert refused.value.code == 2
    assert "--sections takes ingest, growth or both" in capsys.readouterr().err
