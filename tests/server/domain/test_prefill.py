"""Pre-fill decisions (pure): what given facts suggest for each kind, with the evidence a person reads."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from server.domain import prefill
from server.domain.inspections import CATALOG
from server.domain.prefill import AlarmFact, DeviceFact, Facts, Peak, Suggested

TZ = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0, day: int = 29) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC)


NOW = at(20, 5)
SINCE = at(18, 0, day=28)
T2004, T1955, T2003 = at(20, 4), at(19, 55), at(20, 3)


def facts(**kw: object) -> Facts:
    return Facts(NOW, SINCE, TZ, **kw)  # type: ignore[arg-type]


def plug(id: str = "plug-f3-s012", watts: float | None = 8.0, ts: datetime = T2004, **kw: object) -> DeviceFact:
    metrics = {} if watts is None else {"power_w": watts}
    return DeviceFact(id, "smart_plug", seat="s-012", online=True, last_seen=ts, metrics=metrics,
                      metric_ts={"power_w": ts} if watts is not None else {}, **kw)  # type: ignore[arg-type]


def alarm(rule: str, subject: str, raised: datetime, *, is_open: bool = True, acked: bool = False) -> AlarmFact:
    return AlarmFact(1, rule, subject, "f3", "major", raised, is_open, acked)


def test_module_is_pure() -> None:
    tree = ast.parse(Path(prefill.__file__).read_text(encoding="utf-8"))
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m.split(".")[0] in ("sqlalchemy", "fastapi", "httpx", "apscheduler")]


def test_high_power_peak_since_last_check_suggests_fail_with_evidence() -> None:
    peak = Peak("plug-f3-s012", 1840.0, at(14, 2), 120)
    got = prefill.suggest("elec_events", "no_private_appliance", facts(devices=(plug(),), peaks={peak.device: peak}))
    assert got.outcome is Suggested.FAIL
    assert got.evidence == ("plug-f3-s012 max 1,840 W at 14:02 since last check 2026-11-28 18:00",)


def test_quiet_plug_and_no_alarm_suggests_pass() -> None:
    peak = Peak("plug-f3-s012", 310.0, at(10, 30), 120)
    got = prefill.elec_events(facts(devices=(plug(),), peaks={peak.device: peak}))
    assert got.outcome is Suggested.PASS
    assert "plug-f3-s012 max 310 W at 10:30 since last check 2026-11-28 18:00" in got.evidence


def test_elec_alarm_since_last_check_suggests_fail_but_an_older_closed_one_does_not() -> None:
    recent = alarm("elec.high_power_appliance", "plug-f3-s012", at(9, 15), is_open=False)
    old = alarm("elec.plug_overcurrent", "plug-f3-s012", at(9, 15, day=27), is_open=False)
    assert prefill.elec_events(facts(alarms=(recent,), series_available=False)).outcome is Suggested.FAIL
    got = prefill.elec_events(facts(alarms=(old,)))
    assert got.outcome is Suggested.PASS


def test_no_readings_means_unknown_not_pass() -> None:
    got = prefill.elec_events(facts(devices=(plug(),), peaks={}))
    assert got.outcome is Suggested.UNKNOWN
    assert any("no power readings" in line for line in got.evidence)
    assert prefill.elec_events(facts(devices=(plug(),), series_available=False)).outcome is Suggested.UNKNOWN


def test_plug_power_standby_on_and_stale() -> None:
    assert prefill.plug_power(facts(devices=(plug(watts=8),))).outcome is Suggested.PASS
    on = prefill.plug_power(facts(devices=(plug(watts=145),)))
    assert on.outcome is Suggested.FAIL and on.evidence == ("plug-f3-s012 still drawing 145 W at 20:04 "
                                                            "(standby ≤ 20 W)",)
    stale = prefill.plug_power(facts(devices=(plug(watts=8, ts=at(19, 0)),)))  # 65 min > 3 × 60 s
    assert stale.outcome is Suggested.UNKNOWN
    relay_off = DeviceFact("p", "smart_plug", seat="s", metrics={"relay_on": False})
    assert prefill.plug_power(facts(devices=(relay_off,))).outcome is Suggested.PASS
    assert prefill.plug_power(facts()).outcome is Suggested.UNKNOWN


def door(id: str, open_: bool | None, ts: datetime = T1955, door_type: str = "fire_door") -> DeviceFact:
    metrics = {} if open_ is None else {"door_open": open_}
    return DeviceFact(id, "door_controller", door_type=door_type, online=True, last_seen=ts, metrics=metrics,
                      metric_ts={"door_open": ts} if open_ is not None else {})


def test_fire_doors() -> None:
    got = prefill.door_state(facts(devices=(door("door-f3-fire-2", True, at(13, 55)), door("door-f3-fire-1", False))),
                             "fire_doors_shut")
    assert got.outcome is Suggested.FAIL
    assert got.evidence[0] == "door-f3-fire-2 reported open at 13:55"
    shut = prefill.door_state(facts(devices=(door("door-f3-fire-1", False),)), "fire_doors_shut")
    assert shut.outcome is Suggested.PASS and shut.evidence == ("door-f3-fire-1 closed (reported 19:55)",)
    silent = prefill.door_state(facts(devices=(door("door-f3-fire-1", None),)), "fire_doors_shut")
    assert silent.outcome is Suggested.UNKNOWN
    # a machine-room item looks only at machine-room doors
    mr = prefill.door_state(facts(devices=(door("door-f3-fire-2", True), door("door-mr", False,
                                                                               door_type="machine_room"))),
                            "mr_door_closed")
    assert mr.outcome is Suggested.PASS


def test_door_held_open_since_last_check_fails_self_closing() -> None:
    held = alarm("door.held_open", "door-mr", at(11, 0), is_open=False)
    got = prefill.door_state(facts(devices=(door("door-mr", False, door_type="machine_room"),), alarms=(held,)),
                             "door_self_closes")
    assert got.outcome is Suggested.FAIL and "door.held_open on door-mr at 11:00" in got.evidence


def test_open_alerts_reviewed_means_acknowledged() -> None:
    acked = alarm("elec.strip_load_high", "strip-a1", at(13, 10), acked=True)
    fresh = alarm("door.forced_open", "door-b", at(19, 0))
    other = alarm("env.office_temp", "temp-a1", at(19, 0))
    assert prefill.open_alerts(facts(alarms=(other,))).outcome is Suggested.PASS
    assert prefill.open_alerts(facts(alarms=(acked,))).outcome is Suggested.PASS
    got = prefill.open_alerts(facts(alarms=(acked, fresh)))
    assert got.outcome is Suggested.FAIL
    assert got.evidence == ("elec.strip_load_high on strip-a1 since 13:10, acknowledged",
                            "door.forced_open on door-b since 19:00, not acknowledged")


def test_machine_room_probe_sanity() -> None:
    def probe(temp: float, ts: datetime = T2003) -> DeviceFact:
        return DeviceFact("mr-probe1", "mr_probe", metrics={"temperature_c": temp, "humidity_pct": 45.0},
                          metric_ts={"temperature_c": ts, "humidity_pct": ts})

    assert prefill.mr_probe(facts(devices=(probe(23.5),))).outcome is Suggested.PASS
    hot = prefill.mr_probe(facts(devices=(probe(85.0),)))
    assert hot.outcome is Suggested.FAIL and hot.evidence[0].startswith("mr-probe1 temperature_c 85 °C at 20:03")
    assert prefill.mr_probe(facts(devices=(probe(23.5, at(12, 0)),))).outcome is Suggested.FAIL  # silent
    assert prefill.mr_probe(facts()).outcome is Suggested.UNKNOWN


def test_sensor_health() -> None:
    ok = DeviceFact("smoke-a1", "smoke_detector", online=True, last_seen=at(20, 4))
    off = DeviceFact("smoke-a2", "smoke_detector", online=False, last_seen=at(3, 0))
    never = DeviceFact("leak-1", "leak_sensor")
    assert prefill.sensor_health(facts(devices=(ok,))).outcome is Suggested.PASS
    got = prefill.sensor_health(facts(devices=(ok, off, never)))
    assert got.outcome is Suggested.FAIL
    assert got.evidence == ("2 of 3 devices need a look", "leak-1 never reported", "smoke-a2 offline since 03:00")


def test_backup() -> None:
    assert prefill.it_backup(facts()).outcome is Suggested.UNKNOWN  # no folder configured
    assert prefill.it_backup(facts(backup_known=True)).outcome is Suggested.FAIL
    got = prefill.it_backup(facts(backup_known=True, last_backup=at(2, 0)))
    assert got.outcome is Suggested.PASS and got.evidence == ("last backup 2026-11-29 02:00 (18.1 h ago)",)
    assert prefill.it_backup(facts(backup_known=True, last_backup=NOW - timedelta(hours=25))).outcome \
        is Suggested.FAIL


def test_long_evidence_is_capped_and_override_rule() -> None:
    devices = tuple(DeviceFact(f"d{i:02d}", "smoke_detector") for i in range(20))
    got = prefill.sensor_health(facts(devices=devices))
    assert len(got.evidence) == prefill.MAX_EVIDENCE + 1 and got.evidence[-1] == "… and 9 more"
    assert prefill.overridden("fail", "pass") and prefill.overridden("pass", "not_applicable")
    assert not prefill.overridden("unknown", "pass") and not prefill.overridden(None, "fail")
    assert not prefill.overridden("pass", "pass")


# ---- the lead round's "reports collected, unresolved ones forwarded" (kind "forwards") ------------


def issue(reported: datetime, handled: str | None = None, handled_at: datetime | None = None,
          what: tuple[str, ...] = ("cord damaged",), note: str = "") -> prefill.IssueFact:
    return prefill.IssueFact("s-012", "p-wang", reported, reported + timedelta(minutes=30), what, handled,
                             handled_at, note)


def report(done: datetime | None, seat: str = "s-012", operator: str = "p-wang") -> prefill.ReportFact:
    return prefill.ReportFact(seat, operator, at(20, 30), done)


def test_forwards_pass_when_every_issue_is_resolved_or_forwarded() -> None:
    got = prefill.suggest("forwards", "reports_forwarded", facts(
        issues=(issue(at(18, 2), "forwarded", at(18, 20), note="told p-chen by phone"),
                issue(at(19, 0), "resolved", at(19, 40), what=("plug loose", "socket scorched"))),
        reports=(report(at(18, 2)), report(at(19, 0), seat="s-013", operator="p-zhao"))))
    assert got.outcome is Suggested.PASS
    assert got.evidence == (
        "2 of 2 self-checks signed since last check 2026-11-28 18:00, 2 issue(s)",
        "seat s-012 cord damaged (p-wang 18:02): forwarded to supervisor 18:20 – told p-chen by phone",
        "seat s-012 plug loose; socket scorched (p-wang 19:00): resolved 19:40 (10 min late)")
    # reports in and nothing raised: pass too
    clean = prefill.forwards(facts(reports=(report(at(20, 1)),)))
    assert clean.outcome is Suggested.PASS
    assert clean.evidence == ("1 of 1 self-checks signed since last check 2026-11-28 18:00, 0 issue(s)",)


def test_forwards_fail_when_an_issue_is_open_past_its_30_min() -> None:
    late = issue(at(19, 35))  # due 20:05 = NOW: the deadline has passed
    got = prefill.forwards(facts(issues=(issue(at(18, 2), "forwarded", at(18, 20)), late),
                                 reports=(report(at(18, 2)),)))
    assert got.outcome is Suggested.FAIL
    assert got.evidence[1] == "seat s-012 cord damaged (p-wang 19:35): open, 0 min past its 20:05 deadline"
    assert got.evidence[2].endswith("forwarded to supervisor 18:20")
    older = prefill.forwards(facts(issues=(issue(at(9, 0)),)))  # still open from this morning
    assert older.outcome is Suggested.FAIL and "open, 635 min past its 09:30 deadline" in older.evidence[1]


def test_forwards_unknown_when_no_data_or_not_all_in() -> None:
    none = prefill.forwards(facts())
    assert none.outcome is Suggested.UNKNOWN
    assert none.evidence == ("no operator self-check or issue since last check 2026-11-28 18:00",)
    within = prefill.forwards(facts(issues=(issue(at(19, 50)),), reports=(report(at(19, 50)),)))
    assert within.outcome is Suggested.UNKNOWN
    assert within.evidence[1] == "seat s-012 cord damaged (p-wang 19:50): open, due 20:20"
    pending = prefill.forwards(facts(reports=(report(at(20, 1)), report(None, seat="s-013", operator="p-zhao"))))
    assert pending.outcome is Suggested.UNKNOWN
    assert pending.evidence == ("1 of 2 self-checks signed since last check 2026-11-28 18:00, 0 issue(s)",
                                "seat s-013 self-check (p-zhao) not submitted, due 20:30")
    # a handled flag without its time is not taken as handled
    assert prefill.forwards(facts(issues=(issue(at(18, 0), "forwarded", None),))).outcome is Suggested.FAIL


def test_lead_round_item_carries_the_forwards_kind() -> None:
    item = CATALOG["lead_round"].item("reports_forwarded")
    assert item is not None and item.prefill == "forwards" and item.prefill in prefill.KINDS
