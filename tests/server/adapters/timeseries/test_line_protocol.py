"""The line-protocol serializer: escaping, field types, millisecond timestamps, derived fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.contract import Event, EventType, Reading
from server.adapters.timeseries import (
    BOOLEAN_METRICS,
    DeviceMeta,
    PointIn,
    alarm_point,
    dew_point_c,
    event_point,
    format_field,
    inspection_point,
    point_to_line,
    reading_fields,
    reading_point,
    reading_to_line,
    to_ms,
)

TS = datetime(2026, 11, 29, 3, 0, 5, 120_999, tzinfo=UTC)
PLUG = DeviceMeta(site="hq", zone="f3-z2", kind="smart_plug", floor="f3", rated_a=10.0)


def test_reading_line_has_tags_sorted_floats_booleans_and_ms() -> None:
    r = Reading(device="plug-f3-s012", ts=TS, metrics={"power_w": 182, "current_a": 0.83, "relay_on": True})
    line = reading_to_line(r, PLUG)
    assert line == (
        "smart_plug,device=plug-f3-s012,floor=f3,kind=smart_plug,site=hq,zone=f3-z2 "
        "power_w=182.0,current_a=0.83,relay_on=true,rated_a=10.0,load_pct=8.3 1795921205120"
    )


def test_ms_is_exact_and_truncates_microseconds() -> None:
    assert to_ms(datetime(1970, 1, 1, 0, 0, 0, 999, tzinfo=UTC)) == 0
    assert to_ms(TS) == 1795921205120
    assert to_ms(TS + timedelta(microseconds=1)) == 1795921205121


def test_field_types_never_change() -> None:
    # An edge that sends 1 for a boolean metric, or true for a numeric one, must not flip the type.
    r = Reading(device="d1", ts=TS, metrics={"smoke": 1, "power_w": True, "battery_pct": 87, "x_flag": True})
    fields = reading_fields(r, DeviceMeta("hq", "z", "smoke_detector"))
    assert fields == {"smoke": True, "power_w": 1.0, "battery_pct": 87.0, "x_flag": True}
    assert "smoke" in BOOLEAN_METRICS


def test_format_field() -> None:
    assert format_field(3) == "3.0"
    assert format_field(True) == "true"
    assert format_field(1e-7) == "1e-07"
    assert format_field('a "b" \\c') == '"a \\"b\\" \\\\c"'


def test_escaping_per_spec() -> None:
    p = PointIn("my meas,x", {"zone name": "a,b=c d", "empty": ""}, {"field key=": 1.5, "s": "x"}, 5)
    assert point_to_line(p) == r'my\ meas\,x,zone\ name=a\,b\=c\ d field\ key\==1.5,s="x" 5'


def test_non_finite_fields_are_skipped_and_empty_points_are_none() -> None:
    assert point_to_line(PointIn("m", {}, {"a": float("nan"), "b": 1.0}, 1)) == "m b=1.0 1"
    assert point_to_line(PointIn("m", {}, {"a": float("inf")}, 1)) is None


def test_dew_point() -> None:
    dp = dew_point_c(25.0, 60.0)
    assert dp is not None and abs(dp - 16.7) < 0.1
    assert dew_point_c(25.0, 0.0) is None
    r = Reading(device="mr-1", ts=TS, metrics={"temperature_c": 22.0, "humidity_pct": 50.0})
    assert "dew_point_c" in reading_fields(r, DeviceMeta("hq", "mr", "mr_probe"))


def test_reading_point_matches_line() -> None:
    r = Reading(device="plug-1", ts=TS, metrics={"power_w": 5.5})
    assert point_to_line(reading_point(r, PLUG)) == reading_to_line(r, PLUG)


def test_event_alarm_inspection_points() -> None:
    ev = Event(device="door-1", ts=TS, type=EventType.ACCESS_DENIED, badge="B1", direction="in")
    line = point_to_line(event_point(ev, DeviceMeta("hq", "f3-z1", "door_controller", "f3")))
    assert line == (
        "event,device=door-1,direction=in,floor=f3,kind=door_controller,site=hq,type=access_denied,zone=f3-z1"
        " n=1.0 1795921205120"
    )
    assert "B1" not in (line or "")  # badge numbers are never stored
    a = point_to_line(alarm_point(site="hq", zone="f3-z1", rule="elec.strip_overload", severity="major",
                                  active=True, value=11.2, ts=TS))
    assert a == (
        "alarm,rule=elec.strip_overload,severity=major,site=hq,zone=f3-z1 active=1.0,value=11.2 1795921205120"
    )
    i = point_to_line(inspection_point(site="hq", zone="f3-z1", schedule="weekly-electrical",
                                       period_start=datetime(2026, 11, 1, tzinfo=UTC),
                                       on_time=3, late=1, missed=0, failed=0))
    assert i == (
        "inspection,schedule=weekly-electrical,site=hq,zone=f3-z1 "
        "on_time=3.0,late=1.0,missed=0.0,failed=0.0 1793491200000"
    )


@given(st.text(min_size=1, max_size=20))
def test_escaped_keys_never_contain_bare_separators(value: str) -> None:
    line = point_to_line(PointIn("m", {"t": value}, {"f": 1.0}, 1))
    assert line is not None and "\n" not in line
    head = line.rsplit(" ", 2)[0]
    # Every space or comma in the tag set is escaped.
    i = 0
    while i < len(head):
        if head[i] == "\\":
            i += 2
            continue
        assert head[i] != " "
        i += 1


@given(
    st.dictionaries(
        st.sampled_from(
            ["power_w", "current_a", "smoke", "temperature_c", "humidity_pct", "x_flag", "battery_pct",
             "relay_on"]
        ),
        st.one_of(st.booleans(), st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False)),
        min_size=1,
    )
)
def test_fast_path_equals_generic_path(metrics: dict[str, float | bool]) -> None:
    r = Reading(device="d-1", ts=TS, metrics=metrics)
    for meta in (PLUG, DeviceMeta("hq", "mr-1", "mr_probe")):
        assert reading_to_line(r, meta) == point_to_line(reading_point(r, meta))


def test_a_backslash_never_escapes_the_separator_after_it() -> None:
    # A value ending in a backslash, or a backslash before a space: each backslash is doubled.
    assert point_to_line(PointIn("m", {"t": "a\\"}, {"f": 1.0}, 1)) == "m,t=a\\\\ f=1.0 1"
    assert point_to_line(PointIn("m", {"t": "a\\ b"}, {"f": 1.0}, 1)) == "m,t=a\\\\\\ b f=1.0 1"
