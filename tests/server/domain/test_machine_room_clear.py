"""Whether a machine room is clear after its smoke (server/domain/machine_room.py), from the open alarms:
on the example floor, machine room `mr` with its probe mr-probe1."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from gateway.contract import Severity
from server.domain.alarms import Alarm, AlarmState
from server.domain.machine_room import not_clear
from tests.server.domain.harness import load_site

AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
SMOKE = Alarm("mr.smoke", "mr-probe1", "mr", "r1", Severity.CRITICAL, AlarmState.ACTIVE, AT, None,
              "Smoke alarm in 机房, being checked", latching=True)
OFFLINE = Alarm("sup.probe_offline", "mr-probe1", "mr", "r1", Severity.MAJOR, AlarmState.ACTIVE, AT, None,
                "Machine-room probe offline")


def _readings(*alarms: Alarm) -> dict[str, str]:
    return {room: hold.reading for room, hold in not_clear(load_site(), alarms).items()}


def test_a_probe_still_reading_smoke_holds_its_machine_room() -> None:
    assert _readings(SMOKE) == {"mr": "smoke"}
    assert _readings(replace(SMOKE, state=AlarmState.ACKNOWLEDGED)) == {"mr": "smoke"}


def test_a_probe_offline_since_its_smoke_holds_its_machine_room() -> None:
    cleared = replace(SMOKE, state=AlarmState.CLEARED_UNACKED, condition_active=False)
    assert _readings(cleared, OFFLINE) == {"mr": "offline"}
    assert _readings(cleared, replace(OFFLINE, condition_active=False, state=AlarmState.CLEARED_UNACKED)) == {}


def test_a_probe_that_reads_clear_or_whose_smoke_a_person_closed_holds_nothing() -> None:
    assert _readings(replace(SMOKE, state=AlarmState.CLEARED_UNACKED, condition_active=False)) == {}
    assert _readings(replace(SMOKE, state=AlarmState.CLOSED), OFFLINE) == {}
    assert _readings(OFFLINE) == {}, "offline without smoke: sup.probe_offline's matter, not a held room"


def test_the_words_name_the_room_and_the_probe_in_both_languages() -> None:
    site = load_site()
    zh, en = not_clear(site, [SMOKE])["mr"].text(site)
    assert "mr-probe1" in en and "still reads smoke" in en and "is not clear" in en, en
    assert "mr-probe1" in zh and "未解除" in zh, zh


def test_a_probe_lost_behind_a_down_edge_or_bridge_since_its_smoke_holds_its_machine_room() -> None:
    """Behind a down edge or bridge the probe's silence is its zone's sup.smoke_offline (subject: the zone),
    not its own sup.probe_offline: the room is just as blind."""
    cleared = replace(SMOKE, state=AlarmState.CLEARED_UNACKED, condition_active=False)
    zone_out = Alarm("sup.smoke_offline", "mr", "mr", "r1", Severity.CRITICAL, AlarmState.ACTIVE, AT, None,
                     "Detectors of the zone offline behind edge e1")
    assert _readings(cleared, zone_out) == {"mr": "offline"}
    assert _readings(cleared, replace(zone_out, condition_active=False, state=AlarmState.CLEARED_UNACKED)) == {}
    assert _readings(cleared, replace(zone_out, subject="z1", zone="z1")) == {}, "another zone's detectors"
