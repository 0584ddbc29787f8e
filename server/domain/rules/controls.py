"""Controls of the catalog: permission checks, not alarms (RULES.md §2.1 elec.relay_reenable_guard,
§2.2 evac.all_clear). The services call these before acting and write the Audit record either way.

Who may is the authorization table (server/domain/policy.py PERMISSIONS), asked with the caller's role
names: restore_power and all_clear.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from server.domain.policy import Permission, holds

OVERLOAD_CUTS = frozenset({"elec.strip_overload", "elec.plug_overcurrent"})
"""Rules whose critical cut needs a licensed electrician's sign-off before the relay goes on again."""


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
    """elec.relay_reenable_guard: re-enabling a relay a safety rule opened needs a shift lead (领班), a
    supervisor or admin (PERMISSIONS[restore_power]) and a reason; after a critical overload also an
    electrician's sign-off (S05, S06)."""
    if opened_by_rule is None:
        return Decision(True, "relay was not opened by a safety rule")
    if not reason.strip():
        return Decision(False, "a reason is required")
    if not holds(roles, Permission.RESTORE_POWER):
        return Decision(False, "needs a shift lead (领班), a supervisor or admin")
    overload = opened_by_rule in OVERLOAD_CUTS
    if overload and opened_severity_critical and not electrician_signoff:
        return Decision(False, "after a critical overload a licensed electrician must sign off")
    return Decision(True, "allowed")


def all_clear(roles: Collection[str]) -> Decision:
    """evac.all_clear: only 现场指挥组, 应急指挥部 or admin may end an evacuation (doors stay unlocked)."""
    if holds(roles, Permission.ALL_CLEAR):
        return Decision(True, "allowed")
    return Decision(False, "only the on-site command group, emergency command or admin may end an evacuation")
