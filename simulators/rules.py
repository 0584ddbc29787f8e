"""Rule ids of RULES.md §2 (the catalog the scenarios' expected alarms must name).

Read from the rule catalog (server/domain/catalog), less the server's supervision of its own pipeline,
which has no RULES.md row; tests/simulators checks it against RULES.md, so a renamed rule fails there first.
"""

from __future__ import annotations

from server.domain.catalog import Check, ids

RULE_IDS: frozenset[str] = ids(lambda spec: spec.check is not Check.SERVER)
