"""RULES.md §2.4 access and badges (`access.*`): one declaration per rule (see spec.RuleSpec)."""

from __future__ import annotations

from gateway.contract import Severity
from server.domain.catalog.spec import (
    IN_MACHINE_ROOM,
    AlarmDoc,
    Check,
    Measure,
    Param,
    Place,
    RuleSpec,
    paged_at_any_severity,
)

RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "access.denied_repeat",
        "2.4",
        "Repeated access denials",
        "多次刷卡被拒",
        (Severity.MINOR, Severity.MAJOR),
        "S11",
        Check.READINGS,
        security=True,
        params={
            "count": Param(3, "count"),
            "window_s": Param(300, "s"),
        },
        pages=paged_at_any_severity("shift_lead"),
        raised_in={Severity.MAJOR.value: (Place.MACHINE_ROOM,)},
        measure=Measure(""),
        doc=AlarmDoc(
            subject="two alarms: the person id (or `card-<hash>` for a badge not in the site file) and the door id",
            zone="the door's zone",
            ends="fewer than 3 denials within 5 min",
            severity="minor; major at a machine-room door",
        ),
    ),
    RuleSpec(
        "access.revoked_badge_used",
        "2.4",
        "Revoked badge used",
        "已注销工牌被使用",
        (Severity.MAJOR,),
        "S13; 等保 (GB/T 22239): terminate leavers' access [R33]",
        Check.READINGS,
        security=True,
        pages=paged_at_any_severity("supervisor", "security_evacuation"),
        doc=AlarmDoc(
            subject="person id (a leaver)",
            zone="the door's zone",
            ends="a person closes it",
            severity="major, one-off",
        ),
    ),
    RuleSpec(
        "access.leaver_badge_active",
        "2.4",
        "Leaver's badge still active",
        "离职人员工牌未注销",
        (Severity.MAJOR,),
        "S13",
        Check.READINGS,
        security=True,
        pages=paged_at_any_severity("department_head"),
        doc=AlarmDoc(
            subject="person id",
            zone="none",
            ends="the HR feed says the badge was collected",
        ),
    ),
    RuleSpec(
        "access.visitor_unapproved",
        "2.4",
        "Visitor without approval",
        "访客未经批准",
        (Severity.MAJOR,),
        'S12 "需经部门负责人批准" (needs the department head\'s approval)',
        Check.READINGS,
        security=True,
        pages=paged_at_any_severity("shift_lead"),
        doc=AlarmDoc(
            subject="visitor's person id",
            zone="the door's zone",
            ends="an approval is recorded (hr.yaml)",
        ),
    ),
    RuleSpec(
        "access.visitor_unescorted",
        "2.4",
        "Visitor without escort",
        "访客无人陪同",
        (Severity.MAJOR,),
        (
            'S12 "由接待人员陪同" (escorted by a receptionist/host); 等保: visitors to the machine room need '
            "approval, with activity limited and monitored; practice is a staff escort throughout [R33]"
        ),
        Check.READINGS,
        security=True,
        params={
            "escort_s": Param(30, "s"),
        },
        pages=paged_at_any_severity("shift_lead", "reception"),
        doc=AlarmDoc(
            subject="visitor's person id",
            zone="the door's zone",
            ends="the host badges in, or the visitor leaves",
        ),
    ),
    RuleSpec(
        "access.visitor_overstay",
        "2.4",
        "Visitor overstayed",
        "访客逾时未离开",
        (Severity.MINOR,),
        "S12",
        Check.READINGS,
        params={
            "grace_s": Param(900, "s"),
        },
        site_wide=frozenset(["grace_s"]),
        doc=AlarmDoc(
            subject="visitor's person id",
            zone="none",
            ends="the visitor leaves",
        ),
    ),
    RuleSpec(
        "access.mr_unlisted",
        "2.4",
        "Machine-room entry not on the list",
        "非授权人员进入机房",
        (Severity.MAJOR,),
        (
            "等保 physical access control: e-access at the machine-room entrance controls, authenticates and "
            "**records** entrants [R33]; S09, S10"
        ),
        Check.READINGS,
        security=True,
        pages=paged_at_any_severity("mr_duty", "supervisor"),
        raised_in=IN_MACHINE_ROOM,
        doc=AlarmDoc(
            subject="person id or `card-<hash>`",
            zone="the machine-room door's zone",
            ends="a person closes it",
            severity="major, one-off",
        ),
    ),
    RuleSpec(
        "access.mr_entry_notice",
        "2.4",
        "Machine-room entry",
        "进入机房提醒",
        (Severity.WARNING,),
        "S09, S10",
        Check.READINGS,
        pages=paged_at_any_severity("entrant"),
        raised_in=IN_MACHINE_ROOM,
        doc=AlarmDoc(
            subject="person id or `card-<hash>`",
            zone="the machine-room door's zone",
            ends="at once (a notice)",
        ),
    ),
)
