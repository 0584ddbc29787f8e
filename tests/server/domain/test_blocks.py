"""Properties of the building blocks (hypothesis): hysteresis never flaps, a held value raises once."""

from __future__ import annotations

from dataclasses import is_dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.contract import Severity
from server.domain.findings import Transition
from server.domain.rules.blocks import (
    RateOfRise,
    RollingMean,
    Staged,
    Threshold,
    WindowSpread,
    dump,
    load_into,
)
from tests.server.domain.harness import DAY, Floor

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@given(
    on=st.floats(10, 100),
    gap=st.floats(0.5, 10),
    position=st.floats(0.01, 0.99),
    steps=st.lists(st.floats(0.1, 120), min_size=1, max_size=200),
)
def test_steady_signal_between_clear_and_raise_never_flaps(
    on: float, gap: float, position: float, steps: list[float]
) -> None:
    off = on - gap
    value = off + gap * position  # strictly between the clear and raise levels
    for start_active in (False, True):
        block = Threshold(on, off, hold=30, clear_hold=30, active=start_active)
        now = T0
        for dt in steps:
            now += timedelta(seconds=dt)
            assert block.step(value, now) is None
        assert block.active is start_active


@given(
    on=st.floats(0, 100),
    excess=st.floats(0, 50),
    hold=st.floats(0, 600),
    steps=st.lists(st.floats(0.1, 60), min_size=1, max_size=300),
)
def test_value_held_above_threshold_raises_exactly_once(
    on: float, excess: float, hold: float, steps: list[float]
) -> None:
    block = Threshold(on, on - 1, hold=hold, clear_hold=10)
    now, raises = T0, 0
    elapsed = 0.0
    for dt in [0.0, *steps]:
        now += timedelta(seconds=dt)
        elapsed += dt
        raises += block.step(on + excess, now) is Transition.RAISE
    assert raises == (1 if elapsed >= hold else 0)


@settings(max_examples=30, deadline=None)
@given(level=st.floats(8.05, 9.95), minutes=st.integers(6, 60))
def test_strip_between_levels_raises_once_and_never_clears(level: float, minutes: int) -> None:
    """Engine level: a strip held steadily at 80.5–99.5 % raises strip_load_high once, never clears."""
    f = Floor(DAY)
    f.hold("strip-a1", minutes * 60, every=30, current_a=level)
    assert len(f.raised("elec.strip_load_high")) == 1
    assert not f.cleared("elec.strip_load_high") and not f.raised("elec.strip_overload")


def test_staged_rises_and_keeps_worst_until_all_clear() -> None:
    staged = Staged(
        [Threshold(1.0, 0.95, 60, 60, strict=True), Threshold(1.25, 0.95, 10, 60)],
        [Severity.MAJOR, Severity.CRITICAL],
    )
    now = T0
    assert staged.step(1.3, now) is None
    now += timedelta(seconds=10)
    assert staged.step(1.3, now) is Severity.CRITICAL
    now += timedelta(seconds=120)
    assert staged.step(0.97, now) is Severity.CRITICAL  # between: stays
    for _ in range(2):
        now += timedelta(seconds=60)
        level = staged.step(0.5, now)
    assert level is None


def test_rate_of_rise_needs_two_intervals_and_no_gap() -> None:
    rate = RateOfRise(4.0, intervals=2, max_gap=120)
    assert not rate.step(30, T0)
    assert not rate.step(35, T0 + timedelta(seconds=60))
    assert rate.step(40, T0 + timedelta(seconds=120))
    assert not rate.step(45, T0 + timedelta(seconds=400))  # a gap is not a trend


def test_window_spread_and_rolling_mean() -> None:
    spread = WindowSpread(900)
    spread.step(20, T0)
    assert spread.step(26, T0 + timedelta(minutes=10)) == 6
    assert spread.step(None, T0 + timedelta(minutes=16)) == 0
    mean = RollingMean(86400)
    for hour in range(30):
        mean.step(30 if hour < 6 else 36, T0 + timedelta(hours=hour))
    assert mean.mean() == 36 and mean.span() >= 86400


def test_dump_and_load_round_trip() -> None:
    block = Threshold(1, 0, 60, 60)
    block.step(2, T0)
    fresh = Threshold(1, 0, 60, 60)
    load_into(fresh, dump(block))
    assert fresh.since == T0 and fresh.due() == T0 + timedelta(seconds=60)


def generic_dump(value: object) -> object:
    """The dump rules applied to every value (what `dump` did before it kept a dumper per type)."""
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if is_dataclass(value) and hasattr(value, "STATE"):
        return {name: generic_dump(getattr(value, name)) for name in value.STATE}
    if isinstance(value, list | tuple):
        return [generic_dump(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(generic_dump(v) for v in value)  # type: ignore[type-var]
    if isinstance(value, dict):
        return {str(k): generic_dump(v) for k, v in value.items()}
    return value


def test_the_per_type_dumpers_give_what_the_generic_rules_give_for_a_busy_floor() -> None:
    f = Floor(supervise=True)
    devices = list(f.site.devices.values())
    for minute in range(12):
        for i, device in enumerate(devices):
            hot = (i + minute) % 3 == 0
            f.read(device.id, current_a=14.0 if hot else 2.0, power_w=3000.0 if hot else 400.0, voltage_v=231.0,
                   temp_c=45.0 if hot else 24.0, smoke=minute == 5 and i % 7 == 0, battery_low=hot)
        f.advance(60, step=10)
    states = [dev.state for dev in f.engine.ctx.devices.values()]
    assert sum(len(state) for state in states) > 2 * len(states)  # every kind's rule states are in it
    for state in states:
        for value in state.values():
            assert dump(value) == generic_dump(value)
    for part in (*f.engine.ctx.fire.values(), *f.engine.ctx.shared.values()):
        assert dump(part) == generic_dump(part)
    mixed = {"t": {T0}, "s": Severity.MAJOR, "n": None, "rows": [(T0, 1.5)]}
    assert dump(mixed) == generic_dump(mixed)
