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


class Permission(StrEnum):
    """What an account may do through the API beyond reading; who may is the table below."""

    MANAGE_USERS = "manage_users"
    READ_AUDIT = "read_audit"
    START_EVACUATION = "start_evacuation"
    RESPOND = "respond"
    """Fire verdicts, the roll call, securing a door during an evacuation."""
    ACKNOWLEDGE_ANY = "acknowledge_any"
    """Any alarm in any zone."""
    ACKNOWLEDGE_OWN_ZONES = "acknowledge_own_zones"
    """Non-critical alarms of the account's own zones (an account without zones has none of its own)."""
    CLOSE_LATCHED = "close_latched"
    SHELVE = "shelve"
    """Never a critical alarm, whoever asks."""
    SILENCE_NOTIFICATIONS = "silence_notifications"
    CUT_POWER = "cut_power"
    """Switch a plug off by hand (switching it back on is decided per plug: elec.relay_reenable_guard)."""
    HOLD_CUT = "hold_cut"
    """Hold a delayed cut (elec.high_power_appliance)."""
    RESTORE_POWER = "restore_power"
    """Switch back on a plug a safety rule cut (elec.relay_reenable_guard: with a reason; after a critical
    overload also an electrician's sign-off)."""
    ALL_CLEAR = "all_clear"
    """End an evacuation (evac.all_clear); egress doors stay released until reset."""


_CHAIN = (Role.SHIFT_LEAD, Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ON_SITE_COMMAND, Role.EMERGENCY_COMMAND)
"""The RULES.md §4 chain above the operator: answers alarms anywhere on the floor."""

PERMISSIONS: dict[Permission, tuple[Role, ...]] = {
    Permission.MANAGE_USERS: (),
    Permission.READ_AUDIT: (Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.FACILITY_MANAGER),
    # RULES.md §5: 现场指挥组 can trigger evac.notice
    Permission.START_EVACUATION: (Role.SUPERVISOR, Role.SAFETY_OFFICER, Role.ON_SITE_COMMAND, Role.EMERGENCY_COMMAND),
    Permission.RESPOND: _CHAIN,
    Permission.ACKNOWLEDGE_ANY: _CHAIN,
    Permission.ACKNOWLEDGE_OWN_ZONES: (Role.OPERATOR,),
    Permission.CLOSE_LATCHED: _CHAIN,  # only a person with responsibility closes a smoke alarm (RULES §0.5-3)
    Permission.SHELVE: (Role.SUPERVISOR, Role.SAFETY_OFFICER),
    Permission.SILENCE_NOTIFICATIONS: (Role.SUPERVISOR, Role.SAFETY_OFFICER),
    Permission.CUT_POWER: (Role.SHIFT_LEAD, Role.SUPERVISOR),
    # 领班 and the roles above it in the §4 chain
    Permission.HOLD_CUT: (Role.SHIFT_LEAD, Role.SUPERVISOR, Role.ON_SITE_COMMAND, Role.EMERGENCY_COMMAND),
    Permission.RESTORE_POWER: (Role.SHIFT_LEAD, Role.SUPERVISOR),  # 领班 and 主管, and admin (S05, S06)
    # RULES.md §2.2: only 现场指挥组 or 应急指挥部
    Permission.ALL_CLEAR: (Role.ON_SITE_COMMAND, Role.EMERGENCY_COMMAND),
}
"""The authorization table: who besides admin (who may do everything) holds each permission. Every route's
role check, the controls of the rules (server/domain/rules/controls.py) and the live page's buttons come from
it (GET /api/me lists the caller's permissions)."""

RESPONDERS = PERMISSIONS[Permission.RESPOND]


def may(actor: Actor, permission: Permission) -> bool:
    return actor.has(*PERMISSIONS[permission])


def holds(role_names: Collection[str], permission: Permission) -> bool:
    """`may` for code that is handed role names rather than an Actor (services, the rules' controls)."""
    return Role.ADMIN.value in role_names or any(role.value in role_names for role in PERMISSIONS[permission])


def permissions_of(actor: Actor) -> list[Permission]:
    """What the actor may do, in the table's order (what the page shows buttons for)."""
    return [p for p in PERMISSIONS if may(actor, p)]


def can_acknowledge(actor: Actor, severity: Severity, zone: str | None) -> bool:
    """Responders acknowledge anything; an operator only non-critical alarms of their own zones."""
    if may(actor, Permission.ACKNOWLEDGE_ANY):
        return True
    if may(actor, Permission.ACKNOWLEDGE_OWN_ZONES):
        return severity is not Severity.CRITICAL and bool(actor.zones) and actor.covers(zone)
    return False


def can_close_latched(actor: Actor) -> bool:
    """Always with a reason, checked by the route."""
    return may(actor, Permission.CLOSE_LATCHED)


def can_shelve(actor: Actor, severity: Severity) -> bool:
    """Shelving hides an alarm for a while: never a critical one."""
    return severity is not Severity.CRITICAL and may(actor, Permission.SHELVE)


def parse_roles(names: Collection[str]) -> frozenset[Role]:
    return frozenset(Role(n) for n in names if n)


# -- data minimisation (issue #9 security 4): who sees people's names, person ids and badge numbers ----

class PeopleScope(StrEnum):
    """Whose names and person ids an account sees; the others are redacted at the API's edge."""

    ALL = "all"
    ZONES = "zones"
    """People rostered in (or found in) the account's zones; every zone when the account has none."""
    SELF = "self"
    NONE = "none"


PEOPLE_SCOPE: dict[Role, PeopleScope] = {
    Role.ADMIN: PeopleScope.ALL,
    Role.SAFETY_OFFICER: PeopleScope.ALL,  # 安全保障组: badge-based headcount, evacuation (RULES §5)
    Role.ON_SITE_COMMAND: PeopleScope.ALL,  # 现场指挥组 directs the evacuation: needs who is missing
    Role.EMERGENCY_COMMAND: PeopleScope.ALL,  # 应急指挥部: headcount and names of the unaccounted
    Role.SUPERVISOR: PeopleScope.ZONES,  # their people: the zones they answer for
    Role.SHIFT_LEAD: PeopleScope.ZONES,
    Role.OPERATOR: PeopleScope.SELF,  # their own tasks and alarms, nobody else's
    Role.FACILITY_MANAGER: PeopleScope.NONE,  # devices, not people
    Role.MAINTENANCE: PeopleScope.NONE,
}
"""The field-visibility table for person names and ids (docs/api.md "Data minimisation")."""

BADGE_ROLES = (Role.SAFETY_OFFICER,)
"""Badge numbers (and the card keys hashed from them, which a short badge space makes reversible):
安全保障组 investigates cards; everyone else works with person ids. Admin, as always, too."""

_WIDTH = (PeopleScope.NONE, PeopleScope.SELF, PeopleScope.ZONES, PeopleScope.ALL)


def people_scope(actor: Actor) -> PeopleScope:
    """The widest scope among the actor's roles (a role missing from the table sees nobody)."""
    return max((PEOPLE_SCOPE.get(r, PeopleScope.NONE) for r in actor.roles), key=_WIDTH.index,
               default=PeopleScope.NONE)


def can_see_person(actor: Actor, person: str, zones: Collection[str] = ()) -> bool:
    """May `actor` see this person's name and id? `zones`: where the person works (roster) or was found
    (the alarm's or roll-call entry's zone). Everyone sees themselves (account name = person id)."""
    if person == actor.name:
        return True
    scope = people_scope(actor)
    if scope is PeopleScope.ALL:
        return True
    if scope is PeopleScope.ZONES:
        return not actor.zones or any(z in actor.zones for z in zones)
    return False


def can_see_badges(actor: Actor) -> bool:
    return actor.has(*BADGE_ROLES)
