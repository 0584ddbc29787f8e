"""Evacuation end to end with real parts: Mosquitto, the server over HTTP, the real EdgeAgent with
the generic door profile, a door controller that confirms its release and one that never does, and a
webhook receiver for the pushes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from edge.agent import EdgeAgent
from gateway.broker import EmbeddedBroker, free_port
from gateway.mqtt import Incoming, MqttClient
from server.adapters.sql.response_models import AccessLogRow
from server.settings import Settings
from tests.server.services.conftest import Hook, Smtp, site_yaml
from tests.support.display import retained
from tests.support.edge import edge_config
from tests.support.server import RunningServer, serve
from tests.support.wait import wait_for

TOKEN = "response-admin-token"
NOTICE = "floorwatch/v1/r1/notices/evacuation"


@dataclass
class Floor:
    client: httpx.Client
    broker: EmbeddedBroker
    hook: Hook
    door_cmds: list[tuple[str, dict[str, Any]]]
    device: MqttClient
    sql_url: str

    def badge(self, door: str, badge: str, direction: str) -> None:
        self.device.publish(f"access/{door}/event", json.dumps(
            {"type": "badge", "result": "granted", "badge": badge, "direction": direction}).encode(), qos=1)

    def alarms(self) -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = self.client.get("/api/alarms?state=open").json()
        return body

    def notice(self) -> dict[str, Any]:
        """What a floor display that connects now gets: the retained notice."""
        notice = retained(self.broker, NOTICE)
        assert notice is not None, "no retained evacuation notice within 10 s"
        return notice


DEVICES = [
    {"id": "door-z1-exit", "kind": "door_controller", "zone": "z1", "vendor": "generic", "address": "door-z1-exit",
     "door_type": "egress"},
    {"id": "door-z2-exit", "kind": "door_controller", "zone": "z2", "vendor": "generic", "address": "door-z2-exit",
     "door_type": "egress"},
    {"id": "smoke-z1-01", "kind": "smoke_detector", "zone": "z1", "vendor": "generic", "address": "smoke-z1-01"},
    {"id": "smoke-z1-02", "kind": "smoke_detector", "zone": "z1", "vendor": "generic", "address": "smoke-z1-02"},
]


@pytest.fixture
def floor(mosquitto: EmbeddedBroker, smtp: Smtp, hook: Hook, tmp_path: Path) -> Iterator[Floor]:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(site_yaml(smtp.port, hook.port), encoding="utf-8")
    settings = Settings(site_file=site_file, data_dir=tmp_path / "server", mqtt=mosquitto.client_settings(),
                        admin_token=TOKEN, http_port=free_port(), gap_window_s=2)
    with serve(settings, graceful_shutdown_s=None) as server:
        yield from _floor(server, mosquitto, hook, settings, tmp_path)


def _floor(server: RunningServer, mosquitto: EmbeddedBroker, hook: Hook, settings: Settings,
           tmp_path: Path) -> Iterator[Floor]:
    client = server.client(TOKEN)

    # The door controllers on the floor broker: z1's adapter confirms a release, z2's never answers.
    door_cmds: list[tuple[str, dict[str, Any]]] = []

    def on_cmd(message: Incoming) -> None:
        door = message.topic.split("/")[1]
        body = json.loads(message.payload)
        door_cmds.append((door, body))
        if door == "door-z1-exit":
            lock = "unlocked" if body["action"] == "release" else "locked"
            device.publish("access/door-z1-exit/state", json.dumps({"door": "closed", "lock": lock}).encode(),
                           qos=1, retain=True)

    device = MqttClient(mosquitto.client_settings(), "door-adapters", on_message=on_cmd)
    device.subscribe("access/+/cmd")
    device.start()
    assert device.wait_connected(10) and device.wait_subscribed(10), "the door adapters' SUBACK before any command"
    for door in ("door-z1-exit", "door-z2-exit"):
        device.publish(f"access/{door}/state", json.dumps({"door": "closed", "lock": "locked"}).encode(),
                       qos=1, retain=True)
    agent = EdgeAgent(edge_config("r1", "e1", mosquitto.client_settings(), tmp_path / "edge.sqlite", DEVICES,
                                  max_age_ms=100, commands={"confirm_timeout_s": 3}))
    agent.start()
    # ready when the server has heard both controllers' state through the edge
    wait_for(lambda: all(d["last_seen"] for d in client.get("/api/devices").json() if d["id"].startswith("door-")),
             timeout=30, what="door states through the edge")
    yield Floor(client, mosquitto, hook, door_cmds, device, settings.sql_url())
    agent.stop()
    device.stop()
    client.close()


def test_fire_evacuation_notice_doors_readback_pushes_roll_call_and_all_clear(floor: Floor) -> None:
    # before the notice: two operators and a visitor badge in
    floor.badge("door-z1-exit", "B11", "in")
    floor.badge("door-z2-exit", "B12", "in")
    floor.badge("door-z1-exit", "V1", "in")
    floor.badge("door-z1-exit", "B13", "in")
    floor.badge("door-z1-exit", "B13", "out")
    wait_for(lambda: len(floor.client.get("/api/evacuations").json()) == 0, what="api up")
    wait_for(lambda: _access_rows(floor) >= 5, what="badge events in the access log")

    started = time.monotonic()
    r = floor.client.post("/api/evacuations", json={"floor": "f1", "zone": "z1", "reason": "smoke seen by staff"})
    assert r.status_code == 201, r.text
    ev = r.json()
    assert ev["id"] == "ev-1" and ev["state"] == "active" and not ev["drill"]

    notice = floor.notice()
    assert notice["id"] == "ev-1" and notice["state"] == "active" and notice["drill"] is False
    assert notice["zones"] == ["z1", "z2", "mr"]
    assert "撤离" in notice["message"]["zh"] and "坐席区一" in notice["message"]["zh"]
    assert "exit" in notice["message"]["en"]

    # the release reached both controllers through the real edge; z1 confirmed, z2 never did
    wait_for(lambda: {d for d, b in floor.door_cmds if b["action"] == "release"} == {"door-z1-exit", "door-z2-exit"},
         what="release commands at both controllers")
    detail = wait_for(lambda: (lambda d: d if {c["device"]: c["status"] for c in d["commands"]}.get("door-z1-exit")
                           == "ok" else None)(floor.client.get("/api/evacuations/ev-1").json()),
                  what="door-z1-exit CommandResult ok")
    release_latency = time.monotonic() - started
    kettle = [c for c in detail["commands"] if c["device"] == "plug-z1-kettle"]
    assert kettle and kettle[0]["action"] == "relay_off" and kettle[0]["safety"]
    assert not [c for c in detail["commands"] if c["device"] == "plug-z1-pc"], "essential plugs are never cut"

    door_alarm = wait_for(lambda: [a for a in floor.alarms() if a["rule"].startswith("door.fire_release")
                               and a["device"] == "door-z2-exit"], timeout=30, what="door not released alarm")[0]
    assert door_alarm["severity"] == "critical"
    assert not [a for a in floor.alarms() if a["rule"].startswith("door.fire_release")
                and a["device"] == "door-z1-exit"], "the confirmed door raises nothing"

    # pushes: people on the floor, command and the four groups (119 only for information reporting)
    wait_for(lambda: floor.hook.at("/op1") and floor.hook.at("/info") and floor.hook.at("/ec"), what="evac pushes")
    assert "撤离" in floor.hook.at("/op1")[0]["message"]
    assert "119" in floor.hook.at("/info")[0]["message"]
    assert "119" not in floor.hook.at("/op1")[0]["message"]
    assert floor.hook.at("/logistics") and floor.hook.at("/osc")

    # roll call: op1 leaves by the egress door, op2 is marked safe, the visitor stays unaccounted
    floor.badge("door-z1-exit", "B11", "out")
    wait_for(lambda: _access_rows(floor) >= 6, what="exit badge logged")
    rc = floor.client.post("/api/evacuations/ev-1/roll-call/p-op2", json={"note": "seen at assembly point"}).json()
    status = {p["person"]: p["status"] for p in rc["people"]}
    assert status == {"p-op1": "out", "p-op2": "safe", "v-1": "inside", "p-lead": "unknown"}
    assert [e["person"] for e in rc["unknown_on_roster"]] == ["p-lead"], "rostered, never badged"
    assert rc["visitors_inside"][0]["host"] == "p-op1" and rc["visitors_inside"][0]["host_name"] == "坐席一"

    # all-clear: the notice flips (retained), doors stay released until a person secures them
    r = floor.client.post("/api/evacuations/ev-1/all-clear")
    assert r.status_code == 200, r.text
    # the 200 says it is committed; the retained notice reaches the broker a moment later (MQTT client queue)
    wait_for(lambda: floor.notice()["state"] == "all_clear", timeout=10, what="the all-clear notice retained")
    assert not [b for _, b in floor.door_cmds if b["action"] == "secure"]
    r = floor.client.post("/api/evacuations/doors/door-z1-exit/secure", json={"reason": "after all clear"})
    assert r.status_code == 200, r.text
    wait_for(lambda: [b for d, b in floor.door_cmds if b["action"] == "secure" and d == "door-z1-exit"],
         what="secure command")
    # a real incident, once closed, owes emergency command its review (incident.post_review_overdue)
    notice_alarm = next(a for a in floor.alarms() if a["rule"] == "evac.notice")
    assert floor.client.post(f"/api/alarms/{notice_alarm['id']}/close", json={"reason": "all clear"}).status_code == 200
    wait_for(lambda: [t for t in _open_tasks(floor) if t["schedule"] == "post_incident_review"], what="review task")
    print(f"release command confirmed {release_latency:.2f} s after POST /api/evacuations")


def test_drill_prefixes_messages_skips_119_still_releases_doors_and_reports(floor: Floor) -> None:
    floor.badge("door-z1-exit", "B11", "in")
    wait_for(lambda: _access_rows(floor) >= 1, what="badge logged")
    r = floor.client.post("/api/evacuations", json={"floor": "f1", "drill": True})
    assert r.status_code == 201, r.text
    notice = floor.notice()
    assert notice["drill"] is True and notice["message"]["zh"].startswith("【演练】")
    wait_for(lambda: {d for d, b in floor.door_cmds if b["action"] == "release"} == {"door-z1-exit", "door-z2-exit"},
         what="drill still releases the doors")
    wait_for(lambda: floor.hook.at("/info") and floor.hook.at("/op1"), what="drill pushes")
    assert "【演练】" in floor.hook.at("/op1")[0]["message"]
    assert "119" not in floor.hook.at("/info")[0]["message"]
    detail = floor.client.get("/api/evacuations/ev-1").json()
    assert not [c for c in detail["commands"] if c["action"] == "relay_off"], "a drill cuts no power"
    floor.badge("door-z1-exit", "B11", "out")
    wait_for(lambda: _access_rows(floor) >= 2, what="exit logged")
    report = floor.client.get("/api/evacuations/ev-1/report").json()
    assert report["drill"] is True and report["time_to_notice_s"] >= 0
    assert report["unaccounted"] == [] and report["zone_known_clear_s"]["z1"] is not None
    # the rostered lead never badged: unknown, so z1 is not reported clear for all its clear badge figure
    assert ("p-lead", "z1") in [(u["person"], u["zone"]) for u in report["unknown"]]
    assert report["zone_clear_s"]["z1"] is None

    # after the all-clear, closing the drill's critical evac.notice asks for no post-incident review
    # (RULES.md §2.9 incident.post_review_overdue is for real incidents; the drill has its report)
    assert floor.client.post("/api/evacuations/ev-1/all-clear").status_code == 200
    notice = next(a for a in floor.alarms() if a["rule"] == "evac.notice")
    r = floor.client.post(f"/api/alarms/{notice['id']}/close", json={"reason": "drill over"})
    assert r.status_code == 200, r.text
    wait_for(lambda: floor.client.get(f"/api/alarms/{notice['id']}").json()["state"] == "closed", what="closed")
    assert not [t for t in _open_tasks(floor) if t["schedule"] == "post_incident_review"]


def test_fire_scenario_smoke_then_second_detector_evacuates_the_floor(floor: Floor) -> None:
    """Two detectors in one zone, through the real edge: zone doors first, then fire.confirmed starts
    the evacuation by itself (notice, all floor doors, power cut in the fire zone, command paged)."""
    floor.device.publish("probe/smoke-z1-01/state", json.dumps({"smoke": True}).encode(), qos=1, retain=True)
    wait_for(lambda: [a for a in floor.alarms() if a["rule"] == "fire.smoke_alarm"], what="first smoke alarm")
    wait_for(lambda: [d for d, b in floor.door_cmds if b["action"] == "release" and d == "door-z1-exit"],
         what="zone door release on the first alarm")
    assert floor.client.get("/api/evacuations").json() == [], "one detector is not yet a confirmed fire"
    wait_for(lambda: floor.hook.at("/supervisor"), what="supervisor paged for the smoke alarm")
    assert "核实中" in floor.hook.at("/supervisor")[0]["message"]

    floor.device.publish("probe/smoke-z1-02/state", json.dumps({"smoke": True}).encode(), qos=1, retain=True)
    evs = wait_for(lambda: floor.client.get("/api/evacuations").json(), what="evacuation started by fire.confirmed")
    assert evs[0]["trigger"] == "evac.notice" and evs[0]["started_by"] == "system" and not evs[0]["drill"]
    notice = floor.notice()
    assert notice["state"] == "active" and "撤离" in notice["message"]["zh"]
    wait_for(lambda: {d for d, b in floor.door_cmds if b["action"] == "release"} == {"door-z1-exit", "door-z2-exit"},
         what="floor door release")
    wait_for(lambda: floor.hook.at("/ec") and floor.hook.at("/info"), what="emergency command paged")
    assert any("119" in m["message"] for m in floor.hook.at("/info"))
    detail = floor.client.get(f"/api/evacuations/{evs[0]['id']}").json()
    assert [c["device"] for c in detail["commands"] if c["action"] == "relay_off"] == ["plug-z1-kettle"]
    confirmed = next(a for a in floor.alarms() if a["rule"] == "fire.confirmed")
    log = floor.client.get(f"/api/notifications?alarm={confirmed['id']}").json()
    assert log and {r["severity"] for r in log} == {"critical"}
    assert all("127.0.0.1" not in r["channel"] for r in log)


def test_a_real_fire_during_a_drill_pages_as_a_real_fire_and_starts_a_real_evacuation(floor: Floor) -> None:
    """A drill, the app's 报火警 in z1 (the drill's: marked, no 119), acknowledged; then two detectors in z1
    really see smoke: fire.confirmed pages again unmarked with 119, the drill's evacuation ends and a real
    one starts (notice without the mark, the zone's plug cut, 信息报送组 told to call 119)."""
    assert floor.client.post("/api/evacuations", json={"floor": "f1", "drill": True}).status_code == 201
    r = floor.client.post("/api/fire/z1/report", json={"note": "演练"})
    assert r.status_code == 200, r.text
    drill_confirmed = wait_for(lambda: [a for a in floor.alarms() if a["rule"] == "fire.confirmed"], what="drill")[0]
    assert drill_confirmed["drill"] is True and "119" not in drill_confirmed["message_zh"]
    assert floor.client.post(f"/api/alarms/{drill_confirmed['id']}/ack", json={"note": "演练"}).status_code == 200
    wait_for(lambda: floor.hook.at("/info"), what="the drill's page to information reporting")
    assert all("119" not in m["message"] for m in floor.hook.at("/info")), "a drill prompts no 119"

    def drill_paged() -> bool:  # every page of the drill's fire.confirmed sent and received
        log = floor.client.get(f"/api/notifications?alarm={drill_confirmed['id']}").json()
        got = [b for _, b in floor.hook.received if "fire.confirmed" in b.get("title", "")]
        hooked = [n for n in log if not n["channel"].startswith("mailto:")]
        return bool(hooked) and all(n["status"] == "sent" for n in log) and len(got) == len(hooked)

    wait_for(drill_paged, what="the drill's fire.confirmed pages")
    drill_pages = len(floor.hook.received)

    for detector in ("smoke-z1-01", "smoke-z1-02"):
        floor.device.publish(f"probe/{detector}/state", json.dumps({"smoke": True}).encode(), qos=1, retain=True)
    evs = wait_for(lambda: [e for e in floor.client.get("/api/evacuations").json() if not e["drill"]],
               what="a real evacuation")
    assert len(evs) == 1 and evs[0]["state"] == "active" and evs[0]["trigger"] == "evac.notice", evs
    drills = [e for e in floor.client.get("/api/evacuations").json() if e["drill"]]
    assert [e["state"] for e in drills] == ["all_clear"], "the drill ended when the real fire came"
    notice = floor.notice()
    assert notice["id"] == evs[0]["id"] and notice["drill"] is False and notice["state"] == "active", notice
    assert not notice["message"]["zh"].startswith("【演练】")

    confirmed = floor.client.get(f"/api/alarms/{drill_confirmed['id']}").json()
    assert confirmed["drill"] is False and confirmed["state"] == "active", confirmed
    assert "119" in confirmed["message_zh"] and "call 119" in confirmed["message"]
    wait_for(lambda: [m for m in floor.hook.at("/info") if "119" in m["message"]], what="119 to information reporting")
    later = floor.hook.received[drill_pages:]
    real = [b for p, b in later if "fire.confirmed" in b.get("title", "") or evs[0]["id"] in b.get("title", "")]
    assert [b for b in real if "fire.confirmed" in b["title"]], "fire.confirmed pages again, as a real fire"
    assert not [b["title"] for b in real if "【演练】" in b["title"] + b.get("message", "")], real
    detail = floor.client.get(f"/api/evacuations/{evs[0]['id']}").json()
    assert [c["device"] for c in detail["commands"] if c["action"] == "relay_off"] == ["plug-z1-kettle"]

    # a real incident, though it came seconds after the drill started: closing it asks for its review
    notice_alarm = next(a for a in floor.alarms() if a["rule"] == "evac.notice")
    assert notice_alarm["drill"] is False, notice_alarm
    assert floor.client.post(f"/api/alarms/{notice_alarm['id']}/close", json={"reason": "out"}).status_code == 200
    wait_for(lambda: [t for t in _open_tasks(floor) if t["schedule"] == "post_incident_review"], what="review task")


def _open_tasks(floor: Floor) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = floor.client.get("/api/inspections", params={"status": "open"}).json()
    return tasks


def _access_rows(floor: Floor) -> int:
    """How many badge events the server wrote to its access log (read from its SQLite file)."""
    engine = create_engine(floor.sql_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AccessLogRow)).scalar_one())
    finally:
        engine.dispose()
