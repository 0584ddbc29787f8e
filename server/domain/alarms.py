"""The alarm state machine (pure): findings and people's actions in, a new alarm and effects out.

One alarm per (rule, subject) while it is open. States (after ISA-18.2 and ThingsBoard):

    active ──ack──▶ acknowledged ──condition clears──▶ cleared (closed)
      │                                ▲
      └─condition clears─▶ cleared_unacked ──ack──┘      (a re-raise before the ack re-activates it)
    shelved (until a time; never critical, never latching; back where it was when the time runs out)
    closed (a person ended it with a reason: the only way out for a latching alarm)

- Re-triggers update the open alarm and count occurrences; a higher severity escalates it (Notify).
- `value` is the latest value a finding carried (the clearing one, once cleared); `raised_value` the one it
  was raised at and `peak_value` the worst as of the alarm's last change (raise, escalation, clear: the
  engine sends findings only then, so a worse reading in between shows at the next change; the catalog's
  `Measure` says which way is worse).
- A drill's alarm (its words marked 【演练】/[DRILL]) raised again unmarked is a real fire that took it
  over: it takes the new words and a new raise time and is active and unacknowledged again.
- Smoke alarms latch (RULES.md §0.5-3): a CLEAR finding only notes that the condition went away;
  a person closes the alarm, with a reason.
- Flapping: an unacknowledged alarm that clears and re-raises stays the same alarm; after
  FLAP_CYCLES set/clear cycles within FLAP_WINDOW it is marked flapping and no longer clears by
  itself while nobody acknowledged it: it stays one open alarm (RULES.md §2.7). Acknowledging it ends
  it if its condition is off; if the condition still holds, it clears when the condition ends.
- Every transition yields an Audit effect: who, when, from which state to which, why.

The caller persists (Persist), tells people (Notify) and integrations (Broadcast), and writes the
audit rows, then keeps the returned alarm. Time is passed in; ids come from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gateway.contract import Severity
from server.domain.catalog import ids, measure_of
from server.domain.evacuation import is_drill_text
from server.domain.findings import SEVERITY_RANK, Finding

FLAP_WINDOW = timedelta(hours=1)
FLAP_CYCLES = 3
LATCHING_RULES = ids(lambda spec: spec.latching)
SYSTEM = "system"
"""The `who` of transitions caused by findings rather than people."""


class AlarmState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED_UNACKED = "cleared_unacked"
    CLEARED = "cleared"
    SHELVED = "shelved"
    CLOSED = "closed"


OPEN_STATES = frozenset({AlarmState.ACTIVE, AlarmState.ACKNOWLEDGED, AlarmState.CLEARED_UNACKED,
                         AlarmState.SHELVED})


class TransitionError(ValueError):
    """An action that the alarm's state does not allow; the message says why."""


@dataclass(frozen=True, slots=True)
class Alarm:
    rule: str
    subject: str
    zone: str | None
    site: str
    severity: Severity
    state: AlarmState
    raised_at: datetime
    value: float | None
    message: str
    message_zh: str = ""
    id: int | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    cleared_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    shelved_until: datetime | None = None
    occurrences: int = 1
    flap_count: int = 0
    latching: bool = False
    condition_active: bool = True
    """Whether the rule's condition holds now (a latched alarm can outlive its condition)."""
    flapping: bool = False
    cycles: tuple[datetime, ...] = field(default_factory=tuple)
    """When the condition cleared, for flap detection (only those inside FLAP_WINDOW are kept)."""
    state_before_shelve: AlarmState | None = None
    raised_value: float | None = None
    """The value it was raised at (a real fire that took over a drill's alarm: the fire's)."""
    peak_value: float | None = None
    """The worst value as of the alarm's last change (raise, escalation, clear), not of every reading since;
    None for a rule with no single worse direction."""
    last_raised_at: datetime | None = None
    """When it last became worse (an escalation) or came back (raised again after its condition cleared):
    what a push about that change and the page say. `raised_at` stays its first raise (its age, the
    paging ladder's start). None: stored before this field existed (see `latest_raise`)."""

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def latest_raise(self) -> datetime:
        return self.last_raised_at or self.raised_at

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Alarm:
        """Rebuild from a flat record (the SQL adapter's row plus its JSON extras)."""
        def when(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if isinstance(value, str) else value

        names = set(cls.__dataclass_fields__)
        data = {k: v for k, v in record.items() if k in names}
        data["severity"] = Severity(data["severity"])
        data["state"] = AlarmState(data["state"])
        if data.get("state_before_shelve"):
            data["state_before_shelve"] = AlarmState(data["state_before_shelve"])
        for name in ("raised_at", "acknowledged_at", "cleared_at", "closed_at", "shelved_until", "last_raised_at"):
            data[name] = when(data.get(name))
        data["cycles"] = tuple(when(c) for c in data.get("cycles") or ())
        if "raised_value" not in record and data.get("condition_active", True):
            # Raised by a version that kept no raised_value: while its condition holds, `value` is one it
            # held at; once cleared, `value` is the clearing one, which is no raised value.
            data["raised_value"] = data.get("value")
        return cls(**data)


# -- effects ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persist:
    alarm: Alarm


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell people: a new alarm, an escalation, or a re-activation."""

    alarm: Alarm
    why: str


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Tell integrations and live pages of any change."""

    alarm: Alarm


@dataclass(frozen=True, slots=True)
class Audit:
    at: datetime
    who: str
    action: str
    from_state: str | None
    to_state: str
    why: str


Effect = Persist | Notify | Broadcast | Audit


def is_open(alarm: Alarm) -> bool:
    return alarm.is_open


def with_id(alarm: Alarm, alarm_id: int) -> Alarm:
    return replace(alarm, id=alarm_id)


def _changed(before: Alarm | None, after: Alarm, at: datetime, who: str, action: str, why: str,
             notify: str | None = None) -> tuple[Alarm, list[Effect]]:
    effects: list[Effect] = [Persist(after), Broadcast(after),
                             Audit(at, who, action, before.state.value if before else None,
                                   after.state.value, why)]
    if notify is not None:
        effects.append(Notify(after, notify))
    return after, effects


# -- findings ---------------------------------------------------------------------------------------


def apply(alarm: Alarm | None, finding: Finding, now: datetime) -> tuple[Alarm | None, list[Effect]]:
    """Apply one finding to the open alarm of its (rule, subject), if any."""
    if alarm is not None and not alarm.is_open:
        alarm = None
    if finding.is_raise:
        return _raise(alarm, finding, now)
    if alarm is None:
        return None, []
    return _clear(alarm, finding, now)


def _raise(alarm: Alarm | None, finding: Finding, now: datetime) -> tuple[Alarm | None, list[Effect]]:
    if alarm is None:
        new = Alarm(rule=finding.rule, subject=finding.subject, zone=finding.zone, site=finding.site,
                    severity=finding.severity, state=AlarmState.ACTIVE, raised_at=now, value=finding.value,
                    message=finding.message, message_zh=finding.message_zh,
                    latching=finding.rule in LATCHING_RULES, raised_value=finding.value,
                    peak_value=_worst(finding.rule, finding.value, finding.peak), last_raised_at=now)
        return _changed(None, new, now, SYSTEM, "raise", finding.message, notify="raised")

    real_fire = is_drill_text(alarm.message_zh, alarm.message) and not is_drill_text(finding.message_zh,
                                                                                      finding.message)
    # A latched alarm acknowledged for an episode that is over (the detector reset, nobody closed it yet):
    # its condition coming back is a new alarm (RULES.md §0.5-3), not a silent re-trigger of the old one.
    returned = alarm.latching and not alarm.condition_active and alarm.state is AlarmState.ACKNOWLEDGED
    if real_fire or returned:
        # A drill's alarm that a real fire took over, or a latched alarm's new episode: new words, a new
        # raise, unacknowledged again, so it pages from the first step (RULES.md §3).
        real = replace(alarm, zone=finding.zone or alarm.zone, severity=finding.severity, state=AlarmState.ACTIVE,
                       raised_at=now, value=finding.value, occurrences=alarm.occurrences + 1, condition_active=True,
                       message=finding.message, message_zh=finding.message_zh, acknowledged_at=None,
                       acknowledged_by=None, cleared_at=None, raised_value=finding.value,
                       peak_value=_worst(finding.rule, finding.value, finding.peak), last_raised_at=now)
        return _changed(alarm, real, now, SYSTEM, "real-fire" if real_fire else "re-raise", finding.message,
                        notify="raised")
    escalated = SEVERITY_RANK[finding.severity] > SEVERITY_RANK[alarm.severity]
    severity = finding.severity if escalated else alarm.severity
    updated = replace(alarm, severity=severity, value=finding.value, occurrences=alarm.occurrences + 1,
                      last_raised_at=now if escalated else alarm.last_raised_at,
                      peak_value=_worst(alarm.rule, alarm.peak_value, finding.value, finding.peak),
                      condition_active=True, message=finding.message if escalated else alarm.message,
                      message_zh=finding.message_zh if escalated else alarm.message_zh)
    if alarm.state is AlarmState.CLEARED_UNACKED:
        # the condition is back: where and in which words are the new finding's (a floor's evacuation
        # notice raised again for a fire in another zone)
        updated = replace(updated, state=AlarmState.ACTIVE, cleared_at=None, zone=finding.zone or alarm.zone,
                          message=finding.message, message_zh=finding.message_zh, last_raised_at=now)
        return _changed(alarm, updated, now, SYSTEM, "re-raise", finding.message,
                        notify="escalated" if escalated else None)
    if escalated:
        # An escalation always reaches people, even from a shelf: severity rose since it was shelved.
        if alarm.state is AlarmState.SHELVED and finding.severity is Severity.CRITICAL:
            updated = replace(updated, state=alarm.state_before_shelve or AlarmState.ACTIVE,
                              shelved_until=None,
                              state_before_shelve=None)
        return _changed(alarm, updated, now, SYSTEM, "escalate",
                        f"{alarm.severity.value} → {finding.severity.value}: {finding.message}",
                        notify="escalated")
    if not alarm.condition_active:
        return _changed(alarm, updated, now, SYSTEM, "condition-returned", finding.message)
    # A plain re-trigger: count it, store the latest value, tell nobody again.
    return updated, [Persist(updated)]


def _worst(rule: str, *values: float | None) -> float | None:
    measure = measure_of(rule)
    return measure.worst(*values) if measure is not None else None


def _clear(alarm: Alarm, finding: Finding, now: datetime) -> tuple[Alarm | None, list[Effect]]:
    if not alarm.condition_active:
        return alarm, []
    cycles = tuple(c for c in (*alarm.cycles, now) if now - c < FLAP_WINDOW)
    # The clearing value is the latest, not a worse one: only the finding's peak can raise the worst.
    base = replace(alarm, condition_active=False, cycles=cycles, value=finding.value
                   if finding.value is not None else alarm.value,
                   peak_value=_worst(alarm.rule, alarm.peak_value, finding.peak))
    if alarm.latching:
        return _changed(alarm, base, now, SYSTEM, "condition-cleared",
                        "condition cleared; the alarm stays until a person closes it (latching)")
    # Flapping keeps open only what nobody acknowledged yet (RULES.md §2.7: the cycles collapse into one
    # open alert); an acknowledged alarm whose condition ends is done, flapping or not.
    acked = AlarmState.ACKNOWLEDGED in (alarm.state, alarm.state_before_shelve)
    if (len(cycles) >= FLAP_CYCLES or alarm.flapping) and not acked:
        flapping = replace(base, flapping=True, flap_count=len(cycles))
        return _changed(alarm, flapping, now, SYSTEM, "flapping",
                        f"{len(cycles)} set/clear cycles within {FLAP_WINDOW}: kept open until acknowledged")
    if alarm.state is AlarmState.ACTIVE:
        cleared = replace(base, state=AlarmState.CLEARED_UNACKED, cleared_at=now)
        return _changed(alarm, cleared, now, SYSTEM, "clear", "condition cleared before anyone acknowledged")
    if alarm.state in (AlarmState.ACKNOWLEDGED, AlarmState.SHELVED):
        cleared = replace(base, state=AlarmState.CLEARED, cleared_at=now, closed_at=now, shelved_until=None)
        return _changed(alarm, cleared, now, SYSTEM, "clear", "condition cleared")
    return base, [Persist(base)]


# -- people -----------------------------------------------------------------------------------------


def acknowledge(alarm: Alarm, by: str, note: str, now: datetime) -> tuple[Alarm, list[Effect]]:
    if alarm.state is AlarmState.ACTIVE or (alarm.state is AlarmState.SHELVED):
        if alarm.flapping and not alarm.condition_active:
            done = replace(alarm, state=AlarmState.CLEARED, acknowledged_at=now, acknowledged_by=by,
                           cleared_at=now, closed_at=now)
            return _changed(alarm, done, now, by, "acknowledge", note or "acknowledged (flapping, now clear)")
        acked = replace(alarm, state=AlarmState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by,
                        shelved_until=None, state_before_shelve=None)
        return _changed(alarm, acked, now, by, "acknowledge", note)
    if alarm.state is AlarmState.CLEARED_UNACKED:
        if alarm.latching:
            acked = replace(alarm, state=AlarmState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by)
            return _changed(alarm, acked, now, by, "acknowledge", note)
        done = replace(alarm, state=AlarmState.CLEARED, acknowledged_at=now, acknowledged_by=by,
                       closed_at=now)
        return _changed(alarm, done, now, by, "acknowledge", note)
    raise TransitionError(f"alarm {alarm.id} is {alarm.state.value}: there is nothing to acknowledge")


def shelve(alarm: Alarm, by: str, until: datetime, now: datetime, reason: str) -> tuple[Alarm, list[Effect]]:
    if alarm.latching or alarm.severity is Severity.CRITICAL:
        raise TransitionError("a critical or latching alarm cannot be shelved")
    if until <= now:
        raise TransitionError("a shelf must end in the future")
    if alarm.state not in (AlarmState.ACTIVE, AlarmState.ACKNOWLEDGED):
        raise TransitionError(f"alarm {alarm.id} is {alarm.state.value} and cannot be shelved")
    shelved = replace(alarm, state=AlarmState.SHELVED, shelved_until=until, state_before_shelve=alarm.state)
    return _changed(alarm, shelved, now, by, "shelve", f"until {until.isoformat()}: {reason}")


def unshelve_due(alarm: Alarm, now: datetime) -> tuple[Alarm, list[Effect]] | None:
    """A shelf that ran out puts the alarm back where it was, and people are told again.

    An alarm whose condition ended on the shelf is already `cleared`, except an unacknowledged flapping
    one: it comes back open and unacknowledged, as it would have stayed without the shelf.
    """
    if alarm.state is not AlarmState.SHELVED or alarm.shelved_until is None or now < alarm.shelved_until:
        return None
    back = replace(alarm, state=alarm.state_before_shelve or AlarmState.ACTIVE, shelved_until=None,
                   state_before_shelve=None)
    return _changed(alarm, back, now, SYSTEM, "unshelve", "the shelf ran out", notify="unshelved")


def close(alarm: Alarm, by: str, reason: str, now: datetime) -> tuple[Alarm, list[Effect]]:
    """A person ends the alarm (the only way to end a latching one), always with a reason."""
    if not reason.strip():
        raise TransitionError("closing an alarm needs a reason")
    if not alarm.is_open:
        raise TransitionError(f"alarm {alarm.id} is already {alarm.state.value}")
    closed = replace(alarm, state=AlarmState.CLOSED, closed_at=now, closed_by=by, close_reason=reason,
                     acknowledged_at=alarm.acknowledged_at or now,
                     acknowledged_by=alarm.acknowledged_by or by)
    return _changed(alarm, closed, now, by, "close", reason)
