"""Escalation: per alarm, an `escalations` row whose due time runs its plan's next step (server/domain/notify.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from gateway.contract import Severity
from server.domain import alarms as domain
from server.domain import notify as routing
from server.domain.findings import SEVERITY_RANK, Finding, Transition
from server.domain.notify_records import EscalationRecord
from server.services.notify.outbox import Outbox
from server.services.notify.push import Push, info_of
from server.services.notify.silences import Silences
from server.services.ports import NotifyTx


class Escalation(Silences, Outbox):
    def on_alarm(self, alarm: domain.Alarm) -> None:
        """AlarmService listener: open, acknowledge or stop the alarm's escalation."""
        if alarm.id is None:
            return
        now = self.clock()
        with self._lock, self.store.transaction() as tx:
            row = tx.escalation(alarm.id)
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
                    _restart(row, alarm.severity, now, acked_at=row.acked_at or now)
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
            anew = row is not None and alarm.raised_at > row.raised_at
            if row is None or worse or row.stopped or anew:
                # a plan that starts after the alarm's raise gives its steps keys of their own (`_advance`):
                # the real fire's first page must not share the drill's keys, even at the same instant
                start = max(now, alarm.raised_at + timedelta(microseconds=1)) if anew else now
                if row is None:
                    # A first look may come late (re-dispatched after a crash, server/services/recovery.py):
                    # the plan counts from the raise, so the downtime does not push every step back.
                    start = min(now, alarm.raised_at)
                    row = EscalationRecord(alarm.id, alarm.severity.value, start)
                    tx.add_escalation(row)
                _restart(row, alarm.severity, start)
        self.wake()

    def _info(self, alarm_id: int) -> tuple[domain.Alarm, routing.AlarmInfo] | None:
        alarm = self.alarm_by_id(alarm_id)
        if alarm is None:
            return None
        info = info_of(alarm, self.is_drill(alarm))
        note = self.notes(alarm_id)
        return alarm, (replace(info, note=note) if note is not None else info)

    def _escalate(self, alarm: domain.Alarm, severity: Severity, now: datetime) -> None:
        """§4: a warning that persisted 24 h becomes minor, as a RAISE at the new severity."""
        if self.commit is None:
            return
        hours = routing.WARNING_PERSISTS.total_seconds() / 3600
        self.commit([Finding(alarm.rule, Transition.RAISE, severity, alarm.subject, alarm.zone, alarm.site,
                             alarm.value, f"{alarm.message} (still raised after {hours:g} h: "
                             f"{alarm.severity.value} -> {severity.value}, RULES.md §4)", now,
                             f"{alarm.message_zh or alarm.message}(持续{hours:g}小时,升级为一般)")], now)

    def _advance(self, tx: NotifyTx, row: EscalationRecord, now: datetime) -> int:
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
        raised = row.raised_at
        # a plan restarted later (re-raised after it cleared, or escalated) pages again: its steps get keys
        # of their own, which a crash-redo of the same restart shares (row.raised_at is kept)
        first_round = raised <= alarm.raised_at
        pushes: list[Push] = []
        paged = list(row.paged or [])
        while row.next_step < len(steps) and raised + steps[row.next_step].after <= now:
            step = steps[row.next_step]
            if step.promote is not None and routing.step_applies(step, acked, resolved):
                # the row stays due until the escalated alarm comes back through on_alarm
                self._promote.append(alarm)
                row.next_due_at = now
                return self._queue(tx, pushes, now)
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
        repeat_due = row.repeat_at
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
            return self._queue(tx, pushes, now)
        row.step_due_at = raised + steps[row.next_step].after if row.next_step < len(steps) else None
        dues = [d for d in (row.step_due_at, row.repeat_at) if d is not None]
        row.next_due_at = min(dues) if dues else None
        if row.next_due_at is None:
            row.stopped, row.stopped_why = True, "plan done"
        return self._queue(tx, pushes, now)

    def _push(self, info: routing.AlarmInfo, d: routing.Delivery, step: str) -> Push:
        # the fallback channel answers "nobody acknowledged a critical alarm": another open alarm that
        # says the same thing does not answer that, so inhibition never holds the fallback back
        # only an alarm whose condition still holds inhibits: a latched fire.confirmed whose fire is over
        # must not silence the zone's next smoke alarm
        reason = None if d.fallback else routing.inhibited(
            info, (routing.OpenAlarm(a.rule, a.subject, a.zone) for a in self.open_alarms() if a.condition_active),
            self.site)
        if reason is None:
            silence = routing.silenced(info, self._silences(), self.clock())
            reason = f"silenced until {silence.ends_at.isoformat()} by {silence.by}" if silence else None
        hold = routing.group_wait(info) if d.group is not None and not d.fallback else timedelta(0)
        return Push(f"a{info.id}/{step}/{d.recipient}/{routing.url_hash(d.url)}", info.id, "", d.recipient, d.url,
                    info.severity, d.text, d.items, d.group, d.fallback, hold, reason)


SHELVED_WHY = f"alarm {domain.AlarmState.SHELVED.value}"
"""`stopped_why` of a row the shelf stopped: the only stop that an acknowledged alarm comes back from."""


def _restart(row: EscalationRecord, severity: Severity, now: datetime, acked_at: datetime | None = None) -> None:
    """The escalation plan of `severity` from `now` (a new alarm, or one that became more severe)."""
    row.severity = severity.value
    row.raised_at = now
    row.next_step, row.step_due_at, row.repeat_at, row.next_due_at = 0, now, None, now
    row.acked_at, row.stopped, row.stopped_why = acked_at, False, ""
