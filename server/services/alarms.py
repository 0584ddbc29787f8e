"""Alarm use cases: apply findings through the domain state machine, persist, then tell the world.

Open alarms are cached in memory by (rule, subject) so that a finding costs a dict lookup, not a
query. Every change and its audit rows are committed in the same transaction as the ingest drain
that caused it (see services/ingest.py); listeners (SSE, MQTT AlarmChange, notifications) hear of a
change only after the commit, so nobody is told of an alarm that a crash could still undo. With an
`outbox` (services/recovery.py), each told change is also an `alarm_effects` row in that same
transaction, marked done once every listener returned: a crash between the commit and the listeners
leaves the row pending, and the next start tells the listeners again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from server.domain import alarms as domain
from server.domain.dead_letters import DeadLetter
from server.domain.findings import Finding
from server.domain.rules.engine import StateDelta
from server.services.checkpoint import Checkpoint
from server.services.ports import AlarmStore, AlarmTx
from server.services.recovery import EffectNotReady

if TYPE_CHECKING:
    from server.services.recovery import EffectsOutbox

log = logging.getLogger(__name__)

AlarmListener = Callable[[domain.Alarm], None]
AfterCommit = Callable[[Sequence[domain.Alarm]], None]
OpenIndex = dict[tuple[str, str], domain.Alarm]
"""The open alarms by (rule, subject)."""


class AlarmError(ValueError):
    """A request about an alarm that cannot be done (unknown id, wrong state); the message says why."""


class AlarmService:
    def __init__(self, store: AlarmStore, open_alarms: Sequence[domain.Alarm], *,
                 outbox: EffectsOutbox | None = None, after_commit: AfterCommit | None = None,
                 stored: Callable[[int], domain.Alarm | None] = lambda _id: None) -> None:
        self.store = store
        """Its transactions; under a lease, each checks the lease first and a worker that lost its partition's
        lease commits nothing (LeaseLost, rolled back; services/lease.py)."""
        self._open: OpenIndex = {(a.rule, a.subject): a for a in open_alarms}
        """Open alarms by (rule, subject); replaced whole under `_lock`, read without it."""
        self._lock = threading.RLock()
        self.listeners: list[AlarmListener] = []
        self.outbox = outbox
        """Where told changes are recorded until their listeners ran (None: not recorded)."""
        self.rule_rows_written = 0
        """Rule-engine rows the last checkpoint wrote (or deleted)."""
        self.after_commit = after_commit
        """Test hook between the commit and the listeners (services/recovery.py `crash_hook`)."""
        self.stored = stored
        """An alarm by id from the store, open or not (for `by_id` when it is not open)."""

    def open_alarms(self) -> list[domain.Alarm]:
        # No lock: `_open` is replaced whole, never changed in place, so a reader sees one consistent
        # map. (Taking the lock here deadlocked a reader that held a database write transaction
        # against ingest, which holds the lock while it waits for the database.)
        return list(self._open.values())

    def by_id(self, alarm_id: int) -> domain.Alarm | None:
        """The open alarm as this process holds it, else the stored one."""
        live = next((a for a in self._open.values() if a.id == alarm_id), None)
        return live if live is not None else self.stored(alarm_id)

    # -- from ingest: findings, in one transaction with the drain's other writes ------------------

    def commit(
        self,
        findings: Sequence[Finding],
        now: datetime,
        *,
        dead_letters: Sequence[DeadLetter] = (),
        sequences: dict[str, Any] | None = None,
        engine_state: StateDelta | None = None,
    ) -> list[domain.Alarm]:
        checkpoint = Checkpoint(dead_letters, sequences, engine_state)
        if not findings and checkpoint.is_empty():
            return []

        def apply(tx: AlarmTx, staged: OpenIndex) -> list[domain.Alarm]:
            changed: list[domain.Alarm] = []
            for finding in findings:
                key = (finding.rule, finding.subject)
                applied, effects = domain.apply(staged.get(key), finding, now)
                if applied is None:
                    continue  # a clear for an alarm that is not open: nothing to do
                alarm = self._persist(tx, applied, effects, now)
                _stage(staged, alarm)
                if any(isinstance(e, domain.Broadcast) for e in effects):
                    changed.append(alarm)
            rule_rows = checkpoint.write(tx, now)
            if rule_rows is not None:
                self.rule_rows_written = rule_rows
            return changed

        return self._in_transaction(apply, now)

    # -- from the clock ----------------------------------------------------------------------------

    def end_shelves(self, now: datetime) -> list[domain.Alarm]:
        """Put back every shelved alarm whose `shelved_until` has passed (one transaction); a restart
        loses nothing, since the shelf's end is a column of the alarm's row."""
        due = [a for a in self._open.values() if a.shelved_until is not None and a.shelved_until <= now]
        if not due:
            return []

        def unshelve(tx: AlarmTx, staged: OpenIndex) -> list[domain.Alarm]:
            changed: list[domain.Alarm] = []
            for current in due:
                result = domain.unshelve_due(staged.get((current.rule, current.subject), current), now)
                if result is None:
                    continue  # acknowledged, closed or escalated off the shelf meanwhile
                alarm = self._persist(tx, *result, now)
                _stage(staged, alarm)
                changed.append(alarm)
            return changed

        return self._in_transaction(unshelve, now)

    # -- from people (API, page) --------------------------------------------------------------------

    def acknowledge(self, alarm_id: int, by: str, note: str, now: datetime) -> domain.Alarm:
        return self._human(alarm_id, now, lambda a: domain.acknowledge(a, by, note, now), by, "acknowledge", note)

    def shelve(self, alarm_id: int, by: str, until: datetime, reason: str, now: datetime) -> domain.Alarm:
        return self._human(alarm_id, now, lambda a: domain.shelve(a, by, until, now, reason), by, "shelve", reason)

    def close(self, alarm_id: int, by: str, reason: str, now: datetime) -> domain.Alarm:
        return self._human(alarm_id, now, lambda a: domain.close(a, by, reason, now), by, "close", reason)

    def _human(self, alarm_id: int, now: datetime,
               change: Callable[[domain.Alarm], tuple[domain.Alarm, list[domain.Effect]]],
               by: str, action: str, why: str) -> domain.Alarm:
        with self._lock:
            current = next((a for a in self._open.values() if a.id == alarm_id), None)
            if current is None:
                raise AlarmError(f"alarm {alarm_id} is not open (unknown, or already closed)")
            try:
                alarm, effects = change(current)
            except domain.TransitionError as exc:
                raise AlarmError(str(exc)) from None
            with self.store.transaction() as tx:
                alarm = self._persist(tx, alarm, effects, now)
                tx.audit(by, f"alarm.{action}", f"alarm:{alarm_id}", {"why": why}, now)
                recorded = self._record(tx, [alarm], now)
            updated = dict(self._open)
            _stage(updated, alarm)
            self._open = updated
        self._tell([alarm], recorded)
        return alarm

    # -- persistence --------------------------------------------------------------------------------

    def _in_transaction(
        self, change: Callable[[AlarmTx, OpenIndex], list[domain.Alarm]], now: datetime
    ) -> list[domain.Alarm]:
        """Run `change` on a copy of the open alarms in one fenced transaction that also records the outbox;
        the copy replaces the open alarms only once that transaction has committed."""
        with self._lock:
            staged = dict(self._open)
            with self.store.transaction() as tx:
                changed = change(tx, staged)
                recorded = self._record(tx, changed, now)
            self._open = staged
        self._tell(changed, recorded)
        return changed

    def _record(self, tx: AlarmTx, changed: Sequence[domain.Alarm], now: datetime) -> list[int | None]:
        return self.outbox.record(tx, changed, now) if self.outbox is not None else []

    def _persist(self, tx: AlarmTx, alarm: domain.Alarm, effects: Sequence[domain.Effect],
                 now: datetime) -> domain.Alarm:
        if not any(isinstance(e, domain.Persist) for e in effects):
            return alarm
        alarm_id = tx.save(alarm, (e for e in effects if isinstance(e, domain.Audit)), now)
        return alarm if alarm.id == alarm_id else domain.with_id(alarm, alarm_id)

    def dispatch(self, alarm: domain.Alarm) -> str | None:
        """Tell every listener of one change; None when all succeeded, else what failed (each listener
        runs even when an earlier one failed: a failed MQTT publish must not stop a page)."""
        errors: list[str] = []
        for listener in self.listeners:
            try:
                listener(alarm)
            except EffectNotReady as exc:
                log.info("alarm %s: %s; retried later", alarm.id, exc)
                errors.append(f"not ready: {exc}")
            except Exception as exc:  # a listener's failure must not undo or block an alarm
                log.exception("alarm listener failed")
                errors.append(f"{getattr(listener, '__qualname__', listener)}: {type(exc).__name__}: {exc}")
        return "; ".join(errors) or None

    def _tell(self, changed: Sequence[domain.Alarm], effects: Sequence[int | None] = ()) -> None:
        if self.after_commit is not None and changed:
            self.after_commit(changed)
        outcomes = [(effect, self.dispatch(alarm)) for alarm, effect in zip(changed, effects or [None] * len(changed),
                                                                            strict=True)]
        if self.outbox is not None:
            try:
                self.outbox.finish([(e, error) for e, error in outcomes if e is not None])
            except Exception:  # never fail the caller (ingest would retry a commit that is done)
                log.exception("could not mark alarm effects done; they run again at the next start")


def _stage(index: OpenIndex, alarm: domain.Alarm) -> None:
    """Keep an open alarm in the (rule, subject) index of open alarms; drop a closed one."""
    key = (alarm.rule, alarm.subject)
    if domain.is_open(alarm):
        index[key] = alarm
    else:
        index.pop(key, None)
