"""A small builder for Grafana dashboard JSON (schemaVersion 39: Grafana 10.x and 11.x).

Only what the Floorwatch boards use: an InfluxDB datasource in InfluxQL mode, raw InfluxQL targets,
template variables from ``SHOW TAG VALUES``, and timeseries / stat / table / bar-gauge / bar-chart
panels on a 24-column grid. The output is deterministic (stable uids and ids, sorted keys when
written), so the committed JSON can be compared with a fresh build.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

SCHEMA_VERSION: Final = 39
DATASOURCE_UID: Final = "floorwatch-influxdb"
DATASOURCE_NAME: Final = "Floorwatch InfluxDB"
DATASOURCE: Final = {"type": "influxdb", "uid": DATASOURCE_UID}
FOLDER_UID: Final = "floorwatch"
FOLDER_TITLE: Final = "Floorwatch"

Json = dict[str, Any]

# Colours Grafana knows by name.
GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"
LIGHT_YELLOW = "light-yellow"


def q(identifier: str) -> str:
    """A double-quoted InfluxQL identifier."""
    return '"' + identifier.replace('"', '\\"') + '"'


def tag_filter(*, site: bool = True, floor: bool = True, zone: bool = True) -> str:
    """Template-variable conditions as Grafana expects them for InfluxQL (regex, multi-value safe)."""
    parts = []
    if site:
        parts.append(f"{q('site')} =~ /^$site$/")
    if floor:
        parts.append(f"{q('floor')} =~ /^$floor$/")
    if zone:
        parts.append(f"{q('zone')} =~ /^$zone$/")
    return " AND ".join(parts)


@dataclass(frozen=True)
class Step:
    value: float | None
    color: str


def steps(base: str, *pairs: tuple[float, str]) -> list[Step]:
    return [Step(None, base), *(Step(v, c) for v, c in pairs)]


@dataclass
class Target:
    query: str
    ref_id: str = "A"
    alias: str = ""
    table: bool = False

    def to_json(self) -> Json:
        out: Json = {
            "refId": self.ref_id,
            "datasource": dict(DATASOURCE),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": "table" if self.table else "time_series",
        }
        if self.alias:
            out["alias"] = self.alias
        return out


@dataclass
class Panel:
    title: str
    targets: list[Target]
    kind: str = "timeseries"
    unit: str = ""
    description: str = ""
    thresholds: list[Step] = field(default_factory=lambda: steps(GREEN))
    threshold_style: str = "off"  # timeseries: off, line, area, line+area, dashed
    min: float | None = None
    max: float | None = None
    width: int = 12
    height: int = 8
    decimals: int | None = None
    transformations: list[Json] = field(default_factory=list)
    options: Json = field(default_factory=dict)
    custom: Json = field(default_factory=dict)

    def to_json(self, panel_id: int, x: int, y: int) -> Json:
        defaults: Json = {
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": s.color, "value": s.value} for s in self.thresholds],
            },
            "color": {
                "mode": "thresholds" if self.kind in ("stat", "bargauge", "table") else "palette-classic"
            },
        }
        if self.unit:
            defaults["unit"] = self.unit
        if self.min is not None:
            defaults["min"] = self.min
        if self.max is not None:
            defaults["max"] = self.max
        if self.decimals is not None:
            defaults["decimals"] = self.decimals
        custom = dict(self.custom)
        if self.kind == "timeseries":
            custom.setdefault("drawStyle", "line")
            custom.setdefault("lineWidth", 1)
            custom.setdefault("fillOpacity", 10)
            custom.setdefault("spanNulls", True)
            custom["thresholdsStyle"] = {"mode": self.threshold_style}
        if custom:
            defaults["custom"] = custom
        targets = []
        for i, t in enumerate(self.targets):
            t.ref_id = chr(ord("A") + i)
            targets.append(t.to_json())
        out: Json = {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "datasource": dict(DATASOURCE),
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": self._options(),
            "targets": targets,
        }
        if self.description:
            out["description"] = self.description
        if self.transformations:
            out["transformations"] = self.transformations
        return out

    def _options(self) -> Json:
        base: Json
        if self.kind == "timeseries":
            base = {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "multi", "sort": "desc"},
            }
        elif self.kind == "stat":
            base = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background", "graphMode": "none", "justifyMode": "auto", "textMode": "auto",
                "orientation": "auto",
            }
        elif self.kind == "bargauge":
            base = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True,
            }
        elif self.kind == "barchart":
            base = {"orientation": "auto", "showValue": "auto", "stacking": "none", "xTickLabelRotation": 0}
        else:  # table
            base = {"showHeader": True, "cellHeight": "sm"}
        base.update(self.options)
        return base


@dataclass
class Row:
    title: str
    panels: list[Panel]


def tag_variable(name: str, label: str, query: str) -> Json:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": dict(DATASOURCE),
        "query": query,
        "definition": query,
        "refresh": 1,  # on dashboard load
        "multi": True,
        "includeAll": True,
        # ".*" rather than every value joined: also matches points without the tag (e.g. no floor).
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 1,
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


def standard_variables(*, floor: bool = True) -> list[Json]:
    out = [tag_variable("site", "Site", f"SHOW TAG VALUES WITH KEY = {q('site')}")]
    if floor:
        out.append(
            tag_variable(
                "floor", "Floor",
                f"SHOW TAG VALUES WITH KEY = {q('floor')} WHERE {tag_filter(floor=False, zone=False)}",
            )
        )
    out.append(
        tag_variable(
            "zone", "Zone",
            f"SHOW TAG VALUES WITH KEY = {q('zone')} WHERE {tag_filter(floor=floor, zone=False)}",
        )
    )
    return out


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    rows: list[Row]
    tags: list[str] = field(default_factory=lambda: ["floorwatch"])
    time_from: str = "now-6h"
    refresh: str = "30s"
    variables: list[Json] = field(default_factory=standard_variables)

    def to_json(self) -> Json:
        panels: list[Json] = []
        next_id = 1
        y = 0
        for row in self.rows:
            panels.append(
                {
                    "id": next_id, "type": "row", "title": row.title, "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": [],
                }
            )
            next_id += 1
            y += 1
            x = 0
            row_height = 0
            for panel in row.panels:
                if x + panel.width > 24:
                    x = 0
                    y += row_height
                    row_height = 0
                panels.append(panel.to_json(next_id, x, y))
                next_id += 1
                x += panel.width
                row_height = max(row_height, panel.height)
            y += row_height
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "timezone": "browser",
            "time": {"from": self.time_from, "to": "now"},
            "refresh": self.refresh,
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "weekStart": "",
            "annotations": {
                "list": [
                    {
                        "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                        "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                        "name": "Annotations & Alerts", "type": "dashboard",
                    }
                ]
            },
            "templating": {"list": [dict(v) for v in self.variables]},
            "links": [
                {
                    "asDropdown": True, "icon": "external link", "includeVars": True, "keepTime": True,
                    "tags": ["floorwatch"], "targetBlank": False, "title": "Floorwatch boards",
                    "type": "dashboards",
                }
            ],
            "panels": panels,
        }
