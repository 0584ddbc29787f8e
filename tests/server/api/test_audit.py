"""Every state-changing API route writes an audit row: who, when, which route, on what, before and after.

The list of state-changing routes comes from the app (every POST, PUT, DELETE under /api), so a new
route that is not exercised here fails the test. Each is called once with valid input by an account
allowed to, on a real server; then GET /api/audit must hold a row for it by that account, with
the state before and after (before is None only where the call created the thing).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.app import create_app
from tests.server.api.api_server import Api, api_routes, server_on_mosquitto

PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                                     "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
CREATES = {"POST /api/evacuations", "POST /api/notifications/silences", "POST /api/login"}
"""Calls that create the thing they change: nothing existed before."""


@pytest.fixture
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A server of each test's own: the audit trail starts empty."""
    with server_on_mosquitto(tmp_path_factory.mktemp("audit")) as server:
        yield server


def test_every_state_changing_route_writes_an_audit_row_with_before_and_after(api: Api) -> None:
    changing = {f"{m} {p}" for m, p, _ in api_routes(create_app(api.settings)) if m in {"POST", "PUT", "DELETE"}}
    lead = api.as_roles("lead", ["shift_lead"])
    sup = api.as_roles("sup", ["supervisor"])
    command = api.as_roles("ec", ["emergency_command"])
    exercised: dict[str, str] = {}  # route → who called it

    def call(client: Any, who: str, method: str, route: str, path: str, body: Any = None, ok: int = 200) -> Any:
        response = client.request(method, path, json=body)
        assert response.status_code == ok, (route, response.status_code, response.text)
        exercised[f"{method} {route}"] = who
        return response.json() if response.content else None

    call(api.admin, "admin", "PUT", "/api/users/{name}", "/api/users/guard",
         {"roles": ["maintenance"], "password": "guard-pass-123"})
    call(api.admin, "admin", "PUT", "/api/users/{name}", "/api/users/guard", {"roles": ["supervisor"]})
    token = call(api.client(None), "guard", "POST", "/api/login", "/api/login",
                 {"name": "guard", "password": "guard-pass-123"})["token"]
    call(api.client(token), "guard", "POST", "/api/logout", "/api/logout", ok=204)
    call(api.admin, "admin", "DELETE", "/api/users/{name}", "/api/users/guard", ok=204)

    alarm = api.overload_strip()
    call(lead, "lead", "POST", "/api/alarms/{alarm_id}/ack", f"/api/alarms/{alarm['id']}/ack", {"note": "seen"})
    call(sup, "sup", "POST", "/api/alarms/{alarm_id}/shelve", f"/api/alarms/{alarm['id']}/shelve",
         {"until": "2099-01-01T00:00:00Z", "reason": "maintenance on the strip"})
    call(lead, "lead", "POST", "/api/alarms/{alarm_id}/close", f"/api/alarms/{alarm['id']}/close",
         {"reason": "heater removed"})
    call(lead, "lead", "POST", "/api/devices/{device}/relay", "/api/devices/plug-z1-kettle/relay",
         {"on": False, "reason": "kettle at the desk"}, ok=202)
    call(lead, "lead", "POST", "/api/devices/{device}/hold-cut", "/api/devices/plug-z1-kettle/hold-cut",
         {"reason": "kettle allowed at this desk today", "until": "2099-01-01T00:00:00Z"})
    call(sup, "sup", "POST", "/api/notifications/silences", "/api/notifications/silences",
         {"ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "rule": "elec.strip_overload",
          "reason": "planned works"}, ok=201)
    # before the fire calls below: a door that z1 leaves by stays released while z1's fire is open
    call(lead, "lead", "POST", "/api/evacuations/doors/{door}/secure", "/api/evacuations/doors/door-z1-exit/secure",
         {"reason": "relock after maintenance"})
    call(lead, "lead", "POST", "/api/fire/{zone}/verdict", "/api/fire/z1/verdict", {"real": True})
    call(lead, "lead", "POST", "/api/fire/{zone}/report", "/api/fire/z1/report", {"note": "smoke seen"})
    drill = call(sup, "sup", "POST", "/api/evacuations", "/api/evacuations",
                 {"floor": "f1", "drill": True, "reason": "audit drill"}, ok=201)
    call(lead, "lead", "POST", "/api/evacuations/{ev_id}/roll-call/{person}",
         f"/api/evacuations/{drill['id']}/roll-call/p-op1", {"note": "at the muster point"})
    call(command, "ec", "POST", "/api/evacuations/{ev_id}/all-clear", f"/api/evacuations/{drill['id']}/all-clear")

    tasks = api.admin.get("/api/inspections?status=open").json()
    assert tasks, "no open inspection task to complete"
    task = api.admin.get(f"/api/inspections/{tasks[0]['id']}").json()
    call(api.admin, "admin", "POST", "/api/inspections/{task_id}/photos", f"/api/inspections/{task['id']}/photos",
         {"data_base64": PNG}, ok=201)
    call(api.admin, "admin", "POST", "/api/inspections/{task_id}/complete", f"/api/inspections/{task['id']}/complete",
         {"items": [{"id": i["id"], "result": "pass"} for i in task["items"]], "note": "all fine"})

    assert set(exercised) == changing, {"not exercised": changing - set(exercised)}
    rows = api.client(api.account("auditor", ["safety_officer"])).get("/api/audit?limit=5000").json()
    missing, incomplete = [], []
    for route, who in sorted(exercised.items()):
        mine = [r for r in rows if r["action"] == route and r["who"] == who]
        if not mine:
            missing.append(route)
            continue
        if not any(r["at"] and r["after"] is not None and (r["before"] is not None or route in CREATES)
                   for r in mine):
            incomplete.append((route, mine))
        for row in mine:
            assert row["before"] != row["after"], (route, row)  # the row shows the change itself
    print(f"\naudit: {len(exercised)} state-changing routes exercised, {len(rows)} audit rows "
          f"({sum(1 for r in rows if r['action'].split()[0] in {'POST', 'PUT', 'DELETE'})} from API routes)")
    assert not missing and not incomplete, {"missing": missing, "incomplete": incomplete,
                                            "actions": sorted({(r["action"], r["who"]) for r in rows})}
    ack = next(r for r in rows if r["action"] == "POST /api/alarms/{alarm_id}/ack")
    assert (ack["before"]["state"], ack["after"]["state"], ack["after"]["acknowledged_by"]) == (
        "active", "acknowledged", "lead")
    user = [r for r in rows if r["action"] == "PUT /api/users/{name}" and r["target"] == "user:guard"]
    assert [(r["before"] or {}).get("roles") for r in reversed(user)] == [None, ["maintenance"]]
    assert "guard-pass-123" not in str(rows)
