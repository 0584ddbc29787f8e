"""Every rule id the server can raise has a title in both languages and a known family (the live page's
headings in 中文 and English come from this one table, served with the floor map)."""

from __future__ import annotations

from server.domain.inspections import OVERDUE_BY_ID, TRAIN_FIRE, TRAIN_NEW
from server.domain.rule_titles import FAMILIES, TITLES, family
from server.domain.thresholds import CONTROLS, DEFAULTS
from server.services.ingest import MESSAGE_LOSS_RULE, SERIES_DROPPED_RULE


def test_every_rule_the_server_raises_has_both_titles_and_a_family() -> None:
    raised = ((set(DEFAULTS) - CONTROLS) | set(OVERDUE_BY_ID) | {TRAIN_FIRE.id, TRAIN_NEW.id}
              | {MESSAGE_LOSS_RULE, SERIES_DROPPED_RULE})
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
            "sup.smoke_offline"} <= life
    assert not {"elec.strip_overload", "fire.battery_low", "sup.sensor_offline", "insp.fire_patrol_overdue"} & life
