"""Notifications: escalation timers and an outbox in SQL, delivered by a worker thread with apprise.

Flow. `on_alarm` (an AlarmService listener, after the alarm's commit) opens an `escalations` row for
a new alarm (due now), marks it acknowledged, or stops it. `tick(now)` runs every escalation row that
is due: in ONE transaction it queues the step's pushes as `notifications` rows and moves the row to
its next due time. A crash before that commit redoes the step after restart; after it, the step is
done. Every queued row has a unique `dedupe_key` (alarm, step or repeat number, recipient, channel),
so a step is never queued twice. Timers are due times in SQL, not in-memory timers: a restart neither
drops nor repeats a step.

Delivery. The worker's pass (`dispatch`) claims due rows with a lease (status `sending`,
`lease_until`, `claimed_by`) in one short transaction and hands each to its channel's lane
(server/services/delivery.py): up to DELIVERY_THREADS channels send at once, one channel's rows go
out one after another in claim order, and the worker never waits for a send, so a slow channel holds
neither the others nor the escalation timers. A lane thread renews the row's lease if it waited long
in its lane, sends with apprise (bounded by ATTEMPT_TIMEOUT_S), and marks the row `sent` only after apprise
returned, only if the lease is still ours. A failure is retried with exponential backoff (5 s, 10 s,
20 s ... capped at 5 min; `failed` after MAX_ATTEMPTS). Every attempt is a `notification_log` row.
`deliver(now)` does the same and waits for the claimed rows' attempts (tests, a one-shot worker).

At-least-once, bounded. A worker killed between claim and send leaves the row `sending`; when the
lease runs out (LEASE) another worker claims and sends it: nothing is lost, and nothing was sent twice.
A worker killed after apprise returned but before its `sent` commit (a window of one SQL commit,
milliseconds) causes one duplicate message for that row when the lease runs out; that is the only
duplicate, at most one per crash per row in flight: one per channel, at most DELIVERY_THREADS. The
lease (LEASE, renewed when a row waited RENEW_AFTER in its lane) is far longer than one attempt
(ATTEMPT_TIMEOUT_S), so two live workers never send the same row.

Fallback (sup.notify_channel): a critical push that fails is re-queued at once to the site's
`fallback` contacts; a critical alarm not acknowledged within 60 s pages the fallback channel through
the escalation plan. Each delivery outcome is fed to the rule engine (`on_notify_result`) so that
3 consecutive failures of one channel raise sup.notify_channel.

§4 beyond paging. A warning still raised 24 h after its raise becomes minor: the escalation row's
step (`Step.promote`) commits a RAISE at the new severity through `commit` (the AlarmService), which
the alarm's audit records as an automatic escalation ("escalate", by system); the row stays due until
the alarm's change comes back through `on_alarm`, so a crash in between redoes it. Minor alarms are
never paged one by one: `send_digest(now)` queues, once per local day after DIGEST_AT, ONE message per
supervisor on duty listing every minor alarm unacknowledged for 24 h or more. The day it last ran is
kept in the `state` table in the same transaction as the queued rows (dedupe key digest/<day>/...):
a restart neither sends a day's digest twice nor skips it (a server down at DIGEST_AT sends it when
it is back).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.contract import Severity
from server.adapters.notify import Sender
from server.adapters.sql.models import EngineStateRow
from server.adapters.sql.repository import _aware, save_state
from server.adapters.sql.response_models import DeliveryLogRow, EscalationRow, NotificationRow, SilenceRow
from server.domain import alarms as domain
from server.domain import notify as routing
from server.domain.findings import SEVERITY_RANK, Finding, Transition
from server.domain.site import Site
from server.services import delivery

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=120)
CLAIM_BATCH = 20
MAX_ATTEMPTS = 8
BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(minutes=5)
DELIVERY_THREADS = 8
"""Channels sent to at the same time (each thread mostly waits on a socket)."""
LANE_DEPTH = 4
"""Rows claimed ahead per channel: a stalled channel holds at most this many claims, not the outbox."""
ATTEMPT_TIMEOUT_S = 30.0
"""One send's wall-clock bound, far below LEASE."""
RENEW_AFTER = LEASE / 4
"""A row that waited this long in its lane since its claim renews its lease before its attempt (a
write, so not done for every row: under load the SQL write lock is shared with ingest)."""

NotifyResult = Callable[[str, bool], None]
Commit = Callable[[Sequence[Finding], datetime], object]
DIGEST_STATE = "notify.digest"
NO_CHANNEL = "no_channel"
"""Status (and channel) of a row for a recipient without any channel: recorded, never sent."""
UNACKED = (domain.AlarmState.ACTIVE, domain.AlarmState.CLEARED_UNACKED)


@dataclass(frozen=True, slots=True)
class Push:
    """What to queue: one message for one recipient through one channel."""

    dedupe_key: str
    alarm_id: int | None
    ref: str
    recipient: str
    url: str
    severity: Severity
    text: routing.Text
    items: list[routing.Item]
    group_key: str | None = None
    fallback: bool = False
    hold: timedelta = timedelta(0)
    suppressed: str | None = None


def info_of(alarm: domain.Alarm, drill: bool = False) -> routing.AlarmInfo:
    assert alarm.id is not None
    return routing.AlarmInfo(alarm.id, alarm.rule, alarm.severity, alarm.subject, alarm.zone, alarm.site,
                             alarm.value, alarm.message, alarm.message_zh, drill)


class NotificationService:
    def __init__(self, sessions: sessionmaker[Session], site: Site, clock: Callable[[], datetime], sender: Sender,
                 *, base_url: str = "http://localhost:8000", worker_id: str = "worker",
                 open_alarms: Callable[[], Sequence[domain.Alarm]] = list,
                 alarm_by_id: Callable[[int], domain.Alarm | None] = lambda _id: None,
                 on_result: NotifyResult | None = None,
                 is_drill: Callable[[domain.Alarm], bool] = lambda _a: False,
                 poll_s: float = 1.0, before_send: Callable[[int], None] | None = None,
                 notes: Callable[[int], tuple[str, str] | None] = lambda _id: None,
                 commit: Commit | None = None, attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
                 threads: int = DELIVERY_THREADS, renew_after: timedelta = RENEW_AFTER,
                 sole_sender: bool = False) -> None:
        self.sessions = sessions
        self.sole_sender = sole_sender
        """This worker holds the site's lease: no other live worker sends its pushes, so at the start every
        row still `sending` (claimed by a worker that died or lost the lease) is re-queued at once."""
        self.site = site
        self.clock = clock
        self.sender = sender
        self.base_url = base_url
        self.worker_id = worker_id
        self.open_alarms = open_alarms
        self.alarm_by_id = alarm_by_id
        self.on_result = on_result
        self.is_drill = is_drill
        self.poll_s = poll_s
        self.before_send = before_send
        """Test hook: called with a row id after its claim and before its send."""
        self.notes = notes
        """A line for every page of an alarm (the delayed cut's time), by alarm id."""
        self.commit = commit
        """Commits findings as the AlarmService does (the warning -> minor escalation); None: no promotion."""
        self._promote: list[domain.Alarm] = []
        self._digest_done: date | None = None
        self._urls: dict[str, str] = {}
        for key in site.config.contacts:
            for url in site.contacts_of(key):
                self._urls[routing.url_hash(url)] = url
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.attempt_timeout_s = attempt_timeout_s
        self.renew_after = renew_after
        self.lanes = delivery.Lanes(threads, f"deliver-{worker_id}")
        self._inflight: set[int] = set()
        """Rows handed to a lane and not yet done: never claimed again by this worker meanwhile."""
        self._inflight_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self.release_own_leases()
        self._thread = threading.Thread(target=self._run, name=f"notify-{self.worker_id}", daemon=True)
        self._thread.start()
        warm = getattr(self.sender, "warm", None)
        if callable(warm):  # off the worker, so the timers start at once; a send meanwhile waits for it
            threading.Thread(target=warm, name=f"notify-warm-{self.worker_id}", daemon=True).start()

    def release_own_leases(self) -> int:
        """Re-queue rows this worker id still holds as `sending`: a worker that is only now starting
        cannot be sending them, so they were claimed by its previous life (a crash). Without this, a
        restarted server left those pushes (fire pages, evacuation notices) waiting out the whole LEASE.
        The one row that was in flight at the crash may then be delivered twice (at-least-once)."""
        mine = NotificationRow.claimed_by.is_not(None) if self.sole_sender else (
            NotificationRow.claimed_by == self.worker_id)
        with self._lock, self.sessions.begin() as session:
            result = session.execute(update(NotificationRow).where(
                NotificationRow.status == "sending", mine,
            ).values(status="queued", lease_until=None))
            released = int(getattr(result, "rowcount", 0) or 0)
        if released:
            log.warning("re-queued %d pushes this worker had claimed before a restart", released)
        return released

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        # a row still in a lane stays `sending`: release_own_leases re-queues it at the next start
        self.lanes.stop(5.0)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = self.clock()
                self.tick(now)
                self.dispatch(now)
            except Exception:
                log.exception("notification worker pass failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    # -- alarms in ------------------------------------------------------------------------------------

    def on_alarm(self, alarm: domain.Alarm) -> None:
        """AlarmService listener: open, acknowledge or stop the alarm's escalation."""
        if alarm.id is None:
            return
        now = self.clock()
        with self._lock, self.sessions.begin() as session:
            row = session.get(EscalationRow, alarm.id)
            if not alarm.is_open or alarm.state in (domain.AlarmState.CLEARED, domain.AlarmState.CLOSED):
                if row is not None and not row.stopped:
                    row.stopped, row.stopped_why, row.next_due_at = True, f"alarm {alarm.state.value}", None
                return
            if alarm.state is domain.AlarmState.CLEARED_UNACKED:
                # condition gone: no more steps, ack still wanted; a first page not yet queued still goes
                # (`_advance` stops the row after it)
                if row is not None and not row.stopped and row.next_step > 0:
                    row.stopped, row.stopped_why, row.next_due_at = True, "condition cleared", None
                return
            if alarm.state is domain.AlarmState.SHELVED:
                if row is not None and not row.stopped:  # hidden: nobody paged until the shelf ends
                    row.stopped, row.stopped_why, row.next_due_at = True, SHELVED_WHY, None
                return
            worse = row is not None and SEVERITY_RANK[alarm.severity] > SEVERITY_RANK[Severity(row.severity)]
            if alarm.state is domain.AlarmState.ACKNOWLEDGED:
                if row is not None and worse:  # escalated while acknowledged (a warning persisting 24 h)
                    _restart(row, alarm.severity, now, acked_at=_aware(row.acked_at) or now)
                    return
                if row is not None and row.stopped and row.stopped_why == SHELVED_WHY:
                    # off the shelf (it ran out, or acknowledged on it): the unresolved steps go on, due
                    # from the raise as before; acknowledged, so no repeats
                    row.stopped, row.stopped_why, row.repeat_at = False, "", None
                    row.next_due_at = row.step_due_at
                if row is not None and row.acked_at is None:
                    row.acked_at = now
                    row.repeat_at = None
                    row.next_due_at = row.step_due_at
                return
            if alarm.state is not domain.AlarmState.ACTIVE:
                return
            # raised again after its plan started: a drill's alarm that a real fire took over pages anew
            anew = row is not None and (_aware(alarm.raised_at) or now) > (_aware(row.raised_at) or now)
            if row is None or worse or row.stopped or anew:
                # a plan that starts after the alarm's raise gives its steps keys of their own (`_advance`):
                # the real fire's first page must not share the drill's keys, even at the same instant
                start = max(now, (_aware(alarm.raised_at) or now) + timedelta(microseconds=1)) if anew else now
                if row is None:
                    row = EscalationRow(alarm_id=alarm.id, paged=[], first=[], repeats=0)
                    session.add(row)
                    # A first look may come late (re-dispatched after a crash, server/services/recovery.py):
                    # the plan counts from the raise, so the downtime does not push every step back.
                    start = min(now, _aware(alarm.raised_at) or now)
                _restart(row, alarm.severity, start)
        self.wake()

    def _info(self, alarm_id: int) -> tuple[domain.Alarm, routing.AlarmInfo] | None:
        alarm = self.alarm_by_id(alarm_id)
        if alarm is None:
            return None
        info = info_of(alarm, self.is_drill(alarm))
        note = self.notes(alarm_id)
        return alarm, (replace(info, note=note) if note is not None else info)

    # -- escalation -----------------------------------------------------------------------------------

    def tick(self, now: datetime) -> int:
        """Run every due escalation step and repeat; returns how many pushes were queued."""
        queued = 0
        with self._lock, self.sessions.begin() as session:
            self._promote = []
            due = session.scalars(select(EscalationRow).where(
                EscalationRow.stopped.is_(False), EscalationRow.next_due_at.is_not(None),
                EscalationRow.next_due_at <= now).order_by(EscalationRow.next_due_at).limit(200)).all()
            for row in due:
                queued += self._advance(session, row, now)
            promote, self._promote = self._promote, []
        # outside the lock and the transaction: the commit calls back into on_alarm
        for alarm in promote:
            self._escalate(alarm, Severity.MINOR, now)
        queued += self.send_digest(now)
        if queued:
            self.wake()
        return queued

    def _escalate(self, alarm: domain.Alarm, severity: Severity, now: datetime) -> None:
        """§4: a warning that persisted 24 h becomes minor, as a RAISE at the new severity."""
        if self.commit is None:
            return
        hours = routing.WARNING_PERSISTS.total_seconds() / 3600
        self.commit([Finding(alarm.rule, Transition.RAISE, severity, alarm.subject, alarm.zone, alarm.site,
                             alarm.value, f"{alarm.message} (still raised after {hours:g} h: "
                             f"{alarm.severity.value} -> {severity.value}, RULES.md §4)", now,
                             f"{alarm.message_zh or alarm.message}(持续{hours:g}小时,升级为一般)")], now)

    def _advance(self, session: Session, row: EscalationRow, now: datetime) -> int:
        found = self._info(row.alarm_id)
        if found is None or not found[0].is_open:
            row.stopped, row.stopped_why, row.next_due_at = True, "alarm no longer open", None
            return 0
        alarm, info = found
        if SEVERITY_RANK[info.severity] > SEVERITY_RANK[Severity(row.severity)]:
            _restart(row, info.severity, now)  # escalated, and on_alarm did not get to say so
        steps = routing.plan(info, self.site)
        if not steps:  # nothing to page for this alarm (warnings, evac.notice): no repeats either
            row.stopped, row.stopped_why, row.next_due_at = True, "no pages planned", None
            return 0
        acked = alarm.state is domain.AlarmState.ACKNOWLEDGED or row.acked_at is not None
        resolved = not alarm.condition_active
        raised = _aware(row.raised_at) or now
        # a plan restarted later (re-raised after it cleared, or escalated) pages again: its steps get keys
        # of their own, which a crash-redo of the same restart shares (row.raised_at is kept)
        first_round = raised <= (_aware(alarm.raised_at) or raised)
        pushes: list[Push] = []
        paged = list(row.paged or [])
        while row.next_step < len(steps) and raised + steps[row.next_step].after <= now:
            step = steps[row.next_step]
            if step.promote is not None and routing.step_applies(step, acked, resolved):
                # the row stays due until the escalated alarm comes back through on_alarm
                self._promote.append(alarm)
                row.next_due_at = now
                return self._queue(session, pushes, now)
            if routing.step_applies(step, acked, resolved):
                keys = [k for k in step.recipients if k not in step.skip_if_paged or k not in paged]
                note = "" if row.next_step == 0 else f"升级第{row.next_step}级 (escalation step {row.next_step})"
                for d in routing.page(info, self.site, keys, now, self.base_url, fallback=step.fallback,
                                      escalation=note):
                    label = f"s{row.next_step}" if first_round else f"s{row.next_step}.{int(raised.timestamp())}"
                    pushes.append(self._push(info, d, label))
                paged += [k for k in keys if k not in paged]
                if row.next_step == 0:
                    row.first = list(step.recipients)
            row.next_step += 1
        repeat = routing.REPEAT.get(info.severity)
        repeat_due = _aware(row.repeat_at)
        if repeat is None or acked:
            row.repeat_at = None
        elif repeat_due is None:
            row.repeat_at = raised + repeat
        elif repeat_due <= now:
            row.repeats += 1
            note = f"第{row.repeats}次重复,尚未确认 (repeat {row.repeats}: not acknowledged)"
            for d in routing.page(info, self.site, list(row.first or []), now, self.base_url, escalation=note):
                if d.url != routing.NO_CHANNEL:  # the first page's row already shows that gap
                    pushes.append(self._push(info, d, f"r{row.repeats}"))
            while repeat_due <= now:
                repeat_due += repeat
            row.repeat_at = repeat_due
        else:
            row.repeat_at = repeat_due
        row.paged = paged
        if alarm.state is domain.AlarmState.CLEARED_UNACKED:  # its first page was the last
            row.stopped, row.stopped_why, row.next_due_at = True, "condition cleared", None
            return self._queue(session, pushes, now)
        row.step_due_at = raised + steps[row.next_step].after if row.next_step < len(steps) else None
        dues = [d for d in (row.step_due_at, row.repeat_at) if d is not None]
        row.next_due_at = min(dues) if dues else None
        if row.next_due_at is None:
            row.stopped, row.stopped_why = True, "plan done"
        return self._queue(session, pushes, now)

    def _push(self, info: routing.AlarmInfo, d: routing.Delivery, step: str) -> Push:
        # the fallback channel answers "nobody acknowledged a critical alarm": another open alarm that
        # says the same thing does not answer that, so inhibition never holds the fallback back
        reason = None if d.fallback else routing.inhibited(
            info, (routing.OpenAlarm(a.rule, a.subject, a.zone) for a in self.open_alarms()), self.site)
        if reason is None:
            silence = routing.silenced(info, self._silences(), self.clock())
            reason = f"silenced until {silence.ends_at.isoformat()} by {silence.by}" if silence else None
        hold = routing.group_wait(info) if d.group is not None and not d.fallback else timedelta(0)
        return Push(f"a{info.id}/{step}/{d.recipient}/{routing.url_hash(d.url)}", info.id, "", d.recipient, d.url,
                    info.severity, d.text, d.items, d.group, d.fallback, hold, reason)

    def _silences(self) -> list[routing.Silence]:
        with self.sessions() as session:
            rows = session.scalars(select(SilenceRow).where(SilenceRow.ends_at > self.clock())).all()
            return [routing.Silence(_aware(r.ends_at) or r.ends_at, r.rule, r.zone, r.subject, r.by, r.reason)
                    for r in rows]

    # -- the daily digest of minor alarms (§4) --------------------------------------------------------

    def send_digest(self, now: datetime) -> int:
        """Queue the day's digest if it is due and not yet done; returns how many pushes were queued."""
        day = routing.digest_day(now, self.site.tz)
        if self._digest_done == day:
            return 0  # the common case, without a transaction every second
        with self._lock, self.sessions.begin() as session:
            state = session.get(EngineStateRow, DIGEST_STATE)
            if state is not None and str(state.state.get("day", "")) >= day.isoformat():
                self._digest_done = day
                return 0
            minor = [a for a in self.open_alarms() if a.id is not None and a.severity is Severity.MINOR]
            since = {r.alarm_id: _aware(r.raised_at) for r in session.scalars(select(EscalationRow).where(
                EscalationRow.alarm_id.in_([a.id for a in minor]),
                EscalationRow.severity == Severity.MINOR.value)).all()} if minor else {}
            silences = self._silences()
            infos: list[routing.AlarmInfo] = []
            for alarm in minor:
                assert alarm.id is not None
                info = info_of(alarm, self.is_drill(alarm))
                if routing.in_digest(since.get(alarm.id) or alarm.raised_at, alarm.state not in UNACKED, now) \
                        and routing.silenced(info, silences, now) is None:
                    infos.append(info)
            pushes = [Push(f"digest/{day.isoformat()}/{d.recipient}/{routing.url_hash(d.url)}", None,
                           f"digest:{day.isoformat()}", d.recipient, d.url, Severity.MINOR, d.text, d.items)
                      for d in routing.digest(infos, self.site, now, self.base_url, day)]
            queued = self._queue(session, pushes, now)
            save_state(session, DIGEST_STATE, {"day": day.isoformat(), "at": now.isoformat(),
                                               "alarms": [i.id for i in infos]}, now)
        self._digest_done = day
        if infos:
            log.info("daily digest %s: %d minor alarms, %d pushes", day, len(infos), queued)
        return queued

    # -- the outbox ----------------------------------------------------------------------------------

    def enqueue(self, pushes: Sequence[Push]) -> int:
        """Queue pushes made elsewhere (evacuation notices); duplicates by dedupe_key are ignored."""
        with self._lock, self.sessions.begin() as session:
            n = self._queue(session, pushes, self.clock())
        self.wake()
        return n

    def first_page_of(self, alarm_id: int) -> list[tuple[str, str, str | None]]:
        """(recipient, url, suppressed reason) of every channel the alarm's first page (step 0) was queued
        to, so a follow-up about the alarm reaches the same people; empty before that page is queued."""
        with self.sessions() as session:
            rows = session.execute(select(NotificationRow.recipient, NotificationRow.channel,
                                          NotificationRow.status, NotificationRow.last_error).where(
                NotificationRow.alarm_id == alarm_id,
                NotificationRow.dedupe_key.like(f"a{alarm_id}/s0/%")).order_by(NotificationRow.id)).all()
        return [(r.recipient, self._urls[r.channel], r.last_error if r.status == "suppressed" else None)
                for r in rows if r.channel in self._urls and r.recipient != routing.FALLBACK]

    def _queue(self, session: Session, pushes: Sequence[Push], now: datetime) -> int:
        n = 0
        for p in pushes:
            if p.url == routing.NO_CHANNEL:
                n += self._no_channel(session, p, now)
                continue
            channel = routing.url_hash(p.url)
            self._urls.setdefault(channel, p.url)
            if session.scalar(select(NotificationRow.id).where(NotificationRow.dedupe_key == p.dedupe_key)):
                continue
            if p.group_key is not None and p.suppressed is None:
                # only a message of the same severity (so the same wait: it leaves no later than this push
                # would alone, and a critical page never waits for a major one) that no worker ever claimed:
                # a claimed row may have reached its receiver already (a crash before its record re-queues
                # it), and its repeat carries the same Idempotency-Key, so a receiver would drop what was
                # folded into it
                pending = session.scalars(select(NotificationRow).where(
                    NotificationRow.group_key == p.group_key, NotificationRow.severity == p.severity.value,
                    NotificationRow.channel == channel, NotificationRow.status == "queued",
                    NotificationRow.attempts == 0, NotificationRow.claimed_by.is_(None),
                    NotificationRow.created_at > now - routing.GROUP_WINDOW)).first()
                if pending is not None and self._fold(session, pending, p):
                    # the folded alarm is remembered by a marker row, so its step is not queued again
                    session.add(NotificationRow(
                        dedupe_key=p.dedupe_key, alarm_id=p.alarm_id, ref=p.ref, recipient=p.recipient,
                        channel=channel, severity=p.severity.value, title=p.text.title, body=p.text.body,
                        items=[i.as_dict() for i in p.items], group_key=p.group_key, fallback=p.fallback,
                        status="grouped", attempts=0, created_at=now, next_attempt_at=now,
                        last_error=f"sent within notification {pending.id}"))
                    n += 1
                    continue
            session.add(NotificationRow(
                dedupe_key=p.dedupe_key, alarm_id=p.alarm_id, ref=p.ref, recipient=p.recipient, channel=channel,
                severity=p.severity.value, title=p.text.title, body=p.text.body,
                items=[i.as_dict() for i in p.items], group_key=p.group_key, fallback=p.fallback,
                status="suppressed" if p.suppressed else "queued", attempts=0, created_at=now,
                next_attempt_at=now + p.hold, last_error=p.suppressed))
            session.flush()
            n += 1
        return n

    def _fold(self, session: Session, pending: NotificationRow, p: Push) -> bool:
        """Add the push's items to a queued row, unless a worker claimed that row since it was read (the
        claim and this update lock the row: whichever comes second sees the other's commit)."""
        items = [*pending.items, *(i.as_dict() for i in p.items)]
        text = routing.render([_item(i) for i in items], self.base_url)
        folded = session.execute(update(NotificationRow).where(
            NotificationRow.id == pending.id, NotificationRow.status == "queued",
            NotificationRow.claimed_by.is_(None),
        ).values(items=items, title=text.title, body=text.body).execution_options(synchronize_session=False))
        if getattr(folded, "rowcount", 0) != 1:
            return False
        session.expire(pending)
        return True

    def _no_channel(self, session: Session, p: Push, now: datetime) -> int:
        """A recipient the site file gives no channel: nothing is sent, and the alarm's log says so."""
        if session.scalar(select(NotificationRow.id).where(NotificationRow.dedupe_key == p.dedupe_key)):
            return 0
        who = p.recipient.removeprefix("person:")
        if p.recipient.startswith("person:") and who not in self.site.people:
            why = f"no channel for {p.recipient}: a card that is not in the site file names nobody to push to"
        else:
            why = f"no channel for {p.recipient}: add '{who}' (or one of its roles) under contacts in the site file"
        session.add(NotificationRow(
            dedupe_key=p.dedupe_key, alarm_id=p.alarm_id, ref=p.ref, recipient=p.recipient, channel=NO_CHANNEL,
            severity=p.severity.value, title=p.text.title, body=p.text.body, items=[i.as_dict() for i in p.items],
            group_key=None, fallback=p.fallback, status=NO_CHANNEL, attempts=0, created_at=now, next_attempt_at=now,
            last_error=why))
        return 1

    def claim(self, now: datetime, limit: int = CLAIM_BATCH, lanes: Mapping[str, int] | None = None,
              skip_ids: Collection[int] = ()) -> list[int]:
        """Take due rows (queued, or `sending` with a lapsed lease) for this worker, oldest due first.
        `lanes`: rows already in each channel's lane here; a channel gets at most LANE_DEPTH in all.
        `skip_ids`: rows this worker is still sending."""
        with self.sessions.begin() as session:
            q = select(NotificationRow.id, NotificationRow.channel).where(or_(
                and_(NotificationRow.status == "queued", NotificationRow.next_attempt_at <= now),
                and_(NotificationRow.status == "sending", NotificationRow.lease_until < now),
            ))
            room: dict[str, int] = {}
            if lanes is not None:
                room = {ch: LANE_DEPTH - depth for ch, depth in lanes.items()}
                full = [ch for ch, left in room.items() if left <= 0]
                if full:
                    q = q.where(NotificationRow.channel.not_in(full))
            if skip_ids:
                q = q.where(NotificationRow.id.not_in(list(skip_ids)))
            ids: list[int] = []
            skipped = False
            for nid, channel in session.execute(q.order_by(NotificationRow.next_attempt_at, NotificationRow.id)
                                                .limit(limit)):
                if lanes is not None:
                    left = room.get(channel, LANE_DEPTH)
                    if left <= 0:
                        skipped = True  # the channel's lane is full: the row waits for a later pass
                        continue
                    room[channel] = left - 1
                ids.append(nid)
            mine: list[int] = []
            for nid in ids:
                res = session.execute(update(NotificationRow).where(
                    NotificationRow.id == nid,
                    or_(NotificationRow.status == "queued",
                        and_(NotificationRow.status == "sending", NotificationRow.lease_until < now)),
                ).values(status="sending", lease_until=now + LEASE, claimed_by=self.worker_id))
                if getattr(res, "rowcount", 0) == 1:
                    mine.append(nid)
        if skipped:  # rows of other channels may lie beyond this batch: look again at once
            self.wake()
        return mine

    def deliver(self, now: datetime) -> int:
        """Claim what is due and send it (concurrently, one lane per channel); returns how many were sent
        once every claimed row's attempt is over."""
        done: list[threading.Event] = []
        sent: list[bool] = []
        for claimed in self._claim_lanes(now, None):
            finished = threading.Event()
            done.append(finished)

            def job(claimed: _Claimed = claimed, finished: threading.Event = finished) -> None:
                try:
                    sent.append(self._attempt(claimed) is True)
                finally:
                    finished.set()

            self._submit(claimed, job)
        for finished in done:
            finished.wait()
        return sum(sent)

    def dispatch(self, now: datetime) -> int:
        """The worker's pass: claim what is due and hand it to the lanes without waiting for any send.
        A channel's lane gets at most LANE_DEPTH rows (the rest stay queued for a later pass, their
        leases not yet started); returns how many rows were handed over."""
        claimed = self._claim_lanes(now, self.lanes.depths())
        for one in claimed:
            def job(one: _Claimed = one) -> None:
                self._attempt(one)
                self.wake()  # its end may free a full lane, or have queued a fallback row: look again

            self._submit(one, job)
        return len(claimed)

    def _claim_lanes(self, now: datetime, lanes: Mapping[str, int] | None) -> list[_Claimed]:
        """Claim, then read what each claimed row sends (once: a lane thread needs no SQL before it)."""
        with self._inflight_lock:
            inflight = set(self._inflight)
        ids = self.claim(now, CLAIM_BATCH, lanes, skip_ids=inflight)
        if not ids:
            return []
        at = time.monotonic()
        with self.sessions() as session:
            rows = {r.id: _Claimed(r.id, r.channel, r.title, r.body, r.severity, r.attempts, r.fallback, at)
                    for r in session.scalars(select(NotificationRow).where(NotificationRow.id.in_(ids)))}
        return [rows[nid] for nid in ids if nid in rows]

    def _submit(self, claimed: _Claimed, job: Callable[[], None]) -> None:
        with self._inflight_lock:
            self._inflight.add(claimed.id)

        def run() -> None:
            try:
                job()
            finally:
                with self._inflight_lock:
                    self._inflight.discard(claimed.id)

        self.lanes.submit(claimed.channel, run)

    def _attempt(self, claimed: _Claimed) -> bool | None:
        """One send of a claimed row on a lane thread: True sent, False failed, None no longer ours."""
        nid, channel, title, body = claimed.id, claimed.channel, claimed.title, claimed.body
        severity, attempt, fallback = claimed.severity, claimed.attempts, claimed.fallback
        if self.before_send is not None:
            self.before_send(nid)
        if time.monotonic() - claimed.at > self.renew_after.total_seconds():
            # waited long in its lane behind a slow channel: the lease counts again from this attempt
            with self.sessions.begin() as session:
                res = session.execute(update(NotificationRow).where(
                    NotificationRow.id == nid, NotificationRow.status == "sending",
                    NotificationRow.claimed_by == self.worker_id,
                ).values(lease_until=self.clock() + LEASE))
                if getattr(res, "rowcount", 0) != 1:
                    return None  # our lease lapsed and another worker took the row over
        url = self._urls.get(channel)
        started = time.perf_counter()
        error: str | None = None
        try:
            if url is None:
                raise RuntimeError(f"channel {channel} is no longer in the site's contacts")
            key = f"{self.site.id}-n{nid}"
            send_url = url
            delivery.attempt(lambda: self.sender.send(send_url, title, body, key=key), self.attempt_timeout_s,
                             f"notification {nid}")
        except Exception as exc:
            error = str(exc)[:500] or type(exc).__name__
        ms = (time.perf_counter() - started) * 1000
        done = self.clock()
        with self.sessions.begin() as session:
            row = session.get(NotificationRow, nid)
            if row is None or row.claimed_by != self.worker_id or row.status != "sending":
                return None  # our lease lapsed and another worker took it over
            row.attempts = attempt + 1
            session.add(DeliveryLogRow(notification_id=nid, at=done, attempt=row.attempts, ok=error is None,
                                       worker=self.worker_id, error=error, ms=ms))
            if error is None:
                row.status, row.sent_at, row.lease_until, row.last_error = "sent", done, None, None
            else:
                give_up = row.attempts >= MAX_ATTEMPTS
                row.status = "failed" if give_up else "queued"
                row.last_error, row.lease_until = error, None
                row.next_attempt_at = done + min(BACKOFF_MAX, BACKOFF_FIRST * (2 ** (row.attempts - 1)))
                if severity == Severity.CRITICAL.value and not fallback:
                    self._fallback(session, row, done)
        if error is not None:
            log.warning("notification %s via %s failed (attempt %d): %s", nid, channel, attempt + 1, error)
        if self.on_result is not None and not fallback:
            try:
                self.on_result(channel, error is None)
            except Exception:
                log.exception("notify result hook failed")
        return error is None

    def _fallback(self, session: Session, row: NotificationRow, now: datetime) -> None:
        items = [_item(i) for i in row.items]
        for url in self.site.contacts_of(routing.FALLBACK):
            text = routing.Text("[备用通道/fallback] " + row.title,
                                "推送未送达,经备用通道发送 (push not delivered: fallback channel)\n" + row.body)
            self._queue(session, [Push(f"fb/{row.id}/{routing.url_hash(url)}", row.alarm_id, row.ref,
                                       routing.FALLBACK, url, Severity.CRITICAL, text, items,
                                       fallback=True)], now)

    # -- queries ---------------------------------------------------------------------------------------

    def log_of(self, alarm_id: int | None = None, ref: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        with self.sessions() as session:
            q = select(NotificationRow).order_by(NotificationRow.id).limit(limit)
            if alarm_id is not None:
                q = q.where(NotificationRow.alarm_id == alarm_id)
            if ref is not None:
                q = q.where(NotificationRow.ref == ref)
            rows = session.scalars(q).all()
            ids = [r.id for r in rows]
            logs = session.scalars(select(DeliveryLogRow).where(DeliveryLogRow.notification_id.in_(ids))
                                   .order_by(DeliveryLogRow.id)).all() if ids else []
            by: dict[int, list[dict[str, Any]]] = {}
            for entry in logs:
                by.setdefault(entry.notification_id, []).append(
                    {"at": _aware(entry.at), "attempt": entry.attempt, "ok": entry.ok, "worker": entry.worker,
                     "error": entry.error, "ms": round(entry.ms, 1)})
            return [{"id": r.id, "alarm_id": r.alarm_id, "ref": r.ref, "recipient": r.recipient,
                     "channel": r.channel, "severity": r.severity, "status": r.status, "attempts": r.attempts,
                     "created_at": _aware(r.created_at), "next_attempt_at": _aware(r.next_attempt_at),
                     "sent_at": _aware(r.sent_at), "last_error": r.last_error, "fallback": r.fallback,
                     "title": r.title, "body": r.body, "deliveries": by.get(r.id, [])} for r in rows]

    def add_silence(self, rule: str, zone: str, subject: str, ends_at: datetime, by: str, reason: str) -> int:
        with self.sessions.begin() as session:
            row = SilenceRow(rule=rule, zone=zone, subject=subject, ends_at=ends_at, by=by, reason=reason,
                             created_at=self.clock())
            session.add(row)
            session.flush()
            return row.id


@dataclass(frozen=True, slots=True)
class _Claimed:
    """What a lane thread sends for one claimed row, read once after the claim."""

    id: int
    channel: str
    title: str
    body: str
    severity: str
    attempts: int
    fallback: bool
    at: float
    """time.monotonic() of the claim."""


def _item(data: dict[str, Any]) -> routing.Item:
    return routing.Item(int(data["alarm_id"]), str(data["rule"]), str(data["severity"]), str(data["zone"]),
                        str(data["zone_name"]), str(data["device"]), str(data["value"]), str(data["message"]),
                        str(data["message_zh"]))


SHELVED_WHY = f"alarm {domain.AlarmState.SHELVED.value}"
"""`stopped_why` of a row the shelf stopped: the only stop that an acknowledged alarm comes back from."""


def _restart(row: EscalationRow, severity: Severity, now: datetime, acked_at: datetime | None = None) -> None:
    """The escalation plan of `severity` from `now` (a new alarm, or one that became more severe)."""
    row.severity = severity.value
    row.raised_at = now
    row.next_step, row.step_due_at, row.repeat_at, row.next_due_at = 0, now, None, now
    row.acked_at, row.stopped, row.stopped_why = acked_at, False, ""
