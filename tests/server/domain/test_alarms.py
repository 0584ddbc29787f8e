"""The alarm state machine: findings and actions in, one alarm per (rule, subject) and effects out."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from gateway.contract import Severity
from server.domain import alarms
from server.domain.alarms import Alarm, AlarmState, Audit, Broadcast, Notify, Persist, TransitionError
from server.domain.findings import Finding, Transition
from tests.server.domain.harness import DAY, Floor


def finding(
    rule: str = "elec.strip_overload",
    transition: Transition = Transition.RAISE,
    severity: Severity = Severity.MAJOR,
    value: float | None = 10.5,
    minutes: float = 0,
) -> Finding:
    return Finding(
        rule,
        transition,
        severity,
        "strip-a1",
        "ops-a",
        "hq",
        value,
        "Strip overloaded",
        DAY + timedelta(minutes=minutes),
    )


def step(alarm: Alarm | None, f: Finding) -> tuple[Alarm, list[alarms.Effect]]:
    out, effects = alarms.apply(alarm, f, f.ts)
    assert out is not None
    return out, effects


def kinds(effects: list[alarms.Effect]) -> set[type]:
    return {type(e) for e in effects}


def test_new_alarm_is_persisted_notified_broadcast_and_audited() -> None:
    alarm, effects = step(None, finding())
    assert alarm.state is AlarmState.ACTIVE and alarm.id is None and alarm.occurrences == 1
    assert kinds(effects) == {Persist, Notify, Broadcast, Audit}
    audit = next(e for e in effects if isinstance(e, Audit))
    assert audit.who == alarms.SYSTEM and audit.to_state == "active"


def test_retrigger_counts_and_escalation_updates_the_same_alarm() -> None:
    alarm, _ = step(None, finding())
    alarm, effects = step(alarm, finding(value=10.8, minutes=1))
    assert alarm.occurrences == 2 and alarm.value == 10.8 and kinds(effects) == {Persist}
    alarm, effects = step(alarm, finding(severity=Severity.CRITICAL, minutes=5))
    assert alarm.severity is Severity.CRITICAL and alarm.occurrences == 3
    assert Notify in kinds(effects) and Audit in kinds(effects)


def test_clear_before_ack_then_ack_closes_it() -> None:
    alarm, _ = step(None, finding())
    alarm, effects = step(alarm, finding(transition=Transition.CLEAR, minutes=2))
    assert (
        alarm.state is AlarmState.CLEARED_UNACKED
        and alarm.acknowledged_at is None
        and Audit in kinds(effects)
    )
    alarm, effects = alarms.acknowledge(alarm, "p-li", "seen", DAY + timedelta(minutes=3))
    assert alarm.state is AlarmState.CLEARED and not alarm.is_open
    assert any(isinstance(e, Audit) and e.who == "p-li" and e.why == "seen" for e in effects)


def test_ack_then_clear_and_a_new_episode_is_a_new_alarm() -> None:
    alarm, _ = step(None, finding())
    alarm, _ = alarms.acknowledge(alarm, "p-li", "on it", DAY + timedelta(minutes=1))
    assert alarm.state is AlarmState.ACKNOWLEDGED
    alarm, _ = step(alarm, finding(transition=Transition.CLEAR, minutes=2))
    assert alarm.state is AlarmState.CLEARED and not alarm.is_open
    again, effects = step(alarm, finding(minutes=90))
    assert again.state is AlarmState.ACTIVE and again.occurrences == 1 and Notify in kinds(effects)


@pytest.mark.parametrize("rule", ["fire.smoke_alarm", "mr.smoke", "fire.confirmed"])
def test_smoke_alarms_latch_until_a_person_closes_them_with_a_reason(rule: str) -> None:
    alarm, _ = step(None, finding(rule, severity=Severity.CRITICAL))
    assert alarm.latching
    alarm, effects = step(alarm, finding(rule, Transition.CLEAR, Severity.CRITICAL, minutes=1))
    assert alarm.is_open and not alarm.condition_active and Audit in kinds(effects)
    alarm, _ = alarms.acknowledge(alarm, "p-li", "going", DAY + timedelta(minutes=2))
    assert alarm.is_open
    with pytest.raises(TransitionError):
        alarms.close(alarm, "p-li", "  ", DAY + timedelta(minutes=3))
    with pytest.raises(TransitionError):
        alarms.shelve(alarm, "p-li", DAY + timedelta(hours=1), DAY + timedelta(minutes=3), "noise")
    alarm, effects = alarms.close(alarm, "p-li", "false alarm: steam", DAY + timedelta(minutes=4))
    assert alarm.state is AlarmState.CLOSED and alarm.closed_by == "p-li"
    assert any(isinstance(e, Audit) and e.why == "false alarm: steam" for e in effects)


def test_flapping_collapses_into_one_open_alarm() -> None:
    alarm, _ = step(None, finding())
    first = alarm
    for i in range(4):
        alarm, _ = step(alarm, finding(transition=Transition.CLEAR, minutes=10 * i + 5))
        alarm, _ = step(alarm, finding(minutes=10 * i + 10))
    assert alarm.raised_at == first.raised_at and alarm.is_open
    alarm, _ = step(alarm, finding(transition=Transition.CLEAR, minutes=50))
    assert alarm.flapping and alarm.flap_count >= 3 and alarm.is_open  # stays open until acknowledged
    alarm, _ = alarms.acknowledge(alarm, "p-li", "cable fixed", DAY + timedelta(minutes=55))
    assert not alarm.is_open


def test_shelve_and_unshelve() -> None:
    alarm, _ = step(None, finding(severity=Severity.MAJOR))
    until = DAY + timedelta(hours=1)
    shelved, effects = alarms.shelve(alarm, "p-chen", until, DAY, "known issue")
    assert shelved.state is AlarmState.SHELVED and shelved.shelved_until == until and Audit in kinds(effects)
    assert alarms.unshelve_due(shelved, DAY + timedelta(minutes=30)) is None
    back = alarms.unshelve_due(shelved, until)
    assert back is not None and back[0].state is AlarmState.ACTIVE and Notify in kinds(back[1])
    done, _ = step(shelved, finding(transition=Transition.CLEAR, minutes=5))
    assert done.state is AlarmState.CLEARED and not done.is_open
    critical, _ = step(None, finding(severity=Severity.CRITICAL))
    with pytest.raises(TransitionError):
        alarms.shelve(critical, "p-chen", until, DAY, "no")


def test_every_transition_is_audited_with_who_and_why() -> None:
    alarm, effects = step(None, finding())
    trail = [e for e in effects if isinstance(e, Audit)]
    alarm, effects = alarms.acknowledge(alarm, "p-li", "looking", DAY)
    trail += [e for e in effects if isinstance(e, Audit)]
    alarm, effects = alarms.close(alarm, "p-chen", "load moved", DAY)
    trail += [e for e in effects if isinstance(e, Audit)]
    assert [(a.who, a.action) for a in trail] == [
        ("system", "raise"),
        ("p-li", "acknowledge"),
        ("p-chen", "close"),
    ]


def test_engine_findings_drive_the_state_machine() -> None:
    """End to end in the domain: a smoke alarm that clears stays latched; the strip alarm escalates."""
    f = Floor()
    f.read("smoke-b1", smoke=True)
    f.read("smoke-b1", smoke=False)
    f.hold("strip-a1", 301, current_a=10.5)
    table: dict[tuple[str, str], Alarm] = {}
    for item in f.findings:
        out, _ = alarms.apply(table.get((item.rule, item.subject)), item, item.ts)
        if out is not None:
            table[(item.rule, item.subject)] = out
    assert table[("fire.smoke_alarm", "smoke-b1")].is_open
    assert table[("elec.strip_overload", "strip-a1")].severity is Severity.CRITICAL


def flapping_alarm() -> Alarm:
    """An alarm that cleared and came back 3 times within the hour, its condition present."""
    alarm, _ = step(None, finding())
    for i in range(3):
        alarm, _ = step(alarm, finding(transition=Transition.CLEAR, minutes=10 * i + 5))
        alarm, _ = step(alarm, finding(minutes=10 * i + 10))
    assert alarm.flapping and alarm.state is AlarmState.ACTIVE and alarm.condition_active
    return alarm


def test_an_acknowledged_flapping_alarm_clears_when_its_condition_ends() -> None:
    alarm, _ = alarms.acknowledge(flapping_alarm(), "p-li", "looking", DAY + timedelta(minutes=31))
    assert alarm.state is AlarmState.ACKNOWLEDGED
    alarm, effects = step(alarm, finding(transition=Transition.CLEAR, minutes=35))
    assert alarm.state is AlarmState.CLEARED and not alarm.is_open
    assert alarm.cleared_at == DAY + timedelta(minutes=35)
    assert [(e.action, e.to_state) for e in effects if isinstance(e, Audit)] == [("clear", "cleared")]


def test_an_unacknowledged_flapping_alarm_stays_open_when_its_condition_ends() -> None:
    alarm, _ = step(flapping_alarm(), finding(transition=Transition.CLEAR, minutes=35))
    assert alarm.state is AlarmState.ACTIVE and alarm.is_open and not alarm.condition_active


def test_a_shelf_that_ends_puts_the_alarm_back_and_tells_people() -> None:
    alarm, _ = step(None, finding())
    until = DAY + timedelta(hours=1)
    acked, _ = alarms.acknowledge(alarm, "p-li", "looking", DAY)
    shelved, _ = alarms.shelve(acked, "p-chen", until, DAY, "known issue")
    back = alarms.unshelve_due(shelved, until + timedelta(seconds=1))
    assert back is not None
    assert back[0].state is AlarmState.ACKNOWLEDGED and back[0].shelved_until is None
    assert any(isinstance(e, Notify) for e in back[1])


def test_a_shelved_flapping_alarm_whose_condition_ended_follows_the_state_machine_at_the_shelf_end() -> None:
    until = DAY + timedelta(hours=2)
    # unacknowledged: the condition ends on the shelf, the alarm stays shelved (flapping), then comes
    # back open and unacknowledged: someone must still look at it
    shelved, _ = alarms.shelve(flapping_alarm(), "p-chen", until, DAY + timedelta(minutes=31), "noisy")
    off, _ = step(shelved, finding(transition=Transition.CLEAR, minutes=35))
    assert off.state is AlarmState.SHELVED and not off.condition_active
    back = alarms.unshelve_due(off, until)
    assert back is not None and back[0].state is AlarmState.ACTIVE and back[0].is_open
    # acknowledged before the shelf: the condition ending on the shelf ends it at once
    acked, _ = alarms.acknowledge(flapping_alarm(), "p-li", "looking", DAY + timedelta(minutes=31))
    shelved, _ = alarms.shelve(acked, "p-chen", until, DAY + timedelta(minutes=32), "noisy")
    done, _ = step(shelved, finding(transition=Transition.CLEAR, minutes=35))
    assert done.state is AlarmState.CLEARED and alarms.unshelve_due(done, until) is None


def test_there_is_no_maintenance_window_state() -> None:
    """The catalog names no alarm-level maintenance window (its windows are rule inputs, e.g.
    fire.detector_disabled's approved window), so the state machine has none to reach."""
    assert {s.value for s in AlarmState} == {"active", "acknowledged", "cleared_unacked", "cleared", "shelved",
                                             "closed"}
    assert not hasattr(alarms, "suppress")


def test_a_cleared_alarm_keeps_its_raise_value_and_its_worst_apart_from_the_clearing_value() -> None:
    alarm, _ = step(None, finding(value=12.56))
    assert (alarm.value, alarm.raised_value, alarm.peak_value) == (12.56, 12.56, 12.56)
    alarm, _ = step(alarm, finding(severity=Severity.CRITICAL, value=13.1, minutes=5))
    cleared = Finding("elec.strip_overload", Transition.CLEAR, Severity.CRITICAL, "strip-a1", "ops-a", "hq", 3.674,
                      "Strip back under its rating", DAY + timedelta(minutes=9), peak=14.2)
    alarm, _ = step(alarm, cleared)
    assert alarm.state is AlarmState.CLEARED_UNACKED
    assert (alarm.value, alarm.raised_value, alarm.peak_value) == (3.674, 12.56, 14.2)


def test_a_clearing_value_never_counts_as_the_worst() -> None:
    alarm, _ = step(None, finding(value=12.56))
    alarm, _ = step(alarm, finding(transition=Transition.CLEAR, value=30.0, minutes=2))
    assert alarm.value == 30.0 and alarm.peak_value == 12.56


def test_the_worst_of_a_cold_room_is_its_lowest_and_a_band_rule_keeps_none() -> None:
    def raised(rule: str, value: float) -> Alarm:
        alarm, _ = step(None, replace(finding(), rule=rule, value=value))
        return alarm

    cold = raised("mr.temp_low", 17.5)
    cold, _ = step(cold, replace(finding(severity=Severity.CRITICAL), rule="mr.temp_low", value=16.0, peak=15.5))
    assert cold.raised_value == 17.5 and cold.peak_value == 15.5
    band = raised("elec.voltage_out_of_range", 198.0)
    assert band.raised_value == 198.0 and band.peak_value is None



@pytest.mark.parametrize("rule", ["fire.smoke_alarm", "mr.smoke", "fire.confirmed", "fire.manual_report"])
def test_a_latched_alarm_acknowledged_for_an_episode_that_is_over_raises_anew_when_it_comes_back(rule: str) -> None:
    """Acknowledged, condition cleared, not closed yet (latching): the detector in alarm again is a new
    alarm, active and unacknowledged with a new raise time and a page, never a silent re-trigger."""
    alarm, _ = step(None, finding(rule, severity=Severity.CRITICAL))
    alarm, _ = alarms.acknowledge(alarm, "p-li", "going", DAY + timedelta(minutes=1))
    alarm, _ = step(alarm, finding(rule, Transition.CLEAR, Severity.CRITICAL, minutes=2))
    assert alarm.state is AlarmState.ACKNOWLEDGED and not alarm.condition_active
    again, effects = step(alarm, finding(rule, severity=Severity.CRITICAL, minutes=40))
    assert (again.state, again.acknowledged_at, again.acknowledged_by) == (AlarmState.ACTIVE, None, None)
    assert again.raised_at == DAY + timedelta(minutes=40) and again.condition_active and again.id == alarm.id
    assert any(isinstance(e, Notify) and e.why == "raised" for e in effects)


def test_an_acknowledged_latched_alarm_whose_condition_is_still_on_only_counts_a_retrigger() -> None:
    alarm, _ = step(None, finding("fire.smoke_alarm", severity=Severity.CRITICAL))
    alarm, _ = alarms.acknowledge(alarm, "p-li", "going", DAY + timedelta(minutes=1))
    again, effects = step(alarm, finding("fire.smoke_alarm", severity=Severity.CRITICAL, minutes=2))
    assert again.state is AlarmState.ACKNOWLEDGED and again.raised_at == alarm.raised_at
    assert kinds(effects) == {Persist}


def test_an_alarm_raised_again_after_it_cleared_unacknowledged_takes_the_new_zone_and_words() -> None:
    """A floor's evac.notice cleared by the all-clear, nobody acknowledged it, then a fire in another zone."""
    def notice(zone: str, minutes: float, transition: Transition = Transition.RAISE) -> Finding:
        return Finding("evac.notice", transition, Severity.CRITICAL, "f1", zone, "hq", None, f"Fire in {zone}",
                       DAY + timedelta(minutes=minutes), f"{zone}区域发生火情")

    alarm, _ = step(None, notice("ops-a", 0))
    alarm, _ = step(alarm, notice("ops-a", 30, Transition.CLEAR))
    assert alarm.state is AlarmState.CLEARED_UNACKED
    again, effects = step(alarm, notice("ops-b", 200))
    assert (again.state, again.zone, again.message, again.message_zh) == (
        AlarmState.ACTIVE, "ops-b", "Fire in ops-b", "ops-b区域发生火情")
    assert again.occurrences == 2 and Broadcast in kinds(effects)


def test_an_escalation_and_a_raise_after_a_clear_are_the_alarms_latest_raise() -> None:
    """`raised_at` stays the first raise (the alarm's age, the ladder's start); `last_raised_at` is when it
    last became worse or came back, which is what a push about that change and the page must say."""
    alarm, _ = step(None, finding())
    assert alarm.last_raised_at == alarm.raised_at == DAY
    alarm, _ = step(alarm, finding(value=10.8, minutes=1))  # a plain re-trigger changes nothing for people
    assert alarm.last_raised_at == DAY
    alarm, effects = step(alarm, finding(severity=Severity.CRITICAL, minutes=5))
    assert Notify in kinds(effects)
    assert alarm.raised_at == DAY and alarm.last_raised_at == DAY + timedelta(minutes=5)
    alarm, _ = step(alarm, finding(transition=Transition.CLEAR, severity=Severity.CRITICAL, minutes=6))
    assert alarm.state is AlarmState.CLEARED_UNACKED
    alarm, _ = step(alarm, finding(severity=Severity.CRITICAL, minutes=40))  # back before anyone acknowledged
    assert alarm.state is AlarmState.ACTIVE
    assert alarm.raised_at == DAY and alarm.last_raised_at == DAY + timedelta(minutes=40)
    # an alarm stored before the field existed reads its first raise as its latest
    assert Alarm.from_record({**{f: getattr(alarm, f) for f in ("rule", "subject", "zone", "site", "severity",
                                                                   "state", "raised_at", "value", "message")},
                              "last_raised_at": None}).latest_raise == DAY
