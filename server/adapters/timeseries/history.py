"""The boards' history besides readings and events: one `alarm` point per alarm change, and the monthly
`inspection` counts per zone and schedule (dashboards/SCHEMA.md)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from server.adapters.timeseries.points import alarm_point, inspection_point
from server.adapters.timeseries.writer import TimeSeriesWriter
from server.domain.alarms import Alarm, AlarmState
from server.domain.catalog import CATALOG
from server.domain.inspections import Compliance


class SeriesHistory:
    """An alarm listener and the inspection service's counts sink, writing to the time series."""

    def __init__(self, writer: TimeSeriesWriter, site: str, devices: Collection[str],
                 clock: Callable[[], datetime]) -> None:
        self.writer = writer
        self.site = site
        self.devices = devices
        """The site's device ids: an alarm whose subject is one carries it as its `device` tag."""
        self.clock = clock

    def on_alarm(self, alarm: Alarm) -> None:
        """`active` 1 while the alarm's condition holds and it is not closed, 0 once it cleared or closed; at
        the change's commit time (the alarm's own times say when it was raised, not when it changed)."""
        active = alarm.condition_active and alarm.state is not AlarmState.CLOSED
        ts, device = self.clock(), alarm.subject if alarm.subject in self.devices else None
        # severity is a tag, so an escalated alarm's earlier severity is a series of its own: it ends at 0 too
        spec = CATALOG.get(alarm.rule)
        others = [s for s in (spec.severities if spec is not None else ()) if s is not alarm.severity]
        self.writer.write([
            alarm_point(site=alarm.site, zone=alarm.zone, rule=alarm.rule, severity=str(alarm.severity),
                        active=active, ts=ts, value=alarm.value, device=device),
            *(alarm_point(site=alarm.site, zone=alarm.zone, rule=alarm.rule, severity=str(s), active=False, ts=ts,
                          device=device) for s in others)])

    def counts(self, period_start: datetime, figures: Sequence[Compliance]) -> None:
        """A month's running counts; written at the month's start, so each write replaces the last."""
        self.writer.write([inspection_point(
            site=self.site, zone=c.zone, schedule=c.schedule, period_start=period_start, on_time=c.on_time,
            late=c.late, missed=c.missed, failed=c.failed_items) for c in figures])
