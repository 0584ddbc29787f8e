"""Roles the rules page that nobody in the site file can be reached as (pure).

A page to a role with no channel (no `contacts:` entry for the role, no member with one of their own) is
only recorded as undeliverable when the alarm comes (server/domain/notify.py `NO_CHANNEL`): a machine room
with no 机房值班 contact learns that at its first leak. This names such roles before it matters, with the
rules whose pages (first page or escalation) would reach nobody: at start in the log, in `GET /api/health`
and in `floorwatch site --check`, as warnings: the server still starts (the other pages still go).

Each rule is routed as `notify.plan` routes it, at every severity it can page (minor is the daily digest),
in an office zone and in a machine room of the site where it has them, so a site without a machine room is
not asked for 机房值班, and a group with no members is judged through the role that stands in for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.contract import Severity
from server.domain import notify as routing
from server.domain.catalog import CATALOG, Place
from server.domain.rule_titles import RAISED
from server.domain.site import ROLE_NAMES, Site


def _zones(site: Site) -> dict[Place, str]:
    """One zone of the site per place a rule is raised in (none for a place the site lacks)."""
    out: dict[Place, str] = {}
    for zone in site.zones:
        out.setdefault(Place.MACHINE_ROOM if site.is_machine_room(zone) else Place.FLOOR, zone)
    return out


def _reachable(role: str, site: Site) -> bool:
    if role in routing.GROUP_FALLBACK_ROLE and not site.people_with_role(role) and not site.contacts_of(role):
        role = routing.GROUP_FALLBACK_ROLE[role]  # paged through the role that stands in for the group
    return bool(routing.channels(role, site))


@dataclass(frozen=True, slots=True)
class Unreachable:
    """A role the rules page that has no channel, and the rules whose pages would reach nobody."""

    role: str
    rules: tuple[str, ...]
    urgent: bool
    """Paged for a life-safety alarm or a critical one: the site is degraded (`GET /api/health`)."""


def unreachable_roles(site: Site) -> list[Unreachable]:
    """Every role the rules page (first page or escalation) that has no channel in the site file, by name."""
    zones = _zones(site)
    found: dict[str, list[str]] = {}
    urgent: set[str] = set()
    for spec in CATALOG.values():
        if spec.check not in RAISED:
            continue
        for severity in spec.severities:
            if severity is Severity.MINOR:
                continue
            for place in spec.places(severity):
                if place not in zones:
                    continue
                alarm = routing.AlarmInfo(0, spec.id, severity, spec.id, zones[place], site.id, None, "")
                for step in routing.plan(alarm, site):
                    for role in step.recipients:
                        if role not in ROLE_NAMES or _reachable(role, site):
                            continue
                        rules = found.setdefault(role, [])
                        if spec.id not in rules:
                            rules.append(spec.id)
                        if severity is Severity.CRITICAL or spec.life_safety:
                            urgent.add(role)
    return [Unreachable(role, tuple(sorted(rules, key=lambda rule: _first(rule, role))), role in urgent)
            for role, rules in sorted(found.items())]


def _first(rule: str, role: str) -> tuple[bool, bool]:
    """The rules whose catalog row names the role first, then life-safety ones, then the rest (catalog order
    within each): the rules a person reads first are the ones the role is there for."""
    spec = CATALOG[rule]
    return not any(role in roles for roles in spec.pages.values()), not spec.life_safety


SHOWN = 8
"""Rules named per warning line; `GET /api/health` lists them all."""


def _listed(rules: tuple[str, ...]) -> str:
    more = len(rules) - SHOWN
    return ", ".join(rules[:SHOWN]) + (f" and {more} more (GET /api/health lists them)" if more > 0 else "")


def unreachable_warnings(site: Site) -> list[str]:
    """One line per unreachable role, naming the site file, the role, its rules and what to do; one line
    for a site file with no contacts at all (a line per role would bury the one thing to do)."""
    unreachable = unreachable_roles(site)
    if unreachable and not site.config.contacts:
        roles = ", ".join(u.role for u in unreachable)
        return [f"{site.source}: contacts: none, so every page would reach nobody (roles the rules page: {roles}); "
                "add a `contacts:` section with a channel per role (docs/site-file.md, contacts)"]
    return [f"{site.source}: contacts: nobody can be reached as {u.role!r} (no contact for the role or for a "
            f"person with it): pages of {_listed(u.rules)} would reach nobody; add `{u.role}:` under contacts, "
            f"or give a person with role {u.role} a contact" for u in unreachable]
