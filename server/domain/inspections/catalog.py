"""The inspection schedules of RULES.md §6 as data: who, how often, which checklist, how long to do it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from enum import StrEnum


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
