"""RULES.md §2.8 controls of the monitoring system itself (`it.*`): one declaration per rule (see spec.RuleSpec)."""

from __future__ import annotations

from gateway.contract import Severity
from server.domain.catalog.spec import AlarmDoc, RuleSpec, not_raised, scheduled

RULES: tuple[RuleSpec, ...] = (
    scheduled(
        "it.access_review",
        "2.8",
        "Access review overdue",
        "权限审查逾期",
        (Severity.MINOR,),
        'S27 "定期审计" (periodic audit)',
        doc=AlarmDoc(
            subject="schedule id `access_review_quarterly`",
            zone="none",
            ends="the review is done",
        ),
    ),
    not_raised(
        "it.backup_stale",
        "2.8",
        (Severity.MAJOR,),
        "S26; 网络安全法 (Cybersecurity Law) Art.21(4): back up important data [R32]",
        "it",
        "supervisor",
    ),
    not_raised("it.backup_offsite_stale", "2.8", (Severity.MAJOR,), 'S26 "多级别" (multi-level)', "it"),
    not_raised(
        "it.log_retention", "2.8", (Severity.MAJOR,), "网络安全法 Art.21(3): keep network logs ≥ 6 months [R32]", "it"
    ),
    not_raised("it.leaver_account", "2.8", (Severity.MAJOR,), "S13; 等保 [R33]", "it"),
    not_raised(
        "it.privileged_action",
        "2.8",
        (),
        'S27 "对每个用户的使用行为进行严格监控和审查" (strict monitoring and review of every user\'s actions)',
    ),
    not_raised("it.restore_test", "2.8", (Severity.MINOR,), "S26"),
)
