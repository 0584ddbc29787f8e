"""A short title per alarm rule id in English and Chinese, its family, and whether it is life safety.

The one place the live page gets an alarm's heading from (`GET /api/floor` carries the table): an
alarm's own message may be English only (a rule without a Chinese text, or a message built from values),
and a rule id is no heading for a person on the floor. Pure data, no I/O.

Life safety (listed first on the page, before severity): a fire or a sign of one, an evacuation, an egress
door that may not open or a fire door held open, and a fire detector that cannot see (RULES.md §0.3
critical, §2.2, §2.3, §2.7). Not: records after the fact (fire.false_alarm_close, fire.short_smoke_event),
a low battery of a detector that still sees (fire.battery_low), a machine-room leak (mr.leak: equipment,
critical, so paged at once anyway). `LIFE_SAFETY_RULES` is the one list: the live page's flag and paging
(server/domain/notify.py: never grouped, held or silenced) both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class RuleTitle:
    en: str
    zh: str
    life_safety: bool = False


FAMILIES: Final[Mapping[str, tuple[str, str]]] = {
    "fire": ("Fire", "消防"),
    "evac": ("Evacuation", "疏散"),
    "door": ("Doors", "门与通道"),
    "elec": ("Electrical", "用电"),
    "mr": ("Machine room", "机房"),
    "access": ("Access", "出入管理"),
    "env": ("Environment", "环境"),
    "sup": ("Supervision", "设备监测"),
    "sensor": ("Sensor faults", "传感器故障"),
    "insp": ("Inspections", "巡检"),
    "drill": ("Drills", "演练"),
    "train": ("Training", "培训"),
    "incident": ("Incident review", "事件复盘"),
    "esc": ("Escalation", "上报"),
    "it": ("IT controls", "信息系统"),
}
"""Rule family (the id's prefix) -> (English, Chinese), in the order the page's filter lists them."""

_S = True  # life safety

TITLES: Final[Mapping[str, RuleTitle]] = {
    # §2.1 electrical
    "elec.strip_load_high": RuleTitle("Strip near its rating", "插线板接近额定负荷"),
    "elec.strip_continuous_high": RuleTitle("Strip loaded high for hours", "插线板长时间高负荷"),
    "elec.strip_overload": RuleTitle("Strip overloaded", "插线板过载"),
    "elec.plug_overcurrent": RuleTitle("Plug over its current rating", "插座过流"),
    "elec.high_power_appliance": RuleTitle("High-power appliance plugged in", "疑似私接大功率电器"),
    "elec.unmetered_load": RuleTitle("Unmetered load on a strip", "插线板存在未登记负载"),
    "elec.strip_cascade": RuleTitle("Daisy-chained strip or unknown device", "插线板串接或未登记设备"),
    "elec.voltage_out_of_range": RuleTitle("Supply voltage out of range", "供电电压异常"),
    "elec.relay_mismatch": RuleTitle("Plug relay does not follow its command", "插座继电器状态不符"),
    "elec.continuous_runtime": RuleTitle("Appliance running for a long time", "电器长时间连续工作"),
    "elec.after_shift_load": RuleTitle("Power drawn after the shift", "下班后仍在用电"),
    "elec.plug_unplugged": RuleTitle("Seat plug offline during the shift", "当班座位插座离线"),
    "elec.residual_current": RuleTitle("Residual current on a strip", "插线板剩余电流"),
    # §2.2 fire and evacuation
    "fire.smoke_alarm": RuleTitle("Smoke alarm", "烟感报警", _S),
    "fire.confirmed": RuleTitle("Fire confirmed", "火警已确认", _S),
    "fire.manual_report": RuleTitle("Fire reported by staff", "人员报火警", _S),
    "fire.heat_alarm": RuleTitle("Heat alarm", "温度火警", _S),
    "fire.heat_prewarn": RuleTitle("Heat pre-warning", "温度预警", _S),
    "fire.detector_fault": RuleTitle("Smoke detector fault", "烟感故障", _S),
    "fire.detector_disabled": RuleTitle("Smoke detector disabled", "烟感被停用", _S),
    "fire.false_alarm_close": RuleTitle("False fire alarm recorded", "误报记录"),
    "fire.short_smoke_event": RuleTitle("Short smoke event (suspected smoking)", "短时烟雾(疑似吸烟)"),
    "fire.battery_low": RuleTitle("Smoke detector battery low", "烟感电量低"),
    "evac.notice": RuleTitle("Evacuation", "疏散通知", _S),
    # §2.3 doors
    "door.fire_release_zone": RuleTitle("Egress door did not release (zone)", "疏散门未解锁(区域)", _S),
    "door.fire_release_floor": RuleTitle("Egress door did not release (floor)", "疏散门未解锁(楼层)", _S),
    "door.egress_controller_offline": RuleTitle("Egress door controller offline", "疏散门控制器离线", _S),
    "door.held_open": RuleTitle("Door held open", "门长时间未关"),
    "door.fire_door_held_open": RuleTitle("Fire door held open", "防火门未关闭", _S),
    "door.forced_open": RuleTitle("Door forced open", "门被强行打开"),
    "door.tamper": RuleTitle("Door controller tampered with", "门禁被破坏"),
    # §2.4 access
    "access.denied_repeat": RuleTitle("Repeated access denials", "多次刷卡被拒"),
    "access.revoked_badge_used": RuleTitle("Revoked badge used", "已注销工牌被使用"),
    "access.leaver_badge_active": RuleTitle("Leaver's badge still active", "离职人员工牌未注销"),
    "access.visitor_unapproved": RuleTitle("Visitor without approval", "访客未经批准"),
    "access.visitor_unescorted": RuleTitle("Visitor without escort", "访客无人陪同"),
    "access.visitor_overstay": RuleTitle("Visitor overstayed", "访客逾时未离开"),
    "access.mr_unlisted": RuleTitle("Machine-room entry not on the list", "非授权人员进入机房"),
    "access.mr_entry_notice": RuleTitle("Machine-room entry", "进入机房提醒"),
    # §2.5 machine room
    "mr.temp_high": RuleTitle("Machine room too hot", "机房温度过高"),
    "mr.temp_low": RuleTitle("Machine room too cold", "机房温度过低"),
    "mr.temp_rate": RuleTitle("Machine-room temperature changing fast", "机房温度变化过快"),
    "mr.humidity_high": RuleTitle("Machine room too humid", "机房湿度过高"),
    "mr.humidity_low": RuleTitle("Machine room too dry", "机房湿度过低"),
    "mr.leak": RuleTitle("Water leak in the machine room", "机房漏水"),
    "mr.smoke": RuleTitle("Smoke in the machine room", "机房烟雾报警", _S),
    # §2.6 floor environment
    "env.office_temp": RuleTitle("Office temperature out of range", "办公区温度异常"),
    "env.office_rh": RuleTitle("Office humidity out of range", "办公区湿度异常"),
    "env.equipment_hotspot": RuleTitle("Equipment hot spot", "设备局部过热"),
    # §2.7 supervision and plausibility
    "sup.smoke_offline": RuleTitle("Smoke detector offline", "烟感离线", _S),
    "sup.smoke_offline_lpwan": RuleTitle("Battery smoke detector missed heartbeats", "无线烟感心跳丢失", _S),
    "sup.probe_offline": RuleTitle("Machine-room probe offline", "机房探头离线"),
    "sup.sensor_offline": RuleTitle("Device offline", "设备离线"),
    "sup.gateway_offline": RuleTitle("Edge gateway offline", "边缘网关离线"),
    "sup.notify_channel": RuleTitle("Push channel failing", "推送通道故障"),
    "sup.message_loss": RuleTitle("Messages lost from an edge", "边缘网关消息丢失"),
    "sup.series_dropped": RuleTitle("Time-series points dropped", "时序数据丢弃"),
    "sensor.temp_sentinel": RuleTitle("Temperature sensor fault value", "温度传感器故障值"),
    "sensor.temp_jump": RuleTitle("Temperature jump (suspected sensor fault)", "温度突变(疑似传感器故障)"),
    "sensor.temp_out_of_range": RuleTitle("Temperature outside the sensor's range", "温度超出传感器量程"),
    "sensor.stuck": RuleTitle("Sensor value stuck", "传感器读数不变"),
    "sensor.rh_implausible": RuleTitle("Implausible humidity", "湿度读数不合理"),
    "sensor.tamper": RuleTitle("Device tampered with", "设备被拆动"),
    # §2.8 and §2.9 scheduler and compliance
    "insp.end_of_shift_missing": RuleTitle("End-of-shift check missing", "未提交交班自检"),
    "insp.fire_patrol_overdue": RuleTitle("Fire patrol overdue", "防火巡查逾期"),
    "insp.supervisor_electrical_overdue": RuleTitle("Supervisor's electrical check overdue", "主管用电检查逾期"),
    "insp.fire_check_monthly_overdue": RuleTitle("Monthly fire inspection overdue", "月度防火检查逾期"),
    "insp.extinguisher_monthly_overdue": RuleTitle("Monthly extinguisher check overdue", "灭火器月检逾期"),
    "insp.facility_annual_test_overdue": RuleTitle("Annual fire-system test overdue", "消防设施年度检测逾期"),
    "insp.detector_cleaning_due": RuleTitle("Detector cleaning due", "探测器清洗到期"),
    "drill.evacuation_overdue": RuleTitle("Evacuation drill overdue", "疏散演练逾期"),
    "drill.comprehensive_overdue": RuleTitle("Emergency-plan drill overdue", "综合应急演练逾期"),
    "train.fire_annual_overdue": RuleTitle("Annual fire training overdue", "年度消防培训逾期"),
    "train.new_staff": RuleTitle("New staff without safety training", "新员工未完成安全培训"),
    "incident.post_review_overdue": RuleTitle("Post-incident review overdue", "事后复盘逾期"),
    "esc.lead_not_forwarded": RuleTitle("Shift lead did not forward an issue", "领班未上报问题"),
    "it.access_review": RuleTitle("Access review overdue", "权限审查逾期"),
}

LIFE_SAFETY_RULES: Final[frozenset[str]] = frozenset(rule for rule, title in TITLES.items() if title.life_safety)


def family(rule: str) -> str:
    """The rule's family: its id up to the first dot ("elec.strip_overload" -> "elec")."""
    return rule.split(".", 1)[0]
