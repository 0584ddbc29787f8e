"""The authorization table is served to the page: GET /api/me answers what the caller may do, from the
same table the routes check (server/domain/policy.py PERMISSIONS), and the page keeps no copy of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.domain.policy import PERMISSIONS, Permission, Role
from tests.server.api.api_server import ALL_ROLES, Api

APP_JS = Path(__file__).resolve().parents[3] / "server" / "web" / "app.js"


def test_me_lists_each_roles_permissions_from_the_table(api: Api) -> None:
    for role in ALL_ROLES:
        me = api.as_roles(f"acct-{role}", [role]).get("/api/me")
        assert me.status_code == 200, me.text
        expected = [p.value for p in PERMISSIONS if role == Role.ADMIN.value or role in PERMISSIONS[p]]
        assert me.json()["permissions"] == expected, role
    # the table's own reading for two roles, so a wrong table shows here and not only on a refused call
    assert "hold_cut" in api.as_roles("lead-2", ["shift_lead"]).get("/api/me").json()["permissions"]
    assert api.as_roles("op-2", ["operator"]).get("/api/me").json()["permissions"] == ["acknowledge_own_zones"]
    assert api.as_roles("osc-2", ["on_site_command"]).get("/api/me").json()["permissions"] == [
        "start_evacuation", "respond", "acknowledge_any", "close_latched", "hold_cut", "all_clear"]


def test_a_route_refuses_exactly_the_roles_its_permission_leaves_out(api: Api) -> None:
    """POST /api/notifications/silences is checked with silence_notifications: the 403 names the table's roles."""
    allowed = {r.value for r in PERMISSIONS[Permission.SILENCE_NOTIFICATIONS]}
    for role in ALL_ROLES:
        if role in allowed or role == Role.ADMIN.value:
            continue
        refused = api.as_roles(f"silence-{role}", [role]).post("/api/notifications/silences", json={})
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["detail"].startswith("silence_notifications needs one of the roles: ")


def test_a_silence_longer_than_one_shift_is_refused_naming_the_field_and_the_bound(api: Api) -> None:
    """An empty matcher until 2099 would mute every non-critical page (door.forced_open too) for good."""
    sup = api.as_roles("silence-sup", ["supervisor"])
    refused = sup.post("/api/notifications/silences", json={"ends_at": "2099-01-01T00:00:00Z", "reason": "works"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"].startswith("ends_at may be at most 12 h ahead (until "), refused.text
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert sup.post("/api/notifications/silences", json={"ends_at": soon, "reason": "works"}).status_code == 201


def test_a_shift_lead_switches_only_the_plugs_of_their_own_zones_as_with_hold_cut(api: Api) -> None:
    """The relay route checks the zone the way hold-cut does: a lead of z2 neither cuts nor restores z1's plug."""
    other = api.as_roles("relay-lead-z2", ["shift_lead"], ["z2"])
    own = api.as_roles("relay-lead-z1", ["shift_lead"], ["z1"])
    sup = api.as_roles("relay-sup", ["supervisor"])
    sent = len(sup.get("/api/devices/plug-z1-kettle/commands").json())
    for path, body in (("relay", {"on": False, "reason": "kettle"}), ("relay", {"on": True, "reason": "ok again"}),
                       ("hold-cut", {"reason": "kettle allowed"})):
        refused = other.post(f"/api/devices/plug-z1-kettle/{path}", json=body)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["detail"] == "relay-lead-z2 does not answer for zone z1 (device plug-z1-kettle)", path
    assert len(sup.get("/api/devices/plug-z1-kettle/commands").json()) == sent, "a refused switch sends nothing"
    # the lead of the plug's zone, and a supervisor (no zones: above zone scope), may
    cut = own.post("/api/devices/plug-z1-kettle/relay", json={"on": False, "reason": "kettle at the desk"})
    assert cut.status_code == 202, cut.text
    restored = sup.post("/api/devices/plug-z1-kettle/relay", json={"on": True, "reason": "kettle removed"})
    assert restored.status_code == 202, restored.text
    assert own.post("/api/devices/plug-nowhere/relay", json={"on": False, "reason": "x"}).status_code == 404


def test_the_page_reads_permissions_and_keeps_no_role_list_of_its_own() -> None:
    page = APP_JS.read_text(encoding="utf-8")
    assert "state.permissions.includes(permission)" in page
    for permission in ("hold_cut", "shelve", "close_latched", "acknowledge_any", "acknowledge_own_zones"):
        assert f'may("{permission}")' in page, permission
    role_sets = [found for found in re.findall(r"new Set\(\[([^\]]*)\]\)", page)
                 if any(f'"{role}"' in found for role in ALL_ROLES)]
    assert role_sets == [], "a set of roles in app.js: ask GET /api/me's permissions instead"
