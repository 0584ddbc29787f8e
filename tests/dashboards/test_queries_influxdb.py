"""Every panel query, interpolated as Grafana does, runs against a real InfluxDB 1.6 holding data written
with the project's own serializer, and returns the series the panel expects."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest

from dashboards.build import build
from tests.dashboards.conftest import DATABASE
from tests.dashboards.floor_data import ALL_FLOORS, ALL_ZONES, SITES
from tests.dashboards.grafana_macros import ALL, interpolate, parse_relative
from tests.server.adapters.timeseries.services import Influxd16

BOARDS = build()


def targets() -> Iterator[Any]:
    for name, board in sorted(BOARDS.items()):
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield pytest.param(board, panel, target, id=f"{name}:{panel['title']}:{target['refId']}")


SELECTIONS: dict[str, Mapping[str, Sequence[str] | str]] = {
    # "All" with the boards' custom all value (.*)
    "all": {"site": ALL, "floor": ALL, "zone": ALL},
    # every value picked one by one: the multi-value regex form (a|b|...)
    "multi": {"site": sorted(SITES), "floor": sorted(ALL_FLOORS), "zone": sorted(ALL_ZONES)},
}


def run(server: Influxd16, query: str) -> list[dict[str, Any]]:
    result = server.query(query, db=DATABASE)
    results = result["results"]
    assert isinstance(results, list) and len(results) == 1
    first = results[0]
    assert "error" not in first, f"{first.get('error')}\n{query}"
    series: list[dict[str, Any]] = first.get("series", [])
    return series


def outer(query: str) -> str:
    """The query without its subqueries `(SELECT ...)`."""
    out, depth, i = [], 0, 0
    while i < len(query):
        if query.startswith("(SELECT", i) or (depth and query[i] == "("):
            depth += 1
        elif depth and query[i] == ")":
            depth -= 1
            i += 1
            continue
        if not depth:
            out.append(query[i])
        i += 1
    return "".join(out)


def group_tags(query: str) -> set[str]:
    """Tags of the outer query's GROUP BY: each returned series must carry them."""
    m = re.search(r"GROUP BY (.*?)(?:\s+fill\(\w+\))?$", outer(query))
    return set(re.findall(r'"(\w+)"', m.group(1))) if m else set()


def time_range(board: dict[str, Any], now: datetime) -> tuple[datetime, datetime]:
    return parse_relative(board["time"]["from"], now), parse_relative(board["time"]["to"], now)


@pytest.mark.parametrize("selection", sorted(SELECTIONS))
@pytest.mark.parametrize(("board", "panel", "target"), list(targets()))
def test_panel_query_returns_series(
    loaded_influxd: tuple[Influxd16, datetime], board: dict[str, Any], panel: dict[str, Any],
    target: dict[str, Any], selection: str,
) -> None:
    server, now = loaded_influxd
    assert target["rawQuery"] is True and target["datasource"]["type"] == "influxdb"
    start, end = time_range(board, now)
    query = interpolate(target["query"], SELECTIONS[selection], start, end)
    assert not re.search(r"\$(\w|\{)", query), query  # every variable and macro expanded
    series = run(server, query)
    assert series, f"no series for {panel['title']!r}:\n{query}"
    values = [v for s in series for row in s["values"] for v in row[1:] if v is not None]
    assert values, f"only nulls for {panel['title']!r}:\n{query}"
    expected_tags = group_tags(target["query"]) - {"time"}
    for s in series:
        assert expected_tags <= set(s.get("tags", {})), (expected_tags, s.get("tags"), query)


@pytest.mark.parametrize(
    ("board", "panel", "target"),
    [t for t in targets() if "$zone" in t.values[2]["query"] and "zone" in group_tags(t.values[2]["query"])],
)
def test_zone_filter_narrows(
    loaded_influxd: tuple[Influxd16, datetime], board: dict[str, Any], panel: dict[str, Any],
    target: dict[str, Any],
) -> None:
    """One zone picked: whatever comes back belongs to that zone (regex-escaped single value)."""
    server, now = loaded_influxd
    start, end = time_range(board, now)
    query = interpolate(target["query"], {"site": "hq", "floor": ALL, "zone": "f3-z1"}, start, end)
    for s in run(server, query):
        assert s["tags"]["zone"] == "f3-z1"


def test_template_variable_queries(loaded_influxd: tuple[Influxd16, datetime]) -> None:
    server, now = loaded_influxd
    seen = 0
    for board in BOARDS.values():
        for var in board["templating"]["list"]:
            query = interpolate(var["query"], {"site": ["hq"], "floor": ALL}, now, now)
            series = run(server, query)
            got = {row[1] for s in series for row in s["values"]}
            expect = {
                "site": set(SITES),
                "floor": set(SITES["hq"]),
                "zone": {z for zones in SITES["hq"].values() for z in zones},
            }[var["name"]]
            assert got == expect, (var["name"], query)
            seen += 1
    assert seen >= 3 * len(BOARDS) - 1


def test_compliance_is_the_on_time_share_of_the_tasks_due(loaded_influxd: tuple[Influxd16, datetime]) -> None:
    """3 on time, 1 late, 0 missed and 4 failed checklist items: 75 % of the month's inspections were on
    time; failed items are findings, not inspections, and do not lower the share."""
    from server.adapters.timeseries import inspection_point, point_to_line

    server, now = loaded_influxd
    month = datetime(now.year, now.month, 1, tzinfo=now.tzinfo)
    line = point_to_line(inspection_point(site="cx", zone="cx-z1", schedule="fire_patrol", period_start=month,
                                          on_time=3, late=1, missed=0, failed=4))
    assert line is not None
    server.write_lines(DATABASE, [line])
    board = BOARDS["inspections.json"]
    (target,) = next(p for p in board["panels"] if p["title"] == "Compliance per zone and month")["targets"]
    start, end = time_range(board, now)
    (series,) = run(server, interpolate(target["query"], {"site": "cx", "zone": ALL}, start, end))
    assert [row[1] for row in series["values"]] == [75.0]
