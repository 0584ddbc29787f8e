"""A printable inspection report (HTML) for maintenance and audits: `GET /api/inspections/history?format=html`.

Same filters as the history. One self-contained page (inline CSS, no script, A4 print rules):
compliance per zone and month, then each task with its items, results, pre-fill suggestions and
overrides, who signed and when, and the hazards recorded. Every value is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from html import escape
from typing import Any

from server.domain.inspections import Compliance

CSS = """
body{font:11pt/1.35 "Noto Sans CJK SC","Microsoft YaHei",Arial,sans-serif;margin:1.5em;color:#000}
h1{font-size:16pt;margin:0 0 .2em}h2{font-size:13pt;margin:1.2em 0 .4em;border-bottom:1px solid #000}
h3{font-size:11pt;margin:.8em 0 .2em}table{border-collapse:collapse;width:100%;margin-bottom:.6em}
th,td{border:1px solid #555;padding:2px 5px;text-align:left;vertical-align:top}th{background:#eee}
td.n{text-align:right}.fail{font-weight:bold}.override{font-style:italic}.meta{color:#333}
section.task{break-inside:avoid;page-break-inside:avoid}
@page{size:A4;margin:12mm}@media print{body{margin:0}a{color:#000;text-decoration:none}}
"""

STATUS_ZH = {"open": "待完成", "missed": "已错过", "done": "已完成"}
"""A task's status in 中文, as the live page words it (TASK_STATUS in server/web/app.js)."""


def _t(value: datetime | None, tz: tzinfo) -> str:
    return "" if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'"
"""The report's own policy: its inline style only (no script, no fetch, no image, no form)."""


def render(*, site_name: str, tz: tzinfo, filters: Mapping[str, str], generated: datetime,
           rows: Sequence[Any], compliance: Mapping[str, Sequence[Compliance]],
           hazards: Mapping[int, Sequence[tuple[str, str, str, datetime]]]) -> str:
    """`rows`: HistoryRow objects (one per item, or one per open/missed task); `compliance`: month ->
    figures per zone; `hazards`: task id -> (item, note, found_by, found_at)."""
    e = escape
    # the page opens the report from a blob: address, with the page's own origin and its stored token: the
    # report runs no script and loads nothing, whatever a note holds, even if escaping ever missed one
    out = ["<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">",
           f"<meta http-equiv=\"Content-Security-Policy\" content=\"{REPORT_CSP}\">",
           f"<title>Inspection report – {e(site_name)}</title><style>{CSS}</style></head><body>",
           f"<h1>Inspection report · 检查记录 — {e(site_name)}</h1>",
           f"<p class=\"meta\">Generated {e(_t(generated, tz))}. Filters: "
           + (e(", ".join(f"{k}={v}" for k, v in filters.items())) or "none") + "</p>"]

    out.append("<h2>Compliance by zone and month · 合规统计</h2>")
    out.append("<table><tr><th>Month</th><th>Zone</th><th>On time</th><th>Late</th><th>Missed</th><th>Open</th>"
               "<th>Failed items</th></tr>")
    for month in sorted(compliance):
        for c in compliance[month]:
            out.append(f"<tr><td>{e(month)}</td><td>{e(c.zone)}</td><td class=n>{c.on_time}</td>"
                       f"<td class=n>{c.late}</td><td class=n>{c.missed}</td><td class=n>{c.open}</td>"
                       f"<td class=n>{c.failed_items}</td></tr>")
    out.append("</table>")

    tasks: dict[int, list[Any]] = {}
    for row in rows:
        tasks.setdefault(row.task_id, []).append(row)
    failed_total = sum(1 for r in rows if r.result == "fail")
    out.append(f"<h2>Tasks · 检查任务 ({len(tasks)}; {failed_total} failed items)</h2>")
    for task_id, items in tasks.items():
        t = items[0]
        where = " · ".join(x for x in (t.zone, t.seat, t.device) if x) or "site"
        signed = (f"signed by {e(t.completed_by)} at {e(_t(t.completed_at, tz))}" + ("" if t.on_time else " (late)")
                  ) if t.completed_by else ("<span class=fail>not signed, overdue · 逾期未完成</span>" if t.overdue
                                            else f"not signed ({e(t.status)} · {e(STATUS_ZH.get(t.status, t.status))})")
        what = f"{t.what} · {t.what_zh}" if t.what_zh else t.what
        out.append(f"<section class=task><h3>#{task_id} {e(what)} — {e(where)}</h3>"
                   f"<p class=meta>Run {e(_t(t.run_at, tz))}, due {e(_t(t.due_at, tz))}; "
                   f"assignee {e(t.assignee or '—')}; {signed}"
                   + (f"; note: {e(t.task_note)}" if t.task_note else "") + "</p>")
        if any(r.item for r in items):
            out.append("<table><tr><th>Item</th><th>Result</th><th>Suggested</th><th>Evidence</th><th>Note</th></tr>")
            for r in items:
                out.append(
                    f"<tr><td>{e(r.item_text or r.item)}"
                    + (f"<br>{e(r.item_text_zh)}" if r.item_text_zh else "") + "</td>"
                    f"<td class=\"{'fail' if r.result == 'fail' else ''}\">{e(r.result)}</td>"
                    f"<td class=\"{'override' if r.overridden else ''}\">{e(r.suggested)}"
                    + (" (overridden)" if r.overridden else "") + "</td>"
                    f"<td>{'<br>'.join(e(x) for x in r.evidence)}</td>"
                    f"<td>{e(r.item_note)}</td></tr>")
            out.append("</table>")
        found = hazards.get(task_id, ())
        if found:
            out.append("<p><b>Hazards · 隐患:</b></p><ul>")
            for item, note, by, at in found:
                out.append(f"<li>{e(item)}: {e(note) or '(photo)'} — {e(by)}, {e(_t(at, tz))}</li>")
            out.append("</ul>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)
