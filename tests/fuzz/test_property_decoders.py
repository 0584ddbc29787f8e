"""Property tests (hypothesis) on every vendor driver's `decode` and on the contract decoder.

Arbitrary bytes, arbitrary JSON shapes, and JSON built from the very keys and values the drivers look
for, on each driver's own topics: decode returns contract Readings/Events (which survive the wire) or
raises DecodeError, never anything else. The contract decoder returns a contract payload or raises
ContractError. Invariants live in fuzz/targets.py (shared with the atheris harness).

Example counts grow with FLOORWATCH_LONG=1.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.config import Vendor
from fuzz.targets import CONTRACT_TOPICS, KEYS, NOW, VENDORS, check_contract, check_driver, driver_topics, make_driver
from gateway import contract

LONG = os.environ.get("FLOORWATCH_LONG") == "1"
EXAMPLES = 5000 if LONG else 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=not LONG)

_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.sampled_from(KEYS),
    st.sampled_from(["ON", "OFF", "on", "off", "true", "false", "Online", "Offline", "online", "offline",
                     "100.00", "1e309", "-0", "NaN", "", "NotifyStatus", "badge", "in", "out"]),
)
_key = st.one_of(st.sampled_from(KEYS), st.text(max_size=12))
json_values = st.recursive(
    _leaf,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(_key, children, max_size=8)),
    max_leaves=40,
)
vendor_objects = st.dictionaries(_key, json_values, min_size=1, max_size=12)


def as_json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


payloads = st.one_of(
    st.binary(max_size=512),
    json_values.map(as_json),
    vendor_objects.map(as_json),
    st.text(max_size=64).map(str.encode),
)


@pytest.mark.parametrize("vendor", VENDORS, ids=[v.value for v in VENDORS])
@FUZZ
@given(data=st.data())
def test_driver_decode_never_raises_anything_but_decode_error(vendor: Vendor, data: st.DataObject) -> None:
    driver = make_driver(vendor)
    topic = data.draw(st.one_of(st.sampled_from(driver_topics(driver)), st.text(max_size=40)), label="topic")
    # A stateful sequence on the same driver: transitions (smoke, leak, door) must never break it.
    for payload in data.draw(st.lists(payloads, min_size=1, max_size=4), label="payloads"):
        check_driver(driver, topic, payload)


@pytest.mark.parametrize("vendor", VENDORS, ids=[v.value for v in VENDORS])
@FUZZ
@given(topic_index=st.integers(min_value=0), obj=vendor_objects)
def test_driver_decode_on_shaped_vendor_json(vendor: Vendor, topic_index: int, obj: dict[str, Any]) -> None:
    driver = make_driver(vendor)
    topics = driver_topics(driver)
    check_driver(driver, topics[topic_index % len(topics)], as_json(obj))


@FUZZ
@given(topic=st.one_of(st.sampled_from(CONTRACT_TOPICS), st.text(max_size=60)), payload=payloads)
def test_contract_decoder_raises_only_contract_error(topic: str, payload: bytes) -> None:
    check_contract(topic, payload)


_times = st.sampled_from(["2026-11-29T03:00:00Z", "2026-11-29T03:00:00", "not a time", 0, None,
                          "2026-11-29T03:00:00.123+08:00", "0449-11-29T03:00:00Z", "0001-01-01T00:00:00+01:00",
                          "9999-12-31T23:59:59-01:00"])
_reading = st.fixed_dictionaries({"device": st.sampled_from(["plug-1", "PLUG", "", "a" * 70]), "ts": _times,
                                  "metrics": st.dictionaries(st.sampled_from(["power_w", "relay_on", "Bad", ""]),
                                                             _leaf, max_size=3)})
_envelope = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 2, "1"]), "edge": st.sampled_from(["edge-f3", "edge-f4", "EDGE"]),
     "seq": st.one_of(st.integers(min_value=-1, max_value=2**54), st.text(max_size=3)),
     "sent_at": _times, "readings": st.lists(_reading, max_size=4),
     "events": st.lists(st.fixed_dictionaries({"device": st.just("door-1"), "ts": _times,
                                               "type": st.sampled_from(["door_forced", "nope", 3])}), max_size=3)},
)


@FUZZ
@given(topic=st.sampled_from(CONTRACT_TOPICS), envelope=_envelope)
def test_contract_decoder_on_near_valid_batches(topic: str, envelope: dict[str, Any]) -> None:
    check_contract(topic, as_json(envelope))


def test_the_invariant_checker_accepts_real_traffic() -> None:
    """Guard against a vacuous property: valid vendor payloads do decode to contract items."""
    shelly = make_driver(Vendor.SHELLY)
    items = check_driver(shelly, "shelly-smart-plug/status/switch:0",
                         b'{"id":0,"output":true,"apower":12.5,"voltage":230,"current":0.1}')
    assert items and isinstance(items[0], contract.Reading)
    batch = contract.TelemetryBatch(edge="edge-f3", seq=1, sent_at=NOW, readings=items)
    check_contract(contract.edge_topic("hq", "edge-f3", contract.Channel.TELEMETRY), contract.encode(batch))
