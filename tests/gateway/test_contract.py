"""The wire contract: round trips, limits and rejection of malformed input (property-based)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import contract as c

ids = st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True).filter(lambda s: s not in c.RESERVED_EDGE_IDS)
device_ids = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
metric_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
values = st.one_of(st.booleans(), st.integers(-(2**31), 2**31), st.floats(allow_nan=False, allow_infinity=False))
# The wire carries milliseconds: generate instants that survive that rounding.
times = st.integers(0, 4_102_444_800_000).map(lambda ms: datetime.fromtimestamp(ms / 1000, UTC))
readings = st.builds(c.Reading, device=device_ids, ts=times,
                     metrics=st.dictionaries(metric_names, values, min_size=1, max_size=8))
batches = st.builds(c.TelemetryBatch, edge=ids, seq=st.integers(0, 2**53 - 1), sent_at=times,
                    readings=st.lists(readings, min_size=1, max_size=20))
events = st.builds(c.Event, device=device_ids, ts=times, type=st.sampled_from(c.EventType),
                   badge=st.none() | st.text(min_size=1, max_size=10),
                   direction=st.none() | st.sampled_from(["in", "out"]))
event_batches = st.builds(c.EventBatch, edge=ids, seq=st.integers(0, 2**53 - 1), sent_at=times,
                          events=st.lists(events, min_size=1, max_size=10))


@given(site=ids, batch=batches)
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_telemetry_round_trips_through_topic_and_codec(site: str, batch: c.TelemetryBatch) -> None:
    topic = c.edge_topic(site, batch.edge, c.Channel.TELEMETRY)
    route, decoded = c.decode(topic, c.encode(batch))
    assert route == c.Route(site, c.Channel.TELEMETRY, edge=batch.edge)
    assert decoded == batch


@given(site=ids, batch=event_batches)
@settings(max_examples=100)
def test_events_round_trip(site: str, batch: c.EventBatch) -> None:
    _, decoded = c.decode(c.edge_topic(site, batch.edge, c.Channel.EVENTS), c.encode(batch))
    assert decoded == batch


@given(site=ids, edge=ids, channel=st.sampled_from(c.Channel))
def test_every_edge_topic_parses_back(site: str, edge: str, channel: c.Channel) -> None:
    assert c.parse_topic(c.edge_topic(site, edge, channel)) == c.Route(site, channel, edge=edge)


def test_site_topics_parse_back() -> None:
    assert c.parse_topic(c.site_topic("hq", c.SiteChannel.EVACUATION)).channel is c.SiteChannel.EVACUATION
    route = c.parse_topic(c.site_topic("hq", c.SiteChannel.ALARMS, "42"))
    assert (route.channel, route.key) == (c.SiteChannel.ALARMS, "42")


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    local = datetime(2026, 11, 29, 11, 0, 5, 120_999, tzinfo=UTC) + timedelta(0)
    status = c.EdgeStatus(edge="edge-f3", state=c.EdgeState.ONLINE, ts=local)
    assert json.loads(c.encode(status))["ts"] == "2026-11-29T11:00:05.120Z"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(seq=-1), "seq"),
        (lambda d: d.update(seq="12"), "seq"),
        (lambda d: d.pop("edge"), "edge"),
        (lambda d: d.update(v=2), "v"),
        (lambda d: d.update(sent_at="2026-11-29T03:00:05"), "sent_at"),  # naive time: no zone
        (lambda d: d.update(readings=[]), "readings"),
        (lambda d: d.update(readings=[d["readings"][0]] * (c.MAX_BATCH_ITEMS + 1)), "readings"),
    ],
)
def test_bad_envelopes_are_rejected_with_the_field_named(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(c.encode(_batch()))
    mutate(data)
    with pytest.raises(c.ContractError, match=reason):
        c.decode_batch(c.TelemetryBatch, json.dumps(data).encode())


@pytest.mark.parametrize(
    "bad_metric",
    [{"power_w": "12"}, {"power_w": None}, {"Power": 1}, {}, {"power_w": [1]}, {"power_w": {"a": 1}}],
)
def test_a_bad_reading_is_rejected_but_its_neighbours_are_kept(bad_metric: dict[str, object]) -> None:
    data = json.loads(c.encode(_batch(n=3)))
    data["readings"][1]["metrics"] = bad_metric
    partial = c.decode_batch(c.TelemetryBatch, json.dumps(data).encode())
    assert partial.batch is not None
    assert [r.device for r in partial.batch.readings] == ["plug-0", "plug-2"]
    assert [r.index for r in partial.rejected] == [1]
    assert partial.rejected[0].reason.startswith("readings.1")


def test_nan_and_infinity_are_not_numbers_on_this_wire() -> None:
    raw = c.encode(_batch()).replace(b"182.4", b"NaN")
    partial = c.decode_batch(c.TelemetryBatch, raw)
    assert partial.batch is None and len(partial.rejected) == 1


def test_oversized_payload_is_rejected_before_parsing() -> None:
    with pytest.raises(c.ContractError, match="over the 262144 byte limit"):
        c.decode_batch(c.TelemetryBatch, b"{" + b" " * c.MAX_PAYLOAD_BYTES + b"}")


def test_payload_edge_must_match_topic_edge() -> None:
    with pytest.raises(c.ContractError, match="does not match"):
        c.decode(c.edge_topic("hq", "edge-b", c.Channel.TELEMETRY), c.encode(_batch()))


@pytest.mark.parametrize("topic", ["floorwatch/v2/hq/e/telemetry", "floorwatch/v1/HQ/e/telemetry",
                                   "floorwatch/v1/hq/e/unknown", "floorwatch/v1/hq", "other/topic"])
def test_bad_topics_say_why(topic: str) -> None:
    with pytest.raises(c.ContractError):
        c.parse_topic(topic)


def test_reserved_words_cannot_be_edge_ids() -> None:
    with pytest.raises(c.ContractError, match="reserved"):
        c.edge_topic("hq", "alarms", c.Channel.TELEMETRY)


@given(st.binary(max_size=2000))
@settings(max_examples=300)
def test_arbitrary_bytes_never_crash_the_decoder(data: bytes) -> None:
    for channel in c.SERVER_INBOUND:
        with contextlib.suppress(c.ContractError):
            c.decode(c.edge_topic("hq", "edge-a", channel), data)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=20))
@settings(max_examples=300)
def test_arbitrary_json_is_either_a_batch_or_a_contract_error(value: object) -> None:
    try:
        partial = c.decode_batch(c.TelemetryBatch, json.dumps(value).encode())
    except c.ContractError:
        return
    assert partial.batch is None or partial.batch.readings


def test_json_schemas_cover_every_payload() -> None:
    schemas = c.json_schemas()
    assert set(schemas) == {"TelemetryBatch", "EventBatch", "EdgeStatus", "Command", "CommandResult",
                            "EvacuationNotice", "AlarmChange"}
    assert schemas["TelemetryBatch"]["properties"]["readings"]["maxItems"] == c.MAX_BATCH_ITEMS


def test_delivery_table_names_qos_and_retain_per_channel() -> None:
    assert c.DELIVERY[c.Channel.STATUS].retain and c.DELIVERY[c.SiteChannel.EVACUATION].retain
    assert not c.DELIVERY[c.Channel.TELEMETRY].retain
    assert all(d.qos == 1 for d in c.DELIVERY.values())


def _batch(n: int = 1) -> c.TelemetryBatch:
    now = datetime(2026, 11, 29, 3, 0, 5, tzinfo=UTC)
    return c.TelemetryBatch(edge="edge-a", seq=7, sent_at=now, readings=[
        c.Reading(device=f"plug-{i}", ts=now, metrics={"power_w": 182.4, "relay_on": True}) for i in range(n)])
