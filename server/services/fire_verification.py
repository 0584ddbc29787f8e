"""RULES.md §3 after a person acts: acknowledging a fire page stops the 60 s confirmation timer of its zone;
closing the zone's last fire alarm (a person, with a reason) re-arms the zone."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from server.domain import alarms as domain
from server.domain.catalog import ids
from server.services.ingest import EngineCall

FIRE_PAGES = ids(lambda spec: spec.starts_verification)
"""Alarms that start the §3 verification sequence; acknowledging one is the 60 s acknowledgement."""


class FireVerification:
    """An alarm listener that passes acknowledgements and closes on to the rule engine."""

    def __init__(self, engine_call: Callable[[EngineCall], object],
                 open_alarms: Callable[[], Sequence[domain.Alarm]]) -> None:
        self.engine_call = engine_call
        """Runs a call on the ingest thread, the only one that touches the rule engine (Ingest.call)."""
        self.open_alarms = open_alarms

    def on_alarm(self, alarm: domain.Alarm) -> None:
        if alarm.zone is None or not alarm.rule.startswith(("fire.", "mr.smoke")):
            return
        zone = alarm.zone
        if alarm.state is domain.AlarmState.ACKNOWLEDGED and alarm.rule in FIRE_PAGES:
            self.engine_call(lambda engine, now: engine.acknowledge_fire(zone, now))
        elif alarm.state is domain.AlarmState.CLOSED and not any(
            a.zone == zone and a.latching for a in self.open_alarms()
        ):
            self.engine_call(lambda engine, now: engine.reset_zone(zone, now))
