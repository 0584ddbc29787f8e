"""The demo floor's site and HR files, moved onto the wall clock, for `floorwatch demo`.

The files in `simulators/floors/demo/` are written around one fixed day (`SOURCE_DAY`). Read as they
are, a demo started soon after a shift change meets a shift that just ended with nobody's end-of-shift
self-check done (insp.end_of_shift_missing for every seat), and leavers whose badges are still active
days after they left: dozens of alarms before the scenario does anything. The demo therefore runs on
a copy in its data folder where

- the floor's clock is moved so that the scenario's start (its `start:`, the simulated floor's clock)
  is the demo's start: the roster around the scenario is the one its story assumes (after-shift-load's
  16:00 shift end comes 20 min in). Without a scenario, the day shift began `QUIET_MARGIN` ago. Either
  way the last shift change lies at least `QUIET_MARGIN` back, longer than the inspection planner's
  catch-up window (2 h), so no end-of-shift self-check is owed at start (strip-overload's 10:00 is 2 h
  into the day shift: its floor runs 5 min behind the scenario's clock);
- the HR feed's times move by the same amount, and the leavers handed their badges in (their leave
  times stay in the past, so a leaver's card at a door is still access.revoked_badge_used);
- the contacts' inbox (`json://127.0.0.1:8099/...` in the source) points at this demo's own inbox port.

The moment is kept in `anchor.txt`, so `--keep` continues the same floor day as the stored history.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from gateway.yamlfile import read_mapping

SOURCE_DAY = date(2026, 11, 30)
"""The day whose day shift the source floor's HR file is written around."""
SOURCE_DAY_SHIFT = "day"
QUIET_MARGIN = timedelta(hours=2, minutes=5)
SOURCE_INBOX = "127.0.0.1:8099"
ANCHOR_FILE = "anchor.txt"


class DemoFloorError(ValueError):
    """The source floor files do not have what the demo moves (named in the message)."""


def write_demo_floor(source_site: Path, out_dir: Path, *, inbox_port: int, now: datetime,
                     scenario_start: datetime | None = None) -> Path:
    """Write `site.yaml` and `hr.yaml` into `out_dir` and return the site file's path.

    `now` and `scenario_start` are timezone-aware. An `anchor.txt` already in `out_dir` (a kept demo) is
    reused."""
    site = read_mapping(source_site, "a site file is a mapping with at least `site:`")
    tz = ZoneInfo(site["site"]["timezone"])
    out_dir.mkdir(parents=True, exist_ok=True)
    anchor_path = out_dir / ANCHOR_FILE
    day_start = _day_shift_start(site, source_site)
    if anchor_path.exists():
        anchor = datetime.fromisoformat(anchor_path.read_text(encoding="utf-8").strip())
    else:
        starts = [_time(entry["start"]) for entry in site["shifts"]]
        anchor = _anchor(now.astimezone(tz), day_start, starts, scenario_start)
        anchor_path.write_text(anchor.isoformat() + "\n", encoding="utf-8")
    shift = anchor.replace(tzinfo=None) - datetime.combine(SOURCE_DAY, day_start)

    site["shifts"] = [_turned(entry, day_start, anchor) for entry in site["shifts"]]
    site["contacts"] = {role: _to_inbox(urls, inbox_port) for role, urls in (site.get("contacts") or {}).items()}
    target = out_dir / "site.yaml"
    header = f"# Written by `floorwatch demo` from {source_site}: shifts turned to the wall clock.\n"
    target.write_text(header + yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")

    hr_source = source_site.parent / "hr.yaml"
    if hr_source.exists():
        # an export with nothing in it yet, as the server's reader takes it (server/adapters/hr_file.py)
        hr = read_mapping(hr_source, "an HR file is a mapping", blank_is_empty=True)
        hr = _moved(hr, shift)
        for leaver in hr.get("leavers") or []:
            leaver["badge_collected"] = True
        (out_dir / "hr.yaml").write_text(
            f"# Written by `floorwatch demo` from {hr_source}: times moved by {shift}.\n"
            + yaml.safe_dump(hr, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def _anchor(now: datetime, day_start: time, shift_starts: list[time], scenario_start: datetime | None) -> datetime:
    """The wall time (site-local) that the source's day-shift start on SOURCE_DAY moves to."""
    wall = now.replace(second=0, microsecond=0, tzinfo=None)
    if scenario_start is None:
        offset = wall - QUIET_MARGIN - datetime.combine(SOURCE_DAY, day_start)
    else:
        offset = wall - scenario_start.astimezone(now.tzinfo).replace(tzinfo=None)
        at = wall - offset  # the demo's start on the source's clock
        changes = [datetime.combine(at.date(), s) for s in shift_starts]
        last = max(c if c <= at else c - timedelta(days=1) for c in changes)
        if at - last < QUIET_MARGIN:
            offset -= QUIET_MARGIN - (at - last)
    return (datetime.combine(SOURCE_DAY, day_start) + offset).replace(tzinfo=now.tzinfo)


def _day_shift_start(site: dict[str, Any], source: Path) -> time:
    for entry in site.get("shifts") or []:
        if entry.get("id") == SOURCE_DAY_SHIFT:
            return _time(entry["start"])
    raise DemoFloorError(f"{source}: shifts: no shift with id {SOURCE_DAY_SHIFT!r} to turn to the wall clock")


def _time(value: Any) -> time:
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 08:00 as sexagesimal minutes
        return time(value // 60 % 24, value % 60)
    return time.fromisoformat(str(value))


def _turned(entry: dict[str, Any], day_start: time, anchor: datetime) -> dict[str, Any]:
    """The shift moved so that the day shift starts at the anchor's time of day."""
    offset = (anchor.hour * 60 + anchor.minute) - (day_start.hour * 60 + day_start.minute)

    def move(value: Any) -> str:
        old = _time(value)
        minutes = (old.hour * 60 + old.minute + offset) % (24 * 60)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    return {**entry, "start": move(entry["start"]), "end": move(entry["end"])}


def _to_inbox(urls: Any, port: int) -> Any:
    def one(item: Any) -> Any:
        if isinstance(item, str):
            return item.replace(SOURCE_INBOX, f"127.0.0.1:{port}")
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            return {**item, "url": one(item["url"])}
        return item

    return [one(u) for u in urls] if isinstance(urls, list) else one(urls)


def _moved(value: Any, shift: timedelta) -> Any:
    """Every date-time in the HR data moved by `shift` (dates by its whole days); the rest as it is."""
    if isinstance(value, dict):
        return {k: _moved(v, shift) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, shift) for v in value]
    if isinstance(value, datetime):
        return (value + shift).isoformat()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return (parsed + shift).isoformat() if "T" in value else value
    return value
