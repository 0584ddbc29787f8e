"""docs/response.md's paging table, written from the rule catalog and the routing (`notify.plan`): for every
alarm the server pages, rule by rule and severity by severity, who gets the first page and what follows.

Rows: every rule the catalog declares severities for, at each of them, except minor (never paged one by one:
the supervisor's daily digest) and the rules whose plan is empty (evac.notice: the evacuation's message is
its page). A rule added to the catalog gets its rows here with no hand-written line.

Where an alarm is raised changes its first page (RULES.md §4: 机房值班 stands for 领班 in a machine room, and a
critical alarm there pages 机房值班 as well). Zones are a site's fact, not the catalog's, so each row is routed
on a floor that has both (docgen uses the example floor): in its office zone `FLOOR_ZONE`, or in its
machine room `MACHINE_ROOM_ZONE` for the alarms the catalog says are raised only there (`RuleSpec.raised_in`).
"""

from __future__ import annotations

from datetime import timedelta

from gateway.contract import Severity
from server.domain import notify as routing
from server.domain.catalog import CATALOG, Place
from server.domain.catalog.spec import ANYWHERE
from server.domain.findings import SEVERITY_RANK
from server.domain.site import Site

FLOOR_ZONE = "ops-a"
"""An office zone of the example floor (not a machine room)."""
MACHINE_ROOM_ZONE = "mr"
"""The example floor's machine room."""

WHEN: dict[str, str] = {
    routing.When.ALWAYS: "",
    routing.When.RAISED: "raised",
    routing.When.UNACKED: "unacknowledged",
    routing.When.UNRESOLVED: "unresolved",
    routing.When.UNRESOLVED_DEGRADED: "unresolved",  # only planned for rules that degrade life safety
    routing.When.ACKED_UNRESOLVED: "acknowledged but unresolved",
    routing.When.PERSISTS: "still raised",
}
"""How the table says a step's condition (`notify.When`)."""


def span(delay: timedelta) -> str:
    """A delay as the table writes it: seconds under 5 min (the 60 s of §3 and §4), else minutes or hours."""
    seconds = int(delay.total_seconds())
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 300 and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _step(step: routing.Step) -> str:
    if step.promote is not None:
        return f"{span(step.after)} {WHEN[step.when]}: becomes {step.promote.value}"
    text = f"{span(step.after)} {WHEN[step.when]}: {' and '.join(step.recipients)}"
    if step.skip_if_paged and set(step.skip_if_paged) != set(step.recipients):
        text += " (those not paged yet)"
    return text + (" and the fallback channel" if step.fallback else "")


def then(steps: list[routing.Step], severity: Severity) -> str:
    """What follows the first page: a delayed first page's condition, each escalation step, the repeat."""
    parts: list[str] = []
    if steps[0].after:
        parts.append(f"first page {span(steps[0].after)} after the raise, only if its condition still holds")
    run: list[str] = []  # steps that page the same recipients once in all
    for step in steps[1:]:
        if step.skip_if_paged and set(step.skip_if_paged) == set(step.recipients):
            run.append(_step(step))
            continue
        if run:
            parts.append("; ".join(run) + (" (each once)" if len(run) > 1 else " (unless already paged)"))
            run = []
        parts.append(_step(step))
    if run:
        parts.append("; ".join(run) + (" (each once)" if len(run) > 1 else " (unless already paged)"))
    repeat = routing.REPEAT[severity]
    if repeat is not None:
        parts.append(f"repeat every {span(repeat)}")
    return "; ".join(parts)


def check_floor(floor: Site, name: str) -> None:
    """`floor` has the two zones the table routes in (`name`: the file it came from, for the message)."""
    for zone, machine_room in ((FLOOR_ZONE, False), (MACHINE_ROOM_ZONE, True)):
        if zone not in floor.zones or floor.is_machine_room(zone) is not machine_room:
            kind = "a machine room" if machine_room else "an office zone"
            raise ValueError(f"{name}: zones: the paging table needs {zone!r} to be {kind}; "
                             f"set FLOOR_ZONE / MACHINE_ROOM_ZONE in {__name__} to zones of the floor")


def paging_table(floor: Site) -> str:
    """The table's lines: rule | severity | first page | then (the zone's own channel, added to every critical
    and major first page when configured, is said once above the table)."""
    lines = ["| rule | severity | first page | then |", "|---|---|---|---|"]
    for spec in CATALOG.values():
        for severity in sorted(spec.severities, key=SEVERITY_RANK.__getitem__, reverse=True):
            if severity is Severity.MINOR:
                continue
            places = spec.places(severity)
            if places == ANYWHERE:  # in a machine room 机房值班 stands for 领班: said once above the table
                places = (Place.FLOOR,)
            for place in places:
                zone = MACHINE_ROOM_ZONE if place is Place.MACHINE_ROOM else FLOOR_ZONE
                alarm = routing.AlarmInfo(0, spec.id, severity, spec.id, zone, "table", None, "")
                steps = routing.plan(alarm, floor)
                if not steps:
                    continue
                first = ", ".join(k for k in steps[0].recipients if k != routing.ZONE_CHANNEL)
                where = f" ({place.value})" if len(places) > 1 else ""
                lines.append(f"| `{spec.id}` | {severity.value}{where} | {first} | {then(steps, severity)} |")
    return "\n".join(lines) + "\n"
