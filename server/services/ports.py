"""What the services need from the outside world, as Protocols the adapters implement (server/adapters).

The services own these; an adapter satisfies one by its shape, so neither side imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, tzinfo
from typing import Any, Protocol

from sqlalchemy.orm import Session

from gateway.contract import Event, Reading
from server.domain.alarm_effects import GivenUp, Pending
from server.domain.alarms import Alarm, Audit
from server.domain.commands import CommandRecord
from server.domain.dead_letters import DeadLetter
from server.domain.device_meta import DeviceMeta
from server.domain.evacuation import Access, EvacuationRecord
from server.domain.inspections import HazardRecord, ResultRecord, Starter, TaskRecord, TaskSpec, Training
from server.domain.leases import Advert, Holder, Lease
from server.domain.notify import Silence
from server.domain.notify_records import DeliveryRecord, EscalationRecord, NotificationRecord
from server.domain.power import CutHold, CutOutcome, ScheduledCut
from server.domain.prefill import AlarmFact
from server.domain.rules.access import Approval
from server.domain.rules.engine import StateDelta
from server.domain.site import Site


class Sender(Protocol):
    """Sends one message through one channel URL (server/adapters/notify.py); raises when it was not taken."""

    def send(self, url: str, title: str, body: str, key: str | None = None) -> None: ...


class HrSource(Protocol):
    """Leavers and visitor approvals from the HR system, as read once (server/adapters/hr_file.py)."""

    @property
    def source(self) -> str:
        """Where it was read from, for messages (the file's path)."""
        ...

    def sections(self) -> frozenset[str]:
        """The sections the export spells out ("leavers", "visitor_approvals", ...), an explicit empty list
        included: a section that is absent is told apart from one HR emptied."""
        ...

    def approvals(self, tz: tzinfo) -> list[Approval]: ...

    def leave_times(self, tz: tzinfo) -> dict[str, datetime]: ...

    def active_badges(self, site: Site) -> set[str]: ...

    def unknown_leavers(self, site: Site) -> list[str]: ...

    def trainings(self, tz: tzinfo) -> Trainings | None:
        """None: the export has no `training:` section, so the train.* rules are off."""
        ...

    def starters(self) -> list[Starter]:
        """The `new_staff` section, also when there is no `training:` section."""
        ...


Trainings = tuple[list[Training], list[Starter]]
"""HR training records and new starters (the inspection service's train.* rules)."""

HrReader = Callable[[], HrSource]
"""Reads the HR export again; raises ValueError, its message `file:line: field: reason` (one line per
problem), when the export cannot be used."""


class SeriesStats(Protocol):
    """The counters of a time-series writer that ingest watches (sup.series_dropped)."""

    @property
    def dropped(self) -> int: ...

    @property
    def buffered(self) -> int: ...

    @property
    def max_buffer(self) -> int: ...

    @property
    def stalled(self) -> bool: ...

    @property
    def last_error(self) -> str | None: ...


class SeriesSink(Protocol):
    """Where ingest writes reading and event history (server/adapters/timeseries: InfluxDB or the SQLite
    store)."""

    def write_readings(self, readings: Iterable[tuple[Reading, DeviceMeta]]) -> None: ...

    def write_events(self, events: Iterable[tuple[Event, DeviceMeta]]) -> None: ...

    def stats(self) -> SeriesStats: ...


class LeaseStore(Protocol):
    """The partition leases (server/adapters/sql/leases.py, PostgreSQL)."""

    def holder(self, site: str, partition: int) -> Holder | None: ...

    def acquire(self, site: str, partition: int, owner: str, ttl_s: float, hash_: str,
                partitions: int, http_url: str | None = None, forward_key: str | None = None) -> Lease | None: ...

    def advert(self, site: str, partition: int) -> Advert | None:
        """Who owns the partition and where its HTTP API answers, for a standby to forward to."""

    def renew(self, lease: Lease, ttl_s: float) -> bool: ...

    def release(self, lease: Lease) -> None: ...

    def fence(self, session: Session, lease: Lease) -> None:
        """In the caller's transaction: raise LeaseLost unless `lease` is still this worker's."""


class InspectionFactsStore(Protocol):
    """What a checklist pre-fill reads from SQL (server/adapters/sql/inspection_facts.py)."""

    def alarm_facts(self, site: str, since: datetime, subjects: Collection[str] | None,
                    zones: Collection[str] | None) -> tuple[AlarmFact, ...]:
        """The site's elec.* and door.* alarms open now or raised since `since`, oldest first (at most
        500). `subjects` alone: of those devices; with `zones`: in those zones or of those devices."""

    def self_checks(self, schedules: Collection[str], zone: str | None, since: datetime,
                    now: datetime) -> list[TaskRecord]:
        """Tasks of `schedules` (of `zone`, None: any) run by `now`, completed since `since` or run since
        then and still open; by run time (at most 500)."""

    def issues(self, schedule: str, zone: str | None, since: datetime, now: datetime) -> list[TaskRecord]:
        """Tasks of `schedule` (of `zone`, None: any) run by `now`, run since `since` or not done yet; by
        run time (at most 500)."""

    def tasks(self, ids: Collection[int]) -> dict[int, TaskRecord]:
        """The tasks of these ids that exist, by id."""

    def results(self, task_ids: Collection[int]) -> list[ResultRecord]:
        """The stored answers of these tasks, in the order they were stored."""


class SilenceStore(Protocol):
    """The silences people set on alarms' pages (server/adapters/sql/silences.py)."""

    def active(self, now: datetime) -> list[Silence]:
        """The silences that have not ended at `now`."""

    def add(self, silence: Silence, now: datetime) -> int:
        """Store a silence set at `now`; returns its id."""


class DelayedCutTx(Protocol):
    """One transaction on the delayed cuts and holds (DelayedCutStore.transaction)."""

    def get(self, alarm_id: int) -> ScheduledCut | None: ...

    def save(self, cut: ScheduledCut) -> None:
        """Insert the alarm's cut, or write what changed of the one stored."""

    def pending(self, device: str) -> list[ScheduledCut]: ...

    def active_hold(self, device: str, now: datetime) -> CutHold | None:
        """The latest hold of `device` with an `until` after `now`."""

    def add_hold(self, hold: CutHold) -> None: ...

    def audit(self, who: str, action: str, target: str, detail: dict[str, Any], at: datetime) -> None: ...


class DelayedCutStore(Protocol):
    """The delayed cuts of elec.high_power_appliance and the plugs' holds (server/adapters/sql/delayed_cuts.py)."""

    def transaction(self) -> AbstractContextManager[DelayedCutTx]:
        """A transaction that commits when the block ends; under a lease it checks the lease first (a
        worker whose lease was taken commits nothing: LeaseLost)."""

    def get(self, alarm_id: int) -> ScheduledCut | None: ...

    def due(self, now: datetime) -> list[ScheduledCut]:
        """Pending cuts due at `now`."""

    def of_device(self, device: str, limit: int) -> list[ScheduledCut]:
        """The device's cuts, latest first."""

    def of_alarms(self, alarm_ids: Collection[int]) -> list[ScheduledCut]: ...

    def active_hold(self, device: str, now: datetime) -> CutHold | None: ...

    def relay_off_sent(self, ref: str, device: str) -> str | None:
        """The id of a relay_off command of `device` with this ref, if one was sent."""

    def outcomes(self) -> list[CutOutcome]:
        """The `cut` cuts whose command came back ok or failed."""


class NotifyTx(Protocol):
    """One transaction of the notification service (NotifyStore.transaction). The records it hands out
    are written back, as they are when the block ends, by its commit."""

    def escalation(self, alarm_id: int) -> EscalationRecord | None: ...

    def add_escalation(self, escalation: EscalationRecord) -> None: ...

    def due_escalations(self, now: datetime, limit: int) -> list[EscalationRecord]:
        """Running escalations due at `now`, earliest first."""

    def escalations_since(self, alarm_ids: Collection[int], severity: str) -> dict[int, datetime]:
        """When the escalation of each of these alarms started at `severity` (alarms that have one)."""

    def has_key(self, dedupe_key: str) -> bool:
        """A notification with this dedupe key is stored."""

    def groupable(self, group_key: str, severity: str, channel: str, since: datetime) -> NotificationRecord | None:
        """A queued notification of this group, severity and channel created after `since`, never attempted
        nor claimed: one that a push may still be folded into."""

    def fold(self, notification_id: int, items: list[dict[str, Any]], title: str, body: str) -> bool:
        """Replace a queued notification's items and text unless a worker claimed it meanwhile (False)."""

    def add(self, notification: NotificationRecord) -> None: ...

    def notification(self, notification_id: int) -> NotificationRecord | None: ...

    def add_delivery(self, delivery: DeliveryRecord) -> None: ...

    def requeue_sending(self, claimed_by: str | None) -> int:
        """Put back in the queue the notifications `sending` under `claimed_by` (None: under anyone)."""

    def withdraw(self, ref: str, reason: str) -> int:
        """Mark the notifications of `ref` not sent yet (queued or sending) withdrawn, with `reason`."""

    def ended_evacuations(self) -> list[tuple[str, datetime | None, str | None]]:
        """(id, all clear at, by) of every evacuation that is over (all clear, or a drill a real evacuation
        ended) and still has notifications not sent (queued or sending) under its id as their ref."""

    def claimable(self, now: datetime, limit: int, skip_channels: Collection[str],
                  skip_ids: Collection[int]) -> list[tuple[int, str]]:
        """(id, channel) of notifications due at `now` (queued, or `sending` with a lapsed lease), oldest
        due first."""

    def take(self, notification_id: int, now: datetime, lease_until: datetime, worker: str) -> bool:
        """Claim one if it is still claimable at `now`; False when another worker took it first."""

    def renew(self, notification_id: int, worker: str, lease_until: datetime) -> bool:
        """Extend `worker`'s claim; False when its lease lapsed and another worker took the row over."""

    def state(self, key: str) -> dict[str, Any] | None:
        """A stored service state (the `state` table)."""

    def save_state(self, key: str, state: dict[str, Any], now: datetime) -> None: ...


class NotifyStore(Protocol):
    """Escalations, the notification outbox and its delivery log (server/adapters/sql/notifications.py)."""

    @property
    def fences(self) -> bool:
        """Transactions opened with `fenced=True` run the site lease's check first (a worker under a lease)."""

    def transaction(self, fenced: bool = False) -> AbstractContextManager[NotifyTx]:
        """`fenced`: the site lease's check before the commit; LeaseLost (rolled back) once another worker owns
        the site."""

    def notifications(self, ids: Collection[int]) -> list[NotificationRecord]: ...

    def first_page(self, alarm_id: int, key_prefix: str) -> list[NotificationRecord]:
        """The alarm's notifications whose dedupe key starts with `key_prefix`, in the order they were queued."""

    def log(self, alarm_id: int | None, ref: str | None, limit: int) -> list[NotificationRecord]:
        """Notifications (of the alarm, of the ref), in the order they were queued."""

    def deliveries(self, notification_ids: Collection[int]) -> list[DeliveryRecord]:
        """Their delivery attempts, in the order they were made."""


class InspectionTx(Protocol):
    """One transaction on the inspection tables (InspectionStore.transaction)."""

    def watermark(self, schedule_id: str) -> datetime | None:
        """Up to when the schedule's tasks were planned; None: never."""

    def set_watermark(self, schedule_id: str, planned_until: datetime) -> None: ...

    def insert(self, specs: Iterable[TaskSpec], status: str, now: datetime) -> int:
        """Store the tasks not stored yet (one per schedule, subject and run); returns how many were new."""

    def task_id(self, schedule_id: str, subject: str, run_at: datetime) -> int | None: ...

    def latest_task_id(self, schedule_id: str, subject: str, after: datetime, until: datetime) -> int | None:
        """The latest task of the schedule and subject run in (after, until]."""

    def task(self, task_id: int, lock: bool = False) -> TaskRecord | None:
        """`lock`: no other transaction completes it until this one ends."""

    def photo_count(self, task_id: int) -> int: ...

    def last_done(self, task: TaskRecord) -> datetime | None: ...

    def add_result(self, result: ResultRecord) -> None: ...

    def add_hazard(self, hazard: HazardRecord) -> None: ...

    def complete(self, task_id: int, at: datetime, by: str, note: str) -> None:
        """Mark a task read in this transaction done."""

    def add_photo(self, task_id: int, item_id: str | None, content_type: str, data: bytes, sha256: str,
                  at: datetime, by: str) -> int: ...

    def outbox(self) -> NotifyTx:
        """The notification outbox in this same transaction: what is queued here commits with the rest."""


class InspectionStore(Protocol):
    """Inspection tasks, answers, photos, hazards and the planner's watermarks (server/adapters/sql/inspections.py)."""

    def transaction(self) -> AbstractContextManager[InspectionTx]:
        """A transaction that commits when the block ends; AlreadyStored when another writer stored the same
        task or watermark first."""

    def task(self, task_id: int) -> TaskRecord | None: ...

    def tasks(self, status: str, now: datetime, zone: str | None, assignee: str | None,
              limit: int) -> list[TaskRecord]:
        """`status`: due (open, deadline after `now`), overdue (open, deadline passed), done (latest first),
        missed or open; by deadline."""

    def results(self, task_id: int) -> list[ResultRecord]: ...

    def photo_ids(self, task_id: int) -> tuple[int, ...]: ...

    def photo(self, photo_id: int) -> tuple[int, str, bytes] | None:
        """(task id, content type, bytes)."""

    def last_done(self, task: TaskRecord) -> datetime | None:
        """When the same duty (same seat, else same subject) was last completed before this task."""

    def recent(self, runs_since: Sequence[tuple[str, datetime]]) -> list[TaskRecord]:
        """Tasks of each (schedule id, since) run since then."""

    def last_completed(self) -> dict[str, datetime | None]:
        """The latest completion per schedule id."""

    def planned_from(self) -> datetime | None:
        """When monitoring started (the first task was stored, else the first plan): a never-done duty's
        age counts from here. None before anything was planned."""

    def history(self, *, zone: str | None, device: str | None, schedule: str | None, person: str | None,
                item: str | None, result: str | None, since: datetime | None, until: datetime | None,
                limit: int) -> list[tuple[TaskRecord, ResultRecord | None]]:
        """Each task with each of its answers (None: a task without any), by run time."""

    def hazards(self, task_ids: Sequence[int]) -> list[HazardRecord]: ...

    def failures(self, start: datetime, end: datetime) -> list[tuple[TaskRecord, int]]:
        """Tasks run in [start, end) with their number of failed items."""


class AccessLogStore(Protocol):
    """The access log the roll call reads (server/adapters/sql/access_log.py)."""

    def add_new(self, events: Sequence[Access]) -> int:
        """Store the events not stored yet (one row per person, door, kind, time and direction); how many were new."""


# -- commands (server/services/commands.py) --------------------------------------------------------------


class CommandTx(Protocol):
    """One transaction on the commands (CommandStore.transaction)."""

    def add(self, command: CommandRecord) -> None: ...

    def exists(self, command_id: str) -> bool:
        """A command with this id is stored (an edge's report already recorded)."""

    def set_result(self, command_id: str, status: str, at: datetime, error: str | None) -> bool:
        """Record the edge's answer; False when no command has this id (not this server's)."""

    def audit(self, who: str, action: str, target: str, detail: dict[str, Any], at: datetime) -> None: ...


class CommandStore(Protocol):
    """The commands sent to the edges, with who asked and why (server/adapters/sql/commands.py)."""

    def transaction(self) -> AbstractContextManager[CommandTx]:
        """A transaction that commits when the block ends; under a lease it checks the lease first (a
        worker whose lease was taken commits nothing: LeaseLost)."""

    def recent(self, device: str | None, ref: str | None, limit: int) -> list[CommandRecord]:
        """Commands (of the device, of the ref), latest first."""

    def of_refs(self, refs: Sequence[str]) -> list[CommandRecord]:
        """Every command of any of these refs (one query for a list of alarms), oldest first."""


# -- evacuations (server/services/evacuation.py) ---------------------------------------------------------


class EvacuationTx(Protocol):
    """One transaction on the evacuations and their roll-call marks (EvacuationStore.transaction)."""

    def count(self) -> int:
        """How many evacuations are stored (the next one is `ev-{count + 1}`)."""

    def add(self, evacuation: EvacuationRecord) -> None: ...

    def end(self, evacuation_id: str, at: datetime, by: str) -> None:
        """The all-clear of a stored evacuation."""

    def marked(self, evacuation_id: str, person: str) -> bool:
        """A person was already marked safe in this evacuation."""

    def add_mark(self, evacuation_id: str, person: str, by: str, at: datetime, note: str) -> None: ...

    def renew_mark(self, evacuation_id: str, person: str, by: str, at: datetime, note: str) -> None:
        """Replace a person's mark (they were seen inside again after it, and marked safe once more)."""

    def audit(self, who: str, action: str, target: str, detail: dict[str, Any], at: datetime) -> None: ...


class EvacuationStore(Protocol):
    """Evacuations, their roll-call marks and the access log the roll call reads
    (server/adapters/sql/evacuations.py)."""

    def transaction(self) -> AbstractContextManager[EvacuationTx]:
        """A transaction that commits when the block ends; under a lease it checks the lease first (a
        worker whose lease was taken commits nothing: LeaseLost)."""

    def get(self, evacuation_id: str) -> EvacuationRecord | None: ...

    def active_on(self, floor: str) -> EvacuationRecord | None:
        """The floor's active evacuation."""

    def active(self) -> list[EvacuationRecord]:
        """Every active evacuation."""

    def started_since(self, floor: str, trigger: str, since: datetime) -> bool:
        """An evacuation of the floor by `trigger` was issued at or after `since`."""

    def history(self, limit: int) -> list[EvacuationRecord]:
        """Latest issued first."""

    def roll_call(self, evacuation_id: str) -> tuple[list[Access], dict[str, datetime]]:
        """Every access event by time, and when each person was marked safe in this evacuation."""


# -- alarm effects and the rules' checkpoint at start-up (server/services/recovery.py) -------------------


class EffectsStore(Protocol):
    """The alarm effects outbox: one row per committed alarm transition (server/adapters/sql/effects.py)."""

    def finish(self, outcomes: Sequence[tuple[int, str | None]], now: datetime, *, recovered: bool,
               give_up_after: int) -> list[GivenUp]:
        """Mark rows done (outcome None) or count a failure (outcome = what failed), in one transaction; a
        row that reaches `give_up_after` failures is done too, and returned."""

    def pending(self, *, failed_only: bool, before: datetime | None, limit: int) -> list[Pending]:
        """Rows not done, in commit order; `failed_only`: with failures; `before`: committed before then."""

    def counts(self) -> dict[str, int]:
        """pending, failed (pending with failures), recovered (dispatched again), done."""

    def prune(self, done_before: datetime) -> int:
        """Delete the rows done before then; how many."""


class RuleRows(Protocol):
    """Where the rule engine's checkpoints are read from (server/adapters/sql/repository.py)."""

    def load_rule_rows(self, site: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]: ...

    def load_legacy_rules(self) -> dict[str, Any] | None:
        """The single-blob rule snapshot of a version before the rows, if one is left."""


# -- the alarm service (services/alarms.py), its ingest checkpoint (services/checkpoint.py) and the effects
# outbox it records in the same transaction (services/recovery.py)


class CheckpointTx(Protocol):
    """What an ingest checkpoint writes, in the transaction of the drain's alarm changes."""

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None: ...

    def save_state(self, key: str, state: dict[str, Any], now: datetime) -> None:
        """Replace the named snapshot (the `state` table), without reading the one stored."""

    def save_rule_delta(self, delta: StateDelta, now: datetime) -> int:
        """Write the rule engine's changed rows (upserts, deletes); returns how many."""


class EffectsTx(Protocol):
    """Where the effects outbox records told alarm changes, in the transaction that made them."""

    def add_effects(self, alarms: Sequence[Alarm], now: datetime) -> list[int | None]:
        """One pending row per alarm, holding it as the listeners are to see it; returns their ids, in order
        (None for an alarm without an id)."""


class AlarmTx(CheckpointTx, EffectsTx, Protocol):
    """One transaction of the alarm service (AlarmStore.transaction): alarms, their audit rows, the audit log,
    the ingest checkpoint and the effects outbox commit together or not at all."""

    def save(self, alarm: Alarm, audits: Iterable[Audit], now: datetime) -> int:
        """Insert the alarm (id None) or overwrite its row, then add its audit rows; returns its id."""

    def audit(self, who: str, action: str, target: str, detail: dict[str, Any], at: datetime) -> None: ...


class AlarmStore(Protocol):
    """The alarms, their audit trail and the ingest checkpoint's tables (server/adapters/sql/alarms.py)."""

    def transaction(self) -> AbstractContextManager[AlarmTx]:
        """A transaction that commits when the block ends; under a lease it checks the lease first (a worker
        whose lease was taken commits nothing: LeaseLost)."""
