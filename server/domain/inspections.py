"""Inspection schedule, tasks, completion and overdue rules (RULES.md §6, §2.9, §4). PURE.

No I/O and no clock: every function takes the time it needs. The service (`server.services.
inspections`) stores what this module decides; the scheduler only calls the service.

Vocabulary:

* a **schedule** (`Schedule`) is one line of RULES.md §6 as data: who, how often (`Cadence`), checklist.
* a **run** is one instant at which a schedule falls due (`due_runs`, `shift_runs`).
* a **task** (`TaskSpec`) is a run for one subject (a seat, a zone or the whole site) with an assignee
  resolved from the role and the roster, and a deadline. Its `key` is unique per (schedule, subject,
  run), so creating the same task twice is harmless.
* **catch-up** (`catch_up`): runs missed while the server was down are created once (only the latest,
  if still within the grace period); the older ones are reported as missed, never replayed one by one.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Protocol

from gateway.contract import Severity
from server.domain import roster
from server.domain.catalog import inspection_triggers
from server.domain.roster import Duty, EntryLike, ShiftLike, days_between

# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class InspectionError(ValueError):
    """A request the domain refuses. `code` is stable (for the API), the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------------------------------
# Catalog (RULES.md §6)
# --------------------------------------------------------------------------------------------------


class CadenceKind(StrEnum):
    SHIFT_END = "shift_end"
    """At the end of every rostered shift (per roster entry)."""
    SHIFT_BOUNDARY = "shift_boundary"
    """At the start and at the end of every rostered shift of a shift lead."""
    INTERVAL = "interval"
    """Every `every`, counted from local midnight of 2000-01-01 (e.g. every 2 h)."""
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    """Every `months` months on `day` at `at`, in months whose index (Jan = 0) is a multiple of
    `months` (quarterly: Jan/Apr/Jul/Oct), and in years that are a multiple of `years`."""
    RANDOM_WEEKLY = "random_weekly"
    """Once per ISO week on a drawn working day (Mon–Fri) and time (09:00–17:00, quarter hours): the
    unannounced spot check. The draw is SHA-256 of (seed, schedule, ISO year and week), so it is the
    same after a restart and different every week; see `spot_run`."""


@dataclass(frozen=True, slots=True)
class Cadence:
    kind: CadenceKind
    at: time = time(0, 0)
    """Local time of day (site time zone) for DAILY, WEEKLY and MONTHLY."""
    weekday: int = 0
    """0 = Monday, for WEEKLY."""
    day: int = 1
    """Day of the month for MONTHLY (clamped to the month's length)."""
    months: int = 1
    years: int = 1
    every: timedelta | None = None
    """For INTERVAL."""

    @property
    def calendar_based(self) -> bool:
        return self.kind not in (CadenceKind.SHIFT_END, CadenceKind.SHIFT_BOUNDARY)


class Scope(StrEnum):
    SEAT = "seat"
    """One task per rostered person at a seat (end-of-shift self-check)."""
    LEAD_ZONE = "lead_zone"
    """One task per shift lead's roster entry (zone)."""
    MACHINE_ROOM = "machine_room"
    """One task per machine-room zone."""
    SITE = "site"
    """One task for the whole site."""
    DEVICE = "device"
    """Sensor-triggered: one task for a device (or zone)."""


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    id: str
    text: str
    text_zh: str = ""
    prefill: str | None = None
    """Sensor source that pre-fills this item (e.g. "plug_power", "elec_events"), or None."""
    on_the_spot: bool = False
    """当场改正: a hazard corrected on the spot; a failed result needs a note (or photo) (RULES §4)."""


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    what: str
    what_zh: str
    role: str
    """Site role name (as in the site file) of the person who does it."""
    cadence: Cadence
    scope: Scope
    window: timedelta
    """Deadline: a task is due `window` after its run."""
    items: tuple[ChecklistItem, ...]
    overdue_rule: str | None = None
    source: str = ""
    completer_roles: tuple[str, ...] = ()
    """Roles (besides the assignee) who may complete a task of this schedule."""
    one_of: tuple[str, ...] = ()
    """Items of which at least one must pass (e.g. an issue resolved *or* forwarded)."""

    def item(self, item_id: str) -> ChecklistItem | None:
        return next((i for i in self.items if i.id == item_id), None)


def _i(id: str, text: str, zh: str = "", prefill: str | None = None, spot: bool = False) -> ChecklistItem:
    return ChecklistItem(id, text, zh, prefill, spot)


H = timedelta(hours=1)
D = timedelta(days=1)

SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "eos_self_check", "End-of-shift self-check of own seat", "下班设备自检", "operator",
        Cadence(CadenceKind.SHIFT_END), Scope.SEAT, timedelta(minutes=30),
        (
            _i("devices_off", "PC, monitor and phone off or in standby", "设备关闭或待机", prefill="plug_power"),
            _i("cords_intact", "Power cords intact", "电源线完好无破损"),
            _i("plugs_sockets_ok", "Plugs and sockets not loose, hot or scorched", "插头插座无松动、发热、烧焦"),
            _i("no_private_appliance", "No private strip or high-power appliance", "无私接插排或大功率电器",
               prefill="elec_events", spot=True),
            _i("no_smoking_flame", "No cigarette ends or open flame", "无烟头、明火", spot=True),
            _i("seat_tidy", "Seat tidy and passage clear", "座位整洁、通道畅通", spot=True),
        ),
        "insp.end_of_shift_missing", "S17, S01, S02, S07, S08", ("shift_lead", "supervisor"),
    ),
    Schedule(
        "lead_round", "Shift-lead round (start and end of shift)", "领班巡查", "shift_lead",
        Cadence(CadenceKind.SHIFT_BOUNDARY), Scope.LEAD_ZONE, H,
        (
            _i("reports_forwarded", "Operator reports collected, unresolved ones forwarded to supervisor",
               "收集自检报告并上报主管", prefill="forwards"),
            _i("exits_clear", "Exits and passages clear", "出口通道畅通", spot=True),
            _i("fire_doors_shut", "Fire doors shut", "防火门关闭", prefill="door_state", spot=True),
            _i("extinguishers_ok", "Extinguishers present and unobstructed", "灭火器在位无遮挡", spot=True),
            _i("detectors_uncovered", "Detectors not covered", "探测器无遮盖", spot=True),
            _i("mr_door_closed", "Machine-room door closed", "机房门关闭", prefill="door_state", spot=True),
            _i("alerts_reviewed", "Open elec.* and door.* alerts reviewed", "复核电气及门禁告警",
               prefill="open_alerts"),
        ),
        None, "S17; 61号令 Art.25", ("supervisor",),
    ),
    Schedule(
        "fire_patrol", "Daily fire patrol", "防火巡查", "safety_officer",
        Cadence(CadenceKind.DAILY), Scope.SITE, D,
        (
            _i("fire_electric_misuse", "No fire or electricity misuse", "用火用电无违章", prefill="elec_events",
               spot=True),
            _i("exits_clear", "Exits and escape routes clear", "安全出口、疏散通道畅通", spot=True),
            _i("signs_lighting", "Exit signs and emergency lights working", "疏散指示标志、应急照明完好"),
            _i("fire_equipment", "Fire equipment and signs in place and complete", "消防设施器材在位完整",
               spot=True),
            _i("fire_doors_shut", "Normally closed fire doors shut, nothing under shutters",
               "常闭式防火门关闭、卷帘下无堆放", prefill="door_state", spot=True),
            _i("key_staff_present", "Staff present at key locations", "重点部位人员在岗"),
        ),
        "insp.fire_patrol_overdue", "61号令 Art.25", ("shift_lead", "supervisor"),
    ),
    Schedule(
        "supervisor_electrical", "Supervisor electrical check", "电源、电线、插座、插头检查", "supervisor",
        Cadence(CadenceKind.WEEKLY, at=time(9, 0)), Scope.SITE, 7 * D,
        (
            _i("sampled_seats", "≥10 % of seats plus every seat/strip with an elec.* alert", "抽查≥10%座位",
               prefill="elec_events"),
            _i("rating_labels", "Strip rating label present and matching the register", "插排额定标签一致"),
            _i("no_daisy_chain", "No daisy-chained strips", "无串接插排", spot=True),
            _i("cord_section", "Cord cross-section suits the rating", "线径匹配额定电流"),
            _i("plugs_undamaged", "No damaged plugs", "插头无损坏", spot=True),
            _i("hazards_removed", "Hazards removed on the spot", "隐患当场排除", spot=True),
        ),
        "insp.supervisor_electrical_overdue", "S15", (),
    ),
    Schedule(
        "fire_check_monthly", "Monthly fire inspection", "防火检查", "safety_officer",
        Cadence(CadenceKind.MONTHLY), Scope.SITE, 31 * D,
        tuple(_i(f"art26_{n}", t, z, spot=s) for n, (t, z, s) in enumerate((
            ("Hazard rectification and preventive measures", "火灾隐患整改及防范措施", False),
            ("Escape routes, exit signs, emergency lighting, exits", "疏散通道、标志、应急照明、安全出口", True),
            ("Fire-engine access and water sources", "消防车通道、消防水源", False),
            ("Extinguisher provision and validity", "灭火器材配置及有效情况", False),
            ("Fire or electricity misuse", "用火用电有无违章", True),
            ("Staff fire knowledge", "员工消防知识掌握情况", False),
            ("Management of key areas", "重点部位管理", False),
            ("Flammables", "易燃易爆危险物品", True),
        ), start=1)),
        "insp.fire_check_monthly_overdue", "61号令 Art.26", ("supervisor",),
    ),
    Schedule(
        "extinguisher_monthly", "Extinguisher check", "灭火器检查", "safety_officer",
        Cadence(CadenceKind.MONTHLY), Scope.SITE, 31 * D,
        (
            _i("at_location", "At its location", "在位"),
            _i("gauge_ok", "Gauge in range", "压力表在正常范围"),
            _i("seal_pin", "Seal and pin intact", "铅封、保险销完好"),
            _i("no_damage", "No damage or corrosion", "无损伤锈蚀"),
            _i("unobstructed", "Unobstructed", "无遮挡", spot=True),
            _i("service_life", "Within service life", "在有效期内"),
            _i("substitutes", "≤ 1/4 away for maintenance, with equal substitutes", "送修不超过1/4并有替代"),
        ),
        "insp.extinguisher_monthly_overdue", "GB 50444-2008 5.2", (),
    ),
    Schedule(
        "mr_walkthrough", "Machine-room walk-through", "机房巡检", "mr_duty",
        Cadence(CadenceKind.DAILY, at=time(9, 0)), Scope.MACHINE_ROOM, D,
        (
            _i("no_food_flammables", "No food, drinks or flammables", "无食物饮料易燃物", spot=True),
            _i("leak_cable", "Leak cable intact", "漏水检测线完好"),
            _i("probe_sane", "Probe readings sane", "探头读数合理", prefill="mr_probe"),
            _i("door_self_closes", "Door self-closes", "门自动关闭", prefill="door_state"),
            _i("access_log", "Access log reviewed against the approved list", "核对出入记录"),
            _i("suppression_normal", "Suppression panel normal", "灭火控制盘正常"),
        ),
        None, "S09, S10; 等保", ("supervisor",),
    ),
    Schedule(
        "sensor_tests_monthly", "Sensor and linkage tests (monthly)", "传感器联动测试(月)", "facility_manager",
        Cadence(CadenceKind.MONTHLY, at=time(10, 0)), Scope.SITE, 31 * D,
        (
            _i("relay_toggle", "Relay toggle test on non-essential plugs", "非必要插座继电器测试"),
            _i("leak_test", "Leak-sensor test", "漏水传感器测试"),
            _i("offline_review", "Offline or stuck sensors reviewed", "离线/卡滞传感器复核", prefill="sensor_health"),
        ),
        None, "GB 50166 4.1.3", ("safety_officer",),
    ),
    Schedule(
        "egress_release_quarterly", "Egress fire-release and detector heartbeat test", "疏散门联动释放测试",
        "facility_manager", Cadence(CadenceKind.MONTHLY, at=time(10, 0), months=3), Scope.SITE, 31 * D,
        (
            _i("release_all", "Simulated alarm unlocks all egress doors (command ≤ 3 s, read-back ≤ 10 s)",
               "模拟报警疏散门全部释放"),
            _i("heartbeat_test", "Detector heartbeat/offline test", "探测器心跳/离线测试"),
        ),
        None, "GB 50396", ("safety_officer",),
    ),
    Schedule(
        "access_review_monthly", "Leaver-vs-badge reconciliation", "离职人员与门禁卡核对", "supervisor",
        Cadence(CadenceKind.MONTHLY, at=time(10, 0)), Scope.SITE, 31 * D,
        (
            _i("leaver_badges", "Leaver badges revoked and returned", "离职人员工作牌已注销并交回"),
            _i("visitor_records", "Visitor records complete with approval and escort", "访客记录完整"),
            _i("mr_list", "Machine-room list current", "机房授权名单最新"),
        ),
        None, "S13, S27; 等保", (),
    ),
    Schedule(
        "evacuation_drill", "Fire and evacuation drill", "消防疏散演练", "emergency_command",
        Cadence(CadenceKind.MONTHLY, at=time(10, 0), months=6), Scope.SITE, 183 * D,
        (
            _i("evacuation_time", "Evacuation time recorded", "记录疏散时间"),
            _i("egress_released", "Egress release worked", "疏散门释放正常"),
            _i("headcount", "Headcount reconciled", "人数核对"),
            _i("prompt_119", "119 prompt path worked", "119提示正常"),
            _i("lessons", "Lessons recorded", "总结记录"),
        ),
        "drill.evacuation_overdue", "61号令 Art.40; 应急预案管理办法 Art.33", (),
    ),
    Schedule(
        "comprehensive_drill", "Comprehensive or special emergency-plan drill", "综合/专项应急演练",
        "emergency_command", Cadence(CadenceKind.MONTHLY, at=time(10, 0), months=12), Scope.SITE, 365 * D,
        (_i("drill_done", "Drill done and evaluated", "演练完成并评估"), _i("lessons", "Lessons recorded", "总结记录")),
        "drill.comprehensive_overdue", "应急预案管理办法 Art.33", (),
    ),
    Schedule(
        "annual_fire_system_test", "Certified full test of building fire systems", "建筑消防设施年度检测",
        "manager", Cadence(CadenceKind.MONTHLY, at=time(10, 0), months=12), Scope.SITE, 365 * D,
        (
            _i("certified_test", "Certified full test done, records archived", "年度检测完成并存档"),
            _i("plan_review", "Emergency plan and rules catalog reviewed", "应急预案及规则复核"),
        ),
        "insp.facility_annual_test_overdue", "消防法 Art.16(3)", ("safety_officer",),
    ),
    Schedule(
        "detector_cleaning", "Clean or calibrate point detectors without dirt alarm", "探测器清洗标定",
        "facility_manager", Cadence(CadenceKind.MONTHLY, at=time(10, 0), months=12, years=2), Scope.SITE,
        365 * D, (_i("cleaned", "Detectors cleaned or calibrated", "探测器已清洗或标定"),),
        "insp.detector_cleaning_due", "GB 25201", ("safety_officer",),
    ),
    Schedule(
        "it_backup_check", "Daily automatic backup check", "每日备份检查", "it",
        Cadence(CadenceKind.DAILY, at=time(9, 0)), Scope.SITE, D,
        (_i("backup_ok", "Last automatic backup succeeded", "自动备份成功", prefill="it_backup"),),
        None, "S26, S27", (),
    ),
    Schedule(
        "access_review_quarterly", "Full badge and account review (quarterly)", "门禁卡及系统账号全面复核",
        "supervisor",
        Cadence(CadenceKind.MONTHLY, at=time(10, 0), months=3), Scope.SITE, 31 * D,
        (
            _i("badges_vs_staff", "Every active badge belongs to a current employee or an approved visitor",
               "在用门禁卡均属在职员工或已批准访客"),
            _i("badge_privileges", "Badge privileges match each person's role and zones", "门禁权限与岗位区域一致"),
            _i("system_accounts", "System accounts and their roles reviewed, leavers disabled", "系统账号及权限已复核"),
            _i("mr_list", "Machine-room access list approved again", "机房授权名单已重新审批"),
        ),
        "it.access_review", "RULES §6 #9 (quarterly, pick); S27 定期审计; 等保", ("manager",),
    ),
    Schedule(
        "supervisor_spot_check", "Unannounced electrical spot check", "不定期电气抽查", "supervisor",
        Cadence(CadenceKind.RANDOM_WEEKLY), Scope.SITE, 8 * H,
        (
            _i("sampled_seats", "Seats sampled, including every seat/strip with an elec.* alert", "抽查座位",
               prefill="elec_events"),
            _i("no_daisy_chain", "No daisy-chained strips", "无串接插排", spot=True),
            _i("no_private_appliance", "No private strip or high-power appliance", "无私接插排或大功率电器", spot=True),
            _i("plugs_undamaged", "No damaged plugs or cords", "插头电线无损坏", spot=True),
        ),
        None, "S15 (定期或不定期); RULES §6 #4 (≥ 1 per week, pick)", ("manager",),
    ),
    # Sensor-triggered inspections (no cadence of their own: created by `triggered_task`).
    Schedule(
        "post_event_check", "Inspection after a cleared safety event", "事件恢复后现场检查", "shift_lead",
        Cadence(CadenceKind.INTERVAL, every=timedelta(0)), Scope.DEVICE, 4 * H,
        (
            _i("cause_found", "Cause found and recorded", "查明原因并记录"),
            _i("device_ok", "Device and its surroundings in order", "设备及周边正常", spot=True),
            _i("hazard_removed", "Hazard removed on the spot", "隐患当场排除", spot=True),
        ),
        None, "RULES §4 (当场改正); D20", ("supervisor", "safety_officer"),
    ),
    # Created by events (see `forward_task` and `review_task`), never by the clock.
    Schedule(
        "lead_forward", "Operator issue: resolve or forward to the supervisor", "话务员问题:处理或上报主管",
        "shift_lead", Cadence(CadenceKind.INTERVAL, every=timedelta(0)), Scope.SEAT, timedelta(minutes=30),
        (
            _i("resolved", "Resolved on site (note what was done)", "已现场处理"),
            _i("forwarded", "Forwarded to the supervisor (note to whom and what)", "已上报主管"),
        ),
        "esc.lead_not_forwarded", "S17 由领班上报主管; RULES §4", ("supervisor",), one_of=("resolved", "forwarded"),
    ),
    Schedule(
        "post_incident_review", "Review after a critical incident", "重大事件后评估", "emergency_command",
        Cadence(CadenceKind.INTERVAL, every=timedelta(0)), Scope.DEVICE, 7 * D,
        (
            _i("response_assessed", "Response assessed against the plan (timeline, who did what)", "评估应急处置效果"),
            _i("improvements", "Improvements proposed with owners and dates", "提出改进措施"),
            _i("records_archived", "Records and evidence archived", "记录存档"),
        ),
        "incident.post_review_overdue", "S21; RULES §2.9", ("emergency_command", "manager"),
    ),
)

CATALOG: Mapping[str, Schedule] = {s.id: s for s in SCHEDULES}
"""Every schedule by id."""

TRIGGERED_ONLY = frozenset({"post_event_check", "lead_forward", "post_incident_review"})
"""Schedules created by events, never by the clock."""

# --------------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------------

_EPOCH = date(2000, 1, 1)


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise InspectionError("naive_time", f"{what} must carry a time zone")
    return value


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


SPOT_DAYS = 5
SPOT_FIRST = time(9, 0)
SPOT_SLOTS = 33
"""Quarter hours from 09:00 to 17:00 inclusive: when an unannounced check may start."""


def spot_run(seed: str, schedule_id: str, iso_year: int, iso_week: int, tz: tzinfo) -> datetime:
    """The drawn instant (UTC) of a RANDOM_WEEKLY schedule in one ISO week.

    Deterministic: SHA-256 over "seed|schedule|year-Www", so a restart or a second server computes
    the same instant, while the weekday and time differ from week to week. The seed is the site id
    unless the deployment sets another (keep it private to make the draw unguessable).
    """
    digest = hashlib.sha256(f"{seed}|{schedule_id}|{iso_year}-W{iso_week:02d}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    day = date.fromisocalendar(iso_year, iso_week, 1 + number % SPOT_DAYS)
    minutes = SPOT_FIRST.hour * 60 + SPOT_FIRST.minute + 15 * ((number // SPOT_DAYS) % SPOT_SLOTS)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tz).astimezone(UTC)


def due_runs(schedule: Schedule, since: datetime, until: datetime, tz: tzinfo = UTC, seed: str = "") -> list[datetime]:
    """Run instants of a calendar schedule in (since, until], in UTC, oldest first.

    `tz` is the site's time zone (cadence times are local); `seed` feeds RANDOM_WEEKLY draws.
    Shift-based schedules need the roster: use `shift_runs`. A range the wrong way round is an error.
    """
    _aware(since, "since")
    _aware(until, "until")
    if until < since:
        raise InspectionError("bad_range", f"until ({until.isoformat()}) is before since ({since.isoformat()})")
    cadence = schedule.cadence
    if not cadence.calendar_based:
        raise InspectionError("needs_roster", f"{schedule.id} runs at shift ends: use shift_runs")
    out: list[datetime] = []

    def keep(local: datetime) -> None:
        instant = local.astimezone(UTC)
        if since < instant <= until:
            out.append(instant)

    first = since.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date()
    if cadence.kind is CadenceKind.INTERVAL:
        step = cadence.every
        if step is None or step <= timedelta(0):
            return []
        origin = datetime.combine(_EPOCH, time(0), tz)
        n = max(0, (since - origin) // step)
        instant = origin + n * step
        while instant <= until:
            keep(instant)
            instant += step
        return out
    if cadence.kind is CadenceKind.RANDOM_WEEKLY:
        day = first - timedelta(days=first.weekday())
        while day <= last:
            iso = day.isocalendar()
            instant = spot_run(seed, schedule.id, iso.year, iso.week, tz)
            if since < instant <= until:
                out.append(instant)
            day += timedelta(days=7)
        return out
    if cadence.kind is CadenceKind.MONTHLY:
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            if (month - 1) % cadence.months == 0 and year % cadence.years == 0:
                dom = min(cadence.day, calendar.monthrange(year, month)[1])
                keep(datetime.combine(date(year, month, dom), cadence.at, tz))
            year, month = _add_months(year, month, 1)
        return out
    day = first
    while day <= last:
        if cadence.kind is CadenceKind.DAILY or day.weekday() == cadence.weekday:
            keep(datetime.combine(day, cadence.at, tz))
        day += timedelta(days=1)
    return out


# --------------------------------------------------------------------------------------------------
# Sites, as far as this module needs them (server.domain.site.Site satisfies it)
# --------------------------------------------------------------------------------------------------


class _Entry(EntryLike, Protocol):
    @property
    def person(self) -> str: ...
    @property
    def seat(self) -> str | None: ...
    @property
    def zone(self) -> str: ...
    @property
    def lead(self) -> bool: ...


class _Person(Protocol):
    @property
    def id(self) -> str: ...


class _ZoneLike(Protocol):
    @property
    def kind(self) -> str: ...


class _Config(Protocol):
    @property
    def roster(self) -> Sequence[_Entry]: ...


class SiteView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def tz(self) -> tzinfo: ...
    @property
    def config(self) -> _Config: ...
    @property
    def shifts(self) -> Mapping[str, ShiftLike]: ...
    @property
    def zones(self) -> Mapping[str, _ZoneLike]: ...
    def shift_lead(self, zone: str, at: datetime) -> _Person | None: ...
    def people_with_role(self, role: str) -> Sequence[_Person]: ...


def duties(site: SiteView, since: datetime, until: datetime) -> list[Duty[_Entry]]:
    """Roster entries resolved to intervals that overlap (since - 1 d, until], oldest start first."""
    days = days_between(since.astimezone(site.tz).date() - timedelta(days=2), until.astimezone(site.tz).date())
    out = roster.duties(site.config.roster, site.shifts, site.tz, days)
    out.sort(key=lambda d: (d.start, d.entry.person))
    return out


# --------------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task to create. `key` is unique per (schedule, subject, run)."""

    schedule_id: str
    subject: str
    """"site", a zone id, "seat:<seat>:<person>", or a device id."""
    run_at: datetime
    due_at: datetime
    zone: str | None
    seat: str | None = None
    device: str | None = None
    assignee: str | None = None
    """Person id, or None when nobody holds the role (anyone with the role may then take it)."""
    role: str = ""
    trigger: str | None = None
    """For sensor-triggered tasks: the rule whose clearing caused the task."""

    @property
    def key(self) -> str:
        return f"{self.schedule_id}|{self.subject}|{self.run_at.astimezone(UTC).isoformat()}"


def _first_with_role(site: SiteView, role: str) -> str | None:
    people = site.people_with_role(role)
    return people[0].id if people else None


def shift_runs(site: SiteView, schedule: Schedule, since: datetime, until: datetime) -> list[TaskSpec]:
    """Tasks of a shift-based schedule whose run falls in (since, until]."""
    if until < since:
        raise InspectionError("bad_range", "until is before since")
    out: list[TaskSpec] = []
    for duty in duties(site, since, until):
        entry = duty.entry
        if schedule.cadence.kind is CadenceKind.SHIFT_END:
            if entry.lead or entry.seat is None:
                continue
            if since < duty.end <= until:
                out.append(TaskSpec(schedule.id, f"seat:{entry.seat}:{entry.person}", duty.end,
                                    duty.end + schedule.window, entry.zone, seat=entry.seat,
                                    assignee=entry.person, role=schedule.role))
        elif schedule.cadence.kind is CadenceKind.SHIFT_BOUNDARY:
            if not entry.lead:
                continue
            for run in (duty.start, duty.end):
                if since < run <= until:
                    out.append(TaskSpec(schedule.id, f"lead:{entry.zone}:{entry.person}", run,
                                        run + schedule.window, entry.zone, assignee=entry.person,
                                        role=schedule.role))
    out.sort(key=lambda t: (t.run_at, t.subject))
    return out


def tasks_for_run(site: SiteView, schedule: Schedule, run: datetime) -> list[TaskSpec]:
    """Tasks of a calendar schedule for one run instant (one per machine room, or one for the site)."""
    due = run + schedule.window
    if schedule.scope is Scope.MACHINE_ROOM:
        zones = sorted(z for z, info in site.zones.items() if str(info.kind) == "machine_room")
        out = []
        for zone in zones:
            lead = site.shift_lead(zone, run)
            assignee = _first_with_role(site, schedule.role) or (lead.id if lead else None)
            out.append(TaskSpec(schedule.id, zone, run, due, zone, assignee=assignee, role=schedule.role))
        return out
    return [TaskSpec(schedule.id, "site", run, due, None, assignee=_first_with_role(site, schedule.role),
                     role=schedule.role)]


def plan(site: SiteView, schedules: Iterable[Schedule], since: datetime, until: datetime,
         seed: str = "") -> list[TaskSpec]:
    """Every task whose run falls in (since, until], for all the given schedules, oldest first.
    `seed` (default: the site id) draws the unannounced spot checks."""
    out: list[TaskSpec] = []
    for schedule in schedules:
        if schedule.id in TRIGGERED_ONLY:
            continue
        if schedule.cadence.calendar_based:
            for run in due_runs(schedule, since, until, site.tz, seed or site.id):
                out.extend(tasks_for_run(site, schedule, run))
        else:
            out.extend(shift_runs(site, schedule, since, until))
    out.sort(key=lambda t: (t.run_at, t.schedule_id, t.subject))
    return out


@dataclass(frozen=True, slots=True)
class CatchUp:
    create: list[TaskSpec]
    """Tasks to create as open: at most one per (schedule, subject): the latest, if within grace."""
    missed: list[TaskSpec]
    """Older runs that were never created: recorded as missed, never replayed one by one."""


def catch_up(tasks: Sequence[TaskSpec], now: datetime, grace: timedelta) -> CatchUp:
    """Coalesce runs that fell due while nobody was looking (server down, scheduler late).

    Per (schedule, subject) the latest run is created if `now - run <= grace` or its deadline is still
    ahead; every other run is missed.
    """
    latest: dict[tuple[str, str], TaskSpec] = {}
    for task in tasks:
        current = latest.get((task.schedule_id, task.subject))
        if current is None or task.run_at > current.run_at:
            latest[(task.schedule_id, task.subject)] = task
    create: list[TaskSpec] = []
    missed: list[TaskSpec] = []
    for task in tasks:
        if latest[(task.schedule_id, task.subject)] is task and (now - task.run_at <= grace or task.due_at > now):
            create.append(task)
        else:
            missed.append(task)
    return CatchUp(create, missed)


# --------------------------------------------------------------------------------------------------
# Sensor-triggered inspections
# --------------------------------------------------------------------------------------------------

TRIGGERS: Mapping[str, timedelta] = inspection_triggers()
"""Rule whose alarm, once cleared, makes an inspection of the device (or zone) due within the time."""


def triggered_task(site: SiteView, rule: str, subject: str, zone: str | None, cleared_at: datetime) -> TaskSpec | None:
    """The inspection due after an alarm of `rule` on `subject` (device or zone) was cleared, or None."""
    within = TRIGGERS.get(rule)
    if within is None:
        return None
    _aware(cleared_at, "cleared_at")
    schedule = CATALOG["post_event_check"]
    lead = site.shift_lead(zone, cleared_at) if zone else None
    assignee = lead.id if lead else _first_with_role(site, schedule.role)
    device = None if subject == zone else subject
    return TaskSpec(schedule.id, subject, cleared_at, cleared_at + within, zone, device=device,
                    assignee=assignee, role=schedule.role, trigger=rule)


FORWARD_FROM = frozenset({"eos_self_check"})
"""Checklists whose failed items the operator cannot fix alone go to the 当日领班 (RULES §6 #1, §4)."""

REVIEW_MERGE = 24 * H
"""Critical alarms of one zone closing within this of a review's start belong to the same incident."""


def forward_task(site: SiteView, schedule_id: str, zone: str | None, seat: str | None, task_id: int,
                 failed: Sequence[str], at: datetime, checked_at: datetime | None = None) -> TaskSpec | None:
    """The issue a shift lead owes after an operator's self-check failed items that are not on-the-spot
    corrections: resolve or forward to the supervisor within 30 min (esc.lead_not_forwarded).

    The owner is the lead on duty now, else the lead of the shift that was checked (当日领班: a
    check at 20:00 belongs to the day shift's lead even when the night has none)."""
    schedule = CATALOG.get(schedule_id)
    if schedule is None or schedule.id not in FORWARD_FROM:
        return None
    open_items = [i for i in failed if (item := schedule.item(i)) is not None and not item.on_the_spot]
    if not open_items:
        return None
    forward = CATALOG["lead_forward"]
    lead = site.shift_lead(zone, at) if zone else None
    if lead is None and zone and checked_at is not None:
        lead = site.shift_lead(zone, checked_at - timedelta(seconds=1))
    return TaskSpec(forward.id, f"issue:{task_id}", at, at + forward.window, zone, seat=seat,
                    assignee=lead.id if lead else None, role=forward.role,
                    trigger=f"{schedule_id}:{','.join(open_items)}"[:64])


def review_task(site: SiteView, rule: str, subject: str, zone: str | None, closed_at: datetime) -> TaskSpec:
    """The review 应急指挥部 owes within 7 d after a critical incident closes (incident.post_review_overdue)."""
    _aware(closed_at, "closed_at")
    schedule = CATALOG["post_incident_review"]
    return TaskSpec(schedule.id, f"incident:{zone or subject}", closed_at, closed_at + schedule.window, zone,
                    device=None if subject == zone else subject, assignee=_first_with_role(site, schedule.role),
                    role=schedule.role, trigger=rule)


# --------------------------------------------------------------------------------------------------
# Completion
# --------------------------------------------------------------------------------------------------


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class ItemResult:
    item_id: str
    outcome: Outcome
    note: str = ""


@dataclass(frozen=True, slots=True)
class TaskState:
    """What completion and overdue evaluation need to know about a stored task."""

    id: int
    schedule_id: str
    subject: str
    run_at: datetime
    due_at: datetime
    zone: str | None
    assignee: str | None
    status: TaskStatus
    completed_at: datetime | None = None
    photos: int = 0


@dataclass(frozen=True, slots=True)
class CompleterView:
    """The person completing: id (the actor's name) and site role names."""

    name: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class Completion:
    task_id: int
    by: str
    at: datetime
    on_time: bool
    results: tuple[ItemResult, ...]
    failed: tuple[str, ...]
    hazards: tuple[str, ...]
    """Failed on-the-spot items: recorded as hazards (corrected on the spot, with a note or photo)."""
    note: str = ""


def _outcome(value: object, item_id: str) -> Outcome:
    try:
        return Outcome(str(value))
    except ValueError:
        raise InspectionError("bad_outcome", f"item {item_id!r}: result must be one of "
                              f"{', '.join(o.value for o in Outcome)}, not {value!r}") from None


def may_complete(schedule: Schedule, task: TaskState, who: CompleterView) -> bool:
    if "admin" in who.roles or (task.assignee is not None and who.name == task.assignee):
        return True
    if task.assignee is None and schedule.role in who.roles:
        return True
    # someone else's task: only a role above it (the chain of RULES §4) may complete it
    return any(role in who.roles for role in schedule.completer_roles)


def validate_completion(task: TaskState, who: CompleterView, results: Mapping[str, tuple[str, str]],
                        at: datetime, note: str = "") -> Completion:
    """Check a completion and return what to store. `results`: item id -> (outcome, note).

    Every item of the checklist needs a result; unknown items, a second completion, someone else's
    task without the role, and a failed on-the-spot item without a note or photo are refused.
    """
    schedule = CATALOG.get(task.schedule_id)
    if schedule is None:
        raise InspectionError("unknown_schedule", f"task {task.id}: unknown schedule {task.schedule_id!r}")
    if task.status is TaskStatus.DONE:
        raise InspectionError("already_completed", f"task {task.id} was already completed"
                              + (f" at {task.completed_at.isoformat()}" if task.completed_at else ""))
    if not may_complete(schedule, task, who):
        raise InspectionError("not_allowed", f"task {task.id} is assigned to {task.assignee}; completing it "
                              f"needs one of the roles {', '.join(schedule.completer_roles) or 'admin'}")
    unknown = sorted(set(results) - {i.id for i in schedule.items})
    if unknown:
        raise InspectionError("unknown_item", f"task {task.id} ({schedule.id}) has no item(s) {', '.join(unknown)}")
    missing = [i.id for i in schedule.items if i.id not in results]
    if missing:
        raise InspectionError("missing_item", f"task {task.id}: no result for item(s) {', '.join(missing)}")
    out: list[ItemResult] = []
    for item in schedule.items:
        raw, item_note = results[item.id]
        outcome = _outcome(raw, item.id)
        if outcome is Outcome.FAIL and item.on_the_spot and not item_note.strip() and task.photos == 0:
            raise InspectionError("note_required", f"item {item.id!r} failed and is corrected on the spot "
                                  "(当场改正): a note or a photo is required")
        out.append(ItemResult(item.id, outcome, item_note.strip()))
    if schedule.one_of and not any(r.item_id in schedule.one_of and r.outcome is Outcome.PASS for r in out):
        raise InspectionError("one_of_required", f"task {task.id}: at least one of {', '.join(schedule.one_of)} "
                              "must pass")
    failed = tuple(r.item_id for r in out if r.outcome is Outcome.FAIL)
    hazards = tuple(i for i in failed if (it := schedule.item(i)) is not None and it.on_the_spot)
    return Completion(task.id, who.name, at, at <= task.due_at, tuple(out), failed, hazards, note.strip())


# --------------------------------------------------------------------------------------------------
# Overdue (RULES.md §2.9) and escalation (§4)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverdueRule:
    id: str
    schedule_id: str
    after: timedelta
    """Per task (`per_task`): time after the run; otherwise: time since the last completion."""
    severity: Severity
    notify: tuple[str, ...]
    per_task: bool = False
    major_after: timedelta | None = None
    """Since-last rules: from this age on the finding is major."""
    major_consecutive: int | None = None
    """Per-task rules: this many consecutive overdue tasks of one subject make it major."""
    keep: timedelta = 7 * D
    """Per-task rules: how far back (by run) an undone task is still a finding."""


OVERDUE_RULES: tuple[OverdueRule, ...] = (
    OverdueRule("insp.end_of_shift_missing", "eos_self_check", timedelta(minutes=30), Severity.MINOR,
                ("shift_lead",), per_task=True),
    OverdueRule("insp.fire_patrol_overdue", "fire_patrol", D, Severity.MINOR, ("supervisor",), per_task=True,
                major_consecutive=2),
    OverdueRule("insp.supervisor_electrical_overdue", "supervisor_electrical", 7 * D, Severity.MINOR,
                ("manager",), major_after=14 * D),
    OverdueRule("insp.fire_check_monthly_overdue", "fire_check_monthly", 31 * D, Severity.MAJOR,
                ("manager", "safety_officer")),
    OverdueRule("insp.extinguisher_monthly_overdue", "extinguisher_monthly", 31 * D, Severity.MAJOR,
                ("safety_officer",)),
    OverdueRule("insp.facility_annual_test_overdue", "annual_fire_system_test", 365 * D, Severity.MAJOR,
                ("manager",)),
    OverdueRule("insp.detector_cleaning_due", "detector_cleaning", 730 * D, Severity.MINOR, ("facility_manager",)),
    OverdueRule("drill.evacuation_overdue", "evacuation_drill", 183 * D, Severity.MAJOR, ("emergency_command",)),
    OverdueRule("drill.comprehensive_overdue", "comprehensive_drill", 365 * D, Severity.MAJOR,
                ("emergency_command",)),
    OverdueRule("it.access_review", "access_review_quarterly", 90 * D, Severity.MINOR, ("supervisor", "it")),
    OverdueRule("esc.lead_not_forwarded", "lead_forward", timedelta(minutes=30), Severity.MAJOR, ("supervisor",),
                per_task=True),
    OverdueRule("incident.post_review_overdue", "post_incident_review", 7 * D, Severity.MINOR,
                ("emergency_command",), per_task=True, keep=365 * D),
)
OVERDUE_BY_ID: Mapping[str, OverdueRule] = {r.id: r for r in OVERDUE_RULES}

ESCALATION: Mapping[Severity, tuple[tuple[timedelta, str], ...]] = {
    Severity.MINOR: ((timedelta(0), ""), (24 * H, "supervisor")),
    Severity.MAJOR: ((timedelta(0), ""), (timedelta(minutes=30), "supervisor")),
}
"""RULES §4: minor → owner, 24 h unacknowledged → supervisor; major → first notified, 30 min →
supervisor. "" stands for the rule's own notify list."""


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime
    notify: tuple[str, ...]
    """Person ids where the roster resolves one (当日领班), else role names."""


@dataclass(frozen=True, slots=True)
class OverdueFinding:
    rule: str
    severity: Severity
    subject: str
    zone: str | None
    since: datetime
    """When the duty became overdue."""
    task_id: int | None
    steps: tuple[Step, ...] = field(default=())
    """Escalation steps reached by `now`, in order."""

    @property
    def notify(self) -> tuple[str, ...]:
        return self.steps[-1].notify if self.steps else ()

    def messages(self, tz: tzinfo) -> tuple[str, str]:
        """The alarm's text (en, zh): which duty, for whom, overdue since when in the site's local time."""
        since = self.since.astimezone(tz)
        at = f"{since:%Y-%m-%d %H:%M} {since.tzname() or ''}".rstrip()
        schedule = CATALOG.get(OVERDUE_BY_ID[self.rule].schedule_id) if self.rule in OVERDUE_BY_ID else None
        what, what_zh = (schedule.what, schedule.what_zh) if schedule else DUTY_NAMES.get(self.rule, (self.rule,
                                                                                                     self.rule))
        who = f" ({self.subject})" if self.subject != (schedule.id if schedule else "") else ""
        return f"{what}{who}: overdue since {at}", f"{what_zh}{who}：自 {at} 起逾期未完成"


def _resolve(site: SiteView, role: str, zone: str | None, at: datetime, now: datetime) -> str:
    """当日领班: the lead of the shift the duty belongs to (`at`), else the lead on duty `now`."""
    if role == "shift_lead" and zone is not None:
        lead = site.shift_lead(zone, at) or site.shift_lead(zone, now)
        if lead is not None:
            return lead.id
    return role


def _steps(site: SiteView, rule: OverdueRule, severity: Severity, zone: str | None, since: datetime,
           now: datetime, duty_at: datetime | None = None) -> tuple[Step, ...]:
    out: list[Step] = []
    for offset, role in ESCALATION[severity]:
        at = since + offset
        if at > now:
            break
        roles = rule.notify if role == "" else (role,)
        who_at = (duty_at or since) - timedelta(seconds=1)
        out.append(Step(at, tuple(_resolve(site, r, zone, who_at, at) for r in roles)))
    return tuple(out)


def evaluate_overdue(site: SiteView, tasks: Sequence[TaskState], last_done: Mapping[str, datetime | None],
                     origin: datetime, now: datetime) -> list[OverdueFinding]:
    """Active §2.9 findings at `now`.

    `tasks`: stored tasks (any status); `last_done`: schedule id -> last completion (None if never);
    `origin`: when monitoring started (the age of a never-done duty is counted from there).
    """
    out: list[OverdueFinding] = []
    for rule in OVERDUE_RULES:
        if rule.per_task:
            mine = sorted((t for t in tasks if t.schedule_id == rule.schedule_id), key=lambda t: t.run_at)
            streak: dict[str, int] = {}
            for task in mine:
                late_at = task.run_at + rule.after
                done_in_time = task.status is TaskStatus.DONE and task.completed_at is not None \
                    and task.completed_at <= late_at
                if done_in_time or late_at > now:
                    streak[task.subject] = 0
                    continue
                streak[task.subject] = streak.get(task.subject, 0) + 1
                if task.status is TaskStatus.DONE:
                    continue  # late but done: no longer an open finding
                severity = rule.severity
                if rule.major_consecutive and streak[task.subject] >= rule.major_consecutive:
                    severity = Severity.MAJOR
                out.append(OverdueFinding(rule.id, severity, task.subject, task.zone, late_at, task.id,
                                          _steps(site, rule, severity, task.zone, late_at, now, task.run_at)))
        else:
            last = last_done.get(rule.schedule_id) or origin
            late_at = last + rule.after
            if now < late_at:
                continue
            severity = rule.severity
            if rule.major_after is not None and now >= last + rule.major_after:
                severity = Severity.MAJOR
            out.append(OverdueFinding(rule.id, severity, rule.schedule_id, None, late_at, None,
                                      _steps(site, rule, severity, None, late_at, now)))
    return out


# --------------------------------------------------------------------------------------------------
# Compliance
# --------------------------------------------------------------------------------------------------


@dataclass
class Compliance:
    zone: str
    month: str
    on_time: int = 0
    late: int = 0
    missed: int = 0
    open: int = 0
    failed_items: int = 0


def month_bounds(month: str, tz: tzinfo = UTC) -> tuple[datetime, datetime]:
    """'YYYY-MM' -> [start, end) of that month in `tz`, as UTC instants."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        start = date(year, mon, 1)
    except ValueError:
        raise InspectionError("bad_month", f"month must be YYYY-MM, not {month!r}") from None
    ny, nm = _add_months(year, mon, 1)
    return (datetime.combine(start, time(0), tz).astimezone(UTC),
            datetime.combine(date(ny, nm, 1), time(0), tz).astimezone(UTC))


def compliance(rows: Iterable[tuple[TaskState, int]], month: str, now: datetime) -> list[Compliance]:
    """Per zone ("site" for site-wide tasks): on time, late, missed (deadline passed, never done),
    still open, and failed items, for tasks whose run falls in `month`. `rows`: (task, failed items)."""
    by_zone: dict[str, Compliance] = {}
    for task, failed in rows:
        c = by_zone.setdefault(task.zone or "site", Compliance(task.zone or "site", month))
        c.failed_items += failed
        if task.status is TaskStatus.DONE and task.completed_at is not None:
            if task.completed_at <= task.due_at:
                c.on_time += 1
            else:
                c.late += 1
        elif task.status is TaskStatus.MISSED or task.due_at <= now:
            c.missed += 1
        else:
            c.open += 1
    return [by_zone[z] for z in sorted(by_zone)]


# --------------------------------------------------------------------------------------------------
# Training (RULES.md §6 #11, §2.9 train.*): from HR records, not from tasks
# --------------------------------------------------------------------------------------------------


class Course(StrEnum):
    INDUCTION = "induction"
    """Pre-job safety training (岗前培训), fire content of 61号令 Art.36 included."""
    FIRE_ANNUAL = "fire_annual"


@dataclass(frozen=True, slots=True)
class Training:
    person: str
    course: Course
    passed_at: datetime


@dataclass(frozen=True, slots=True)
class Starter:
    """A new employee from HR: the induction must be passed before their first rostered shift."""

    person: str
    starts: date


DUTY_NAMES: Mapping[str, tuple[str, str]] = {
    "train.fire_annual_overdue": ("Annual fire-safety training", "年度消防安全培训"),
    "train.new_staff": ("Fire-safety training before the first shift", "新员工上岗前消防培训"),
}
"""Duties with no schedule of their own (en, zh)."""
TRAIN_FIRE = OverdueRule("train.fire_annual_overdue", "", 365 * D, Severity.MINOR, ("hr", "safety_officer"))
TRAIN_NEW = OverdueRule("train.new_staff", "", timedelta(0), Severity.MAJOR, ("shift_lead", "hr"))
STARTER_HORIZON = 62 * D
"""How far after `starts` the first rostered shift is looked for."""


def first_duty(site: SiteView, person: str, starts: date, now: datetime) -> Duty[_Entry] | None:
    """The person's first rostered shift that starts on or after `starts` and has begun by `now`."""
    since = datetime.combine(starts, time(0), site.tz).astimezone(UTC)
    if since > now:
        return None
    until = min(now, since + STARTER_HORIZON)
    for duty in duties(site, since, until):
        if duty.entry.person == person and since <= duty.start <= now:
            return duty
    return None


def evaluate_training(site: SiteView, records: Sequence[Training], starters: Sequence[Starter],
                      origin: datetime, now: datetime) -> list[OverdueFinding]:
    """train.new_staff (no induction at the start of the first rostered shift, until one is recorded) and
    train.fire_annual_overdue (> 365 d since the person's last fire training; the induction counts;
    without any record the age is counted from `origin`, when monitoring started). Only people on the
    roster are checked; a starter is checked for annual training only from the induction on."""
    passed: dict[str, list[Training]] = {}
    for record in records:
        if record.passed_at <= now:
            passed.setdefault(record.person, []).append(record)
    zone_of: dict[str, str] = {}
    for entry in site.config.roster:
        zone_of.setdefault(entry.person, entry.zone)
    out: list[OverdueFinding] = []
    starting = {s.person: s for s in starters}
    for person in sorted(zone_of):
        mine = passed.get(person, [])
        zone = zone_of[person]
        starter = starting.get(person)
        if starter is not None and not any(r.course is Course.INDUCTION for r in mine):
            duty = first_duty(site, person, starter.starts, now)
            if duty is not None:
                out.append(OverdueFinding(TRAIN_NEW.id, TRAIN_NEW.severity, person, duty.entry.zone, duty.start, None,
                                          _steps(site, TRAIN_NEW, TRAIN_NEW.severity, duty.entry.zone, duty.start,
                                                 now, duty.start + timedelta(seconds=1))))
            continue  # a starter's annual clock starts with the induction
        last = max((r.passed_at for r in mine), default=origin)
        late_at = last + TRAIN_FIRE.after
        if now >= late_at:
            out.append(OverdueFinding(TRAIN_FIRE.id, TRAIN_FIRE.severity, person, zone, late_at, None,
                                      _steps(site, TRAIN_FIRE, TRAIN_FIRE.severity, zone, late_at, now)))
    return out
