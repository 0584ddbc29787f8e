"""RULES.md §2.9 scheduler and compliance (`insp.*`, `drill.*`, `train.*`, `incident.*`, `esc.*`,
`report.*`): one declaration per rule (see spec.RuleSpec)."""

from __future__ import annotations

from gateway.contract import Severity
from server.domain.catalog.spec import RuleSpec, not_raised, scheduled

RULES: tuple[RuleSpec, ...] = (
    scheduled(
        "insp.end_of_shift_missing", "2.9", "End-of-shift check missing", "未提交交班自检", (Severity.MINOR,), "S17"
    ),
    scheduled(
        "insp.fire_patrol_overdue",
        "2.9",
        "Fire patrol overdue",
        "防火巡查逾期",
        (Severity.MINOR, Severity.MAJOR),
        "61号令 Art.25 [R15]",
        "supervisor",
    ),
    scheduled(
        "insp.supervisor_electrical_overdue",
        "2.9",
        "Supervisor's electrical check overdue",
        "主管用电检查逾期",
        (Severity.MINOR, Severity.MAJOR),
        "S15",
        "manager",
    ),
    scheduled(
        "insp.fire_check_monthly_overdue",
        "2.9",
        "Monthly fire inspection overdue",
        "月度防火检查逾期",
        (Severity.MAJOR,),
        "61号令 Art.26: enterprises inspect at least monthly [R15]",
        "manager",
        "safety_officer",
    ),
    scheduled(
        "insp.extinguisher_monthly_overdue",
        "2.9",
        "Monthly extinguisher check overdue",
        "灭火器月检逾期",
        (Severity.MAJOR,),
        "GB 50444 5.2.1 [R17]",
        "safety_officer",
    ),
    scheduled(
        "insp.facility_annual_test_overdue",
        "2.9",
        "Annual fire-system test overdue",
        "消防设施年度检测逾期",
        (Severity.MAJOR,),
        "消防法 (Fire Law) Art.16(3) [R16]",
        "manager",
    ),
    scheduled(
        "insp.detector_cleaning_due",
        "2.9",
        "Detector cleaning due",
        "探测器清洗到期",
        (Severity.MINOR,),
        "[R18] (secondary source)",
    ),
    scheduled(
        "drill.evacuation_overdue",
        "2.9",
        "Evacuation drill overdue",
        "疏散演练逾期",
        (Severity.MAJOR,),
        "61号令 Art.40; 应急预案管理办法 (emergency-plan regulation) Art.33 [R15, R31]",
        "emergency_command",
    ),
    scheduled(
        "drill.comprehensive_overdue",
        "2.9",
        "Emergency-plan drill overdue",
        "综合应急演练逾期",
        (Severity.MAJOR,),
        "应急预案管理办法 Art.33 [R31]",
        "emergency_command",
    ),
    scheduled(
        "train.fire_annual_overdue",
        "2.9",
        "Annual fire training overdue",
        "年度消防培训逾期",
        (Severity.MINOR,),
        "61号令 Art.36 [R15]",
    ),
    scheduled(
        "train.new_staff",
        "2.9",
        "New staff without safety training",
        "新员工未完成安全培训",
        (Severity.MAJOR,),
        "S32; 61号令 Art.36 [R15]",
        "shift_lead",
        "hr",
    ),
    scheduled(
        "incident.post_review_overdue",
        "2.9",
        "Post-incident review overdue",
        "事后复盘逾期",
        (Severity.MINOR,),
        'S21 "评估应急处置效果,提出改进措施" (assess the response and propose improvements)',
    ),
    scheduled(
        "esc.lead_not_forwarded",
        "2.9",
        "Shift lead did not forward an issue",
        "领班未上报问题",
        (Severity.MAJOR,),
        'S17 "由领班上报主管" (the lead reports to the supervisor)',
        "supervisor",
    ),
    not_raised(
        "report.external_deadline",
        "2.9",
        (Severity.CRITICAL,),
        (
            "生产安全事故报告和调查处理条例 (accident reporting regulation): "
            "on-site staff report at once; unit head reports within 1 h [R31]"
        ),
        "information_reporting",
    ),
)
