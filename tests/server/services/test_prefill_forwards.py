"""The lead round's "reports collected, unresolved ones forwarded" pre-fill on a real SQLite database:
an operator's self-check raises an issue, the lead's round sees it pending, open, late and forwarded,
and the suggestion stored at signing is the one the lead saw."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine

from server.adapters.sql.database import session_factory
from server.adapters.sql.inspection_facts import InspectionFactsRepository
from server.adapters.sql.inspections import InspectionRepository
from server.domain.inspections import CATALOG, CompleterView
from server.domain.site import Site
from server.services.inspection_facts import FactsReader
from server.services.inspections import InspectionService, ItemView
from server.services.live import LiveState
from tests.support.inspections import FakeClock, local

WANG = CompleterView("p-wang", frozenset({"operator"}))
LI = CompleterView("p-li", frozenset({"shift_lead"}))


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    return sqlite_engine


def _answers(schedule: str, **changes: tuple[str, str]) -> dict[str, tuple[str, str]]:
    return {i.id: ("pass", "") for i in CATALOG[schedule].items} | changes


def _item(service: InspectionService, task_id: int) -> ItemView:
    started = time.perf_counter()
    view = service.get(task_id)
    print(f"opening the lead round took {(time.perf_counter() - started) * 1000:.1f} ms")
    (item,) = [i for i in view.items if i.id == "reports_forwarded"]
    return item


def test_lead_round_suggestion_follows_the_operator_issue(engine: Engine, site: Site) -> None:
    sessions = session_factory(engine)
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    facts = FactsReader(site, LiveState(), InspectionFactsRepository(sessions))
    service = InspectionService(InspectionRepository(sessions), site, clock, facts=facts)
    service.create_due()
    clock.now = local(site, 2026, 11, 2, 20, 5)
    service.create_due()
    due = service.tasks("due")
    (eos,) = [t for t in due if t.schedule_id == "eos_self_check" and t.assignee == "p-wang"]
    (lead,) = [t for t in due if t.schedule_id == "lead_round" and t.zone == "ops-a"]
    (other,) = [t for t in due if t.schedule_id == "lead_round" and t.zone == "ops-b"]

    # 20:05, nobody has signed: the reports are not in
    item = _item(service, lead.id)
    assert item.suggested == "unknown"
    assert "seat s-001 self-check (p-wang) not submitted, due 20:30" in item.evidence

    service.complete(eos.id, WANG, _answers("eos_self_check", cords_intact=("fail", "cord frayed under desk")))
    # ops-a's issue is not the ops-b round's business: that zone has no report and no issue
    assert (_item(service, other.id).suggested, _item(service, other.id).evidence) == (
        "unknown", ("no operator self-check or issue since last check 2026-11-01 20:00",))
    item = _item(service, lead.id)
    assert item.suggested == "unknown"
    assert item.evidence == ("1 of 1 self-checks signed since last check 2026-11-01 20:00, 1 issue(s)",
                             "seat s-001 cord frayed under desk (p-wang 20:05): open, due 20:35")

    clock.now = local(site, 2026, 11, 2, 20, 40)  # the lead let the 30 min pass
    item = _item(service, lead.id)
    assert (item.suggested, item.evidence[1]) == (
        "fail", "seat s-001 cord frayed under desk (p-wang 20:05): open, 5 min past its 20:35 deadline")

    (issue,) = [t for t in service.tasks("overdue") if t.schedule_id == "lead_forward" and t.zone == "ops-a"]
    service.complete(issue.id, LI, _answers("lead_forward", resolved=("not_applicable", ""),
                                            forwarded=("pass", "told p-chen by phone")),
                     now=local(site, 2026, 11, 2, 20, 45))
    clock.now = local(site, 2026, 11, 2, 20, 50)
    forwarded = ("seat s-001 cord frayed under desk (p-wang 20:05): forwarded to supervisor 20:45 (10 min late) "
                 "– told p-chen by phone")
    item = _item(service, lead.id)
    assert (item.suggested, item.evidence[1:]) == ("pass", (forwarded,))

    # signed: the result keeps the suggestion and its evidence
    service.complete(lead.id, LI, _answers("lead_round"))
    (stored,) = [i for i in service.get(lead.id).items if i.id == "reports_forwarded"]
    assert (stored.outcome, stored.suggested, stored.overridden) == ("pass", "pass", False)
    assert stored.evidence[1:] == (forwarded,)

    # The next round counts from this one: the handled issue and the signed report are behind it.
    clock.now = local(site, 2026, 11, 3, 8, 5)
    service.create_due()
    (morning,) = [t for t in service.tasks("due") if t.schedule_id == "lead_round" and t.zone == "ops-a"]
    item = _item(service, morning.id)
    assert (item.suggested, item.evidence) == (
        "unknown", ("0 of 1 self-checks signed since last check 2026-11-02 20:50, 0 issue(s)",
                    "seat s-002 self-check (p-zhao) not submitted, due 08:30"))
