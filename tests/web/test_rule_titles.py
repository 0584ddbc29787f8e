"""Every rule id the server can raise has a title in both languages and a known family (the live page's
headings in 中文 and English come from this one table, served with the floor map)."""

from __future__ import annotations

from server.domain import notify as routing
from server.domain.inspections import OVERDUE_BY_ID, TRAIN_FIRE, TRAIN_NEW
from server.domain.rule_titles import FAMILIES, LIFE_SAFETY_RULES, TITLES, family
from server.domain.thresholds import CONTROLS, DEFAULTS
from server.services.ingest import MESSAGE_LOSS_RULE, SERIES_DROPPED_RULE


def raised_rules() -> set[str]:
    """Every rule id the server can raise: the engine's catalog rules, the scheduler's, the ingest's."""
    return ((set(DEFAULTS) - CONTROLS) | set(OVERDUE_BY_ID) | {TRAIN_FIRE.id, TRAIN_NEW.id}
            | {MESSAGE_LOSS_RULE, SERIES_DROPPED_RULE})


def test_every_rule_the_server_raises_has_both_titles_and_a_family() -> None:
    raised = raised_rules()
    missing = sorted(raised - set(TITLES))
    assert missing == [], f"rules without a title in server/domain/rule_titles.py: {missing}"
    assert set(TITLES) == raised, f"titles of no raised rule: {sorted(set(TITLES) - raised)}"
    for rule, title in TITLES.items():
        assert title.en.strip() and title.zh.strip(), rule
        assert title.en != title.zh and not title.zh.isascii(), f"{rule}: the Chinese title is not Chinese"
        assert family(rule) in FAMILIES, f"{rule}: family {family(rule)!r} has no name in FAMILIES"


def test_life_safety_is_fire_evacuation_egress_and_blind_detectors() -> None:
    life = {rule for rule, title in TITLES.items() if title.life_safety}
    assert {"fire.smoke_alarm", "fire.confirmed", "evac.notice", "mr.smoke", "door.egress_controller_offline",
            "sup.smoke_offline", "sup.probe_offline"} <= life
    assert not {"elec.strip_overload", "fire.battery_low", "sup.sensor_offline", "insp.fire_patrol_overdue"} & life


def test_life_safety_is_one_list_for_the_live_page_and_for_paging() -> None:
    """Fire detection and response, evacuation, egress and fire doors, detectors that cannot see; paging
    (never grouped, held or silenced) asks the same list as the page's flag, rule by rule."""
    assert {
        "fire.smoke_alarm", "fire.confirmed", "fire.manual_report", "fire.heat_alarm", "fire.heat_prewarn",
        "fire.detector_fault", "fire.detector_disabled", "evac.notice", "mr.smoke",
        "door.fire_release_zone", "door.fire_release_floor", "door.egress_controller_offline",
        "door.fire_door_held_open", "sup.smoke_offline", "sup.smoke_offline_lpwan", "sup.probe_offline",
    } == LIFE_SAFETY_RULES
    for rule in raised_rules():
        assert routing.is_life_safety(rule) is TITLES[rule].life_safety, rule


def test_every_rule_paging_names_owners_for_is_raised_or_marked_not_raised() -> None:
    raised = raised_rules()
    assert set(routing.OWNERS) - routing.NOT_RAISED <= raised, sorted(set(routing.OWNERS) - raised)
    assert not routing.NOT_RAISED & raised, "raised now: drop it from NOT_RAISED"
    assert set(routing.OWNERS) >= routing.NOT_RAISED, "NOT_RAISED marks OWNERS keys only"
