"""A vendor payload the edge cannot decode is visible upstream (issue #17 item 3): the real edge sends a
rate-limited decode_error event, the real server keeps it with its dead letters (topic, reason, first
bytes), the edge stays alive and the next valid message is decoded."""

from __future__ import annotations

from gateway.mqtt import MqttClient
from tests.e2e.conftest import Stack
from tests.support.wait import wait_until

# A relay state that is neither StateText: `stat/sonoff1/POWER = POWER` (https://github.com/arendst/Tasmota/issues/530)
BAD_POWER = b"POWER"
# A Sonoff POW's energy telemetry, two in a row (https://github.com/arendst/Tasmota/issues/2785)
GOOD_SENSOR = (b'{"Time":"2018-05-22T02:01:29","ENERGY":{"Total":0.052,"Yesterday":0.000,"Today":0.052,"Period":0,'
               b'"Power":0,"Factor":0.00,"Voltage":198,"Current":0.000}}')
NEXT_SENSOR = (b'{"Time":"2018-05-22T02:04:19","ENERGY":{"Total":0.052,"Yesterday":0.000,"Today":0.052,"Period":0,'
               b'"Power":0,"Factor":0.00,"Voltage":197,"Current":0.000}}')


def test_undecodable_payload_shows_in_dead_letters_and_the_next_one_is_decoded(stack: Stack) -> None:
    floor = MqttClient(stack.broker.client_settings(), "decode-error-device")
    floor.start()
    assert floor.wait_connected(10)
    assert wait_until(lambda: stack.agent.floor is not None and stack.agent.floor.wait_connected(0.1), 10)
    # Until the edge's floor subscriptions are in place, what the device says is lost: say it until heard.
    def heard() -> bool:
        floor.publish("tele/strip-z1-01/SENSOR", GOOD_SENSOR, 1, False)
        return bool(stack.client.get("/api/devices").json()[0]["metrics"].get("voltage_v") == 198)

    assert wait_until(heard, 30, step=0.3)
    for _ in range(3):  # one goes upstream, the two others are counted in it within the minute
        floor.publish("stat/strip-z1-01/POWER", BAD_POWER, 1, False)
    floor.publish("tele/strip-z1-01/SENSOR", NEXT_SENSOR, 1, False)
    devices = stack.wait_for("/api/devices", lambda b: b[0]["metrics"].get("voltage_v") == 197)
    assert devices[0]["metrics"]["energy_wh"] == 52.0
    letters = stack.wait_for("/api/dead-letters", lambda b: len(b) >= 1)
    assert [(x["topic"], x["source"], x["payload"]) for x in letters] == [
        ("stat/strip-z1-01/POWER", "edge-e2e", "POWER")]
    assert letters[0]["reason"] == ("edge edge-e2e could not decode strip-z1-01: POWER is neither 'OFF' nor 'ON' "
                                    "(StateText1/StateText2 in the configuration?)")
    assert stack.agent.decode_errors == 3
    # Only the first of the three went upstream; it counts the two suppressed after it only in the next
    # minute's sample, so the server has seen one so far, and no message of the server was invalid.
    health = stack.client.get("/api/health").json()
    # every dependency up; paging is down only because this pipeline site names no contacts at all
    assert {name for name, d in health["dependencies"].items() if not d["up"]} == {"paging"}, health
    assert (health["ingest"]["edge_decode_errors"], health["ingest"]["invalid"]) == (1, 0)
    floor.stop()
