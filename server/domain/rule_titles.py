"""A short title per alarm rule id in English and Chinese, its family, and whether it is life safety.

The titles are declared in the rule catalog (server/domain/catalog); this module is the page's view of them.

The one place the live page gets an alarm's heading from (`GET /api/floor` carries the table): an
alarm's own message may be English only (a rule without a Chinese text, or a message built from values),
and a rule id is no heading for a person on the floor. Pure data, no I/O.

Life safety (listed first on the page, before severity): a fire or a sign of one, an evacuation, an egress
door that may not open or a fire door held open, and a fire detector that cannot see (RULES.md §0.3
critical, §2.2, §2.3, §2.7). Not: records after the fact (fire.false_alarm_close, fire.short_smoke_event),
a low battery of a detector that still sees (fire.battery_low), a machine-room leak (mr.leak: equipment,
critical, so paged at once anyway). `LIFE_SAFETY_RULES` is the one list: the live page's flag and paging
(server/domain/notify.py: never grouped, held or silenced) both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from server.domain.catalog import CATALOG, FAMILIES, Check

__all__ = ["FAMILIES", "LIFE_SAFETY_RULES", "TITLES", "RuleTitle", "family"]


@dataclass(frozen=True, slots=True)
class RuleTitle:
    en: str
    zh: str
    life_safety: bool = False


RAISED: Final = (Check.READINGS, Check.SCHEDULE, Check.SERVER)
"""What judges a rule the server raises alarms for (controls and rules not raised have no heading)."""

TITLES: Final[Mapping[str, RuleTitle]] = {
    rule: RuleTitle(spec.title, spec.title_zh, spec.life_safety)
    for rule, spec in CATALOG.items()
    if spec.check in RAISED
}
"""Rule id -> its title, for every rule the server raises, from the catalog (server/domain/catalog)."""

LIFE_SAFETY_RULES: Final[frozenset[str]] = frozenset(rule for rule, title in TITLES.items() if title.life_safety)


def family(rule: str) -> str:
    """The rule's family: its id up to the first dot ("elec.strip_overload" -> "elec")."""
    return rule.split(".", 1)[0]
