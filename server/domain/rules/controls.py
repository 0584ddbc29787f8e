"""Controls of the catalog: permission checks, not alarms (RULES.md §2.1 elec.relay_reenable_guard,
§2.2 evac.all_clear). The services call these before acting and write the Audit record either way.

Role names are the ones used in the site file: shift_lead (领班), supervisor (主管), manager,
electrician (持电工证人员), on_site_command (现场指挥组), emergency_command (应急指挥部).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

ROLE_RANK = {"operator": 0, "shift_lead": 1, "supervisor": 2, "manager": 3}
ALL_CLEAR_ROLES = frozenset({"on_site_command", "emergency_command"})


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str


def relay_reenable(
    roles: Collection[str],
    reason: str,
    opened_by_rule: str | None,
    opened_severity_critical: bool,
    electrician_signoff: bool,
) -> Decision:
    """elec.relay_reenable_guard: re-enabling a relay a safety rule opened needs role >= 领班 and a
    reason; after a critical overload also an electrician's sign-off (S05, S06)."""
    if opened_by_rule is None:
        return Decision(True, "relay was not opened by a safety rule")
    if not reason.strip():
        return Decision(False, "a reason is required")
    if max((ROLE_RANK.get(r, -1) for r in roles), default=-1) < ROLE_RANK["shift_lead"]:
        return Decision(False, "needs the shift lead (领班) or above")
    overload = opened_by_rule in ("elec.strip_overload", "elec.plug_overcurrent")
    if overload and opened_severity_critical and not electrician_signoff:
        return Decision(False, "after a critical overload a licensed electrician must sign off")
    return Decision(True, "allowed")


def all_clear(roles: Collection[str]) -> Decision:
    """evac.all_clear: only 现场指挥组 or 应急指挥部 may end an evacuation (doors stay unlocked)."""
    if ALL_CLEAR_ROLES.intersection(roles):
        return Decision(True, "allowed")
    return Decision(False, "only the on-site command group or emergency command may end an evacuation")
