"""Scenario files: all parse against the demo floor, name real rule ids, and bad files say where."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from gateway.contract import Severity
from gateway.yamlfile import YamlFileError
from server.domain.catalog import CATALOG
from server.domain.rules.supervision import OFFLINE_RULES
from simulators.model import DEMO_FLOOR, load_floor
from simulators.rules import RULE_IDS
from simulators.scenario import ScenarioError, list_scenarios, load_scenario, parse_scenario
from tests.catalog import rules_md_text

FLOOR = load_floor(DEMO_FLOOR)
REQUIRED = {  # the scenarios the project asked for, by the rule each must trigger
    "strip-overload": "elec.strip_overload",
    "strip-cascade": "elec.strip_cascade",
    "smoke-cigarette-stairwell": "fire.smoke_alarm",
    "fire-real": "fire.confirmed",
    "mr-ac-failure": "mr.temp_rate",
    "mr-water-leak": "mr.leak",
    "door-forced": "door.forced_open",
    "door-held-open": "door.held_open",
    "badge-revoked": "access.revoked_badge_used",
    "visitor-tailgated": "access.visitor_unescorted",
    "smoke-detector-silent": "sup.smoke_offline",
    "temp-sensor-flapping": "sensor.temp_jump",
    "after-shift-load": "elec.after_shift_load",
    "fire-drill": "evac.notice",
}


def test_rule_ids_match_rules_md() -> None:
    text = rules_md_text()
    section2 = text[text.index("## 2. Rules catalog") : text.index("## 3.")]
    found = set(re.findall(r"^\| ([a-z]+\.[a-z_]+)(?: / ([a-z]+\.[a-z_]+))?[ |]", section2, re.M))
    ids = {i for pair in found for i in pair if i}
    assert ids == RULE_IDS


@pytest.mark.parametrize("name", list_scenarios())
def test_scenario_parses_and_expects_known_rules(name: str) -> None:
    scenario = load_scenario(name, FLOOR)
    assert scenario.name == name
    assert scenario.expect and all(e.rule in RULE_IDS for e in scenario.expect)
    assert all(f.rule in RULE_IDS for f in scenario.forbid)


@pytest.mark.parametrize("name", list_scenarios())
def test_a_scenario_expects_only_severities_its_rules_declare(name: str) -> None:
    """The oracle takes an alarm at the expected severity or above: expecting one the catalog does not declare
    would pass on a higher one and hide that the rule raises a severity nobody declared."""
    scenario = load_scenario(name, FLOOR)
    undeclared = [(e.rule, e.severity) for e in scenario.expect
                  if e.severity is not None and Severity(e.severity) not in CATALOG[e.rule].severities]
    assert not undeclared, f"{name}: expects severities its rules do not declare: {undeclared}"


def test_every_required_scenario_is_there() -> None:
    for name, rule in REQUIRED.items():
        scenario = load_scenario(name, FLOOR)
        assert rule in {e.rule for e in scenario.expect}, name


@pytest.mark.parametrize("name", list_scenarios())
def test_a_scenario_expecting_one_device_offline_keeps_the_rest_of_the_floor_reporting(name: str) -> None:
    """A scenario about one device going offline keeps the rest of its edge reporting: with most of the
    edge's devices dark from the start, the rules judge every one of them offline (the edge itself at
    first, then each device alone once a device reports), and the one device is lost among them."""
    scenario = load_scenario(name, FLOOR)
    per_device = [e for e in scenario.expect if e.rule in OFFLINE_RULES and e.subject in FLOOR.devices]
    assert not per_device or scenario.background.scope == "floor", (
        f"{name}: expects {[(e.rule, e.subject) for e in per_device]} with background "
        f"{scenario.background.scope!r}; only `scope: floor` keeps the other devices of the edge reporting")


GOOD = """\
name: t
title: test
start: 2026-11-30T10:00:00+08:00
duration: 5m
timeline:
  - {at: 60s, name: heater_on, action: appliance_on, device: plug-strip-f3-03-spare, watts: 2000}
expect:
  - {rule: elec.strip_overload, subject: strip-f3-03, after: heater_on, within: 2m}
"""


def _error(text: str, floor: bool = True) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "bad.yaml", FLOOR if floor else None)
    return str(info.value)


def test_good_text_parses() -> None:
    scenario = parse_scenario(GOOD, "good.yaml", FLOOR)
    assert scenario.duration == 300 and scenario.timeline[0].at == 60


def test_unknown_rule_names_file_line_and_field() -> None:
    message = _error(GOOD.replace("elec.strip_overload", "elec.strip_overlaod"))
    assert message.startswith("bad.yaml:8: expect[0].rule: ")
    assert "elec.strip_overlaod" in message


def test_bad_field_inside_a_step() -> None:
    message = _error(GOOD.replace("watts: 2000", "watts: lots"))
    assert message.startswith("bad.yaml:6: timeline[0].watts: "), message


def test_unknown_action_and_extra_key() -> None:
    assert _error(GOOD.replace("appliance_on", "appliance_explodes")).startswith("bad.yaml:6: timeline[0]")
    message = _error(GOOD.replace("watts: 2000", "watts: 2000, wats: 3"))
    assert message.startswith("bad.yaml:6: timeline[0].wats: "), message


def test_missing_field_points_at_its_parent() -> None:
    message = _error(GOOD.replace("duration: 5m\n", ""))
    assert message.startswith("bad.yaml:1: duration: missing: this key is required"), message


def test_bad_duration() -> None:
    message = _error(GOOD.replace("duration: 5m", "duration: five minutes"))
    assert message.startswith("bad.yaml:4: duration: "), message


def test_unknown_device_against_the_floor() -> None:
    message = _error(GOOD.replace("device: plug-strip-f3-03-spare", "device: plug-nowhere"))
    assert message == "bad.yaml:6: timeline[0].device: no device 'plug-nowhere' on floor demo"


def test_after_must_name_a_step_and_steps_fit_the_run() -> None:
    message = _error(GOOD.replace("after: heater_on", "after: heater_onn"), floor=False)
    assert message.startswith("bad.yaml:8: expect[0].after: no timeline step"), message
    message = _error(GOOD.replace("at: 60s", "at: 10m"), floor=False)
    assert message.startswith("bad.yaml:6: timeline[0].at: after the end"), message


def test_yaml_syntax_error_has_a_line() -> None:
    message = _error(GOOD.replace("title: test", "title: [unclosed"))
    assert re.match(r"bad\.yaml:\d+: \(document\): not valid YAML", message), message


def test_a_real_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(GOOD.replace("within: 2m", "within: soon"), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path), FLOOR)
    assert str(info.value).startswith(f"{path}:8: expect[0].within: ")


def test_a_duplicate_key_in_a_scenario_file_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(GOOD.replace("title: test\n", "title: test\ntitle: again\n"), encoding="utf-8")
    line = GOOD.splitlines().index("title: test") + 2
    with pytest.raises(ScenarioError) as info:
        load_scenario(str(path), FLOOR)
    assert info.value.problems[0] == (f"{path}:{line}: title: key appears twice; keep one (YAML would silently "
                                      "use the last)")


@pytest.mark.parametrize(("name", "key_line", "field"), [
    ("site.yaml", "  timezone: Asia/Shanghai", "site.timezone"),
    ("edge-f3.yaml", "edge: edge-f3", "edge"),
])
def test_the_simulated_floor_refuses_a_duplicate_key_like_the_server(tmp_path: Path, name: str, key_line: str,
                                                                     field: str) -> None:
    floor = shutil.copytree(DEMO_FLOOR, tmp_path / "floor")
    text = (floor / name).read_text(encoding="utf-8")
    assert text.count(key_line + "\n") == 1
    (floor / name).write_text(text.replace(key_line + "\n", key_line + "\n" + key_line + "\n"), encoding="utf-8")
    line = text.splitlines().index(key_line) + 2
    with pytest.raises(YamlFileError) as info:
        load_floor(floor)
    assert info.value.problems == [f"{floor / name}:{line}: {field}: key appears twice; keep one (YAML would "
                                   "silently use the last)"]
