"""A role the rules page that nobody can be reached as degrades `GET /api/health`, which names the role and
the rules whose pages would reach nobody (server/domain/reach.py). The test server's site file has no
`facilities` contact (nor anyone with that role), and facilities is paged first for
door.egress_controller_offline, a life-safety alarm."""

from __future__ import annotations

from tests.server.api.api_server import Api


def test_health_is_degraded_naming_a_role_the_life_safety_rules_page_without_a_contact(api: Api) -> None:
    health = api.client(None).get("/api/health").json()
    paging = health["dependencies"]["paging"]
    assert paging["up"] is False and health["status"] == "degraded", health
    assert "door.egress_controller_offline" in paging["unreachable"]["facilities"], paging
    assert "mr_duty" not in paging["unreachable"], "no machine room on this floor: nobody pages 机房值班"
    assert "supervisor" not in paging["unreachable"] and "shift_lead" not in paging["unreachable"], paging
    down = {name for name, dependency in health["dependencies"].items() if not dependency["up"]}
    assert down == {"paging"}, health
