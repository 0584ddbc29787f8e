"""The safety cut of a critical overload: open the relays the power-cut policy allows (server/domain/power.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from gateway import contract
from gateway.contract import Severity
from server.domain import alarms as domain
from server.domain.catalog import ids
from server.domain.power import plan_cut, plug_current_a
from server.domain.site import Site
from server.services.commands import CommandService, alarm_ref
from server.services.live import LiveState
from server.services.recovery import EffectNotReady

log = logging.getLogger(__name__)

OVERLOAD_RULES = ids(lambda spec: spec.cuts_relay)


class OverloadCut:
    """An alarm listener. One cut per alarm, also when its transition is dispatched again after a crash
    (services/recovery.py)."""

    def __init__(self, site: Site, commands: CommandService, live: LiveState,
                 alarm_by_id: Callable[[int], domain.Alarm | None], started_at: datetime) -> None:
        self.site = site
        self.commands = commands
        self.live = live
        self.alarm_by_id = alarm_by_id
        self.started_at = started_at
        """When this process started: a strip alarm raised before it may find no plug current known yet."""
        self._cut_for: set[int] = set()
        """Alarms whose overload cut was already sent (one cut per alarm, however often it re-triggers)."""

    def on_alarm(self, alarm: domain.Alarm) -> None:
        # acknowledged too: a major overload the lead acknowledged stays acknowledged when it turns critical
        if (alarm.rule not in OVERLOAD_RULES or alarm.severity is not Severity.CRITICAL
                or alarm.state not in (domain.AlarmState.ACTIVE, domain.AlarmState.ACKNOWLEDGED)
                or alarm.id is None or alarm.id in self._cut_for):
            return
        ref = alarm_ref(alarm.id)
        current = self.alarm_by_id(alarm.id)
        if current is None or not current.is_open or not current.condition_active:
            self._cut_for.add(alarm.id)  # dispatched late and the overload is over: cutting now helps nobody
            return
        if any(c["action"] == contract.Action.RELAY_OFF.value for c in self.commands.commands(ref=ref)):
            self._cut_for.add(alarm.id)  # an earlier life of this server already cut for it
            return
        live = self.live.devices()
        currents = {d: amps for d, v in live.items() if (amps := plug_current_a(v.metrics)) is not None}
        plan = plan_cut(alarm.rule, alarm.subject, alarm.value, self.site, currents)
        if (plan is None and alarm.rule == "elec.strip_overload" and alarm.raised_at < self.started_at
                and not any(p.id in currents for p in self.site.plugs_of_strip(alarm.subject))):
            # Recovered after a restart before any plug of the strip reported: the plan would be empty.
            raise EffectNotReady(f"no plug current of {alarm.subject} known since the restart")
        self._cut_for.add(alarm.id)
        if plan is not None:
            cut = self.commands.safety_cut(list(plan.devices), plan.reason, ref=ref)
            log.warning("safety cut for alarm %s: %s", alarm.id, ", ".join(cut) or "nothing cuttable")
