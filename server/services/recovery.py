"""Alarm effects that survive a crash (issue 9, fault 2): an outbox of committed transitions.

The gap. AlarmService commits a transition, then tells its listeners (MQTT AlarmChange, escalation,
fire verification, evacuation, overload cut, inspections). A process that dies between that commit
and the listeners used to leave an open alarm that nobody was paged for, without its evacuation or
its cut, and nothing at start-up noticed: the alarm was committed, so the engine does not raise it
again and the broker's redelivery is dropped as already seen.

The fix. In the SAME transaction as the transition, `EffectsOutbox.record` writes one `alarm_effects`
row holding the alarm as the listeners are to see it. After every listener returned, the row is marked
done; a listener that raised leaves it pending with `failures` + 1. So a row that is pending when a
server starts is a transition whose effects may not have happened, and `EffectsRecovery.recover` runs
the listeners again for it, in commit order, on the ingest thread, before MQTT delivers anything. Rows
that failed while running are retried every RETRY_S until MAX_FAILURES (then given up, logged).

Re-running a transition must not repeat what already happened, so every listener is idempotent:
the escalation outbox has one row per alarm and one push per (alarm, step, recipient, channel); an
evacuation.notice starts at most one evacuation per floor and none if the alarm already has one; a
fire's door releases and an overload's cut look for commands with the alarm's ref first; inspections
are keyed by (schedule, subject, time); the AlarmChange on MQTT is a state message (consumers key it by
alarm id and state), so a repeat of it is harmless.

Test hook. `crash_hook` makes the process `os._exit(137)` right after the commit of a given rule's
raise, before any listener: only when FLOORWATCH_TEST_HOOKS=1 AND FLOORWATCH_TEST_CRASH_AFTER_COMMIT
name a rule. Test-only; a production server with it set logs a warning at start.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from server.domain import alarms as domain
from server.domain.alarm_effects import Pending
from server.domain.rules.engine import RuleEngine
from server.services.periodic import Periodic
from server.services.ports import EffectsStore, EffectsTx, RuleRows

log = logging.getLogger(__name__)

RETRY_S = 5.0
"""How often effects whose listener failed are dispatched again."""
MAX_FAILURES = 120
"""Failed dispatches before a row is given up (10 min at RETRY_S): a listener that can never succeed
must not run its siblings (MQTT publish, escalation check) forever."""
KEEP_DONE = timedelta(days=7)
"""Done rows are kept this long (what was dispatched, and whether by a recovery), then deleted."""

HOOKS_ENV = "FLOORWATCH_TEST_HOOKS"
CRASH_ENV = "FLOORWATCH_TEST_CRASH_AFTER_COMMIT"
CRASH_EXIT = 137
"""The exit status of a SIGKILLed process, so the test sees what a real kill looks like."""


class EffectNotReady(Exception):
    """A listener cannot do its effect yet and wants a retry, e.g. an overload cut right after a restart,
    before any plug current is known to choose the plugs. Logged without a traceback."""


Dispatch = Callable[[domain.Alarm], str | None]
"""Runs every listener for one alarm; returns None when all succeeded, else what failed."""


class EffectsOutbox:
    """The outbox's rows (EffectsStore): written inside the transition's transaction, finished after it."""

    def __init__(self, store: EffectsStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    def record(self, tx: EffectsTx, alarms: Sequence[domain.Alarm], now: datetime) -> list[int | None]:
        """In the caller's transaction: one pending row per alarm (None for an alarm without an id)."""
        if not alarms:
            return []  # most drains change no alarm: no call, no flush for them
        return tx.add_effects(alarms, now)

    def finish(self, outcomes: Sequence[tuple[int, str | None]], *, recovered: bool = False) -> None:
        """Mark rows done (outcome None) or count a failure (outcome = what failed)."""
        if not outcomes:
            return
        for row in self.store.finish(outcomes, self.clock(), recovered=recovered, give_up_after=MAX_FAILURES):
            log.error("alarm %s: effects given up after %d failed dispatches: %s", row.alarm_id, row.failures,
                      row.error)

    def pending(self, *, failed_only: bool = False, before: datetime | None = None,
                limit: int = 500) -> list[Pending]:
        """Pending rows in commit order; `failed_only`: those a dispatch already tried and failed;
        `before`: only rows committed before then (not those a live dispatch of this process owns)."""
        return self.store.pending(failed_only=failed_only, before=before, limit=limit)

    def counts(self) -> dict[str, int]:
        """pending, failed (pending with failures), recovered (dispatched again), done: for health."""
        return self.store.counts()

    def prune(self, now: datetime) -> int:
        return self.store.prune(now - KEEP_DONE)


class EffectsRecovery:
    """Dispatches pending rows again: all of them at start-up, failed ones every RETRY_S after that.

    `run_serial(fn)` runs `fn` where ingest's own dispatches run (the ingest thread). A row a live
    dispatch of this process still owns is never taken: the start-up pass takes only rows committed
    before `started_at`, later passes only rows whose dispatch already failed."""

    def __init__(self, outbox: EffectsOutbox, dispatch: Dispatch,
                 run_serial: Callable[[Callable[[], None]], None] | None = None,
                 retry_s: float = RETRY_S, started_at: datetime | None = None) -> None:
        self.outbox = outbox
        self.started_at = started_at or outbox.clock()
        self.dispatch = dispatch
        self.run_serial = run_serial or (lambda fn: fn())
        self.recovered = 0
        """Rows dispatched again by this process (start-up and retries)."""
        self._worker = Periodic("effects-retry", retry_s, self._retry_failed, log,
                                "retrying failed alarm effects failed")

    def recover(self, *, failed_only: bool = False) -> int:
        """Dispatch pending rows again, in commit order; returns how many were dispatched."""
        pending = self.outbox.pending(failed_only=failed_only, before=None if failed_only else self.started_at)
        if not pending:
            return 0
        if not failed_only:
            log.warning("recovering the effects of %d alarm transitions committed before a restart: %s",
                        len(pending), ", ".join(f"{p.alarm.rule}#{p.alarm.id} {p.alarm.state.value}"
                                                for p in pending[:20]))
        outcomes = [(p.id, self.dispatch(p.alarm)) for p in pending]
        self.outbox.finish(outcomes, recovered=True)
        self.recovered += len(pending)
        return len(pending)

    def start(self) -> int:
        """Recover everything pending now (blocking), then keep retrying failures in the background."""
        self.outbox.prune(self.outbox.clock())
        box: list[int] = []
        self.run_serial(lambda: box.append(self.recover()))
        self._worker.start()
        return box[0] if box else 0

    def stop(self) -> None:
        self._worker.stop()

    def _recover_failed(self) -> None:
        self.recover(failed_only=True)

    def _retry_failed(self) -> None:
        if self.outbox.counts()["failed"]:
            self.run_serial(self._recover_failed)


def crash_hook(environ: Mapping[str, str] = os.environ) -> Callable[[Sequence[domain.Alarm]], None] | None:
    """TEST ONLY: exit the process right after committing the raise of rule FLOORWATCH_TEST_CRASH_AFTER_COMMIT,
    before any listener; acts only when FLOORWATCH_TEST_HOOKS=1 is also set (two deliberate settings)."""
    rule = environ.get(CRASH_ENV, "").strip()
    if not rule:
        return None
    if environ.get(HOOKS_ENV) != "1":
        log.warning("%s is set but ignored: test hooks are off (%s=1 is for tests only)", CRASH_ENV, HOOKS_ENV)
        return None
    log.warning("TEST HOOK ACTIVE: the server exits with %d after committing the raise of %s (never in production)",
                CRASH_EXIT, rule)

    def crash(alarms: Sequence[domain.Alarm]) -> None:
        if any(a.rule == rule and a.state is domain.AlarmState.ACTIVE and a.occurrences == 1 for a in alarms):
            sys.stderr.write(f"test hook: exiting {CRASH_EXIT} after the commit of {rule}\n")
            sys.stderr.flush()
            os._exit(CRASH_EXIT)

    return crash


def restore_rules(store: RuleRows, engine: RuleEngine) -> str:
    """Put the rule engine's last checkpoint back: from its rows (a row per changed device and per
    site-wide part); when there are none, once from the single-blob snapshot of an older version, whose
    first checkpoint then writes every row and deletes the blob. Returns where it came from: `rows`,
    `blob` or `none` (a first start)."""
    devices, parts = store.load_rule_rows(engine.site.id)
    if devices or parts:
        engine.restore_rows(devices, parts)
        log.info("rule state restored: %d device rows, %d site rows", len(devices), len(parts))
        return "rows"
    blob = store.load_legacy_rules()
    if blob:
        engine.restore(blob)
        log.info("rule state restored from the single-blob snapshot of an older version; "
                 "the first checkpoint rewrites it as rows")
        return "blob"
    return "none"
