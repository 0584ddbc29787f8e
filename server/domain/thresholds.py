"""Default parameters of every sensor rule, as the rule catalog declares them (server/domain/catalog).

A site can override any of them per zone or per device (`thresholds:` in the site YAML; the site parser
checks the rule id and parameter names against `DEFAULTS`). Durations are in seconds, ratios are
fractions of `rated_a`, temperatures in °C; each parameter's unit and the reason for a pick are in its
catalog declaration.

The catalog imports nothing else from the domain, so that `site.py` can validate overrides against
this table and the rules can read their defaults from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from server.domain.catalog import CATALOG, Check, checked_by, ids

Params = Mapping[str, float]

DEFAULTS: Final[Mapping[str, Params]] = {rule: spec.defaults for rule, spec in checked_by(Check.READINGS).items()}
"""rule id -> parameter -> default. Every rule id of RULES.md §2.1–§2.7 that this engine evaluates."""

SITE_WIDE: Final[Mapping[str, frozenset[str]]] = {
    rule: spec.site_wide for rule, spec in CATALOG.items() if spec.site_wide
}
"""Parameters that only the catalog default sets: the site parser refuses them per zone or device
rather than accept a value that would be ignored."""

CONTROLS: Final = ids(lambda spec: spec.check is Check.CONTROL)
"""Catalog entries that are controls (a permission check), not alarms; see `rules.controls`."""


def param(rule: str, name: str, overrides: Mapping[str, Mapping[str, float]] | None = None) -> float:
    """One parameter: the site's override when there is one, else the catalog default."""
    if overrides:
        layer = overrides.get(rule)
        value = layer.get(name) if layer is not None else None
        if value is not None:
            return value
    return DEFAULTS[rule][name]
