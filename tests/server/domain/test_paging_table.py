"""Who gets the first page, rule by rule, against the catalog (RULES.md §2 Action/Notify column and §4).

Every rule of tests/server/domain/test_catalog.py's tables (ROWS, STAGE_ROWS) is raised by the real rule engine
on the example floor; each raised alarm (and the severities and §2.8/§2.9 rules those tables do not raise, built
by hand) is routed on the same floor with every role on duty and a channel of its own. The roles that receive the
first page must be exactly the catalog's, written here as the catalog writes them; each escalation step
is §4's. Rules that are never paged one by one are listed in NOT_PAGED with the reason. docs/response.md's
paging table is generated from the catalog and the routing (server/domain/paging_table.py); it must be current,
and say, row by row, what this file's CATALOG names.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from pathlib import Path

import yaml

from gateway.contract import Severity
from server.domain import notify as routing
from server.domain.catalog.docgen import ROOT, example_paging_table, regenerated
from server.domain.site import Site, parse_site
from tests.catalog import rules_md_text
from tests.server.domain.harness import DAY, EXAMPLE
from tests.server.domain.test_catalog import ROWS, played

C, MJ, MN, W = Severity.CRITICAL, Severity.MAJOR, Severity.MINOR, Severity.WARNING

ROLE = {"领班": "shift_lead", "主管": "supervisor", "安全管理员": "safety_officer", "机房值班": "mr_duty",
        "facilities": "facilities", "设备管理": "facilities", "后勤": "facilities", "后勤保障组": "logistics",
        "应急指挥部": "emergency_command", "现场指挥组": "on_site_command", "安全保障组": "security_evacuation",
        "信息报送组": "information_reporting", "IT": "it", "HR": "hr", "经理": "manager",
        "部门负责人": "department_head", "reception": "reception", "operator": "seat_operator",
        "operators on that strip": "strip_operators", "entrant": "entrant"}
"""The catalog's names (§0.2) -> the site file's role names and routing's recipient keys."""

CATALOG: dict[str, dict[Severity, str]] = {
    # §2.1
    "elec.strip_load_high": {W: "operators on that strip + 领班"},
    "elec.strip_continuous_high": {MJ: "领班 + 主管"},
    "elec.strip_overload": {MJ: "领班 + 主管", C: "领班 + 主管"},
    "elec.plug_overcurrent": {MJ: "领班", C: "设备管理 + 领班 + 主管"},
    "elec.high_power_appliance": {MJ: "operator + 领班"},
    "elec.unmetered_load": {W: "领班", MJ: "领班"},
    "elec.strip_cascade": {MJ: "领班 + 主管"},
    "elec.voltage_out_of_range": {W: "facilities", MJ: "facilities"},
    "elec.relay_mismatch": {MJ: "领班"},
    "elec.continuous_runtime": {W: "operator + 领班"},
    # §2.2
    "fire.smoke_alarm": {C: ""},
    "fire.confirmed": {C: ""},
    "fire.manual_report": {C: ""},
    "fire.heat_prewarn": {MJ: "领班 + 主管"},
    "fire.heat_alarm": {C: ""},
    "fire.detector_fault": {MJ: "领班 + facilities"},
    "fire.detector_disabled": {MJ: "主管"},
    # §2.3
    "door.fire_release_zone": {C: "安全保障组 + 主管"},
    "door.fire_release_floor": {C: "安全保障组 + 主管"},
    "door.egress_controller_offline": {MJ: "主管 + facilities", C: "主管 + facilities"},
    "door.held_open": {W: "领班", MJ: "机房值班 + 主管"},
    "door.fire_door_held_open": {MJ: "领班"},
    "door.forced_open": {MJ: "领班 + 主管", C: "领班 + 主管"},
    "door.tamper": {MJ: "主管 + facilities"},
    # §2.4
    "access.denied_repeat": {MJ: "机房值班"},
    "access.revoked_badge_used": {MJ: "主管 + 安全保障组"},
    "access.leaver_badge_active": {MJ: "部门负责人"},
    "access.visitor_unapproved": {MJ: "领班"},
    "access.visitor_unescorted": {MJ: "领班 + reception"},
    "access.mr_unlisted": {MJ: "机房值班 + 主管"},
    "access.mr_entry_notice": {W: "entrant"},
    # §2.5 (critical mr.temp_high and mr.leak: + 应急指挥部 from §4's critical row)
    "mr.temp_high": {W: "机房值班", MJ: "机房值班 + 主管", C: "机房值班 + 主管 + 应急指挥部 + 现场指挥组 + 后勤保障组"},
    "mr.temp_low": {W: "机房值班"},
    "mr.temp_rate": {MJ: "机房值班 + 主管"},
    "mr.humidity_high": {W: "机房值班", MJ: "机房值班"},
    "mr.humidity_low": {W: "机房值班", MJ: "机房值班"},
    "mr.leak": {C: "机房值班 + 主管 + facilities + 后勤保障组 + 应急指挥部"},
    "mr.smoke": {C: ""},
    # §2.6
    "env.office_temp": {W: "后勤 + 主管"},
    "env.office_rh": {W: "后勤"},
    "env.equipment_hotspot": {MJ: "领班 + facilities"},
    # §2.7
    "sup.smoke_offline": {MJ: "领班 + facilities", C: "领班 + facilities"},
    "sup.smoke_offline_lpwan": {MJ: "领班 + facilities", C: "领班 + facilities"},
    "sup.probe_offline": {MJ: "机房值班"},
    "sup.gateway_offline": {MJ: "facilities + 领班"},
    "sup.notify_channel": {MJ: "IT + 主管"},
    "sensor.temp_jump": {MJ: "领班"},
    "sensor.temp_out_of_range": {MJ: "领班"},
    "sensor.tamper": {MJ: "facilities + 领班"},
    # §2.8
    "it.backup_stale": {MJ: "IT + 主管"},
    "it.backup_offsite_stale": {MJ: "IT"},
    "it.log_retention": {MJ: "IT"},
    "it.leaver_account": {MJ: "IT"},
    # §2.9 (the Notify column)
    "esc.lead_not_forwarded": {MJ: "主管"},
    "insp.fire_patrol_overdue": {MJ: "主管"},
    "insp.supervisor_electrical_overdue": {MJ: "经理"},
    "insp.fire_check_monthly_overdue": {MJ: "经理 + 安全管理员"},
    "insp.extinguisher_monthly_overdue": {MJ: "安全管理员"},
    "insp.facility_annual_test_overdue": {MJ: "经理"},
    "drill.evacuation_overdue": {MJ: "应急指挥部"},
    "drill.comprehensive_overdue": {MJ: "应急指挥部"},
    "train.new_staff": {MJ: "领班 + HR"},
    "report.external_deadline": {C: "信息报送组"},
}
"""The first page per rule and severity as the catalog's Action column names it. A critical alarm also
pages §4's critical row (领班 + 主管 + 安全管理员, + 机房值班 in a machine room) together; for a
major or warning in a machine room, §4 puts 机房值班 where the row names 领班."""

NOT_PAGED = {
    "evac.notice": "the evacuation's own message is its page (one per channel, tests/e2e/test_evacuation_e2e.py)",
    "evac.all_clear": "a control (audit-logged), not an alarm",
    "elec.relay_reenable_guard": "a control (audit-logged), not an alarm",
    "elec.residual_current": "disabled by default and the catalog names nobody: §4's default (领班) if enabled",
    "it.privileged_action": "a control, not an alarm",
}
"""Catalog rows whose action names no page (or names a control): why they are not in CATALOG's sense.
Minor severities are never paged one by one: the supervisor's daily digest (§0.3, §4 minor row)."""

SEV = {"critical": C, "major": MJ, "minor": MN, "warning": W}
MR_RULES = ("mr.", "access.mr_", "sup.probe_offline")
MR_ONLY = {("access.denied_repeat", MJ), ("door.held_open", MJ)}
"""Severities the catalog gives a rule only in a machine room."""


def zone_of(rule: str, severity: Severity) -> str:
    return "mr" if rule.startswith(MR_RULES) or (rule, severity) in MR_ONLY else "ops-a"


def catalog_rows() -> dict[str, set[Severity]]:
    """rule id -> severities, from RULES.md §2 (every table row whose first cell is a rule id)."""
    text = rules_md_text()
    section = text[text.index("## 2. Rules catalog"):text.index("## 3. Fire-alarm")]
    out: dict[str, set[Severity]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or len(cells) < 5 or not re.match(r"[a-z]+\.[a-z_]+", cells[0]):
            continue
        sev_cell = cells[3]  # id | sensor (or duty) | condition | Sev | Action (or Notify) | ...
        for rule in re.findall(r"[a-z]+\.[a-z_]+", cells[0]):
            out[rule] = {SEV[w] for w in re.findall(r"critical|major|minor|warning", sev_cell)}
    return out


def staffed_site(tmp: Path) -> Site:
    """The example floor with every role on duty day and night, each person with a channel of their own."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    extra = ["facilities", "it", "hr", "manager", "reception", "logistics", "information_reporting",
             "security_evacuation", "emergency_command", "on_site_command", "safety_officer", "supervisor",
             "department_head", "mr_duty"]
    for role in extra:
        data["people"].append({"id": f"p-{role}", "name": role, "badge": f"X-{role}", "roles": [role]})
        for shift in ("day", "night"):
            data["roster"].append({"person": f"p-{role}", "shift": shift, "zone": "ops-b"})
    data["roster"] += [{"person": "p-li", "shift": "night", "zone": "ops-a", "lead": True},
                       {"person": "p-zhao", "shift": "day", "zone": "ops-a", "seat": "s-002"}]
    data["people"] = [{**p, "roles": ["supervisor"]} if p["id"] == "p-chen" else p for p in data["people"]]
    data["roles"] = {}
    data["contacts"] = {p["id"]: [f"json://127.0.0.1:9/{p['id']}"] for p in data["people"]}
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    (tmp / "staffed.yaml").write_text(text, encoding="utf-8")
    return parse_site(text, str(tmp / "staffed.yaml"))


def expected(info: routing.AlarmInfo, site: Site) -> set[str]:
    rule, severity, zone = info.rule, info.severity, info.zone
    mr = zone is not None and zone in site.zones and site.is_machine_room(zone)
    named = {ROLE[n.strip()] for n in CATALOG[rule][severity].split("+") if n.strip()}
    device = site.devices.get(info.subject)
    if device is not None and not device.seat:  # a plug without a seat (a printer) has no operator
        named.discard("seat_operator")
    if severity is C:
        return named | {"shift_lead", "supervisor", "safety_officer"} | ({"mr_duty"} if mr else set())
    return {"mr_duty" if k == "shift_lead" and mr else k for k in named}


def reached(info: routing.AlarmInfo, site: Site) -> set[str]:
    """The recipient keys of the first page that reach somebody through a channel."""
    step = routing.plan(info, site)[0]
    return {k for k in step.recipients
            if any(d.url for d in routing.page(info, site, [k], DAY + step.after, "http://fw.test"))}


@functools.cache
def alarms_to_route() -> list[routing.AlarmInfo]:
    """Every rule raised by the real engine (tests/server/domain/test_catalog.py), then by hand the severities
    and rules that table does not raise."""
    out: list[routing.AlarmInfo] = []
    raised: set[tuple[str, Severity]] = set()
    for row, findings in played():
        for f in findings:
            if f.is_raise and f.rule == row.rule and (f.rule, f.severity) not in raised:
                raised.add((f.rule, f.severity))
                out.append(routing.AlarmInfo(len(out) + 1, f.rule, f.severity, f.subject, f.zone, "hq", f.value,
                                             f.message, f.message_zh))
    for rule, by_severity in CATALOG.items():
        for severity in by_severity:
            if (rule, severity) not in raised:
                zone = zone_of(rule, severity)
                subject = next((r.subject for r in ROWS if r.rule == rule), "plug-s002")
                out.append(routing.AlarmInfo(len(out) + 1, rule, severity, subject, zone, "hq", None, "m"))
    return out


def test_every_catalog_rule_with_an_action_has_its_first_page_here() -> None:
    rows = catalog_rows()
    assert len(rows) > 80, "the catalog's §2 tables were not found"
    missing = [(rule, s.value) for rule, sevs in rows.items() for s in sevs
               if s is not MN and rule not in NOT_PAGED and s not in CATALOG.get(rule, {})]
    assert not missing, f"catalog rows with no first page in this table: {missing}"
    stale = [(rule, s.value) for rule, by in CATALOG.items() for s in by if s not in rows.get(rule, set())]
    assert not stale, f"this table names severities the catalog does not: {stale}"


def test_the_first_page_reaches_exactly_the_catalogs_roles(tmp_path: Path) -> None:
    site = staffed_site(tmp_path)
    wrong = []
    routed = alarms_to_route()
    for info in routed:
        if info.severity is MN or info.rule in ("evac.notice",) or info.rule not in CATALOG:
            continue
        want, got = expected(info, site), reached(info, site)
        if want != got:
            wrong.append((info.rule, info.severity.value, info.zone, sorted(want), sorted(got)))
    assert not wrong, "\n".join(map(str, wrong))
    assert len({(i.rule, i.severity) for i in routed}) >= 80


def test_the_people_behind_the_special_recipients(tmp_path: Path) -> None:
    """The operator at the seat, the operators on the strip, the machine-room entrant: persons, by roster."""
    site = staffed_site(tmp_path)

    def people(rule: str, severity: Severity, subject: str, zone: str) -> set[str]:
        info = routing.AlarmInfo(1, rule, severity, subject, zone, "hq", None, "m")
        return {d.recipient for d in routing.page(info, site, routing.plan(info, site)[0].recipients, DAY, "x")}

    # day shift: s-001 (p-wang) and s-002 (p-zhao) are rostered; the printer on the strip has no seat
    assert people("elec.strip_load_high", W, "strip-a1", "ops-a") == {"person:p-wang", "person:p-zhao",
                                                                      "person:p-li"}
    assert people("elec.strip_load_high", W, "strip-b1", "ops-b") == {"person:p-chen"}, "s-003: p-chen leads"
    assert people("elec.high_power_appliance", MJ, "plug-s001", "ops-a") == {"person:p-wang", "person:p-li"}
    assert people("elec.continuous_runtime", W, "plug-prn1", "ops-a") == {"person:p-li"}
    assert people("access.mr_entry_notice", W, "p-sun", "mr") == {"person:p-sun"}


def test_each_escalation_step_is_section_4s(tmp_path: Path) -> None:
    site = staffed_site(tmp_path)
    for info in alarms_to_route():
        steps = routing.plan(info, site)
        shape = [(s.after, s.recipients if s.after else (), s.when, s.fallback, s.promote) for s in steps]
        if info.rule == "evac.notice":
            assert steps == []
        elif info.severity is C:
            assert shape == [(timedelta(0), (), routing.When.RAISED, False, None),
                             (timedelta(seconds=60), ("emergency_command", "on_site_command"), routing.When.UNACKED,
                              True, None)], info.rule
        elif info.severity is MJ:
            want = [(timedelta(0), (), routing.When.RAISED, False, None),
                    (timedelta(minutes=5), ("supervisor",), routing.When.UNACKED, False, None),
                    (timedelta(minutes=30), ("supervisor",), routing.When.UNRESOLVED, False, None)]
            if info.rule in routing.DEGRADED_RULES:  # §4: 4 h -> 现场指挥组 if life safety is degraded
                want.append((timedelta(hours=4), ("on_site_command",), routing.When.UNRESOLVED_DEGRADED, False, None))
            assert shape == want, info.rule
            assert all("supervisor" in s.skip_if_paged for s in steps[1:3]), "the supervisor is paged once"
        elif info.severity is W:
            delay = timedelta(seconds=90) if info.rule == "door.held_open" else timedelta(0)
            assert [s.after for s in steps] == [delay, timedelta(hours=24)], info.rule
            assert steps[1].promote is MN
        else:
            assert shape == [(timedelta(days=7), ("supervisor",), routing.When.ACKED_UNRESOLVED, False, None)]
    assert {C: timedelta(seconds=60), MJ: timedelta(minutes=15), MN: None, W: None} == routing.REPEAT


RESPONSE = "docs/response.md"


def test_docs_paging_table_is_current() -> None:
    """docs/response.md's table is what server/domain/paging_table.py writes from the catalog and the routing."""
    text = (ROOT / RESPONSE).read_text(encoding="utf-8")
    assert text == regenerated(RESPONSE, text), (
        "docs/response.md's paging table is stale: python -m server.domain.catalog.docgen --write"
    )


BEYOND_THIS_TABLE = {
    "sup.message_loss": "the server's own supervision: no RULES.md row (docs/response.md says who it pages)",
    "sup.series_dropped": "the server's own supervision: no RULES.md row (docs/response.md says who it pages)",
    "elec.residual_current": NOT_PAGED["elec.residual_current"],
}
"""Rules the generated table pages that CATALOG above leaves out, and why."""


def test_the_paging_table_says_what_the_catalog_names(tmp_path: Path) -> None:
    """The generated table, row by row, against this file's CATALOG (the spec's words), not against the routing
    it was written from: a row for every first page named here, its roles the ones named here (with §4's)."""
    site = staffed_site(tmp_path)
    rows: dict[tuple[str, str], set[str]] = {}
    for line in example_paging_table().splitlines()[2:]:
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        rows[(cells[0], cells[1])] = {k.strip() for k in cells[2].split(",")}
    named = {(rule, severity.value) for rule, by in CATALOG.items() for severity in by}
    assert named <= set(rows), f"no row for {sorted(named - set(rows))}"
    assert {rule for rule, _ in set(rows) - named} == set(BEYOND_THIS_TABLE)
    wrong = []
    for rule, by in CATALOG.items():
        for severity in by:
            info = routing.AlarmInfo(1, rule, severity, "x", zone_of(rule, severity), "hq", None, "m")
            if rows[(rule, severity.value)] != expected(info, site):
                wrong.append((rule, severity.value, sorted(rows[(rule, severity.value)]), sorted(expected(info, site))))
    assert not wrong, "\n".join(map(str, wrong))
