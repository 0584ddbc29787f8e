"""The one YAML loader: the site, edge and scenario files all reject duplicate keys and report every
problem of a file in one run, schema and cross-references alike, each at its own line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.config import ConfigError, load_config, parse_config
from gateway.yaml_events import load_plain
from gateway.yaml_lines import duplicate_keys
from gateway.yamlfile import YamlFileError, parse_yaml, read_yaml
from server.domain.site import SiteError, parse_site
from simulators import floorgen
from simulators.scenario import ScenarioError, parse_scenario

ROOT = Path(__file__).resolve().parents[2]

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
        "site.yaml:10: devices[1].strip: unknown device 'strip-9' (did you mean 'strip-1'?): declare it under "
        "`devices` or correct the id",
        "site.yaml:12: devices[3].zone: unknown zone 'z9': declare it under `zones` or correct the id",
    ]


def test_duplicate_keys_are_rejected_in_the_site_file_with_the_rest() -> None:
    text = SITE.replace("  id: hq\n", "  id: hq\n  id: hq2\n")
    problems = site_problems(text)
    assert problems[0] == "site.yaml:3: site.id: key appears twice; keep one (YAML would silently use the last)"
    assert any(p.startswith("site.yaml:13: devices[3].zone: unknown zone 'z9'") for p in problems), problems
    assert len(problems) == 4


def test_a_bad_site_id_still_lets_the_rest_be_checked() -> None:
    problems = site_problems(SITE.replace("id: hq", "id: HQ!"))
    assert problems[0].startswith("site.yaml:2: site.id: String should match pattern")
    assert any(p.startswith("site.yaml:12: devices[3].zone: unknown zone 'z9'") for p in problems), problems


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


def test_a_tab_in_the_indentation_is_named_as_one() -> None:
    """An editor's tab is the most common way a hand-written file stops being YAML."""
    with pytest.raises(YamlFileError) as caught:
        parse_yaml("site: {id: hq}\nfloors:\n\t- {id: f1}\n", "site.yaml", "a mapping")
    [problem] = caught.value.problems  # libyaml says "found character", PyYAML "found character '\\t'"
    assert problem.startswith("site.yaml:3: (document): not valid YAML: found character")
    assert problem.endswith("that cannot start any token: a tab; YAML indents with spaces only, replace it with spaces")


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


PLAIN_SUBSET = [
    "a: 1\nb: '1'\nc: \"x\"\nd:\ne: ~\nf: yes\ng: 2024-01-01\nh: 2024-01-01T10:00:00Z\ni: 1e3\nj: .inf\nk: 0x1f\n",
    "a: 1\na: 2\nb:\n  c: 1\n  c: {d: 1, d: 2}\nl:\n  - {x: 1, x: 2}\n  - [ {y: 1, y: 1} ]\n",
    "1: a\n'1': b\nnull: c\n? explicit\n: key\n",
    "a: 'x'\nb: |\n  multi\n  line\nc: >\n  folded\nd: ''\ne: ' '\nf:\n  - - 1\n    - 2\n  - {}\n  - []\n",
]
BEYOND = ["a: &x 1\nb: *x\n", "base: &b {a: 1}\nc:\n  <<: *b\n", "a: !!str 1\n"]


def typed(value: object) -> object:
    """A value with the type of every part (1 == 1.0 == True, but a loader must not mix them up)."""
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    return (type(value).__name__, repr(value))


def node_tree_parse(text: str) -> tuple[object, list[tuple[int, str]]]:
    loader = yaml.CSafeLoader(text)
    try:
        root = loader.get_single_node()
        return (loader.construct_document(root) if root is not None else None), duplicate_keys(root)
    finally:
        loader.dispose()


@pytest.mark.parametrize("text", PLAIN_SUBSET)
def test_the_event_loader_builds_what_the_node_tree_builds(text: str) -> None:
    plain = load_plain(text)
    assert plain is not None
    data, duplicates = node_tree_parse(text)
    assert typed(plain[0]) == typed(data) and plain[1] == duplicates


def test_the_event_loader_agrees_on_a_generated_floor_and_the_repository_files() -> None:
    texts = [floorgen.dump(floorgen.generate(60).site, "floor")]
    texts += [p.read_text(encoding="utf-8") for p in sorted(ROOT.glob("*/**/*.yaml")) if ".venv" not in p.parts]
    checked = 0
    for text in texts:
        plain = load_plain(text)
        if plain is None:
            continue
        data, duplicates = node_tree_parse(text)
        assert typed(plain[0]) == typed(data) and plain[1] == duplicates
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("text", BEYOND)
def test_yaml_beyond_the_plain_subset_takes_the_node_tree_with_the_same_result(text: str) -> None:
    assert load_plain(text) is None
    doc = parse_yaml(text, "f.yaml", "a mapping")
    assert typed(doc.data) == typed(node_tree_parse(text)[0]) and doc.root is not None


def test_a_plain_file_builds_its_node_tree_only_when_a_message_needs_a_line() -> None:
    doc = parse_yaml(SITE, "site.yaml", "a site file")
    assert doc.root is None
    assert doc.message(("devices", 3, "zone"), "x") == "site.yaml:12: devices[3].zone: x"
    assert doc.root is not None
