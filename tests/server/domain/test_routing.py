"""The pure routing module: roster resolution, plans per severity, silences, drill words."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.contract import Severity
from server.domain import notify as routing
from server.domain.site import Site, SiteError
from tests.server.services.conftest import T0, make_site, site_yaml


def info(rule: str, severity: Severity, subject: str = "smoke-z1-01", zone: str | None = "z1",
         drill: bool = False) -> routing.AlarmInfo:
    return routing.AlarmInfo(7, rule, severity, subject, zone, "r1", 1.0, "msg", "中文", drill)


def test_plans_follow_the_escalation_table(tmp_path: Path) -> None:
    site = make_site(site_yaml(1, 2), tmp_path)
    crit = routing.plan(info("fire.smoke_alarm", Severity.CRITICAL), site)
    assert crit[0].recipients == ("shift_lead", "supervisor", "safety_officer", "zone_channel")
    assert crit[1].after == timedelta(seconds=60)
    assert crit[1].fallback and crit[1].when == routing.When.UNACKED
    mr = routing.plan(info("mr.smoke", Severity.CRITICAL, zone="mr"), site)
    assert "mr_duty" in mr[0].recipients
    leak = routing.plan(info("mr.leak", Severity.CRITICAL, zone="mr"), site)
    # RULES.md §2.5 mr.leak: 机房值班 + 主管 + facilities + 后勤保障组; §4: 应急指挥部 on mr.leak (not the
    # other groups, and no 119 task: a leak is not a fire)
    assert {"emergency_command", "logistics", "facilities"} <= set(leak[0].recipients)
    assert not {"on_site_command", "security_evacuation", "information_reporting"} & set(leak[0].recipients)
    # rules that start an evacuation leave command and its groups to the evacuation's one message
    for rule in ("fire.confirmed", "fire.manual_report", "mr.smoke"):
        first = routing.plan(info(rule, Severity.CRITICAL), site)[0].recipients
        assert not set(routing.GROUPS) & set(first), rule
    assert routing.plan(info("evac.notice", Severity.CRITICAL), site) == []
    major = routing.plan(info("sup.smoke_offline", Severity.MAJOR), site)
    assert [s.after for s in major] == [timedelta(0), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=4)]
    # a warning pages its owner at once (a rule the catalog gives no owner: the lead), minor after 24 h
    owner, persists = routing.plan(info("env.x", Severity.WARNING), site)
    assert (owner.after, owner.recipients) == (timedelta(0), ("shift_lead",))
    assert (persists.after, persists.recipients, persists.promote) == (timedelta(hours=24), (), Severity.MINOR)
    [minor] = routing.plan(info("env.x", Severity.MINOR), site)  # unacknowledged: the daily digest instead
    assert (minor.after, minor.recipients, minor.when) == (timedelta(days=7), ("supervisor",),
                                                          routing.When.ACKED_UNRESOLVED)
    assert routing.REPEAT[Severity.CRITICAL] == timedelta(seconds=60)
    assert routing.REPEAT[Severity.MAJOR] == timedelta(minutes=15)


def test_lead_on_duty_comes_from_the_roster_and_groups_fall_back(tmp_path: Path) -> None:
    site = make_site(site_yaml(1, 2), tmp_path)
    assert routing.resolve("shift_lead", info("x", Severity.MAJOR, zone="z1"), site, T0) == ["person:p-lead"]
    assert routing.resolve("shift_lead", info("x", Severity.MAJOR, zone="z2"), site, T0) == ["shift_lead"]
    assert routing.resolve("security_evacuation", info("x", Severity.MAJOR), site, T0) == ["safety_officer"]
    assert routing.channels("person:p-lead", site)[0].startswith("mailto://")
    # nobody with the supervisor role is rostered: the role; once one is on duty on the floor: that person
    assert routing.resolve("supervisor", info("x", Severity.MAJOR, zone="z2"), site, T0) == ["supervisor"]
    rostered = make_site(site_yaml(1, 2) + "  - {person: p-sup, shift: all, zone: z2}\n", tmp_path)
    assert routing.resolve("supervisor", info("x", Severity.MAJOR, zone="z1"), rostered, T0) == ["person:p-sup"]


def test_silences_end_and_never_touch_life_safety(tmp_path: Path) -> None:
    s = routing.Silence(T0 + timedelta(hours=1), rule="elec.strip_*", by="sup", reason="maintenance")
    overload = info("elec.strip_overload", Severity.MAJOR, subject="strip-z1-00")
    assert routing.silenced(overload, [s], T0) is s
    assert routing.silenced(overload, [s], T0 + timedelta(hours=1)) is None
    anything = routing.Silence(T0 + timedelta(hours=1))
    assert routing.silenced(info("fire.detector_fault", Severity.MAJOR), [anything], T0) is None
    assert routing.silenced(info("elec.plug_overcurrent", Severity.CRITICAL), [anything], T0) is None


def test_a_security_alarm_is_muted_only_by_a_silence_that_names_its_rule_or_its_subject() -> None:
    """"Mute everything for the night" must not hide a door forced open or a leaver's badge at the door."""
    night = T0 + timedelta(hours=8)
    forced = info("door.forced_open", Severity.MAJOR, subject="door-z1-side")
    revoked = info("access.revoked_badge_used", Severity.MAJOR, subject="p-leaver")
    for alarm in (forced, revoked):
        for broad in (routing.Silence(night), routing.Silence(night, zone="z1"), routing.Silence(night, rule="*"),
                      routing.Silence(night, rule=alarm.rule.split(".")[0] + ".*")):
            assert routing.silenced(alarm, [broad], T0) is None, (alarm.rule, broad)
        by_rule = routing.Silence(night, rule=alarm.rule, reason="door works")
        assert routing.silenced(alarm, [by_rule], T0) is by_rule
        by_subject = routing.Silence(night, subject=alarm.subject, zone="z1", reason="door works")
        assert routing.silenced(alarm, [by_subject], T0) is by_subject
        assert routing.silenced(alarm, [routing.Silence(night, rule=alarm.rule, zone="z2")], T0) is None
    # the catalog's security rules; an alarm that is not one still obeys a broad silence
    documented = {  # the list docs/alarms.md gives
        "door.forced_open", "door.tamper", "access.revoked_badge_used", "access.mr_unlisted", "access.denied_repeat",
        "access.visitor_unapproved", "access.visitor_unescorted", "access.leaver_badge_active"}
    assert documented == routing.SECURITY_RULES
    overload = info("elec.strip_overload", Severity.MAJOR, subject="strip-z1-00")
    assert routing.silenced(overload, [routing.Silence(night)], T0) is not None


def test_drill_words_and_secret_free_channel_ids(tmp_path: Path) -> None:
    site = make_site(site_yaml(1, 2), tmp_path)
    text = routing.render([routing.item(info("evac.notice", Severity.CRITICAL, drill=True), site)], "http://x",
                          drill=True)
    assert text.title.startswith("【演练】") and text.body.startswith("【演练】中文")
    assert "http://x/#alarm=7" in text.body
    assert "119" not in " ".join(routing.group_tasks("evac.notice", drill=True)["information_reporting"])
    assert "119" in routing.group_tasks("evac.notice", drill=False)["information_reporting"][0]
    h = routing.url_hash("ntfy://user:secret@ntfy.example/topic")
    assert h.startswith("ntfy:") and "secret" not in h


def test_a_high_power_appliance_pages_the_operator_at_the_seat_with_the_lead(tmp_path: Path) -> None:
    """RULES.md §2.1 elec.high_power_appliance: "Push operator + 领班"; only the one rostered at that seat."""
    site = make_site(site_yaml(1, 2), tmp_path)
    kettle = info("elec.high_power_appliance", Severity.MAJOR, subject="plug-z1-kettle")
    first = routing.plan(kettle, site)[0]
    assert first.recipients == ("shift_lead", "seat_operator", "zone_channel")
    assert {d.recipient for d in routing.page(kettle, site, first.recipients, T0, "http://fw.test")} == {
        "person:p-lead", "person:p-op1"}
    # a plug with no seat: the lead only, never every operator
    heater = info("elec.high_power_appliance", Severity.MAJOR, subject="plug-z2-heater", zone="z2")
    got = {d.recipient for d in routing.page(heater, site, first.recipients, T0, "http://fw.test")}
    assert got and not {r for r in got if r.startswith("person:p-op") or r == "seat_operator"}
    # other major alarms: the roles their catalog row names (sup.smoke_offline: 领班 + facilities)
    assert routing.plan(info("sup.smoke_offline", Severity.MAJOR), site)[0].recipients == (
        "shift_lead", "facilities", "zone_channel")


def _scoped_site(tmp_path: Path, extra: str = "", supervisor: str | None = None) -> Site:
    text = site_yaml(1, 2).replace("contacts:\n", "contacts:\n" + extra, 1)
    if supervisor is not None:
        text = text.replace("  supervisor: ['json://127.0.0.1:2/supervisor']\n", f"  supervisor: {supervisor}\n", 1)
    return make_site(text, tmp_path)


def test_channels_scoped_by_zone_and_severity_and_a_zones_group_bot(tmp_path: Path) -> None:
    """Issue 5: channels configured per role, zone and severity in the site file."""
    site = _scoped_site(tmp_path, "  zone:z1: ['json://127.0.0.1:2/z1-bot']\n",
                        supervisor="[{url: 'json://127.0.0.1:2/sup-critical', min_severity: critical}, "
                                   "{url: 'json://127.0.0.1:2/sup-z2', zones: [z2]}]")

    def first_page(rule: str, severity: Severity, zone: str, subject: str) -> set[str]:
        alarm = info(rule, severity, subject=subject, zone=zone)
        first = routing.plan(alarm, site)[0]
        return {d.url.rsplit("/", 1)[-1] for d in routing.page(alarm, site, first.recipients, T0, "http://fw.test")}

    crit_z1 = first_page("fire.smoke_alarm", Severity.CRITICAL, "z1", "smoke-z1-01")
    assert {"z1-bot", "sup-critical"} <= crit_z1 and "sup-z2" not in crit_z1
    assert "z1-bot" in first_page("fire.detector_fault", Severity.MAJOR, "z1", "smoke-z1-01")
    assert "z1-bot" not in first_page("fire.detector_fault", Severity.MAJOR, "z2", "smoke-z2-01")
    assert routing.channels("supervisor", site, "z1", Severity.MAJOR) == []
    assert routing.channels("supervisor", site, "z2", Severity.MAJOR) == ["json://127.0.0.1:2/sup-z2"]
    assert routing.channels("supervisor", site, "z2", Severity.CRITICAL) == [
        "json://127.0.0.1:2/sup-critical", "json://127.0.0.1:2/sup-z2"]
    assert len(routing.channels("supervisor", site)) == 2, "unscoped lookups (evacuation messages) take all"


def test_scoped_contacts_must_name_known_zones(tmp_path: Path) -> None:
    with pytest.raises(SiteError) as unknown_key:
        _scoped_site(tmp_path, "  zone:z9: ['json://127.0.0.1:2/x']\n")
    assert "unknown zone 'z9'" in str(unknown_key.value)
    with pytest.raises(SiteError) as unknown_scope:
        _scoped_site(tmp_path, "  supervisor2: [{url: 'json://127.0.0.1:2/x', zones: [z7]}]\n")
    assert "contacts" in str(unknown_scope.value) and "unknown zone 'z7'" in str(unknown_scope.value)
