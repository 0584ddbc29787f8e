"""The rule catalog: one declaration per rule id, and every rule set of the code as a query on it.

A rule's id, RULES.md section and source, parameters (default, unit), severities, latching, life safety,
who is paged, which inspection its clearing makes due, and its titles in both languages are declared
once, in the family module of this package (`RuleSpec`). The tables other modules used to keep by hand
(`thresholds.DEFAULTS`, `rule_titles.TITLES`, `alarms.LATCHING_RULES`, `notify.OWNERS`,
`inspections.TRIGGERS`, the runtime's rule sets) are computed here. A rule that is only
"metric -> thresholds -> fixed severities" declares a `Gauge` and needs no class (`rules.generic`).
docs/rule-reference.md and docs/alarms.md's rule table are generated from this package
(`python -m server.domain.catalog.docgen --write`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Final

from server.domain.catalog import (
    access,
    doors,
    duties,
    electrical,
    environment,
    fire,
    it_controls,
    machine_room,
    supervision,
)
from server.domain.catalog.spec import (
    ANY_SEVERITY,
    Check,
    Gauge,
    Measure,
    Param,
    Place,
    RuleSpec,
    Stage,
    Worse,
)

__all__ = ["ANY_SEVERITY", "CATALOG", "FAMILIES", "Check", "Gauge", "Measure", "Param", "Place", "RuleSpec", "Stage",
           "Worse", "ids", "measure_of", "unit_of", "with_unit"]

CATALOG: Final[Mapping[str, RuleSpec]] = {
    spec.id: spec
    for family in (electrical, fire, doors, access, machine_room, environment, supervision, it_controls, duties)
    for spec in family.RULES
}
"""Rule id -> its declaration, in RULES.md order."""

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


def ids(where: Callable[[RuleSpec], object]) -> frozenset[str]:
    """The ids of the rules `where` holds for."""
    return frozenset(spec.id for spec in CATALOG.values() if where(spec))


def measure_of(rule: str) -> Measure | None:
    """What the value of `rule`'s alarms measures (None: an unknown rule, or one whose findings carry none)."""
    spec = CATALOG.get(rule)
    return spec.measure if spec is not None else None


def unit_of(rule: str) -> str:
    """The unit of `rule`'s alarm values ("" for a count, or a rule whose findings carry no value)."""
    measure = measure_of(rule)
    return measure.unit if measure is not None else ""


def with_unit(rule: str, value: float | None) -> str:
    """An alarm's value as people read it ("12.56 A", "3" for a count); "" when it has none."""
    if value is None:
        return ""
    unit = unit_of(rule)
    return f"{value:g} {unit}" if unit else f"{value:g}"


def checked_by(*checks: Check) -> dict[str, RuleSpec]:
    """The declarations of the rules judged by one of `checks`, in catalog order."""
    return {rule: spec for rule, spec in CATALOG.items() if spec.check in checks}


def inspection_triggers() -> dict[str, timedelta]:
    """Rule -> how soon after its alarm clears an inspection of the device (or zone) is due."""
    return {rule: spec.inspect_within for rule, spec in CATALOG.items() if spec.inspect_within is not None}
