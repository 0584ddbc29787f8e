"""elec.high_power_appliance's delayed cut (RULES.md §2.1): warn, wait, cut unless the shift lead holds it.

Flow. `on_alarm` (an AlarmService listener, registered before the notification service's) asks the
domain (`power.plan_delayed_cut`) whether the raised alarm's plug is to be cut; if so it writes a
`delayed_cuts` row due `cut_delay_s` later (60 s), so the alarm's first page, rendered after this
row exists, says when the cut comes (`note_of`). The row is cancelled when the alarm clears and held
when a person with a CUT_HOLDERS role holds the plug (`hold`, POST /api/devices/{id}/hold-cut).

A worker thread runs `run_due(now)`: each due pending row whose alarm is still open and raised is cut
through `CommandService.safety_cut` (the existing path: command row with expiry, audit, the edge's
CommandResult, relay read-back and elec.relay_mismatch). The command's ref is "alarm <id>"; a row
whose alarm already has such a relay_off (a crash after the send, before the row was marked) is
marked cut without a second command. Rows, not timers: a restart neither drops nor repeats a cut.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.repository import _aware, record_audit
from server.adapters.sql.response_models import CommandRow, CutHoldRow, DelayedCutRow
from server.domain import alarms as domain
from server.domain.power import HIGH_POWER, cut_note, plan_delayed_cut
from server.domain.site import DeviceKind, Site
from server.services.commands import CommandError, CommandService

log = logging.getLogger(__name__)

AlarmLookup = Callable[[int], domain.Alarm | None]
CurrentOf = Callable[[str], float | None]


class DelayedCutService:
    def __init__(self, sessions: sessionmaker[Session], site: Site, clock: Callable[[], datetime],
                 commands: CommandService, current_a: CurrentOf, alarm_by_id: AlarmLookup,
                 poll_s: float = 0.5) -> None:
        self.sessions = sessions
        self.site = site
        self.clock = clock
        self.commands = commands
        self.current_a = current_a
        """The latest current of a device (the plug's strip meter), None when unknown."""
        self.alarm_by_id = alarm_by_id
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start_worker(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="delayed-cuts", daemon=True)
        self._thread.start()

    def stop_worker(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.run_due(self.clock())
            except Exception:
                log.exception("delayed-cut pass failed")

    # -- alarms in ------------------------------------------------------------------------------------

    def on_alarm(self, alarm: domain.Alarm) -> None:
        """Schedule the cut of a newly raised high-power alarm; cancel it when the alarm clears."""
        if alarm.rule != HIGH_POWER or alarm.id is None:
            return
        now = self.clock()
        with self._lock, self.sessions.begin() as session:
            row = session.get(DelayedCutRow, alarm.id)
            if not alarm.is_open or not alarm.condition_active:
                if row is not None and row.status == "pending":
                    row.status, row.done_at, row.why = "cancelled", now, f"alarm {alarm.state.value}"
                return
            if row is not None or alarm.state is not domain.AlarmState.ACTIVE:
                return  # one cut per alarm; a re-trigger does not reschedule it
            device = self.site.devices.get(alarm.subject)
            strip = device.strip if device is not None else None
            plan = plan_delayed_cut(alarm.rule, alarm.subject, self.site,
                                    self.current_a(strip) if strip else None)
            if plan is None:
                return
            row = DelayedCutRow(alarm_id=alarm.id, device=plan.device, reason=plan.reason, created_at=now,
                                due_at=now + plan.delay, status="pending", by="", why="")
            hold = self._active_hold(session, plan.device, now)
            if hold is not None:  # the plug is already held by a person until a time
                row.status, row.by, row.why, row.done_at = "held", hold.by, hold.reason, now
            session.add(row)
        log.warning("alarm %s: %s", alarm.id, plan.reason)

    # -- the timer ------------------------------------------------------------------------------------

    def run_due(self, now: datetime) -> list[str]:
        """Cut every due pending plug whose alarm is still raised; returns the command ids sent."""
        sent: list[str] = []
        with self._lock:
            with self.sessions() as session:
                due = [(r.alarm_id, r.device, r.reason) for r in session.scalars(select(DelayedCutRow).where(
                    DelayedCutRow.status == "pending", DelayedCutRow.due_at <= now)).all()]
            for alarm_id, device, reason in due:
                alarm = self.alarm_by_id(alarm_id)
                ref = f"alarm {alarm_id}"
                command_id = self._sent(ref, device)  # a crash after the send: never a second command
                raised = alarm is not None and alarm.is_open and alarm.condition_active
                if command_id is None and raised and self.commands.safety_cut([device], reason, ref=ref):
                    command_id = self._sent(ref, device)
                    if command_id is not None:
                        sent.append(command_id)
                with self.sessions.begin() as session:
                    row = session.get(DelayedCutRow, alarm_id)
                    if row is None or row.status != "pending":
                        continue
                    if command_id is not None:
                        row.status, row.command_id = "cut", command_id
                    else:
                        row.status, row.why = "cancelled", "alarm no longer raised at the cut time"
                    row.done_at = now
        return sent

    # -- people ---------------------------------------------------------------------------------------

    def hold(self, device: str, who: str, reason: str, until: datetime | None) -> list[int]:
        """Hold the plug's pending cuts (and, with `until`, any cut scheduled before then); returns the
        held alarm ids. Raises KeyError for an unknown device, CommandError for one without a relay."""
        dev = self.site.devices.get(device)
        if dev is None:
            raise KeyError(device)
        if dev.kind is not DeviceKind.SMART_PLUG:
            raise CommandError(f"{device} is a {dev.kind.value}, not a smart plug with a relay")
        if not reason.strip():
            raise CommandError("a reason is required")
        now = self.clock()
        if until is not None and until <= now:
            raise CommandError("until must be in the future")
        with self._lock, self.sessions.begin() as session:
            rows = session.scalars(select(DelayedCutRow).where(
                DelayedCutRow.device == device, DelayedCutRow.status == "pending")).all()
            for row in rows:
                row.status, row.by, row.why, row.done_at = "held", who, reason[:500], now
            session.add(CutHoldRow(device=device, until=until, by=who, reason=reason[:500], created_at=now))
            held = [r.alarm_id for r in rows]
            record_audit(session, who, "relay.hold_cut", f"device:{device}",
                         {"reason": reason, "until": until.isoformat() if until else None, "alarms": held}, now)
        return held

    def state(self, device: str) -> dict[str, Any]:
        """The plug's delayed cuts (latest first) and the hold in force, for the API and its audit."""
        now = self.clock()
        with self.sessions() as session:
            rows = session.scalars(select(DelayedCutRow).where(DelayedCutRow.device == device)
                                   .order_by(DelayedCutRow.created_at.desc()).limit(20)).all()
            hold = self._active_hold(session, device, now)
            return {"cuts": [{"alarm_id": r.alarm_id, "status": r.status, "due_at": _aware(r.due_at),
                              "by": r.by, "why": r.why, "command_id": r.command_id} for r in rows],
                    "hold_until": _aware(hold.until) if hold is not None else None}

    def note_of(self, alarm_id: int) -> tuple[str, str] | None:
        """The cut line for the alarm's pages (zh, en), or None when the alarm has no delayed cut."""
        with self.sessions() as session:
            row = session.get(DelayedCutRow, alarm_id)
            if row is None or row.status == "cancelled":
                return None
            due = _aware(row.due_at) or row.due_at
            return cut_note(row.status, due, self.site.tz, row.by, row.why)

    def _sent(self, ref: str, device: str) -> str | None:
        with self.sessions() as session:
            return session.scalars(select(CommandRow.id).where(
                CommandRow.ref == ref, CommandRow.device == device, CommandRow.action == "relay_off")).first()

    @staticmethod
    def _active_hold(session: Session, device: str, now: datetime) -> CutHoldRow | None:
        return session.scalars(select(CutHoldRow).where(
            CutHoldRow.device == device, CutHoldRow.until.is_not(None), CutHoldRow.until > now)
            .order_by(CutHoldRow.created_at.desc())).first()

