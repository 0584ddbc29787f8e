"""Data minimisation (issue #9, security 4): badge numbers and people's names and ids reach only the roles
that need them (server/domain/policy.py PEOPLE_SCOPE and BADGE_ROLES), against a real server.

The floor of tests/server/api/api_server.py (p-lead 王领班 and p-op1 坐席一 rostered in z1, p-op2 坐席二 not
rostered) is given people data on every route that can carry it: access alarms on a person and on an
unknown card, a dead letter holding badge numbers, a page to the shift lead, a drill with p-op1
unaccounted, a roll-call mark and an acknowledgement note naming people. Then every readable route is
fetched as each role and searched for what that role must not see, and for what the roles that need it
must see (so that a redaction blanking everything fails too).

The expectations below are written out by hand, not computed from the policy.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway import contract
from gateway.mqtt import MqttClient
from server.api.minimise import MASK, Redactor
from server.domain.policy import Actor, PeopleScope, Role, can_see_badges, can_see_person, people_scope
from server.domain.rules.access import card_key
from tests.server.api.api_server import Api, server_on_mosquitto
from tests.server.domain.harness import load_site
from tests.support.wait import wait_until

HIDDEN = "(hidden)"
PERSON = {"p-lead": ("p-lead", "王领班"), "p-op1": ("p-op1", "坐席一"), "p-op2": ("p-op2", "坐席二")}
"""person -> the tokens that identify them (id, name)."""
UNKNOWN_CARD = "B9999"
STRAY_BADGE = "X-55501"
"""A badge the site file does not know, inside a dead letter: masked by its field, not by a list."""
BADGES = ["B1001", "B1011", "B1012", UNKNOWN_CARD, STRAY_BADGE, card_key(UNKNOWN_CARD)]

ACCOUNTS: dict[str, tuple[list[str], list[str]]] = {
    "p-op1": (["operator"], ["z1"]),  # an operator whose account is their person id: sees themselves
    "op-z2": (["operator"], ["z2"]),
    "fm": (["facility_manager"], []),
    "maint": (["maintenance"], []),
    "sup-z1": (["supervisor"], ["z1"]),
    "sup-z2": (["supervisor"], ["z2"]),
    "lead-z1": (["shift_lead"], ["z1"]),
    "safety": (["safety_officer"], []),
    "osc": (["on_site_command"], []),
    "ec": (["emergency_command"], []),
}
NEVER: dict[str, set[str]] = {
    "p-op1": {"p-lead", "p-op2"},
    "op-z2": set(PERSON),
    "fm": set(PERSON),
    "maint": set(PERSON),
    "sup-z1": set(),  # p-op2 (not rostered) shows where found in z1, hidden in free text
    "sup-z2": set(PERSON),
    "lead-z1": set(),
    "safety": set(),
    "osc": set(),
    "ec": set(),
}
"""Whose id and name each account must never receive, on any route."""
BADGE_READERS = {"safety"}


@dataclass
class Floor:
    api: Api
    clients: dict[str, httpx.Client]
    person_alarm: dict[str, Any]
    card_alarm: dict[str, Any]
    drill: str
    routes: list[str] = field(default_factory=list)


def _events(api: Api, seq: int, events: list[dict[str, Any]]) -> None:
    """One raw event batch from edge e1 (raw JSON, so an invalid event can be sent too)."""
    device = MqttClient(api.broker.client_settings(), f"edge-e1-events-{time.monotonic_ns()}")
    device.start()
    try:
        assert device.wait_connected(10)
        body = {"v": 1, "edge": "e1", "seq": seq, "sent_at": datetime.now(UTC).isoformat(), "events": events}
        mid = device.publish(contract.edge_topic("sec", "e1", contract.Channel.EVENTS), json.dumps(body).encode(), 1)
        assert mid is not None
    finally:
        device.stop()


def _door(kind: str, badge: str, direction: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"device": "door-z1-exit", "ts": datetime.now(UTC).isoformat(), "type": kind,
                             "badge": badge}
    if direction:
        event["direction"] = direction
    return event


def _alarm(api: Api, rule: str, subject: str) -> dict[str, Any] | None:
    return next((a for a in api.admin.get("/api/alarms?limit=5000").json()
                 if a["rule"] == rule and a["subject"] == subject), None)


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Floor]:
    with server_on_mosquitto(tmp_path_factory.mktemp("minimise")) as api:
        yield _populate(api)


def _populate(api: Api) -> Floor:
    started = time.monotonic()
    api.overload_strip()  # a major alarm in z1: the shift lead on duty (person:p-lead) is paged
    assert wait_until(lambda: any(n["recipient"] == "person:p-lead" for n in api.admin.get("/api/notifications")
                                  .json()), timeout=30), "the shift lead was not paged"
    # seq far above overload_strip's, which shares the edge's sequence
    _events(api, 10_000, [_door("access_granted", "B1011", "in")]
            + [_door("access_denied", "B1012") for _ in range(3)]
            + [_door("access_denied", UNKNOWN_CARD) for _ in range(3)])
    person_alarm = wait_until(lambda: _alarm(api, "access.denied_repeat", "p-op2"), timeout=30)
    card_alarm = wait_until(lambda: _alarm(api, "access.denied_repeat", card_key(UNKNOWN_CARD)), timeout=30)
    assert person_alarm and card_alarm, api.admin.get("/api/alarms").json()
    # a raw door event the contract refuses (unknown type): its badges land in the dead-letter payload
    _events(api, 10_001, [_door("tailgate", "B1012"), {**_door("tailgate", STRAY_BADGE), "card_no": STRAY_BADGE}])
    assert wait_until(lambda: any(STRAY_BADGE in d["payload"] for d in api.admin.get("/api/dead-letters").json()),
                      timeout=30), "no dead letter"
    ack = api.admin.post(f"/api/alarms/{person_alarm['id']}/ack",
                         json={"note": "spoke to 坐席二 (p-op2), card B1012 is damaged"})
    assert ack.status_code == 200, ack.text
    drill = api.admin.post("/api/evacuations", json={"floor": "f1", "drill": True, "reason": "minimisation"})
    assert drill.status_code == 201, drill.text
    ev = drill.json()["id"]
    assert wait_until(lambda: [u["person"] for u in api.admin.get(f"/api/evacuations/{ev}/report").json()
                               ["unaccounted"]] == ["p-op1"], timeout=30), "p-op1 is not unaccounted"
    mark = api.admin.post(f"/api/evacuations/{ev}/roll-call/p-lead", json={"note": "王领班 at the assembly point"})
    assert mark.status_code == 200, mark.text
    clients = {name: api.as_roles(name, roles, zones) for name, (roles, zones) in ACCOUNTS.items()}
    routes = ["/api/alarms?limit=5000", f"/api/alarms/{person_alarm['id']}", f"/api/alarms/{card_alarm['id']}",
              f"/api/alarms/{person_alarm['id']}/audit", "/api/notifications", "/api/dead-letters",
              "/api/evacuations", f"/api/evacuations/{ev}", f"/api/evacuations/{ev}/report",
              f"/api/evacuations/{ev}/roll-call", "/api/audit", "/api/inspections?status=open",
              "/api/inspections/findings", "/api/inspections/history", "/api/inspections/history?format=csv",
              "/api/inspections/history?format=html", "/api/devices", "/api/floor", "/api/me",
              "/api/devices/door-z1-exit/commands"]
    print(f"\nfloor populated in {time.monotonic() - started:.1f} s")
    return Floor(api, clients, person_alarm, card_alarm, ev, routes)


def _text(response: httpx.Response) -> str:
    """The body as a person reads it (JSON without \\u escapes)."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return json.dumps(response.json(), ensure_ascii=False)
    return response.text


def test_the_policy_table_answers_as_documented() -> None:
    """The pure decision (no server): scopes per role, zones, self, badges."""
    def actor(name: str, *roles: Role, zones: tuple[str, ...] = ()) -> Actor:
        return Actor(name, frozenset(roles), frozenset(zones))

    assert people_scope(actor("x", Role.FACILITY_MANAGER)) is PeopleScope.NONE
    assert people_scope(actor("x", Role.OPERATOR, Role.SUPERVISOR)) is PeopleScope.ZONES  # the widest role
    assert people_scope(actor("x", Role.ADMIN)) is PeopleScope.ALL
    assert can_see_person(actor("p-op1", Role.OPERATOR), "p-op1")
    assert not can_see_person(actor("p-op1", Role.OPERATOR), "p-op2", ["z1"])
    assert can_see_person(actor("s", Role.SUPERVISOR, zones=("z1",)), "p-op2", ["z1"])
    assert not can_see_person(actor("s", Role.SUPERVISOR, zones=("z2",)), "p-op2", ["z1"])
    assert not can_see_person(actor("s", Role.SUPERVISOR, zones=("z2",)), "p-op2", [])
    assert can_see_person(actor("s", Role.SUPERVISOR), "p-op2", [])  # no zones: every zone
    assert can_see_person(actor("e", Role.EMERGENCY_COMMAND, zones=("z2",)), "p-op2", ["z1"])
    assert not can_see_person(actor("f", Role.FACILITY_MANAGER, Role.MAINTENANCE), "p-op2", ["z1"])
    assert [r for r in Role if can_see_badges(actor("x", r))] == [Role.SAFETY_OFFICER, Role.ADMIN]


def test_no_route_gives_a_role_names_ids_or_badges_it_does_not_need(floor: Floor) -> None:
    fetched = refused = 0
    for name, client in floor.clients.items():
        never = [token for person in NEVER[name] for token in PERSON[person]]
        never += [] if name in BADGE_READERS else BADGES
        for route in floor.routes:
            response = client.get(route)
            if response.status_code == 403:  # roll call and audit are role-limited: nothing to redact
                refused += 1
                continue
            assert response.status_code == 200, (name, route, response.status_code, response.text)
            body = _text(response)
            leaked = [token for token in never if token in body]
            assert not leaked, (name, route, leaked, body[:2000])
            fetched += 1
    # the sweep means something only where the data is: what the unrestricted role receives per route
    tokens = [t for person in PERSON.values() for t in person] + BADGES
    carrying: dict[str, list[str]] = {}
    for route in floor.routes:
        body = _text(floor.clients["safety"].get(route))
        if found := [t for t in tokens if t in body]:
            carrying[route] = found
    print(f"\n{fetched} responses on {len(floor.routes)} routes for {len(floor.clients)} roles searched; "
          f"{refused} refused by role; routes carrying people data (as safety_officer): {len(carrying)}")
    for route, tokens in carrying.items():
        print(f"  {route}: {', '.join(tokens)}")
    assert fetched > 150
    must_carry = ["/api/alarms?limit=5000", "/api/notifications", "/api/dead-letters", "/report", "/roll-call",
                  "/api/audit"]
    assert all(any(route.endswith(m) or route == m for route in carrying) for m in must_carry), carrying


def _get(floor: Floor, name: str, route: str) -> Any:
    response = floor.clients[name].get(route)
    assert response.status_code == 200, (name, route, response.text)
    return response.json()


def test_the_drill_report_names_the_unaccounted_only_to_who_needs_them(floor: Floor) -> None:
    route = f"/api/evacuations/{floor.drill}/report"
    for name in ("safety", "osc", "ec", "sup-z1", "lead-z1", "p-op1"):  # p-op1: it is their own line
        unaccounted = _get(floor, name, route)["unaccounted"]
        assert [(u["person"], u["name"]) for u in unaccounted] == [("p-op1", "坐席一")], name
    for name in ("fm", "maint", "op-z2", "sup-z2"):
        report = _get(floor, name, route)
        # the headcount stays: one unaccounted, in z1, without a name
        assert [(u["person"], u["name"], u["zone"]) for u in report["unaccounted"]] == [(HIDDEN, HIDDEN, "z1")], name
        # p-lead, rostered and marked safe at the assembly point, is counted too (accounted), also without a name
        assert report["people"] == 2 == len(report["unaccounted"]) + len(report["accounted"])
        assert [(a["person"], a["name"], a["status"]) for a in report["accounted"]] == [(HIDDEN, HIDDEN, "safe")], name
    roll = f"/api/evacuations/{floor.drill}/roll-call"
    assert {e["name"] for e in _get(floor, "sup-z1", roll)["people"]} == {"坐席一", "王领班"}
    assert {e["name"] for e in _get(floor, "sup-z2", roll)["people"]} == {HIDDEN}
    assert len(_get(floor, "sup-z2", roll)["people"]) == len(_get(floor, "osc", roll)["people"]) == 2


def test_access_alarm_subjects_follow_people_and_badge_rights(floor: Floor) -> None:
    person, card = f"/api/alarms/{floor.person_alarm['id']}", f"/api/alarms/{floor.card_alarm['id']}"
    expected = {"safety": ("p-op2", card_key(UNKNOWN_CARD)), "osc": ("p-op2", "card-****"),
                "sup-z1": ("p-op2", "card-****"),  # found at a z1 door: their zone
                "sup-z2": (HIDDEN, "card-****"), "p-op1": (HIDDEN, "card-****"), "fm": (HIDDEN, "card-****")}
    for name, (subject, card_subject) in expected.items():
        assert (_get(floor, name, person)["subject"], _get(floor, name, card)["subject"]) == (subject, card_subject)
    why = [r["why"] for r in _get(floor, "fm", f"{person}/audit")]
    assert "spoke to (hidden) ((hidden)), card **** is damaged" in why, why
    why = [r["why"] for r in _get(floor, "safety", f"{person}/audit")]
    assert "spoke to 坐席二 (p-op2), card B1012 is damaged" in why, why


def test_notifications_dead_letters_and_audit_keep_people_for_who_needs_them(floor: Floor) -> None:
    def recipients(name: str) -> set[str]:
        return {n["recipient"] for n in _get(floor, name, "/api/notifications") if n["recipient"].startswith("person:")}

    assert "person:p-lead" in recipients("lead-z1") and "person:p-lead" in recipients("safety")
    assert recipients("fm") == recipients("op-z2") == {"person:(hidden)"}
    letters = " ".join(d["payload"] for d in _get(floor, "safety", "/api/dead-letters"))
    assert "B1012" in letters and STRAY_BADGE in letters
    masked = " ".join(d["payload"] for d in _get(floor, "osc", "/api/dead-letters"))
    assert re.search(r'"badge":\s*"\*{4}"', masked) and re.search(r'"card_no":\s*"\*{4}"', masked), masked
    audit = json.dumps(_get(floor, "sup-z1", "/api/audit"), ensure_ascii=False)
    assert "/person:p-lead" in audit and "王领班 at the assembly point" in audit
    audit = json.dumps(_get(floor, "fm", "/api/audit"), ensure_ascii=False)
    assert "/person:(hidden)" in audit and "(hidden) at the assembly point" in audit


class _Stream:
    """An SSE reader in a thread: the `alarm` events one account receives."""

    def __init__(self, client: httpx.Client, until: set[int]) -> None:
        self.events: list[dict[str, Any]] = []
        self.until = until
        """Alarm ids: the reader hangs up once it has an event of each (a stream never ends by itself)."""
        self.open = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(client,), daemon=True)
        self.thread.start()

    def _run(self, client: httpx.Client) -> None:
        try:
            with client.stream("GET", "/api/alarms/stream", timeout=httpx.Timeout(30, read=20)) as response:
                for line in response.iter_lines():
                    if line.startswith("retry:"):
                        self.open.set()  # the listener is registered before the first line is sent
                    elif line.startswith("data: "):
                        self.events.append(json.loads(line.removeprefix("data: ")))
                        if self.until <= {e["id"] for e in self.events}:
                            return
        except httpx.HTTPError:
            pass  # the server went away: the test's wait fails with what was received


def test_the_live_stream_is_redacted_per_reader(floor: Floor) -> None:
    ids = {floor.person_alarm["id"], floor.card_alarm["id"]}
    streams = {name: _Stream(floor.clients[name], ids) for name in ("fm", "safety", "sup-z1")}
    assert all(s.open.wait(10) for s in streams.values())
    closed = floor.api.admin.post(f"/api/alarms/{floor.person_alarm['id']}/close", json={"reason": "card replaced"})
    assert closed.status_code == 200, closed.text
    ack = floor.api.admin.post(f"/api/alarms/{floor.card_alarm['id']}/ack", json={"note": "card retained"})
    assert ack.status_code == 200, ack.text

    def seen(name: str) -> dict[int, str]:
        return {e["id"]: e["subject"] for e in streams[name].events}

    assert wait_until(lambda: all(ids <= set(seen(n)) for n in streams), timeout=20), \
        {n: [(e["id"], e["subject"], e["state"]) for e in s.events] for n, s in streams.items()}
    person, card = floor.person_alarm["id"], floor.card_alarm["id"]
    assert (seen("fm")[person], seen("fm")[card]) == (HIDDEN, "card-****")
    assert (seen("sup-z1")[person], seen("sup-z1")[card]) == ("p-op2", "card-****")
    assert (seen("safety")[person], seen("safety")[card]) == ("p-op2", card_key(UNKNOWN_CARD))


def test_the_docs_carry_the_table() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text(encoding="utf-8")
    assert "## Data minimisation" in docs
    section = docs.split("## Data minimisation", 1)[1].split("\n## ", 1)[0]
    for role in Role:
        assert f"`{role.value}`" in section, role


def test_a_badge_is_masked_in_free_text_as_the_readers_write_it() -> None:
    """The site file has `B1006` as printed; an esp-rfid reader writes it `b1006`: masked either way."""
    redactor = Redactor.of(Actor("op", frozenset({Role.OPERATOR})), load_site())
    assert not can_see_badges(redactor.actor)
    for read in ("B1006", "b1006"):
        assert redactor.text(f"card {read} at door-mr") == f"card {MASK} at door-mr"
