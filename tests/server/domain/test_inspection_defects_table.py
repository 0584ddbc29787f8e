"""The defects table (server/domain/inspections/defects.py) covers every check of the catalog: a new schedule
is a decision about who hears of its failures, never a silence by omission."""

from __future__ import annotations

import pytest

from server.domain.inspections import CATALOG, defects
from server.domain.inspections.defects import FACILITIES, IT, MANAGER, OWNERS, SAFETY, SUPERVISOR

ROLES = {FACILITIES, SAFETY, SUPERVISOR, MANAGER, IT}


def test_every_schedule_has_an_entry_for_all_its_items() -> None:
    assert set(OWNERS) == set(CATALOG)
    for schedule_id, owners in OWNERS.items():
        assert "*" in owners, schedule_id
        items = {i.id for i in CATALOG[schedule_id].items}
        assert set(owners) - {"*"} <= items, (schedule_id, set(owners) - items)
        assert all(set(roles) <= ROLES for roles in owners.values()), schedule_id


@pytest.mark.parametrize(("schedule", "item", "roles"), [
    ("lead_round", "reports_forwarded", (SUPERVISOR,)),
    ("lead_round", "alerts_reviewed", (SUPERVISOR,)),
    ("supervisor_spot_check", "sampled_seats", (FACILITIES,)),
    ("post_event_check", "cause_found", (SAFETY,)),
])
def test_checks_a_floor_fixture_does_not_plan_page_too(schedule: str, item: str, roles: tuple[str, ...]) -> None:
    """The shift-boundary round, the weekly draw and the triggered check (not due at a fixed test hour)."""
    found = defects(schedule, [item], {item: "n"})
    assert [(d.item.id, d.roles, d.note) for d in found] == [(item, roles, "n")]


@pytest.mark.parametrize("schedule", ["eos_self_check", "lead_forward", "post_incident_review", "it_backup_check"])
def test_checks_routed_elsewhere_or_administrative_page_nobody(schedule: str) -> None:
    assert defects(schedule, [i.id for i in CATALOG[schedule].items], {}) == []


def test_an_on_the_spot_correction_pages_nobody_whatever_the_check() -> None:
    for schedule in CATALOG.values():
        spot = [i.id for i in schedule.items if i.on_the_spot]
        assert defects(schedule.id, spot, {}) == [], schedule.id
