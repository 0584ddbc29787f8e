"""Boards as code: the committed JSON is a fresh build, and boards name only what the writer produces."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from dashboards import thresholds as th
from dashboards.build import GENERATED, build, render, stale
from dashboards.builder import DATASOURCE_UID, SCHEMA_VERSION
from dashboards.schema_check import problems, problems_in_query


def test_committed_json_equals_a_fresh_build() -> None:
    assert stale() == [], "run: python -m dashboards.build"
    for name, board in build().items():
        assert (GENERATED / name).read_text(encoding="utf-8") == render(board)


def test_boards_name_only_what_the_writer_produces() -> None:
    assert problems(build().values()) == []


def test_schema_check_catches_unknown_names() -> None:
    board = copy.deepcopy(build()["electrical.json"])
    target = board["panels"][1]["targets"][0]
    assert '"load_pct"' in target["query"]
    target["query"] = target["query"].replace('"load_pct"', '"load_percent"')
    found = problems([board])
    assert any("load_percent" in p for p in found), found
    assert problems_in_query('SELECT mean("power_w") FROM "smart_plugs" WHERE $timeFilter')
    assert problems_in_query('SELECT mean("power_w") FROM "smart_plug" WHERE "seat" =~ /^a$/')
    assert problems_in_query('SELECT mean("power_w") FROM "smart_plug" GROUP BY "room"')
    assert problems_in_query('SELECT mean("site") FROM "smart_plug"')
    assert problems_in_query('SHOW TAG VALUES WITH KEY = "building"')
    ok = 'SELECT mean("power_w") FROM "smart_plug" WHERE "zone" =~ /^a$/ GROUP BY "device"'
    assert not problems_in_query(ok)


def test_boards_are_well_formed() -> None:
    boards = build()
    assert {b["uid"] for b in boards.values()} == {
        "fw-floor-overview", "fw-electrical", "fw-fire-environment", "fw-machine-room", "fw-access",
        "fw-inspections",
    }
    for board in boards.values():
        assert board["schemaVersion"] == SCHEMA_VERSION
        names = [v["name"] for v in board["templating"]["list"]]
        assert names in (["site", "floor", "zone"], ["site", "zone"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "influxdb", "uid": DATASOURCE_UID}
                assert target["rawQuery"] is True
                assert "$timeFilter" in target["query"]
                assert "from(bucket" not in target["query"]  # InfluxQL only, never Flux


def test_thresholds_come_from_the_catalog_module() -> None:
    text = json.dumps(build())

    def steps_of(uid: str, title: str) -> list[float | None]:
        board = next(b for b in build().values() if b["uid"] == uid)
        panel = next(p for p in board["panels"] if p["title"] == title)
        return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]

    assert steps_of("fw-machine-room", "Inlet temperature") == [
        None, th.MR_TEMP_LOW_C, th.MR_TEMP_WARNING_C, th.MR_TEMP_MAJOR_C, th.MR_TEMP_CRITICAL_C
    ] == [None, 18, 27, 30, 32]
    assert steps_of("fw-electrical", "Strip load % of rating") == [None, 80, 100, 125]
    assert steps_of("fw-fire-environment", "Floor temperature") == [None, 16, 22, 24, 28]
    assert steps_of("fw-fire-environment", "Floor relative humidity") == [None, 30, 40, 60, 80]
    assert steps_of("fw-machine-room", "Relative humidity") == [None, 30, 60, 80]
    assert steps_of("fw-machine-room", "Dew point") == [None, 5.5, 15]
    assert "GB/T 18883" in text


def test_boards_source_has_no_bare_threshold_numbers() -> None:
    """Catalog numbers live in dashboards/thresholds.py only."""
    source = (Path(__file__).resolve().parents[2] / "dashboards" / "boards.py").read_text(encoding="utf-8")
    for number in ("27", "30.0", "32", "80.0", "125", "18883-2002", "5.5", "235.4", "198"):
        assert f"({number}," not in source and f", {number})" not in source, number
