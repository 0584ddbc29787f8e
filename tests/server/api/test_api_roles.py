"""Every /api route refuses a caller without a token (401) and, where it is limited to roles, a caller
holding every other role (403), against a real server.

The route list comes from the app itself: a new route that is not in ROUTE_ROLES fails the test,
so nothing escapes the check. The allowed roles are the policy's own constants (server/domain/policy.py,
the routes' role tuples, PERMISSIONS[all_clear]), the same ones docs/api.md describes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from server.api.routes.audit import AUDITORS
from server.api.routes.evacuations import STARTERS
from server.app import create_app
from server.domain.policy import PERMISSIONS, RESPONDERS, Permission, Role
from server.domain.power import CUT_HOLDERS
from tests.server.api.api_server import ALL_ROLES, Api, api_routes

ANYONE = "anyone"
SIGNED_IN = "signed in"
OBJECT = "decided per object"
"""Who may act depends on the object too (an alarm's severity and zone, a plug's last cut, a task's
assignee): checked below on real objects, with the roles that can never do it."""

ROUTE_ROLES: dict[tuple[str, str], Any] = {
    ("GET", "/api/health"): ANYONE,
    ("POST", "/api/login"): ANYONE,
    ("POST", "/api/logout"): SIGNED_IN,
    ("GET", "/api/me"): SIGNED_IN,
    ("GET", "/api/devices"): SIGNED_IN,
    ("GET", "/api/readings"): SIGNED_IN,
    ("GET", "/api/dead-letters"): SIGNED_IN,
    ("GET", "/api/floor"): SIGNED_IN,
    ("GET", "/api/unknown-devices"): SIGNED_IN,
    ("GET", "/api/alarms"): SIGNED_IN,
    ("GET", "/api/alarms/stream"): SIGNED_IN,
    ("GET", "/api/alarms/{alarm_id}"): SIGNED_IN,
    ("GET", "/api/alarms/{alarm_id}/audit"): SIGNED_IN,
    ("POST", "/api/alarms/{alarm_id}/ack"): OBJECT,
    ("POST", "/api/alarms/{alarm_id}/shelve"): OBJECT,
    ("POST", "/api/alarms/{alarm_id}/close"): OBJECT,
    ("GET", "/api/audit"): AUDITORS,
    ("GET", "/api/users"): (),
    ("PUT", "/api/users/{name}"): (),
    ("DELETE", "/api/users/{name}"): (),
    ("POST", "/api/fire/{zone}/verdict"): RESPONDERS,
    ("POST", "/api/fire/{zone}/report"): SIGNED_IN,
    ("GET", "/api/inspections"): SIGNED_IN,
    ("GET", "/api/inspections/schedules"): SIGNED_IN,
    ("GET", "/api/inspections/findings"): SIGNED_IN,
    ("GET", "/api/inspections/history"): SIGNED_IN,
    ("GET", "/api/inspections/compliance"): SIGNED_IN,
    ("GET", "/api/inspections/{task_id}"): SIGNED_IN,
    ("POST", "/api/inspections/{task_id}/complete"): OBJECT,
    ("POST", "/api/inspections/{task_id}/photos"): OBJECT,
    ("GET", "/api/inspections/{task_id}/photos/{photo_id}"): SIGNED_IN,
    ("GET", "/api/evacuations"): SIGNED_IN,
    ("POST", "/api/evacuations"): STARTERS,
    ("GET", "/api/evacuations/{ev_id}"): SIGNED_IN,
    ("POST", "/api/evacuations/{ev_id}/all-clear"): OBJECT,
    ("GET", "/api/evacuations/{ev_id}/roll-call"): RESPONDERS,
    ("POST", "/api/evacuations/{ev_id}/roll-call/{person}"): RESPONDERS,
    ("GET", "/api/evacuations/{ev_id}/report"): SIGNED_IN,
    ("POST", "/api/evacuations/doors/{door}/secure"): RESPONDERS,
    ("GET", "/api/notifications"): SIGNED_IN,
    ("POST", "/api/notifications/silences"): (Role.SUPERVISOR, Role.SAFETY_OFFICER),
    ("POST", "/api/devices/{device}/relay"): OBJECT,
    ("POST", "/api/devices/{device}/hold-cut"): CUT_HOLDERS,
    ("GET", "/api/devices/{device}/commands"): SIGNED_IN,
}
"""Role tuples: who besides admin may call. () is admin only."""

PLACEHOLDERS = {"alarm_id": "1", "task_id": "1", "photo_id": "1", "name": "someone", "zone": "z1",
                "ev_id": "ev-1", "person": "p-op1", "door": "door-z1-exit", "device": "plug-z1-kettle"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PLACEHOLDERS[m.group(1)], path)


def others(allowed: tuple[Role, ...] | frozenset[str]) -> list[str]:
    """Every role that is not allowed (admin never is 'other': it may do everything)."""
    return [r for r in ALL_ROLES if r not in {str(a) for a in allowed} and r != Role.ADMIN.value]


def test_every_route_of_the_app_is_in_the_role_table_and_in_the_docs(api: Api) -> None:
    routes = {(m, p) for m, p, _ in api_routes(create_app(api.settings))}
    assert routes == set(ROUTE_ROLES), {"not in the table": routes - set(ROUTE_ROLES),
                                        "no longer served": set(ROUTE_ROLES) - routes}
    docs = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text(encoding="utf-8")
    undocumented = [p for _, p in routes if p.removeprefix("/api").split("/{")[0] not in docs]
    assert not undocumented, undocumented


def test_no_token_or_a_wrong_token_gets_401_everywhere_but_health_and_login(api: Api) -> None:
    checked = 0
    for (method, path), who in sorted(ROUTE_ROLES.items()):
        if who == ANYONE:
            continue
        for client in (api.client(None), api.client("not-a-token"), api.client(api.admin.headers["Authorization"]
                                                                                  .split()[1] + "x")):
            response = client.request(method, concrete(path), json={})
            assert response.status_code == 401, (method, path, response.status_code, response.text)
            assert response.headers.get("www-authenticate") == "Bearer"
            checked += 1
    print(f"\n401 without a valid token: {checked} requests on {checked // 3} routes")
    assert api.client(None).get("/api/health").status_code == 200


def test_every_role_limited_route_refuses_a_caller_holding_every_other_role(api: Api) -> None:
    checked = []
    for (method, path), who in sorted(ROUTE_ROLES.items()):
        if not isinstance(who, tuple):
            continue
        caller = api.as_roles(f"under-{len(checked)}", others(who))
        response = caller.request(method, concrete(path), json={})
        assert response.status_code == 403, (method, path, others(who), response.status_code, response.text)
        allowed = api.as_roles(f"allowed-{len(checked)}", [str(r) for r in who] or ["admin"])
        assert allowed.request(method, concrete(path), json={}).status_code != 403, (method, path, who)
        checked.append(f"{method} {path}")
    print(f"\n403 for every other role, not for an allowed one: {len(checked)} routes")
    assert len(checked) >= 10


def test_per_object_routes_refuse_roles_that_can_never_act(api: Api) -> None:
    alarm = api.overload_strip()  # a major alarm in z1
    assert alarm["severity"] == "major"
    never_ack = others(RESPONDERS)  # includes operator, here without zones: no alarm is theirs
    cases: list[tuple[list[str], str, str, dict[str, Any]]] = [
        (never_ack, "POST", f"/api/alarms/{alarm['id']}/ack", {"note": "x"}),
        (never_ack, "POST", f"/api/alarms/{alarm['id']}/close", {"reason": "x"}),
        (others((Role.SUPERVISOR, Role.SAFETY_OFFICER)), "POST", f"/api/alarms/{alarm['id']}/shelve",
         {"until": "2099-01-01T00:00:00Z", "reason": "x"}),
        (others((Role.SHIFT_LEAD, Role.SUPERVISOR)), "POST", "/api/devices/plug-z1-kettle/relay",
         {"on": False, "reason": "x"}),
    ]
    drill = api.admin.post("/api/evacuations", json={"floor": "f1", "drill": True, "reason": "role test"})
    assert drill.status_code == 201, drill.text
    cases.append((others(PERMISSIONS[Permission.ALL_CLEAR]), "POST", f"/api/evacuations/{drill.json()['id']}/all-clear",
                  {}))
    for i, (roles, method, path, body) in enumerate(cases):
        response = api.as_roles(f"never-{i}", roles).request(method, path, json=body)
        assert response.status_code == 403, (path, roles, response.status_code, response.text)
    # the alarm and the drill are unchanged by the refusals
    assert api.admin.get(f"/api/alarms/{alarm['id']}").json()["state"] == alarm["state"]
    assert api.admin.get(f"/api/evacuations/{drill.json()['id']}").json()["state"] == "active"
    assert api.admin.get("/api/devices/plug-z1-kettle/commands").json() == []
    print(f"\nper-object refusals: {len(cases)} routes (inspection completion: tests/server/api/test_api.py)")
