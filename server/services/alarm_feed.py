"""Every told alarm change as a contract AlarmChange on the site's alarms topic (dashboards, edges' displays)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway import contract
from server.domain import alarms as domain
from server.domain.catalog import unit_of
from server.domain.site import Site


class AlarmFeed:
    """An alarm listener."""

    def __init__(self, site: Site, clock: Callable[[], datetime],
                 publish: Callable[[str, contract.AlarmChange], None]) -> None:
        self.site = site
        self.clock = clock
        self.publish = publish

    def on_alarm(self, alarm: domain.Alarm) -> None:
        if alarm.id is None:
            return
        change = contract.AlarmChange(
            id=alarm.id, site=alarm.site, rule=alarm.rule, severity=alarm.severity, state=alarm.state.value,
            device=alarm.subject if alarm.subject in self.site.devices else None, zone=alarm.zone,
            ts=self.clock(), value=alarm.value, message=alarm.message, message_zh=alarm.message_zh,
            unit=unit_of(alarm.rule), raised_value=alarm.raised_value, peak=alarm.peak_value)
        self.publish(contract.site_topic(alarm.site, contract.SiteChannel.ALARMS, str(alarm.id)), change)
