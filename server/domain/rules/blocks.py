"""Building blocks of the rules: small state machines with `step(value, now)`.

Each block keeps only its own state; its parameters come from the rule (and the site's overrides).
`due()` says when the block next needs a look even if no reading comes (a hold that runs out), so the
engine can schedule a timer instead of polling every device. `STATE` names the fields that a snapshot
keeps; parameters are not persisted because a restart re-reads them from the site file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from gateway.contract import Severity
from server.domain.findings import SEVERITY_RANK, Transition


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@dataclass(slots=True)
class Threshold:
    """Raise after the value is past `on` for `hold` s; clear after it is back past `off` for `clear_hold` s.

    `rising=True` watches for high values (raise at >= on, or > on with `strict`; clear below off);
    `rising=False` for low values (raise at <= on, or < on with `strict`; clear above off).
    A value of None means "condition not present" and counts towards clearing. Between `off` and `on`
    nothing changes (hysteresis), so a steady value there never flaps.
    """

    on: float
    off: float
    hold: float = 0.0
    clear_hold: float = 0.0
    rising: bool = True
    strict: bool = False
    active: bool = False
    since: datetime | None = None
    clear_since: datetime | None = None
    STATE: ClassVar[tuple[str, ...]] = ("active", "since", "clear_since")

    def past_on(self, value: float) -> bool:
        if self.rising:
            return value > self.on if self.strict else value >= self.on
        return value < self.on if self.strict else value <= self.on

    def past_off(self, value: float) -> bool:
        return value < self.off if self.rising else value > self.off

    def step(self, value: float | None, now: datetime) -> Transition | None:
        # One debounce, two directions: a run of the condition (of its absence, once active) starts a
        # clock, a break stops it, and a run held long enough flips the state.
        if not self.active:
            self.since = (self.since or now) if value is not None and self.past_on(value) else None
            if self.since is None or now - self.since < _s(self.hold):
                return None
            return self._flip(True, Transition.RAISE)
        self.clear_since = (self.clear_since or now) if value is None or self.past_off(value) else None
        if self.clear_since is None or now - self.clear_since < _s(self.clear_hold):
            return None
        return self._flip(False, Transition.CLEAR)

    def _flip(self, active: bool, transition: Transition) -> Transition:
        self.active, self.since, self.clear_since = active, None, None
        return transition

    def due(self) -> datetime | None:
        if not self.active and self.since is not None:
            return self.since + _s(self.hold)
        if self.active and self.clear_since is not None:
            return self.clear_since + _s(self.clear_hold)
        return None

    def reset(self) -> None:
        self.active, self.since, self.clear_since = False, None, None


def flag(hold: float = 0.0, clear_hold: float = 0.0) -> Threshold:
    """A debounced boolean: feed 1.0 for true, 0.0 for false."""
    return Threshold(on=1.0, off=1.0, hold=hold, clear_hold=clear_hold)


@dataclass(slots=True)
class Staged:
    """Staged severity: several thresholds on one signal; the level is the worst active one.

    E.g. elec.strip_overload: >100 % 60 s major; >100 % 5 min critical; >=125 % 10 s critical.
    The level only rises while the condition lasts or worsens; it drops to None when every stage
    has cleared. (A stage clearing while a lower one stays active does not lower the alarm: the alarm
    keeps its worst severity until it clears.)
    """

    stages: list[Threshold]
    severities: list[Severity]
    level: Severity | None = None
    STATE: ClassVar[tuple[str, ...]] = ("stages", "level")

    def step(self, value: float | None, now: datetime) -> Severity | None:
        for stage in self.stages:
            stage.step(value, now)
        active = [sev for stage, sev in zip(self.stages, self.severities, strict=True) if stage.active]
        if not active:
            self.level = None
        else:
            top = max(active, key=SEVERITY_RANK.__getitem__)
            if self.level is None or SEVERITY_RANK[top] > SEVERITY_RANK[self.level]:
                self.level = top
        return self.level

    def due(self) -> datetime | None:
        return earliest(s.due() for s in self.stages)


@dataclass(slots=True)
class RateOfRise:
    """Rise of at least `per_min` per minute over each of the last `intervals` sample intervals.

    Sample intervals longer than `max_gap` s break the chain (a gap is not a trend).
    """

    per_min: float
    intervals: int = 2
    max_gap: float = 120.0
    samples: list[tuple[datetime, float]] = field(default_factory=list)
    STATE: ClassVar[tuple[str, ...]] = ("samples",)

    def step(self, value: float, now: datetime) -> bool:
        if self.samples and now <= self.samples[-1][0]:
            return self.rising()  # same or older instant: no new interval
        self.samples.append((now, value))
        del self.samples[: -(self.intervals + 1)]
        return self.rising()

    def rising(self) -> bool:
        if len(self.samples) < self.intervals + 1:
            return False
        for (t0, v0), (t1, v1) in zip(self.samples, self.samples[1:], strict=False):
            seconds = (t1 - t0).total_seconds()
            if seconds <= 0 or seconds > self.max_gap or (v1 - v0) * 60.0 / seconds < self.per_min:
                return False
        return True

    def rate_per_min(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, v0), (t1, v1) = self.samples[-2], self.samples[-1]
        seconds = (t1 - t0).total_seconds()
        return (v1 - v0) * 60.0 / seconds if seconds > 0 else 0.0


@dataclass(slots=True)
class WindowSpread:
    """Largest change (max - min) of the samples within the last `window` s (mr.temp_rate)."""

    window: float
    samples: list[tuple[datetime, float]] = field(default_factory=list)
    STATE: ClassVar[tuple[str, ...]] = ("samples",)

    def step(self, value: float | None, now: datetime) -> float:
        if value is not None and (not self.samples or now > self.samples[-1][0]):
            self.samples.append((now, value))
        cutoff = now - _s(self.window)
        while self.samples and self.samples[0][0] < cutoff:
            self.samples.pop(0)
        if not self.samples:
            return 0.0
        values = [v for _, v in self.samples]
        return max(values) - min(values)

    def due(self) -> datetime | None:
        # The spread can only shrink when the oldest sample leaves the window.
        return self.samples[0][0] + _s(self.window) if len(self.samples) > 1 else None


@dataclass(slots=True)
class RollingMean:
    """Mean over the last `window` s in fixed buckets (bounded memory: 24 buckets for 24 h)."""

    window: float
    buckets: int = 24
    sums: list[list[float]] = field(default_factory=list)
    """[bucket index, sum, count] rows, oldest first."""
    STATE: ClassVar[tuple[str, ...]] = ("sums",)

    def step(self, value: float, now: datetime) -> float:
        width = self.window / self.buckets
        index = float(int(now.timestamp() // width))
        if self.sums and self.sums[-1][0] == index:
            self.sums[-1][1] += value
            self.sums[-1][2] += 1
        else:
            self.sums.append([index, value, 1.0])
        while self.sums and self.sums[0][0] <= index - self.buckets:
            self.sums.pop(0)
        return self.mean()

    def mean(self) -> float:
        count = sum(row[2] for row in self.sums)
        return sum(row[1] for row in self.sums) / count if count else 0.0

    def span(self) -> float:
        """How much of the window the buckets cover, in seconds (a mean of 10 minutes is not a 24 h mean)."""
        if not self.sums:
            return 0.0
        width = self.window / self.buckets
        return (self.sums[-1][0] - self.sums[0][0] + 1) * width


def earliest(values: Any) -> datetime | None:
    """The soonest of some optional times (None when there is none)."""
    present = [v for v in values if v is not None]
    return min(present) if present else None


# --------------------------------------------------------------------------------------------------
# Snapshot helpers: JSON-able state of blocks and rule states (fields named in STATE)
# --------------------------------------------------------------------------------------------------


def dump(value: Any) -> Any:
    """JSON-able form of a state value: datetimes as {"$dt": iso}, state dataclasses by their STATE."""
    dumper = _DUMPERS.get(type(value))
    return dumper(value) if dumper is not None else _first_dump(value)


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Values that dump (and undump) as themselves: containers skip the call for them, since most values of
a checkpoint are these (currents, counts, flags)."""

# A checkpoint dumps every changed device and a restart's first one every device: one dumper per type,
# found once by the generic rules of `_first_dump`, instead of those rules for every value.
_DUMPERS: dict[type, Callable[[Any], Any]] = {}


def _as_is(value: Any) -> Any:
    return value


def _dump_datetime(value: datetime) -> dict[str, str]:
    return {"$dt": value.isoformat()}


def _dump_sequence(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [v if type(v) in _SCALARS else dump(v) for v in value]


def _dump_set(value: set[Any] | frozenset[Any]) -> list[Any]:
    return sorted(dump(v) for v in value)


def _dump_dict(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): v if type(v) in _SCALARS else dump(v) for k, v in value.items()}


def _state_dumper(names: tuple[str, ...]) -> Callable[[Any], dict[str, Any]]:
    def dump_state(value: Any) -> dict[str, Any]:
        out = {}
        for name in names:
            v = getattr(value, name)
            out[name] = v if type(v) in _SCALARS else dump(v)
        return out
    return dump_state


def _first_dump(value: Any) -> Any:
    """The generic rules, for a type not seen yet; its dumper is then kept (they depend on the type only)."""
    kind = type(value)
    dumper: Callable[[Any], Any]
    if isinstance(value, datetime):
        dumper = _dump_datetime
    elif is_dataclass(value) and hasattr(kind, "STATE"):
        dumper = _state_dumper(tuple(kind.STATE))
    elif isinstance(value, list | tuple):
        dumper = _dump_sequence
    elif isinstance(value, set | frozenset):
        dumper = _dump_set
    elif isinstance(value, dict):
        dumper = _dump_dict
    else:
        dumper = _as_is
    _DUMPERS[kind] = dumper
    return dumper(value)


def undump(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, dict):
        if len(value) == 1 and "$dt" in value:
            return datetime.fromisoformat(value["$dt"])
        return {k: undump(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [undump(v) for v in value]
        # Two-item [time, value] rows were tuples (samples); keep them tuples so code can unpack them.
        return [
            tuple(i) if isinstance(i, list) and len(i) == 2 and isinstance(i[0], datetime) else i
            for i in items
        ]
    return value


_LOADED: dict[type, tuple[str, ...]] = {}
"""Per state class, the STATE names that are fields (a restore looks them up for every state object)."""
_IS_STATE: dict[type, bool] = {}


def _is_state(kind: type) -> bool:
    known = _IS_STATE.get(kind)
    if known is None:
        known = _IS_STATE[kind] = is_dataclass(kind) and hasattr(kind, "STATE")
    return known


def load_into(target: Any, data: Any) -> None:
    """Put dumped state back into a freshly built state object (whose parameters come from the site)."""
    if not isinstance(data, dict):
        return
    kind = type(target)
    loaded = _LOADED.get(kind)
    if loaded is None:
        names = {f.name for f in fields(target)}
        loaded = _LOADED[kind] = tuple(name for name in target.STATE if name in names)
    for name in loaded:
        if name not in data:
            continue
        current = getattr(target, name)
        if _is_state(type(current)):
            load_into(current, data[name])
        elif (
            isinstance(current, list)
            and current
            and is_dataclass(current[0])
            and isinstance(data[name], list)
            and len(data[name]) == len(current)
        ):
            for item, item_data in zip(current, data[name], strict=True):
                load_into(item, item_data)
        else:
            setattr(target, name, _typed(current, undump(data[name])))


_SEVERITIES = frozenset(s.value for s in Severity)


def _typed(current: Any, value: Any) -> Any:
    if isinstance(current, set):
        return set(value)
    if isinstance(current, Severity) or (
        current is None and isinstance(value, str) and value in _SEVERITIES
    ):
        return Severity(value)
    return value
