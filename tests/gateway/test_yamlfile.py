"""The one YAML loader: the site, edge and scenario files all reject duplicate keys and report every
problem of a file in one run, schema and cross-references alike, each at its own line."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError, load_config, parse_config
from gateway.yamlfile import YamlFileError, parse_yaml, read_yaml
from server.domain.site import SiteError, parse_site
from simulators.scenario import ScenarioError, parse_scenario

SITE = """\
site:
  id: hq
floors:
  - id: f1
zones:
  - id: z1
    floor: f1
devices:
  - {id: strip-1, kind: strip_meter, zone: z1, edge: e1}
  - {id: plug-1, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, strip: strip-9}
  - {id: plug-2, kind: smart_plug, zone: z1, edge: e1, rated_a: 13}
  - {id: plug-3, kind: smart_plug, zone: z9, edge: e1, rated_a: 16}
  - {id: plug-4, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, strip: plug-2}
"""


def site_problems(text: str) -> list[str]:
    with pytest.raises(SiteError) as caught:
        parse_site(text, "site.yaml")
    return caught.value.problems


def test_site_schema_and_cross_reference_errors_come_together_at_their_lines() -> None:
    # plug-2's rating is a schema error; the others are cross-references, found in the same run, at the
    # file's own line even though plug-2 was left out before them. plug-4 refers to the left-out plug-2:
    # not reported again (plug-2's own error says what to fix).
    assert site_problems(SITE) == [
        "site.yaml:11: devices[2]: a smart_plug needs rated_a 10 or 16",
        "site.yaml:10: devices[1].strip: unknown device 'strip-9'",
        "site.yaml:12: devices[3].zone: unknown zone 'z9'",
    ]


def test_duplicate_keys_are_rejected_in_the_site_file_with_the_rest() -> None:
    text = SITE.replace("  id: hq\n", "  id: hq\n  id: hq2\n")
    problems = site_problems(text)
    assert problems[0] == "site.yaml:3: site.id: key appears twice; keep one (YAML would silently use the last)"
    assert "site.yaml:13: devices[3].zone: unknown zone 'z9'" in problems and len(problems) == 4


def test_a_bad_site_id_still_lets_the_rest_be_checked() -> None:
    problems = site_problems(SITE.replace("id: hq", "id: HQ!"))
    assert problems[0].startswith("site.yaml:2: site.id: String should match pattern")
    assert "site.yaml:12: devices[3].zone: unknown zone 'z9'" in problems


EDGE = """\
site: hq
edge: alarms
devices:
  - {id: strip-1, kind: strip_meter, zone: z1, vendor: tasmota, address: strip-1}
  - {id: plug-1, kind: smart_plug, zone: z1, vendor: tasmota, address: plug-1, strip: strip-9}
  - {id: plug-2, kind: smart_plug, zone: z1, vendor: tasmota, address: plug-2, rated_amps: 10}
  - {id: smoke-1, kind: smoke_detector, zone: z1, vendor: zigbee2mqtt, address: smoke-1, siren: plug-1}
"""


def test_edge_cross_references_are_at_their_own_line_with_the_schema_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(EDGE, "edge.yaml")
    assert caught.value.problems == [
        "edge.yaml:6: devices[2].rated_amps: unknown key (typo?): remove it or check the spelling",
        "edge.yaml:2: edge: edge id 'alarms' is reserved; choose another",
        "edge.yaml:5: devices[1].strip: 'strip-9' is not a configured strip_meter; add it under devices or fix "
        "the id",
        "edge.yaml:7: devices[3].siren: 'plug-1' is not a configured siren; add it under devices or fix the id",
    ]


def test_edge_duplicate_keys_and_schema_errors_in_one_run() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(EDGE.replace("edge: alarms\n", "edge: e1\nedge: e2\n"), "edge.yaml")
    assert caught.value.problems[0].startswith("edge.yaml:3: edge: key appears twice")
    assert any(p.startswith("edge.yaml:7: devices[2].rated_amps: unknown key") for p in caught.value.problems)


SCENARIO = """\
name: s
title: t
start: 2026-03-02T09:00:00+08:00
duration: 5m
timeline:
  - {at: 10s, action: appliance_on, device: plug-1, watts: 100, name: first}
  - {at: 20s, action: no_such_action}
  - {at: 900s, action: appliance_on, device: plug-1, watts: 100}
expect:
  - {rule: elec.strip_overload, subject: strip-1, within: 30s, after: nowhere}
"""


def test_scenario_duplicate_keys_schema_and_cross_references_together() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(SCENARIO.replace("title: t\n", "title: t\ntitle: u\n"), "s.yaml")
    problems = caught.value.problems
    assert problems[0] == "s.yaml:3: title: key appears twice; keep one (YAML would silently use the last)"
    assert any(p.startswith("s.yaml:8: timeline[1]") for p in problems), problems
    assert "s.yaml:9: timeline[2].at: after the end of the run (300 s)" in problems, problems
    assert "s.yaml:11: expect[0].after: no timeline step is named 'nowhere'" in problems, problems


def test_not_yaml_not_a_mapping_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError) as caught:
        parse_yaml("a: [1,\n", "f.yaml", "a mapping")
    assert caught.value.problems[0].startswith("f.yaml:2: (document): not valid YAML: ")
    with pytest.raises(YamlFileError, match=r"^f.yaml:1: \(document\): a mapping$"):
        parse_yaml("- 1\n", "f.yaml", "a mapping")
    with pytest.raises(YamlFileError, match=r"missing.yaml:1: \(document\): cannot read: No such file"):
        read_yaml(tmp_path / "missing.yaml", "a mapping")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"site: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.yaml:1: \(document\): not UTF-8 text"):
        load_config(latin)
