"""Reads the facts a checklist pre-fill needs (`server.domain.prefill.Facts`) from the running server.

Sources, narrowed to the task's scope:

* live device state (`LiveState`: last value per metric, online, last seen) for plugs, doors, probes
  and sensor health;
* the alarm table for elec.* and door.* alarms open now or raised since the last check;
* the series store (`query_readings`) for power peaks since the last check; when it cannot answer
  (no store, InfluxDB down) the peaks are left out and the suggestion says so;
* the backup folder: the newest `floorwatch-backup-<UTC time>.tar.gz` (`server.backup` writes one only
  after verifying it);
* the inspection tables for the lead round's "forwards" item: the operator self-checks of the zone
  (the reports the lead collects) and the lead_forward issues they raised, with the lead's answer.

Scope of a task: a seat → its plugs and their strips; a shift lead's zone → the zone, its neighbours
(a stairwell's fire door belongs to the round of the office next to it) and the floor's machine
rooms (the round checks the machine-room door); a machine room →
that zone; a device → the device; the site → everything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from server.domain.inspections import CATALOG, FORWARD_FROM, ResultRecord, Schedule, Scope, TaskRecord
from server.domain.prefill import AlarmFact, DeviceFact, Facts, IssueFact, Peak, ReportFact
from server.domain.site import Device, Site
from server.domain.utc import as_utc
from server.services.live import LiveState
from server.services.ports import InspectionFactsStore

log = logging.getLogger(__name__)

BACKUP_PREFIX = "floorwatch-backup-"
BACKUP_SUFFIX = ".tar.gz"


class SeriesReader(Protocol):
    def query_readings(self, device: str, metric: str, since: datetime, until: datetime | None = None,
                       limit: int = 10_000) -> Sequence[tuple[datetime, float | bool]]: ...


def newest_backup(folder: Path) -> datetime | None:
    """When the newest backup archive in `folder` was made (from its name), or None."""
    newest: datetime | None = None
    for path in folder.glob(f"{BACKUP_PREFIX}*{BACKUP_SUFFIX}"):
        stamp = path.name[len(BACKUP_PREFIX):-len(BACKUP_SUFFIX)]
        try:
            made = datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
        except ValueError:
            continue
        if newest is None or made > newest:
            newest = made
    return newest


def _source_id(issue: TaskRecord) -> int | None:
    """An issue's subject is "issue:<self-check task id>" (domain.forward_task)."""
    prefix, _, rest = issue.subject.partition(":")
    return int(rest) if prefix == "issue" and rest.isdigit() else None


class FactsReader:
    def __init__(self, site: Site, live: LiveState, store: InspectionFactsStore, *,
                 series: SeriesReader | None = None, backup_dir: Path | None = None,
                 flush: Callable[[], object] | None = None) -> None:
        self.site = site
        self.live = live
        self.store = store
        self.series = series
        self.backup_dir = backup_dir
        self.flush = flush
        """Called before reading the series store, so that buffered readings are included."""

    def scope(self, schedule: Schedule, zone: str | None, seat: str | None, device: str | None) -> list[Device]:
        site = self.site
        if seat is not None:
            plugs = [d for d in site.devices.values() if d.seat == seat]
            strips = {p.strip for p in plugs if p.strip}
            return plugs + [site.devices[s] for s in sorted(strips) if s in site.devices]
        if device is not None and device in site.devices:
            return [site.devices[device]]
        if schedule.scope is Scope.SITE or zone is None or zone not in site.zones:
            return list(site.devices.values())
        zones = [zone]
        if schedule.scope is Scope.LEAD_ZONE:
            # the round covers the neighbours (a stairwell's fire door) and the floor's machine-room door
            floor = site.zones[zone].floor
            zones += [z for z in site.zones[zone].adjacent if z in site.zones]
            zones += [z.id for z in site.zones_on_floor(floor) if site.is_machine_room(z.id) and z.id not in zones]
        return [d for z in zones for d in site.devices_in_zone(z)]

    def gather(self, schedule: Schedule, zone: str | None, seat: str | None, device: str | None,
               since: datetime, now: datetime, kinds: frozenset[str]) -> Facts:
        """The facts for one task; `kinds` (its items' prefill kinds) skips sources nobody asked for."""
        devices = self.scope(schedule, zone, seat, device)
        live = self.live.devices()
        facts = []
        for d in devices:
            state = live.get(d.id)
            facts.append(DeviceFact(
                d.id, d.kind.value, d.door_type.value if d.door_type else None, d.seat,
                state.online if state else None, state.last_seen if state else None,
                dict(state.metrics) if state else {}, dict(state.metric_ts) if state else {},
                timedelta(seconds=max(d.reporting_interval_s, d.heartbeat_s))))
        peaks: dict[str, Peak] = {}
        series_ok = self.series is not None
        if "elec_events" in kinds and self.series is not None:
            peaks, series_ok = self._peaks([d.id for d in devices if d.kind.value == "smart_plug"], since, now)
        alarms: tuple[AlarmFact, ...] = ()
        if kinds & {"elec_events", "door_state", "open_alerts"}:
            alarms = self._alarms(schedule, devices, zone, seat, since)
        last_backup = None
        backups_known = self.backup_dir is not None and self.backup_dir.is_dir()
        if "it_backup" in kinds and self.backup_dir is not None and backups_known:
            last_backup = newest_backup(self.backup_dir)
        issues: tuple[IssueFact, ...] = ()
        reports: tuple[ReportFact, ...] = ()
        if "forwards" in kinds:
            issues, reports = self._forwards(schedule, zone, since, now)
        return Facts(now, since, self.site.tz, tuple(facts), peaks, series_ok, alarms, last_backup, backups_known,
                     issues, reports)

    def _peaks(self, plugs: list[str], since: datetime, now: datetime) -> tuple[dict[str, Peak], bool]:
        assert self.series is not None
        if self.flush is not None:
            self.flush()
        out: dict[str, Peak] = {}
        try:
            for plug in plugs:
                samples = [s for s in self.series.query_readings(plug, "power_w", since, now, limit=100_000)
                           if isinstance(s[1], (int, float)) and not isinstance(s[1], bool)]
                if samples:
                    at, watts = max(samples, key=lambda s: float(s[1]))
                    out[plug] = Peak(plug, float(watts), as_utc(at), len(samples))
        except Exception as error:  # the store is optional for a suggestion: say "unknown", never fail the page
            log.warning("inspection pre-fill: the series store did not answer: %s", error)
            return {}, False
        return out, True

    def _alarms(self, schedule: Schedule, devices: list[Device], zone: str | None, seat: str | None,
                since: datetime) -> tuple[AlarmFact, ...]:
        ids = [d.id for d in devices]
        if seat is not None or schedule.scope is Scope.DEVICE:
            return self.store.alarm_facts(self.site.id, since, ids, None)
        if schedule.scope is not Scope.SITE and zone is not None:
            return self.store.alarm_facts(self.site.id, since, ids, {d.zone for d in devices} | {zone})
        return self.store.alarm_facts(self.site.id, since, None, None)

    def _forwards(self, schedule: Schedule, zone: str | None, since: datetime, now: datetime
                  ) -> tuple[tuple[IssueFact, ...], tuple[ReportFact, ...]]:
        """The lead's zone only (operators sit there, not in the neighbouring stairwells): its self-checks
        signed since the last round or still open from it, and the issues raised since then or still open."""
        zoned = zone if schedule.scope is not Scope.SITE else None
        report_rows = self.store.self_checks(FORWARD_FROM, zoned, since, now)
        issue_rows = self.store.issues(CATALOG["lead_forward"].id, zoned, since, now)
        sources = {r.id: _source_id(r) for r in issue_rows}
        source_ids = [i for i in sources.values() if i is not None]
        results = self.store.results([*source_ids, *sources])
        source_rows = self.store.tasks(source_ids)
        by_task: dict[int, list[ResultRecord]] = {}
        for result in results:
            by_task.setdefault(result.task_id, []).append(result)
        issues = []
        for row in issue_rows:
            source_id = sources[row.id]
            source = source_rows.get(source_id) if source_id is not None else None
            what = self._failed(source, by_task.get(source.id, []) if source is not None else [])
            answers = {r.item_id: r for r in by_task.get(row.id, []) if r.outcome == "pass"}
            handled = next((i for i in ("resolved", "forwarded") if i in answers), None) \
                if row.status == "done" else None
            issues.append(IssueFact(row.seat, source.completed_by if source else None, row.run_at,
                                    row.due_at, what, handled,
                                    row.completed_at if handled and row.completed_at else None,
                                    answers[handled].note if handled else ""))
        reports = tuple(ReportFact(r.seat, r.completed_by or r.assignee, r.due_at,
                                   r.completed_at if r.status == "done" and r.completed_at else None)
                        for r in report_rows if r.status in ("done", "open"))
        return tuple(issues), reports

    @staticmethod
    def _failed(source: TaskRecord | None, results: Sequence[ResultRecord]) -> tuple[str, ...]:
        """The self-check's failed items that went to the lead (not on-the-spot ones): note, else item text."""
        schedule = CATALOG.get(source.schedule_id) if source is not None else None
        if schedule is None:
            return ()
        out = []
        for result in results:
            item = schedule.item(result.item_id)
            if result.outcome == "fail" and item is not None and not item.on_the_spot:
                out.append(result.note.strip() or item.text)
        return tuple(out)
