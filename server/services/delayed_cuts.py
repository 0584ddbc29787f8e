"""elec.high_power_appliance's delayed cut (RULES.md §2.1): warn, wait, cut unless the shift lead holds it.

Flow. `on_alarm` (an AlarmService listener, registered before the notification service's) asks the
domain (`power.plan_delayed_cut`) whether the raised alarm's plug is to be cut; if so it writes a
`delayed_cuts` row due `cut_delay_s` later (60 s), so the alarm's first page, rendered after this
row exists, says when the cut comes (`delayed_cut_note`). The row is cancelled when the alarm clears and held
when a person with a CUT_HOLDERS role holds the plug (`hold`, POST /api/devices/{id}/hold-cut).

A worker thread runs `run_due(now)`: each due pending row whose alarm is still open and raised is cut
through `CommandService.safety_cut` (the existing path: command row with expiry, audit, the edge's
CommandResult, relay read-back and elec.relay_mismatch). The command's ref is "alarm <id>"; a row
whose alarm already has such a relay_off (a crash after the send, before the row was marked) is
marked cut without a second command. Rows, not timers: a restart neither drops nor repeats a cut.

Follow-ups (issue #5). A hold, and a cut the edge confirmed, each send one push to the channels the
alarm's first page went to, through the notification outbox with the dedupe key
`cut/<alarm>/<held|done>/<recipient>/<channel>`. The same pass that cuts moves a `cut` row whose
command came back ok to `done`, after its push is queued: a crash in between queues it again, and the
key drops the copy. The API shows the row on the alarm (`cuts_of`, then `CutPublic.of` in
server/api/schemas.py): pending, held, cutting (command sent, no result yet), done, failed (the edge
refused or failed the command), cancelled.

Under a lease (several workers) each transaction of the store (`DelayedCutStore.transaction`) checks
the lease first: a worker whose lease was taken schedules, holds and cuts nothing more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from server.domain import alarms as domain
from server.domain import notify as routing
from server.domain.policy import Actor, Role, can_see_person
from server.domain.power import HIGH_POWER, CutHold, ScheduledCut, cut_note, plan_delayed_cut
from server.domain.site import Site
from server.services.commands import CommandError, CommandService, check_relay_request
from server.services.notify import NotificationService, Push, info_of
from server.services.periodic import Periodic
from server.services.ports import DelayedCutStore

log = logging.getLogger(__name__)

AlarmLookup = Callable[[int], domain.Alarm | None]
CurrentOf = Callable[[str], float | None]

FOLLOW_UP_WITHIN = timedelta(minutes=10)
"""A confirmed cut older than this gets no "done" push: rows cut before follow-ups existed (an upgrade)
are marked done quietly instead of paging people about yesterday's kettle."""


def delayed_cut_note(cuts: DelayedCutStore, site: Site, alarm_id: int) -> tuple[str, str] | None:
    """The delayed cut's line for the alarm's pages (zh, en), or None when the alarm has none."""
    cut = cuts.get(alarm_id)
    if cut is None or cut.status == "cancelled":
        return None
    return cut_note("cut" if cut.status == "done" else cut.status, cut.due_at, site.tz, cut.by, cut.why)


class DelayedCutService:
    def __init__(self, cuts: DelayedCutStore, site: Site, clock: Callable[[], datetime],
                 commands: CommandService, current_a: CurrentOf, alarm_by_id: AlarmLookup,
                 poll_s: float = 0.5, notify: NotificationService | None = None) -> None:
        self.cuts = cuts
        """The delayed cuts and holds; under a lease its transactions check the lease first."""
        self.site = site
        self.clock = clock
        self.commands = commands
        self.current_a = current_a
        """The latest current of a device (the plug's strip meter), None when unknown."""
        self.alarm_by_id = alarm_by_id
        self.notify = notify
        """The outbox for the hold and done follow-ups; None (the service alone, in tests) sends none."""
        self._lock = threading.Lock()
        self._worker = Periodic("delayed-cuts", poll_s, lambda: self.run_due(self.clock()), log,
                                "delayed-cut pass failed")

    # -- lifecycle -----------------------------------------------------------------------------------

    def start_worker(self) -> None:
        self._worker.start()

    def stop_worker(self) -> None:
        self._worker.stop()

    # -- alarms in ------------------------------------------------------------------------------------

    def on_alarm(self, alarm: domain.Alarm) -> None:
        """Schedule the cut of a newly raised high-power alarm; cancel it when the alarm clears."""
        if alarm.rule != HIGH_POWER or alarm.id is None:
            return
        now = self.clock()
        with self._lock, self.cuts.transaction() as tx:
            cut = tx.get(alarm.id)
            if not alarm.is_open or not alarm.condition_active:
                if cut is not None and cut.status == "pending":
                    tx.save(replace(cut, status="cancelled", done_at=now, why=f"alarm {alarm.state.value}"))
                return
            if cut is not None or alarm.state is not domain.AlarmState.ACTIVE:
                return  # one cut per alarm; a re-trigger does not reschedule it
            device = self.site.devices.get(alarm.subject)
            strip = device.strip if device is not None else None
            plan = plan_delayed_cut(alarm.rule, alarm.subject, self.site,
                                    self.current_a(strip) if strip else None)
            if plan is None:
                return
            # "a further 60 s" after the alarm (RULES.md §2.1): from its raise, also when this listener
            # runs late (re-dispatched after a crash, server/services/recovery.py)
            raised = min(now, alarm.raised_at)
            cut = ScheduledCut(alarm.id, plan.device, plan.reason, now, raised + plan.delay, "pending")
            hold = tx.active_hold(plan.device, now)
            if hold is not None:  # the plug is already held by a person until a time
                cut = replace(cut, status="held", by=hold.by, why=hold.reason, done_at=now)
            tx.save(cut)
        log.warning("alarm %s: %s", alarm.id, plan.reason)

    # -- the timer ------------------------------------------------------------------------------------

    def run_due(self, now: datetime) -> list[str]:
        """Cut every due pending plug whose alarm is still raised; returns the command ids sent."""
        sent: list[str] = []
        with self._lock:
            due = [(c.alarm_id, c.device, c.reason) for c in self.cuts.due(now)]
            for alarm_id, device, reason in due:
                alarm = self.alarm_by_id(alarm_id)
                ref = f"alarm {alarm_id}"
                command_id = self._sent(ref, device)  # a crash after the send: never a second command
                raised = alarm is not None and alarm.is_open and alarm.condition_active
                if command_id is None and raised and self.commands.safety_cut([device], reason, ref=ref):
                    command_id = self._sent(ref, device)
                    if command_id is not None:
                        sent.append(command_id)
                with self.cuts.transaction() as tx:
                    cut = tx.get(alarm_id)
                    if cut is None or cut.status != "pending":
                        continue
                    if command_id is not None:
                        tx.save(replace(cut, status="cut", command_id=command_id, done_at=now))
                    else:
                        tx.save(replace(cut, status="cancelled", why="alarm no longer raised at the cut time",
                                        done_at=now))
        self.confirm(now)
        return sent

    def confirm(self, now: datetime) -> list[int]:
        """Move each `cut` row whose command has a result to done (push queued first) or failed; returns
        the alarm ids now done."""
        done: list[int] = []
        for outcome in self.cuts.outcomes():
            alarm_id, status, error = outcome.alarm_id, outcome.command_status, outcome.error
            at = outcome.result_at or now
            if status == "ok" and now - at <= FOLLOW_UP_WITHIN:
                zh_at = at.astimezone(self.site.tz).strftime("%H:%M:%S")
                self._follow_up(alarm_id, "done", f"已于 {zh_at} 断开该插座电源,网关已确认",
                                f"relay OFF at {zh_at}, confirmed by the edge")
            with self._lock, self.cuts.transaction() as tx:
                cut = tx.get(alarm_id)
                if cut is None or cut.status != "cut":
                    continue
                if status == "ok":
                    tx.save(replace(cut, status="done", done_at=at))
                else:
                    why = (error or "the edge reported the command failed")[:500]
                    tx.save(replace(cut, status="failed", done_at=at, why=why))
                    log.warning("alarm %s: delayed cut of %s failed: %s", alarm_id, cut.device, why)
            if status == "ok":
                done.append(alarm_id)
        return done

    # -- people ---------------------------------------------------------------------------------------

    def hold(self, device: str, who: str, reason: str, until: datetime | None) -> list[int]:
        """Hold the plug's pending cuts (and, with `until`, any cut scheduled before then); returns the
        held alarm ids. Raises KeyError for an unknown device, CommandError for one without a relay."""
        check_relay_request(self.site, device, reason)
        now = self.clock()
        if until is not None and until <= now:
            raise CommandError("until must be in the future")
        with self._lock, self.cuts.transaction() as tx:
            pending = tx.pending(device)
            for cut in pending:
                tx.save(replace(cut, status="held", by=who, why=reason[:500], done_at=now))
            tx.add_hold(CutHold(device, until, who, reason[:500], now))
            held = [c.alarm_id for c in pending]
            tx.audit(who, "relay.hold_cut", f"device:{device}",
                     {"reason": reason, "until": until.isoformat() if until else None, "alarms": held}, now)
        for alarm_id in held:  # after the commit: the push tells of a hold that is in SQL
            self._follow_up(alarm_id, "held", f"断电已由 {who} 暂缓:{reason[:500]}",
                            f"cut held by {who}: {reason[:500]}", holder=who)
        return held

    def state(self, device: str) -> dict[str, Any]:
        """The plug's delayed cuts (latest first) and the hold in force, for the API and its audit."""
        now = self.clock()
        cuts = self.cuts.of_device(device, 20)
        hold = self.cuts.active_hold(device, now)
        return {"cuts": [{"alarm_id": c.alarm_id, "status": c.status, "due_at": c.due_at,
                          "by": c.by, "why": c.why, "command_id": c.command_id} for c in cuts],
                "hold_until": hold.until if hold is not None else None}

    def note_of(self, alarm_id: int) -> tuple[str, str] | None:
        """The cut line for the alarm's pages (zh, en), or None when the alarm has no delayed cut."""
        return delayed_cut_note(self.cuts, self.site, alarm_id)

    def cuts_of(self, alarm_ids: Iterable[int]) -> dict[int, ScheduledCut]:
        """The delayed cut of each alarm that has one, for the alarm API (one query for a whole list)."""
        ids = list(alarm_ids)
        if not ids:
            return {}
        return {c.alarm_id: c for c in self.cuts.of_alarms(ids)}

    # -- follow-up pushes -----------------------------------------------------------------------------

    def _follow_up(self, alarm_id: int, event: str, zh: str, en: str, holder: str | None = None) -> int:
        """One push per channel of the alarm's first page; `holder` is left out for a recipient who may not
        see that person (the seat operator sees only themselves, as on the API)."""
        alarm = self.alarm_by_id(alarm_id)
        if self.notify is None or alarm is None or alarm.id is None:
            return 0
        info = info_of(alarm)  # its time is the alarm's last raise, as on every push (docs/alarms.md)
        channels = self.notify.first_page_of(alarm_id)
        if not channels:  # held before the first page was queued: the recipients that page will have
            steps = routing.plan(info, self.site)
            channels = [(d.recipient, d.url, None) for d in routing.page(
                info, self.site, steps[0].recipients if steps else [], self.clock(), self.notify.base_url)
                if not d.fallback]
        it = routing.item(info, self.site)
        title = f"[断电/cut {event}] {it.rule} {it.zone_name} {it.device}"
        pushes = []
        for recipient, url, suppressed in channels:
            line_zh, line_en = zh, en
            if holder is not None and not self._sees(recipient, holder, alarm.zone):
                line_zh, line_en = zh.replace(holder, "领班或上级"), en.replace(holder, "a shift lead or above")
            text = routing.render([it], self.notify.base_url, extra_zh=line_zh, extra_en=line_en)
            pushes.append(Push(f"cut/{alarm_id}/{event}/{recipient}/{routing.url_hash(url)}", alarm_id,
                               f"cut:{alarm_id}", recipient, url, alarm.severity, routing.Text(title, text.body),
                               [it], suppressed=suppressed))
        return self.notify.enqueue(pushes)

    def _sees(self, recipient: str, person: str, zone: str | None) -> bool:
        """May this recipient see `person`? Role and group channels answer for the floor; a person is
        judged by their roles in the site file and their rostered zones, as the API would judge them."""
        if not recipient.startswith("person:"):
            return True
        pid = recipient.removeprefix("person:")
        found = self.site.people.get(pid)
        known = {r.value for r in Role}
        roles = frozenset(Role(r) for r in (found.roles if found else []) if r in known)
        zones = frozenset(e.zone for e in self.site.config.roster if e.person == pid)
        return can_see_person(Actor(pid, roles, zones), person, {zone} if zone else set())

    def _sent(self, ref: str, device: str) -> str | None:
        return self.cuts.relay_off_sent(ref, device)

