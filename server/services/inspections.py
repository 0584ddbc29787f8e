"""Inspection service: stores what `server.domain.inspections` decides.

* `create_due(now)`: plans tasks from each schedule's watermark to `now`; runs missed while the server
  was down are caught up once (the latest, within the grace period) and the others stored as missed.
  A unique constraint on (schedule, subject, run) makes a restart or a double run harmless.
* `complete`, `add_photo`: validated by the domain; a refused completion changes nothing.
* Pre-fill (`server.domain.prefill`): items with a `prefill` kind get a suggestion and its evidence,
  computed from current facts each time an open task is read (a person must see the facts of now,
  not of when the task was created) and once more when it is completed; the result row stores that
  suggestion and evidence beside what the person chose, so an override stays visible in history.
* `overdue(now)`: the §2.9 findings with their escalation steps (RULES §4).
* `record_counts(now)`: the running counts per zone and schedule of this month and the last (until its
  open tasks' last deadline + the grace: they still fall due or are completed late) go to `counts`, the
  boards' `inspection` points (the scheduler's plan job, every 5 min; a completion does not wait for it:
  it reads a month of tasks).
* `history`, `history_csv`, `compliance`: queries for maintenance and audits.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from gateway.contract import Severity
from server.domain import alarms as alarm_domain
from server.domain import evacuation, prefill
from server.domain import inspections as domain
from server.domain import notify as routing
from server.domain.inspections import (
    CATALOG,
    AlreadyStored,
    CompleterView,
    Completion,
    HazardRecord,
    InspectionError,
    Outcome,
    ResultRecord,
    Schedule,
    TaskRecord,
    TaskState,
    TaskStatus,
)
from server.domain.site import Site
from server.domain.utc import as_utc
from server.services.inspection_facts import FactsReader
from server.services.inspection_report import render
from server.services.notify.push import Push
from server.services.ports import InspectionStore, InspectionTx, NotifyTx

MAX_PHOTO_BYTES = 5 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


class DefectPager(Protocol):
    """The notification outbox, as inspections use it (server/services/notify/outbox.py)."""

    base_url: str

    def enqueue_in(self, tx: NotifyTx, pushes: Sequence[Push]) -> int:
        """Queue in the caller's transaction (the completion's): the page commits with it or not at all."""

    def wake(self) -> None:
        """The queue has new rows (after the commit)."""


class NotFound(InspectionError):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", what)


def photo_type(data: bytes) -> str:
    """The MIME type of a PNG or JPEG by its magic bytes; anything else, or > 5 MB, is refused."""
    if not data:
        raise InspectionError("bad_photo", "the photo is empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise InspectionError("photo_too_large", f"the photo is {len(data)} bytes; the limit is 5 MB")
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    raise InspectionError("bad_photo", "the photo is neither a PNG nor a JPEG")


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _state(row: TaskRecord, photos: int = 0) -> TaskState:
    return TaskState(row.id, row.schedule_id, row.subject, as_utc(row.run_at), as_utc(row.due_at), row.zone,
                     row.assignee, TaskStatus(row.status), _opt_utc(row.completed_at), photos)


@dataclass(frozen=True, slots=True)
class ItemView:
    id: str
    text: str
    text_zh: str
    prefill: str | None
    on_the_spot: bool
    outcome: str | None
    note: str
    suggested: str | None = None
    """pass, fail or unknown from the pre-fill (None: the item has no pre-fill)."""
    evidence: tuple[str, ...] = ()
    overridden: bool = False
    """The person chose otherwise than a definite suggestion."""


@dataclass(frozen=True, slots=True)
class TaskView:
    id: int
    schedule_id: str
    what: str
    what_zh: str
    subject: str
    zone: str | None
    seat: str | None
    device: str | None
    assignee: str | None
    role: str
    trigger: str | None
    run_at: datetime
    due_at: datetime
    status: str
    """open, done or missed; `overdue` says whether an open task is past its deadline."""
    overdue: bool
    completed_at: datetime | None
    completed_by: str | None
    note: str
    items: tuple[ItemView, ...] = ()
    photos: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanReport:
    created: int
    missed: int


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    zone: str | None = None
    device: str | None = None
    item: str | None = None
    result: str | None = None
    person: str | None = None
    schedule: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InspectionError("naive_time", f"{name} must carry a time zone (e.g. ...+08:00 or Z)")
        if self.since is not None and self.until is not None and self.until < self.since:
            raise InspectionError("bad_range", f"until ({self.until.isoformat()}) is before since "
                                  f"({self.since.isoformat()})")
        if self.result is not None and self.result not in {o.value for o in Outcome}:
            raise InspectionError("bad_outcome", f"result must be one of {', '.join(o.value for o in Outcome)}")


@dataclass(frozen=True, slots=True)
class HistoryRow:
    task_id: int
    schedule_id: str
    what: str
    zone: str | None
    seat: str | None
    device: str | None
    subject: str
    run_at: datetime
    due_at: datetime
    status: str
    assignee: str | None
    completed_by: str | None
    completed_at: datetime | None
    on_time: bool | None
    item: str
    item_text: str
    result: str
    item_note: str
    task_note: str
    suggested: str = ""
    overridden: bool = False
    evidence: tuple[str, ...] = ()
    what_zh: str = ""
    item_text_zh: str = ""
    overdue: bool = False
    """Open past its deadline when the history was read (the task list's `overdue`)."""


CSV_HEADER = ("task_id", "schedule", "what", "what_zh", "zone", "seat", "device", "subject", "run_at", "due_at",
              "status", "overdue", "assignee", "completed_by", "completed_at", "on_time", "item", "item_text",
              "item_text_zh", "result", "suggested", "overridden", "item_note", "task_note", "evidence")

LastDone = Callable[[TaskRecord], datetime | None]
"""When the same duty as a task was last completed before it (InspectionStore.last_done), None: never."""

CountsSink = Callable[[datetime, Sequence[domain.Compliance]], None]
"""Receives a month's start (UTC) and its counts per zone and schedule (the time series' `inspection`)."""

PREFILL_FALLBACK = timedelta(hours=24)
"""With no earlier completed check of the same duty, "since last check" means the last 24 h."""


class InspectionService:
    def __init__(self, store: InspectionStore, site: Site, clock: Callable[[], datetime], *,
                 grace: timedelta = timedelta(hours=2), schedules: Sequence[Schedule] = domain.SCHEDULES,
                 facts: FactsReader | None = None, spot_seed: str = "",
                 training: tuple[Sequence[domain.Training], Sequence[domain.Starter]] | None = None,
                 counts: CountsSink | None = None, pager: DefectPager | None = None) -> None:
        self.store = store
        self.site = site
        self.clock = clock
        self.grace = grace
        self._planning = threading.Lock()
        self.facts = facts
        """Where pre-fill facts come from; None: items get no suggestion."""
        self.spot_seed = spot_seed
        """Seed of the unannounced spot-check draw ("" = the site id; see domain.spot_run)."""
        self.training = training
        """HR training records and starters; None (no HR data): the train.* rules are not evaluated."""
        self.schedules = [s for s in schedules if s.id not in domain.TRIGGERED_ONLY]
        self.counts = counts
        """Where the monthly counts per zone and schedule go (the boards); None: nowhere."""
        self.pager = pager
        """Where a defect found on inspection is paged (the notification outbox); None: nowhere."""

    def use_training(self, training: tuple[Sequence[domain.Training], Sequence[domain.Starter]] | None) -> None:
        """The HR feed's training records as its last good read has them (HrSync, at every pass)."""
        self.training = training

    # ---- planning ------------------------------------------------------------------------------

    def create_due(self, now: datetime | None = None) -> PlanReport:
        """Create every task that fell due up to `now`. Idempotent; safe after a restart."""
        now = as_utc(now or self.clock())
        created = missed = 0
        # The scheduler's job and the API's task list both plan; one at a time in this process (two
        # planners saw no watermark and both inserted one), and another process's is a unique-key clash.
        with self._planning:
            for schedule in self.schedules:
                try:
                    with self.store.transaction() as tx:
                        mark = tx.watermark(schedule.id)
                        since = mark if mark is not None else now - domain.first_look_back(schedule, self.grace)
                        if since >= now:
                            continue
                        specs = domain.plan(self.site, [schedule], since, now, self.spot_seed)
                        catch_up = domain.catch_up if mark is not None else domain.first_catch_up
                        result = catch_up(specs, now, self.grace)
                        made = tx.insert(result.create, TaskStatus.OPEN.value, now)
                        lapsed = tx.insert(result.missed, TaskStatus.MISSED.value, now)
                        tx.set_watermark(schedule.id, now)
                except AlreadyStored:
                    continue  # another server planned this schedule at the same moment: its rows stand
                created, missed = created + made, missed + lapsed
        return PlanReport(created, missed)

    def on_alarm(self, alarm: alarm_domain.Alarm) -> None:
        """An alarm listener: after an overload, forced door, detector fault or smoke event ends, an inspection
        is due; a closed critical alarm owes a review (a drill's has its report instead)."""
        if alarm.state in (alarm_domain.AlarmState.CLEARED, alarm_domain.AlarmState.CLOSED):
            self.add_triggered(alarm.rule, alarm.subject, alarm.zone, alarm.cleared_at or self.clock())
        if (alarm.state is alarm_domain.AlarmState.CLOSED and alarm.severity is Severity.CRITICAL
                and not evacuation.is_drill_text(alarm.message_zh, alarm.message)):
            self.add_review(alarm.rule, alarm.subject, alarm.zone, alarm.closed_at or self.clock())

    def add_triggered(self, rule: str, subject: str, zone: str | None, cleared_at: datetime) -> int | None:
        """After an alarm of `rule` was cleared: create the inspection of that device or zone, if any."""
        spec = domain.triggered_task(self.site, rule, subject, zone, as_utc(cleared_at))
        if spec is None:
            return None
        with self.store.transaction() as tx:
            tx.insert([spec], TaskStatus.OPEN.value, as_utc(self.clock()))
            return tx.task_id(spec.schedule_id, spec.subject, spec.run_at.astimezone(UTC))

    def add_review(self, rule: str, subject: str, zone: str | None, closed_at: datetime) -> int | None:
        """A critical incident closed: 应急指挥部 owes a review within 7 d. Critical alarms of the same
        zone closing within 24 h of an existing review belong to that incident (one review)."""
        spec = domain.review_task(self.site, rule, subject, zone, as_utc(closed_at))
        with self.store.transaction() as tx:
            existing = tx.latest_task_id(spec.schedule_id, spec.subject, spec.run_at - domain.REVIEW_MERGE,
                                         spec.run_at)
            if existing is not None:
                return existing
            tx.insert([spec], TaskStatus.OPEN.value, as_utc(self.clock()))
            return tx.task_id(spec.schedule_id, spec.subject, spec.run_at)

    # ---- reading -------------------------------------------------------------------------------

    def tasks(self, status: str, now: datetime | None = None, zone: str | None = None,
              assignee: str | None = None, limit: int = 500) -> list[TaskView]:
        """status: due (open, deadline ahead), overdue (open, deadline passed), done, missed, open."""
        now = as_utc(now or self.clock())
        if status not in ("due", "overdue", "done", "missed", "open"):
            raise InspectionError("bad_status", "status must be one of due, overdue, done, missed, open")
        return [self._view(row, now) for row in self.store.tasks(status, now, zone, assignee, limit)]

    def get(self, task_id: int, now: datetime | None = None) -> TaskView:
        now = as_utc(now or self.clock())
        row = self.store.task(task_id)
        if row is None:
            raise NotFound(f"no inspection task {task_id}")
        results = {r.item_id: r for r in self.store.results(task_id)}
        photos = self.store.photo_ids(task_id)
        schedule = CATALOG[row.schedule_id]
        live = self._suggest(row, now, self.store.last_done) if row.status == TaskStatus.OPEN.value else {}
        items = []
        for i in schedule.items:
            stored = results.get(i.id)
            if stored is not None:
                items.append(ItemView(i.id, i.text, i.text_zh, i.prefill, i.on_the_spot, stored.outcome,
                                      stored.note, stored.suggested, tuple(stored.evidence or ()),
                                      prefill.overridden(stored.suggested, stored.outcome)))
            else:
                hint = live.get(i.id)
                items.append(ItemView(i.id, i.text, i.text_zh, i.prefill, i.on_the_spot, None, "",
                                      hint.outcome.value if hint else None, hint.evidence if hint else ()))
        return self._view(row, now, tuple(items), photos)

    # ---- pre-fill ------------------------------------------------------------------------------

    @staticmethod
    def last_check(row: TaskRecord, last_done: LastDone) -> datetime:
        """When the same duty was last completed (same seat, else same subject), before this task."""
        last = last_done(row)
        return last if last is not None else as_utc(row.run_at) - PREFILL_FALLBACK

    def _suggest(self, row: TaskRecord, now: datetime, last_done: LastDone) -> dict[str, prefill.Suggestion]:
        """Suggestions for the items of `row` that have a pre-fill kind, from the facts of `now`."""
        schedule = CATALOG.get(row.schedule_id)
        if self.facts is None or schedule is None:
            return {}
        kinds = frozenset(i.prefill for i in schedule.items if i.prefill)
        if not kinds:
            return {}
        facts = self.facts.gather(schedule, row.zone, row.seat, row.device, self.last_check(row, last_done), now, kinds)
        return {i.id: prefill.suggest(i.prefill, i.id, facts) for i in schedule.items if i.prefill}

    def photo(self, task_id: int, photo_id: int) -> tuple[str, bytes]:
        photo = self.store.photo(photo_id)
        if photo is None or photo[0] != task_id:
            raise NotFound(f"no photo {photo_id} on task {task_id}")
        return photo[1], photo[2]

    @staticmethod
    def _view(row: TaskRecord, now: datetime, items: tuple[ItemView, ...] = (),
              photos: tuple[int, ...] = ()) -> TaskView:
        schedule = CATALOG.get(row.schedule_id)
        due = as_utc(row.due_at)
        return TaskView(row.id, row.schedule_id, schedule.what if schedule else row.schedule_id,
                        schedule.what_zh if schedule else "", row.subject, row.zone, row.seat, row.device,
                        row.assignee, row.role, row.trigger, as_utc(row.run_at), due, row.status,
                        row.status == "open" and due <= now, _opt_utc(row.completed_at), row.completed_by,
                        row.note, items, photos)

    # ---- completing ----------------------------------------------------------------------------

    def complete(self, task_id: int, who: CompleterView, results: Mapping[str, tuple[str, str]],
                 note: str = "", now: datetime | None = None) -> Completion:
        """Validate and store a completion in one transaction; a refused one changes nothing."""
        now = as_utc(now or self.clock())
        with self.store.transaction() as tx:
            row = tx.task(task_id, lock=True)
            if row is None:
                raise NotFound(f"no inspection task {task_id}")
            done = domain.validate_completion(_state(row, tx.photo_count(task_id)), who, results, now, note)
            hints = self._suggest(row, now, tx.last_done)
            for result in done.results:
                hint = hints.get(result.item_id)
                tx.add_result(ResultRecord(task_id, result.item_id, result.outcome.value, result.note,
                                           hint.outcome.value if hint else None,
                                           tuple(hint.evidence) if hint else None))
            notes = {r.item_id: r.note for r in done.results}
            for item_id in done.hazards:
                tx.add_hazard(HazardRecord(task_id, item_id, row.zone, row.device, notes[item_id], now, who.name))
            tx.complete(task_id, now, who.name, done.note)
            # failed items the operator could not fix: the 当日领班 resolves or forwards them (30 min)
            forward = domain.forward_task(self.site, row.schedule_id, row.zone, row.seat, row.id, done.failed, now,
                                          as_utc(row.run_at))
            if forward is not None:
                tx.insert([forward], TaskStatus.OPEN.value, now)
            # in the completion's transaction: a crash after its commit cannot lose the page, and a refused
            # or rolled-back completion pages nobody
            paged = self._page_defects(tx, row, done, who.name, now)
        if paged and self.pager is not None:
            self.pager.wake()
        return done

    def _page_defects(self, tx: InspectionTx, row: TaskRecord, done: Completion, by: str, now: datetime) -> int:
        """One page per channel for the failed items someone must fix (domain.defects)."""
        found = domain.defects(row.schedule_id, done.failed, {r.item_id: r.note for r in done.results})
        if self.pager is None or not found:
            return 0
        schedule = CATALOG[row.schedule_id]
        zone = self.site.zones.get(row.zone) if row.zone else None
        where = zone.name or zone.id if zone else self.site.name or self.site.id
        at = now.astimezone(self.site.tz).strftime("%Y-%m-%d %H:%M")
        link = f"{self.pager.base_url.rstrip('/')}/api/inspections/{row.id}"
        # one page per channel: two roles that reach the same person (facilities and the safety officer
        # on one phone) give one page with both roles' items; a role without a channel is recorded as such
        # in the delivery log, as an alarm's page is
        pages: dict[tuple[str, str], tuple[str, set[str]]] = {}
        for role, items in domain.by_role(found).items():
            for url in routing.channels(role, self.site, row.zone, Severity.MAJOR) or [routing.NO_CHANNEL]:
                _, ids = pages.setdefault((url, role if url == routing.NO_CHANNEL else ""), (role, set()))
                ids.update(d.item.id for d in items)
        pushes = []
        for (url, _), (role, ids) in pages.items():
            title, body = domain.defect_text(schedule, [d for d in found if d.item.id in ids], where, by, at, link)
            pushes.append(Push(f"insp/{row.id}/{role}/{routing.url_hash(url)}", None, f"inspection:{row.id}",
                               role, url, Severity.MAJOR, routing.Text(title, body), []))
        return self.pager.enqueue_in(tx.outbox(), pushes)

    def add_photo(self, task_id: int, who: CompleterView, data: bytes, item_id: str | None = None,
                  now: datetime | None = None) -> int:
        """Attach a PNG or JPEG (≤ 5 MB) to an open task, e.g. as proof of an on-the-spot correction."""
        content_type = photo_type(data)
        now = as_utc(now or self.clock())
        with self.store.transaction() as tx:
            row = tx.task(task_id)
            if row is None:
                raise NotFound(f"no inspection task {task_id}")
            schedule = CATALOG[row.schedule_id]
            if item_id is not None and schedule.item(item_id) is None:
                raise InspectionError("unknown_item", f"task {task_id} ({schedule.id}) has no item {item_id}")
            if row.status == TaskStatus.DONE.value:
                raise InspectionError("already_completed", f"task {task_id} is already completed")
            if not domain.may_complete(schedule, _state(row), who):
                raise InspectionError("not_allowed", f"task {task_id} is assigned to {row.assignee}")
            return tx.add_photo(task_id, item_id, content_type, data, hashlib.sha256(data).hexdigest(), now,
                                who.name)

    # ---- overdue -------------------------------------------------------------------------------

    def overdue(self, now: datetime | None = None) -> list[domain.OverdueFinding]:
        """§2.9 findings at `now` with their escalation steps (the caller raises or notifies)."""
        now = as_utc(now or self.clock())
        rows = self.store.recent([(r.schedule_id, now - r.keep) for r in domain.OVERDUE_RULES if r.per_task])
        last_done = self.store.last_completed()
        origin = self.store.planned_from()
        start = origin if origin else now
        found = domain.evaluate_overdue(self.site, [_state(r) for r in rows], last_done, start, now)
        if self.training is not None:
            found += domain.evaluate_training(self.site, self.training[0], self.training[1], start, now)
        return found

    # ---- counts for the boards ------------------------------------------------------------------

    def record_counts(self, now: datetime | None = None) -> int:
        """Send the running counts of this month and of the last to `counts`; how many (zone, schedule)
        rows were sent. Run periodically: a deadline passing turns an open task into a missed one."""
        now = as_utc(now or self.clock())
        last_month = now.astimezone(self.site.tz).replace(day=1) - timedelta(days=1)
        return self._send_counts(last_month, now, until_settled=True) + self._send_counts(now, now)

    def _send_counts(self, at: datetime, now: datetime, until_settled: bool = False) -> int:
        """With `until_settled`, nothing is sent once the month's open tasks' last deadline + the grace is past:
        its counts no longer change, and its point (at the month's start) may be older than the time series'
        retention, which refuses it (dashboards/SCHEMA.md)."""
        if self.counts is None:
            return 0
        month = at.astimezone(self.site.tz).strftime("%Y-%m")
        start, end = domain.month_bounds(month, self.site.tz)
        rows = self.store.failures(start, end)
        if until_settled and not any(task.status == TaskStatus.OPEN.value and as_utc(task.due_at) + self.grace > now
                                    for task, _ in rows):
            return 0
        figures = domain.compliance(((_state(task), n) for task, n in rows), month, now, by_schedule=True)
        self.counts(start, figures)
        return len(figures)

    # ---- history and compliance ----------------------------------------------------------------

    def history(self, query: HistoryQuery, limit: int = 100_000, now: datetime | None = None) -> list[HistoryRow]:
        """One row per checklist item of completed tasks, and one row per open or missed task; an open one
        past its deadline at `now` is marked overdue."""
        now = as_utc(now or self.clock())
        out: list[HistoryRow] = []
        for task, result in self.store.history(
                zone=query.zone, device=query.device, schedule=query.schedule, person=query.person, item=query.item,
                result=query.result, since=query.since, until=query.until, limit=limit):
            schedule = CATALOG.get(task.schedule_id)
            item = schedule.item(result.item_id) if schedule and result else None
            completed = _opt_utc(task.completed_at)
            out.append(HistoryRow(
                task.id, task.schedule_id, schedule.what if schedule else "", task.zone, task.seat, task.device,
                task.subject, as_utc(task.run_at), as_utc(task.due_at), task.status, task.assignee,
                task.completed_by, completed, None if completed is None else completed <= as_utc(task.due_at),
                result.item_id if result else "", item.text if item else "", result.outcome if result else "",
                result.note if result else "", task.note, (result.suggested or "") if result else "",
                prefill.overridden(result.suggested, result.outcome) if result else False,
                tuple(result.evidence or ()) if result else (),
                what_zh=schedule.what_zh if schedule else "", item_text_zh=item.text_zh if item else "",
                overdue=task.status == TaskStatus.OPEN.value and as_utc(task.due_at) <= now))
        return out

    def history_csv(self, query: HistoryQuery, now: datetime | None = None) -> bytes:
        """CSV a spreadsheet opens: UTF-8 with BOM, a header row, CRLF lines, site-local ISO times."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_HEADER)

        def t(value: datetime | None) -> str:
            return "" if value is None else value.astimezone(self.site.tz).isoformat(timespec="seconds")

        for r in self.history(query, now=now):
            writer.writerow((r.task_id, r.schedule_id, r.what, r.what_zh, r.zone or "", r.seat or "", r.device or "",
                             r.subject, t(r.run_at), t(r.due_at), r.status, "yes" if r.overdue else "",
                             r.assignee or "", r.completed_by or "",
                             t(r.completed_at), "" if r.on_time is None else ("yes" if r.on_time else "no"),
                             r.item, r.item_text, r.item_text_zh, r.result, r.suggested, "yes" if r.overridden else "",
                             r.item_note, r.task_note, " | ".join(r.evidence)))
        return buffer.getvalue().encode("utf-8-sig")

    def report_html(self, query: HistoryQuery, now: datetime | None = None) -> str:
        """The printable report: compliance per zone for every month the history covers, then the tasks."""
        now = as_utc(now or self.clock())
        rows = self.history(query, now=now)
        months = sorted({r.run_at.astimezone(self.site.tz).strftime("%Y-%m") for r in rows})
        figures = {m: [c for c in self.compliance(m, now) if query.zone is None or c.zone == query.zone]
                   for m in months}
        hazards: dict[int, list[tuple[str, str, str, datetime]]] = {}
        ids = sorted({r.task_id for r in rows})
        for h in self.store.hazards(ids):
            hazards.setdefault(h.task_id, []).append((h.item_id, h.note, h.found_by, h.found_at))
        filters = {k: (v.astimezone(self.site.tz).isoformat(timespec="minutes") if isinstance(v, datetime) else str(v))
                   for k in HistoryQuery.__dataclass_fields__ if (v := getattr(query, k)) is not None}
        return render(site_name=self.site.name or self.site.id, tz=self.site.tz, filters=filters, generated=now,
                      rows=rows, compliance=figures, hazards=hazards)

    def compliance(self, month: str, now: datetime | None = None) -> list[domain.Compliance]:
        """Per zone ("site" for site-wide duties) for tasks run in `month` (YYYY-MM, site time)."""
        now = as_utc(now or self.clock())
        start, end = domain.month_bounds(month, self.site.tz)
        return domain.compliance(((_state(task), n) for task, n in self.store.failures(start, end)), month, now)
