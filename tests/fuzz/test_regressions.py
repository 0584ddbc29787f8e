"""Inputs the fuzzers found that broke an invariant, kept as plain regression tests.

1. atheris (contract target, seed 7): a Command with `issued_at` in year 449 decoded, but re-encoding
   it wrote `449-11-29T...` (glibc's strftime does not pad years before 1000), which the decoder
   rejects: the encoder produced payloads its own decoder refused. Fix: `format_time` pads to 4 digits.
2. Found while reducing 1: an offset time at the edge of the datetime range (0001-01-01T00:00+01:00,
   9999-12-31T23:59:59-01:00) made the contract decoder raise OverflowError instead of ContractError,
   escaping the `except ContractError` of the edge's command handler and the server's ingest (one such
   telemetry batch failed a whole ingest drain). Fix: `_utc` turns it into a validation error.
"""

from __future__ import annotations

import pytest

from fuzz.targets import CONTRACT_TOPICS, check_contract
from gateway import contract

COMMAND = ('{"v":1,"id":"c1","device":"plug-1","action":"relay_off","issued_at":"%s",'
           '"expires_at":"2026-11-29T03:01:00Z"}')
TELEMETRY = ('{"v":1,"edge":"edge-f3","seq":1,"sent_at":"2026-11-29T03:00:00Z","readings":[{"device":"plug-1",'
             '"ts":"%s","metrics":{"power_w":1}}]}')


@pytest.mark.parametrize("ts", ["0449-11-29T03:00:00Z", "0001-01-01T00:00:00Z", "0999-12-31T23:59:59.999Z"])
def test_early_years_round_trip(ts: str) -> None:
    topic = contract.edge_topic("hq", "edge-f3", contract.Channel.COMMANDS)
    _, command = contract.decode(topic, (COMMAND % ts).encode())
    assert contract.decode(topic, contract.encode(command))[1] == command


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize("template", [COMMAND, TELEMETRY], ids=["command", "telemetry"])
def test_times_outside_utc_range_are_contract_errors(ts: str, template: str) -> None:
    payload = (template % ts).encode()
    with pytest.raises(contract.ContractError):
        contract.decode(CONTRACT_TOPICS[0] if template is TELEMETRY else CONTRACT_TOPICS[3], payload)
    for topic in CONTRACT_TOPICS:
        check_contract(topic, payload)


# 3. atheris (tasmota target, seed 7, after 1.08 M runs / 34 s): `"Voltage": []` in tele/<topic>/SENSOR
#    makes `edge/drivers/tasmota.energy_metrics` call max() on an empty list: ValueError, not DecodeError.
#    The agent's catch-all counted it as a decode error without a device (no crash), but the driver broke
#    its contract; fixed: an empty channel list is a DecodeError naming the field.
def test_tasmota_empty_voltage_list_is_a_decode_error() -> None:
    from edge.config import Vendor
    from fuzz.targets import check_driver, make_driver

    driver = make_driver(Vendor.TASMOTA)
    payload = b'{"ENERGY":{"Total":3.2,"Power":[10,0],"Voltage":[],"Factor":0.9}}'
    check_driver(driver, "tele/tasmota-strip-meter/SENSOR", payload)
