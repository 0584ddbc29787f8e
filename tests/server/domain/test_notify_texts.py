"""Words of alarms and pushes: the zone field is never blank, duty alarms name their duty in both
languages at the site's local time, and a page about an overload says which plug was switched off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.contract import Severity
from server.domain import notify
from server.domain.inspections import OverdueFinding
from server.domain.power import safety_cut_note
from tests.server.domain.harness import Floor


def test_a_leavers_alarm_has_the_zone_the_person_is_rostered_in() -> None:
    f = Floor()
    f.call(f.engine.on_hr_feed({"p-zhao": f.now - timedelta(hours=2)}, {"B1002"}, f.now))
    [raised] = f.raised("access.leaver_badge_active", "p-zhao")
    assert raised.zone == "ops-a"  # site-small.yaml: p-zhao's roster entry


def test_a_push_about_an_alarm_of_no_zone_says_none() -> None:
    f = Floor()
    alarm = notify.AlarmInfo(7, "sup.gateway_offline", Severity.MAJOR, "edge-1", None, "hq", None,
                             "Edge edge-1 offline", "边缘网关 edge-1 离线")
    text = notify.render([notify.item(alarm, f.site)], "http://floor.example")
    zh, en = text.body.splitlines()
    assert "|区域 无|" in zh and "| zone none |" in en
    with_zone = notify.item(notify.AlarmInfo(8, "elec.strip_overload", Severity.CRITICAL, "strip-a1", "ops-a", "hq",
                                             12.5, "Strip overloaded", "插线板过载"), f.site)
    zh, en = notify.render([with_zone], "http://floor.example").body.splitlines()
    assert "|区域 无|" not in zh and "| zone ops-a |" in en and zh.startswith("插线板过载|")


def test_an_overdue_duty_names_the_duty_in_both_languages_at_local_time() -> None:
    since = datetime(2026, 11, 30, 10, 30, tzinfo=UTC)
    finding = OverdueFinding("insp.end_of_shift_missing", Severity.MINOR, "f3-s001", "f3-z1", since, 12)
    en, zh = finding.messages(ZoneInfo("Asia/Shanghai"))
    assert en == "End-of-shift self-check of own seat (f3-s001): overdue since 2026-11-30 18:30 CST"
    assert zh == "下班设备自检 (f3-s001)：自 2026-11-30 18:30 CST 起逾期未完成"
    monthly = OverdueFinding("insp.fire_check_monthly_overdue", Severity.MAJOR, "fire_check_monthly", None, since,
                             None)
    en, zh = monthly.messages(ZoneInfo("Asia/Shanghai"))
    assert "(fire_check_monthly)" not in en and en.endswith("overdue since 2026-11-30 18:30 CST")
    assert "+00:00" not in en + zh
    training = OverdueFinding("train.new_staff", Severity.MAJOR, "p-1", None, since, None)
    assert training.messages(UTC)[1] == "新员工上岗前消防培训 (p-1)：自 2026-11-30 10:30 UTC 起逾期未完成"


def test_the_overload_cut_line_names_the_plug() -> None:
    zh, en = safety_cut_note(["plug-strip-f3-03-spare"])
    assert en == "cut: the server switched plug plug-strip-f3-03-spare OFF"
    assert zh == "已断电：服务器已向插座 plug-strip-f3-03-spare 下发断电指令"


def test_a_push_says_the_value_with_its_unit_in_both_languages() -> None:
    f = Floor()
    overload = notify.AlarmInfo(9, "elec.strip_overload", Severity.MAJOR, "strip-a1", "ops-a", "hq", 12.56,
                                "Strip overloaded", "插线板过载")
    zh, en = notify.render([notify.item(overload, f.site)], "http://floor.example").body.splitlines()
    assert "|数值 12.56 A|" in zh and "| value 12.56 A |" in en
    count = notify.AlarmInfo(10, "access.denied_repeat", Severity.MINOR, "door-a", "ops-a", "hq", 5.0,
                             "5 access denials within 5 min", "5 分钟内门禁拒绝 5 次")
    zh, en = notify.render([notify.item(count, f.site)], "http://floor.example").body.splitlines()
    assert "|数值 5|" in zh and "| value 5 |" in en


def test_a_push_says_when_its_alarm_was_raised_at_the_sites_local_time() -> None:
    """An escalation reaches the next level minutes after the raise: the push must say when it happened,
    in the site's time (site-small.yaml: Asia/Shanghai), as the live page does."""
    f = Floor()
    raised = datetime(2026, 11, 30, 12, 51, 48, 400000, tzinfo=UTC)
    alarm = notify.AlarmInfo(9, "fire.smoke_alarm", Severity.CRITICAL, "smoke-a1", "ops-a", "hq", 1.0,
                             "Smoke alarm in ops-a, being checked", "ops-a 区域火灾报警,核实中", raised_at=raised)
    zh, en = notify.render([notify.item(alarm, f.site)], "http://floor.example").body.splitlines()
    assert "|时间 20:51:48|" in zh and "| at 20:51:48 |" in en
    # an alarm without a raise time (an evacuation's page) has no time field rather than a blank one
    bare = notify.AlarmInfo(10, "sup.gateway_offline", Severity.MAJOR, "edge-1", None, "hq", None, "Edge offline")
    zh, en = notify.render([notify.item(bare, f.site)], "http://floor.example").body.splitlines()
    assert "时间" not in zh and "| at " not in en
