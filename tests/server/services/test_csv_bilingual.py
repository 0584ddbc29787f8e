"""The inspection history CSV names each duty and checklist item in English and Chinese."""

from __future__ import annotations

import csv
import io

from sqlalchemy import Engine

from server.domain.inspections import CATALOG
from server.domain.site import Site
from server.services.inspections import CSV_HEADER, HistoryQuery
from tests.server.services.test_service import WANG, _all_pass, _eos_task, _service
from tests.support.inspections import FakeClock, local


def test_history_csv_has_what_and_item_text_in_both_languages(engine: Engine, site: Site) -> None:
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    service = _service(engine, site, clock)
    task_id = _eos_task(service, site, clock)
    service.complete(task_id, WANG, _all_pass())
    data = service.history_csv(HistoryQuery(zone="ops-a", since=local(site, 2026, 11, 2),
                                            until=local(site, 2026, 11, 3)))
    rows = [dict(zip(CSV_HEADER, r, strict=True)) for r in csv.reader(io.StringIO(data.decode("utf-8-sig")))][1:]
    mine = [r for r in rows if r["task_id"] == str(task_id)]
    schedule = CATALOG["eos_self_check"]
    assert len(mine) == len(schedule.items)
    assert {(r["what"], r["what_zh"]) for r in mine} == {("End-of-shift self-check of own seat", "下班设备自检")}
    assert {r["item"]: (r["item_text"], r["item_text_zh"]) for r in mine} == {
        i.id: (i.text, i.text_zh) for i in schedule.items}
    assert all(r["item_text_zh"] for r in mine)
