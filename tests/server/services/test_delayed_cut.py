"""elec.high_power_appliance's delayed cut (RULES.md §2.1): the page warns, the relay goes off after the
delay unless the shift lead holds it, never on an essential plug.

End to end with real parts: Mosquitto, the real EdgeAgent with the Shelly profile, simulated Shelly
plugs that obey Switch.Set and report what they draw, the server over HTTP and a webhook receiver. The
site shortens the delay (`cut_delay_s`) and the step's hold; everything else is the production path.
The restart and strip cases run the service on a real database with a fake clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from edge.agent import EdgeAgent
from gateway import contract
from gateway.broker import EmbeddedBroker, free_port
from gateway.contract import Severity
from gateway.mqtt import Incoming, MqttClient
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.commands import CommandRepository
from server.adapters.sql.delayed_cuts import DelayedCutRepository
from server.api.schemas import CutPublic
from server.domain.findings import Finding, Transition
from server.domain.power import plan_delayed_cut
from server.services.alarms import AlarmService
from server.services.commands import CommandService
from server.services.delayed_cuts import DelayedCutService
from server.settings import Settings
from simulators.vendors import shelly
from tests.server.services.conftest import T0, FakeClock, Hook, make_site
from tests.server.services.helpers import by_id, raise_alarm
from tests.support.edge import edge_config
from tests.support.server import RunningServer, serve
from tests.support.wait import wait_for

TOKEN = "cut-admin-token"
DELAY_S = 8
SITE_TZ = ZoneInfo("Asia/Shanghai")
"""The cut site's timezone: pushes give local times."""
PLUGS = {"plug-s1-kettle": "shellyplug-s1", "plug-s2-heater": "shellyplug-s2", "plug-s3-pc": "shellyplug-s3"}


def cut_site(hook_port: int, delay_s: float = DELAY_S, device_delays: dict[str, float] | None = None) -> str:
    """The cut test floor; `device_delays`: a cut delay of its own for some plugs (the live-page test)."""
    j = f"json://127.0.0.1:{hook_port}"
    own = "".join(f"\n    {dev}: {{elec.high_power_appliance: {{cut_delay_s: {s}}}}}"
                  for dev, s in (device_delays or {}).items())
    devices = f"\n  devices:{own}" if own else ""
    return f"""
site: {{id: r1, name: Cut test floor, timezone: Asia/Shanghai}}
floors: [{{id: f1, name: 1F}}]
zones:
  - {{id: z1, name: 坐席区一, floor: f1, kind: office}}
  - {{id: z2, name: 坐席区二, floor: f1, kind: office}}
devices:
  - {{id: strip-z1-01, kind: strip_meter, zone: z1, edge: e1, rated_a: 10}}
  - {{id: plug-s1-kettle, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, class: non_essential, cuttable: true,
     seat: s1}}
  - {{id: plug-s2-heater, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, class: non_essential, cuttable: true,
     seat: s2}}
  - {{id: plug-s3-pc, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, class: essential, essential: true,
     seat: s3}}
  - {{id: plug-s4-spare, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, class: unknown, cuttable: true,
     seat: s4, strip: strip-z1-01}}
thresholds:
  zones:
    z1:
      elec.high_power_appliance: {{hold_s: 1, clear_hold_s: 1, cut_delay_s: {delay_s}}}{devices}
people:
  - {{id: p-lead, name: 王领班, badge: B1, roles: [shift_lead]}}
  - {{id: p-sup, name: 李主管, badge: B2, roles: [supervisor]}}
  - {{id: p-op1, name: 坐席一, badge: B11, roles: [operator]}}
contacts:
  p-lead: ['{j}/lead']
  supervisor: ['{j}/supervisor']
  fallback: ['{j}/fallback']
shifts:
  - {{id: all, start: '00:00', end: '00:00'}}
roster:
  - {{person: p-lead, shift: all, zone: z1, lead: true}}
  - {{person: p-op1, shift: all, zone: z1, seat: s1}}
"""


# -- pure decision and the service on a real database -----------------------------------------------


def test_which_plugs_get_a_delayed_cut(tmp_path: Path) -> None:
    site = make_site(cut_site(1, delay_s=60), tmp_path)
    kettle = plan_delayed_cut("elec.high_power_appliance", "plug-s1-kettle", site, None)
    assert kettle is not None and kettle.delay == timedelta(seconds=60) and "non-essential" in kettle.reason
    assert plan_delayed_cut("elec.high_power_appliance", "plug-s3-pc", site, 9.9) is None, "never essential"
    assert plan_delayed_cut("elec.plug_overcurrent", "plug-s1-kettle", site, None) is None
    # an unknown-class cuttable plug: only when its strip is at >= 80 % of its 10 A
    assert plan_delayed_cut("elec.high_power_appliance", "plug-s4-spare", site, 7.9) is None
    assert plan_delayed_cut("elec.high_power_appliance", "plug-s4-spare", site, None) is None
    loaded = plan_delayed_cut("elec.high_power_appliance", "plug-s4-spare", site, 8.0)
    assert loaded is not None and "strip-z1-01 at 8.0 A" in loaded.reason


def test_a_restart_neither_drops_nor_repeats_the_cut_and_a_cleared_alarm_cancels_it(db, tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(cut_site(1, delay_s=60), tmp_path)
    clock = FakeClock(T0)
    sent: list[contract.Command] = []
    alarms = AlarmService(AlarmWriter(sessions), [])
    commands = CommandService(CommandRepository(sessions), site, clock, lambda _t, c: sent.append(c))

    def service() -> DelayedCutService:  # one server life
        return DelayedCutService(DelayedCutRepository(sessions), site, clock, commands, lambda _d: None,
                                 by_id(alarms))

    first = service()
    alarms.listeners.append(first.on_alarm)
    kettle = raise_alarm(alarms, "elec.high_power_appliance", "plug-s1-kettle", "z1", Severity.MAJOR, clock())
    heater = raise_alarm(alarms, "elec.high_power_appliance", "plug-s2-heater", "z1", Severity.MAJOR, clock())
    raise_alarm(alarms, "elec.high_power_appliance", "plug-s3-pc", "z1", Severity.MAJOR, clock())
    assert first.note_of(kettle.id)[1] == "relay OFF at 11:01:00 unless the shift lead holds the cut"  # type: ignore
    clock.advance(timedelta(seconds=30))
    alarms.commit([Finding("elec.high_power_appliance", Transition.CLEAR, Severity.MAJOR, "plug-s2-heater", "z1",
                           "r1", 90.0, "step gone", clock())], clock())
    assert first.state("plug-s2-heater")["cuts"][0]["status"] == "cancelled"

    clock.advance(timedelta(seconds=29))
    second = service()  # restart before the due time: the row is in SQL
    assert second.run_due(clock()) == []
    clock.advance(timedelta(seconds=1))
    cut = second.run_due(clock())
    assert len(cut) == 1 and [c.device for c in sent] == ["plug-s1-kettle"]
    assert sent[0].action is contract.Action.RELAY_OFF and sent[0].expires_at > sent[0].issued_at
    assert second.note_of(kettle.id)[1] == "relay switched OFF at 11:01:00"  # type: ignore[index]
    kid = kettle.id
    assert kid is not None and CutPublic.of(second.cuts_of([kid])[kid]).state == "cutting", "sent, no result yet"
    commands.on_result("e1", contract.CommandResult(id=sent[0].id, ok=True, ts=clock()))
    assert second.confirm(clock()) == [kid], "the edge's result makes the cut done"
    view = CutPublic.of(second.cuts_of([kid])[kid])
    assert view.state == "done" and view.at == clock() and second.confirm(clock()) == []
    assert (second.note_of(kid) or ("", ""))[1] == "relay switched OFF at 11:01:00"
    assert service().run_due(clock() + timedelta(minutes=5)) == [], "never a second cut"
    assert [c.device for c in sent] == ["plug-s1-kettle"], "no cut of the cleared heater or the essential pc"
    assert heater.id is not None


# -- end to end -------------------------------------------------------------------------------------


class ShellyPlugs:
    """Simulated Shelly Plus Plug S devices on the floor broker: obey Switch.Set, report what they draw."""

    def __init__(self, broker: EmbeddedBroker, addresses: Iterable[str] = PLUGS.values()) -> None:
        """`addresses`: the simulated devices' Shelly names (a strip meter reports as a plug does)."""
        self.state = {addr: shelly.SwitchState(apower=90.0, current=0.41) for addr in addresses}
        self.load_w = dict.fromkeys(self.state, 90.0)
        self.welded: set[str] = set()
        """Plugs whose relay is welded shut: they answer Switch.Set and stay on (the edge's cut fails)."""
        self.lock = threading.Lock()
        self.client = MqttClient(broker.client_settings(), "shelly-plugs", on_message=self._rpc)
        for addr in self.state:
            self.client.subscribe(shelly.ShellyTopics(addr).rpc)
        self.client.start()
        # A Switch.Set the broker routes before it granted these subscriptions is never obeyed.
        assert self.client.wait_connected(10) and self.client.wait_subscribed(10), "the plugs' SUBACK"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, daemon=True)
        self._thread.start()

    def _measure(self, addr: str) -> None:
        st = self.state[addr]
        st.apower = self.load_w[addr] if st.output else 0.0
        st.current = st.apower / st.voltage

    def _publish(self, pub: Any) -> None:
        self.client.publish(pub.topic, pub.payload, qos=pub.qos, retain=pub.retain)

    def _rpc(self, message: Incoming) -> None:
        addr = message.topic.split("/")[0]
        with self.lock:
            outcome = shelly.handle_rpc(addr, self.state[addr], message.payload)
            if addr in self.welded:
                self.state[addr].output = True
            self._measure(addr)
            status = shelly.encode_status(addr, self.state[addr])
        if outcome.reply is not None:
            self._publish(outcome.reply)
        self._publish(status)

    def _report(self) -> None:
        while not self._stop.wait(0.5):
            with self.lock:
                pubs = []
                for addr in self.state:
                    self._measure(addr)
                    pubs.append(shelly.encode_status(addr, self.state[addr]))
            for pub in pubs:
                self._publish(pub)

    def plug_in(self, addr: str, watts: float) -> None:
        with self.lock:
            self.load_w[addr] = watts

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.stop()


@dataclass
class Floor:
    api: httpx.Client
    plugs: ShellyPlugs
    hook: Hook
    port: int
    server: RunningServer | None = None
    """The in-process server (its runtime's services), for a test that writes a command as the server would."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token_for(self, name: str, roles: list[str]) -> str:
        """A service token for a user with these roles (made or updated through the API)."""
        r = self.api.put(f"/api/users/{name}", json={"roles": roles, "service_token": True})
        assert r.status_code == 200, r.text
        token: str = r.json()["token"]
        return token

    def as_roles(self, name: str, roles: list[str]) -> httpx.Client:
        r = self.api.put(f"/api/users/{name}", json={"roles": roles, "service_token": True})
        assert r.status_code == 200, r.text
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10,
                            headers={"Authorization": f"Bearer {r.json()['token']}"})

    def commands(self, device: str) -> list[dict[str, Any]]:
        body: list[dict[str, Any]] = self.api.get(f"/api/devices/{device}/commands").json()
        return body


@pytest.fixture
def floor(mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path) -> Iterator[Floor]:
    with running_floor(mosquitto, hook, tmp_path, cut_site(hook.port)) as running:
        yield running


@contextmanager
def running_floor(mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path, site_text: str,
                  shelly_devices: Mapping[str, tuple[str, str]] | None = None) -> Iterator[Floor]:
    """The server over HTTP, the real edge agent and the simulated plugs on `site_text`'s floor; also used
    by the live-page test (tests/web/test_cut_card.py). `shelly_devices`: device -> (kind, Shelly address)
    of the simulated devices on the edge, PLUGS' seat plugs when not given."""
    shelly_devices = shelly_devices or {dev: ("smart_plug", addr) for dev, addr in PLUGS.items()}
    site_file = tmp_path / "site.yaml"
    site_file.write_text(site_text, encoding="utf-8")
    settings = Settings(site_file=site_file, data_dir=tmp_path / "server", mqtt=mosquitto.client_settings(),
                        admin_token=TOKEN, http_port=free_port(), gap_window_s=2)
    with serve(settings) as server:
        api = server.client(TOKEN)
        plugs = ShellyPlugs(mosquitto, [addr for _, addr in shelly_devices.values()])
        devices = [{"id": dev, "kind": kind, "zone": "z1", "vendor": "shelly", "address": addr, "rated_a": 10}
                   for dev, (kind, addr) in shelly_devices.items()]
        agent = EdgeAgent(edge_config("r1", "e1", mosquitto.client_settings(), tmp_path / "edge.sqlite", devices,
                                      max_age_ms=100, commands={"confirm_timeout_s": 3}))
        agent.start()
        wait_for(lambda: all(d["last_seen"] for d in api.get("/api/devices").json() if d["id"] in shelly_devices),
                 timeout=30, what="plug readings through the edge")
        try:
            yield Floor(api, plugs, hook, settings.http_port, server)
        finally:
            agent.stop()
            plugs.stop()
            api.close()


def test_kettle_cut_after_the_delay_lead_holds_the_heater_essential_pc_never_operator_refused(floor: Floor) -> None:
    lead = floor.as_roles("lead-wang", ["shift_lead"])
    operator = floor.as_roles("op-one", ["operator"])
    for addr in PLUGS.values():  # a kettle on each seat plug: +1.9 kW
        floor.plugs.plug_in(addr, 2000.0)
    # the cut rows are written by a listener after each alarm's commit: wait for them, not just the alarms
    alarms = wait_for(lambda: (lambda found: found if len(found) == 3 and found["plug-s1-kettle"]["cut"]
                           and found["plug-s2-heater"]["cut"] else None)(
        {a["device"]: a for a in floor.api.get("/api/alarms?state=open").json()
         if a["rule"] == "elec.high_power_appliance"}), timeout=30, what="three high-power alarms and two cuts")
    raised_at = datetime.now(UTC)

    # the alarm carries its pending cut (issue #5); the essential pc's alarm has none
    kettle_cut = alarms["plug-s1-kettle"]["cut"]
    assert kettle_cut["state"] == "pending" and kettle_cut["held_by"] is None
    assert (datetime.fromisoformat(kettle_cut["due_at"]) - datetime.fromisoformat(
        alarms["plug-s1-kettle"]["raised_at"])).total_seconds() == pytest.approx(DELAY_S, abs=0.01)
    assert alarms["plug-s3-pc"]["cut"] is None

    # (d) an operator cannot hold a cut; (b) the lead can, with a reason, audited
    r = operator.post("/api/devices/plug-s2-heater/hold-cut", json={"reason": "my heater"})
    assert r.status_code == 403, r.text
    r = lead.post("/api/devices/plug-s2-heater/hold-cut", json={"reason": "medical heater, allowed"})
    assert r.status_code == 200, r.text
    assert r.json()["held"] == [alarms["plug-s2-heater"]["id"]]
    assert r.json()["cuts"][0]["status"] == "held" and r.json()["cuts"][0]["by"] == "lead-wang"
    audit = floor.api.get("/api/audit?limit=500").json()
    assert any(a["action"] == "POST /api/devices/{device}/hold-cut" and a["who"] == "lead-wang"
               and a["before"]["cuts"][0]["status"] == "pending" for a in audit)

    # the held cut on the alarm: who and why for the lead, the holder hidden from an operator (a person)
    heater_id = alarms["plug-s2-heater"]["id"]
    held = lead.get(f"/api/alarms/{heater_id}").json()["cut"]
    assert held["state"] == "held" and held["held_by"] == "lead-wang" and held["why"] == "medical heater, allowed"
    assert operator.get(f"/api/alarms/{heater_id}").json()["cut"]["held_by"] == "(hidden)"
    assert next(a for a in operator.get("/api/alarms?state=open").json() if a["id"] == heater_id)["cut"]["state"] \
        == "held"

    # the lead's page for the kettle says when the cut comes, before it comes
    page = wait_for(lambda: [m for m in floor.hook.at("/lead") if "plug-s1-kettle" in m["message"]],
                timeout=DELAY_S * 3, what="the kettle's warning page")[0]
    assert "unless the shift lead holds the cut" in page["message"] and "若领班不干预" in page["message"]

    # (a) no override: relay off after the delay, confirmed by the edge and by the plug's readings
    cmd = wait_for(lambda: [c for c in floor.commands("plug-s1-kettle") if c["status"] == "ok"],
               timeout=DELAY_S * 4, what="the kettle's cut confirmed")[0]
    assert cmd["action"] == "relay_off" and cmd["safety"] and cmd["who"] == "system"
    assert cmd["ref"] == f"alarm {alarms['plug-s1-kettle']['id']}"
    issued = datetime.fromisoformat(cmd["issued_at"])
    log = floor.api.get(f"/api/notifications?alarm={alarms['plug-s1-kettle']['id']}").json()
    sent = min(datetime.fromisoformat(n["sent_at"]) for n in log if n["recipient"] == "person:p-lead" and n["sent_at"])
    assert sent < issued, "the warning push comes before the cut"
    delay = (issued - datetime.fromisoformat(alarms["plug-s1-kettle"]["raised_at"])).total_seconds()
    assert delay >= DELAY_S, "never before the delay"
    kettle_id = alarms["plug-s1-kettle"]["id"]
    done = wait_for(lambda: (lambda c: c if c["state"] == "done" else None)(
        floor.api.get(f"/api/alarms/{kettle_id}").json()["cut"]), timeout=15, what="the kettle's cut done")
    assert datetime.fromisoformat(done["at"]) == datetime.fromisoformat(cmd["result_at"])
    readback = wait_for(lambda: (lambda d: d if d["metrics"].get("relay_on") is False
                                 and d["metrics"].get("power_w") == 0 else None)(
        next(d for d in floor.api.get("/api/devices").json() if d["id"] == "plug-s1-kettle")),
        timeout=15, what="plug reads off")
    assert readback["metrics"]["relay_on"] is False

    # (b), (c): past the heater's and the pc's due time, neither got a command
    due = max(datetime.fromisoformat(a["raised_at"]) for a in alarms.values()) + timedelta(seconds=DELAY_S + 2)
    wait_for(lambda: datetime.now(UTC) > due, timeout=DELAY_S * 3, what="past every due time")
    assert floor.commands("plug-s2-heater") == [], "held by the lead"
    assert floor.commands("plug-s3-pc") == [], "an essential plug is never cut"
    assert floor.api.post("/api/devices/plug-s3-pc/hold-cut", json={"reason": "x"}).json()["cuts"] == []
    assert not [a for a in floor.api.get("/api/alarms?state=open").json() if a["rule"] == "elec.relay_mismatch"]

    # one follow-up each, to the channels of the alarm's first page: the hold (who, why) and the cut done
    def first_paths(device: str) -> set[str]:
        return {p for p, m in floor.hook.received if device in m["message"] and "[断电/cut" not in m["title"]}

    def follow_ups(event: str, device: str) -> list[tuple[str, dict[str, Any]]]:
        return [(p, m) for p, m in floor.hook.received if m["title"].startswith(f"[断电/cut {event}]")
                and device in m["title"]]

    held_push = wait_for(lambda: follow_ups("held", "plug-s2-heater"), timeout=15, what="the hold's follow-up")
    done_push = wait_for(lambda: follow_ups("done", "plug-s1-kettle"), timeout=15, what="the cut's follow-up")
    assert "cut held by lead-wang: medical heater, allowed" in held_push[0][1]["message"]
    assert "断电已由 lead-wang 暂缓" in held_push[0][1]["message"]
    off_at = datetime.fromisoformat(cmd["result_at"]).astimezone(SITE_TZ).strftime("%H:%M:%S")
    assert f"relay OFF at {off_at}, confirmed by the edge" in done_push[0][1]["message"]
    notified = floor.api.get(f"/api/notifications?alarm={kettle_id}").json()
    done_sent = next(datetime.fromisoformat(n["sent_at"]) for n in notified
                     if n["title"].startswith("[断电/cut done]") and n["sent_at"])
    wait_for(lambda: datetime.now(UTC) > done_sent + timedelta(seconds=3), timeout=10, what="3 s for any repeat")
    held_push, done_push = follow_ups("held", "plug-s2-heater"), follow_ups("done", "plug-s1-kettle")
    assert sorted(p for p, _ in held_push) == sorted(first_paths("plug-s2-heater")), "one per first-page channel"
    assert sorted(p for p, _ in done_push) == sorted(first_paths("plug-s1-kettle")), "one per first-page channel"
    assert not follow_ups("done", "plug-s2-heater") and not follow_ups("held", "plug-s1-kettle")
    print(f"\ncut issued {delay:.1f} s after the raise (delay {DELAY_S} s), warning page "
          f"{(issued - sent).total_seconds():.1f} s before it; result ok at {cmd['result_at']}; "
          f"alarms seen {raised_at.isoformat(timespec='seconds')}; cut done on the alarm "
          f"{(datetime.fromisoformat(done['at']) - issued).total_seconds():.1f} s after the command, its push sent "
          f"{(done_sent - datetime.fromisoformat(done['at'])).total_seconds():.1f} s after the edge's result; "
          f"follow-ups held {[p for p, _ in held_push]}, done {[p for p, _ in done_push]}; page: "
          f"{json.dumps(page['message'], ensure_ascii=False)[:200]}")
