"""Who may do what (pure). The API asks; the domain answers from roles and zones."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from gateway.contract import Severity


class Role(StrEnum):
    OPERATOR = "operator"
    SHIFT_LEAD = "shift_lead"
    SUPERVISOR = "supervisor"
    SAFETY_OFFICER = "safety_officer"
    FACILITY_MANAGER = "facility_manager"
    MAINTENANCE = "maintenance"
    ON_SITE_COMMAND = "on_site_command"
    """现场指挥组 (RULES.md §5): directs the on-site response, may start an evacuation and give the all-clear."""
    EMERGENCY_COMMAND = "emergency_command"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated person or system acting through the API."""

    name: str
    roles: frozenset[Role]
    zones: frozenset[str] = frozenset()
    """Zones the actor answers for; empty means every zone."""

    def has(self, *roles: Role) -> bool:
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)

    def covers(self, zone: str | None) -> bool:
        return not self.zones or zone is None or zone in self.zones


RESPONDERS = (Role.SHIFT_LEAD, Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ON_SITE_COMMAND, Role.EMERGENCY_COMMAND)
"""Roles that answer alarms anywhere on the floor (RULES.md §4 chain above the operator)."""


def can_acknowledge(actor: Actor, severity: Severity, zone: str | None) -> bool:
    """Responders acknowledge anything; an operator only non-critical alarms of their own zones."""
    if actor.has(*RESPONDERS):
        return True
    if Role.OPERATOR in actor.roles:
        return severity is not Severity.CRITICAL and bool(actor.zones) and actor.covers(zone)
    return False


def can_close_latched(actor: Actor) -> bool:
    """Only a person with responsibility closes a smoke alarm, and always with a reason (RULES §0.5-3)."""
    return actor.has(Role.SHIFT_LEAD, Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ON_SITE_COMMAND,
                     Role.EMERGENCY_COMMAND)


def can_shelve(actor: Actor, severity: Severity) -> bool:
    """Shelving hides an alarm for a while: never a critical one, and only supervisors and above."""
    return severity is not Severity.CRITICAL and actor.has(Role.SUPERVISOR, Role.SAFETY_OFFICER)


def parse_roles(names: Collection[str]) -> frozenset[Role]:
    return frozenset(Role(n) for n in names if n)
