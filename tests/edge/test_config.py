"""Configuration: the shipped example validates; mistakes are reported with file, line and field."""
# ruff: noqa: E501  (YAML lines copied from the brief are long on purpose)

from __future__ import annotations

from pathlib import Path

import pytest

from edge import cli
from edge.config import ConfigError, Kind, load_config, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "edge" / "examples" / "edge-small.yaml"

BASE = """\
site: hq
edge: edge-f3
uplink: {host: 127.0.0.1, port: 1883}
floor_broker: {host: 127.0.0.1, port: 1883}
buffer: {path: var/edge-f3-buffer.sqlite, max_messages: 100000}
batch: {max_readings: 200, max_age_ms: 500}
supervision: {silent_after_intervals: 3}
interlocks: {plug_overload: {enabled: true, ratio: 1.25, hold_s: 10}, smoke_siren: {enabled: true}}
devices:
  - {id: strip-f3-01, kind: strip_meter, zone: f3-z1, vendor: tasmota, address: strip-f3-01, rated_a: 10, reporting_interval_s: 10}
  - {id: plug-f3-s001, kind: smart_plug, zone: f3-z1, vendor: shelly, address: shellyplugsg3-a1b2c3, rated_a: 10, cuttable: true, essential: false, strip: strip-f3-01}
  - {id: strip-f3-02-o2, kind: smart_plug, zone: f3-z1, vendor: tasmota, address: strip-f3-02, channel: 2, rated_a: 10}
  - {id: smoke-f3-z1-01, kind: smoke_detector, zone: f3-z1, vendor: zigbee2mqtt, address: smoke-f3-z1-01, siren: siren-f3-z1}
  - {id: siren-f3-z1, kind: siren, zone: f3-z1, vendor: zigbee2mqtt, address: siren-f3-z1}
  - {id: door-f3-main, kind: door_controller, zone: f3-z1, vendor: generic, address: door-f3-main, door_type: egress}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(text, "edge.yaml")
    return error.value.problems


def test_brief_shape_validates() -> None:
    config = parse_config(BASE, "edge.yaml")
    assert config.site == "hq" and len(config.devices) == 6
    assert config.device("plug-f3-s001") is not None and config.devices[0].kind is Kind.STRIP_METER


def test_example_file_validates_and_buffer_path_is_relative_to_it() -> None:
    config = load_config(EXAMPLE)
    assert config.buffer.path == EXAMPLE.parent / "var" / "edge-f3-buffer.sqlite"


def test_unknown_key_names_file_line_and_field() -> None:
    text = BASE.replace("channel: 2, rated_a: 10}", "channel: 2, rated_amps: 10}")
    [problem] = problems(text)
    assert problem.startswith("edge.yaml:12: devices[2].rated_amps: unknown key")


def test_bad_value_points_at_its_line() -> None:
    text = BASE.replace("batch: {max_readings: 200", "batch: {max_readings: 5000")
    [problem] = problems(text)
    assert problem.startswith("edge.yaml:6: batch.max_readings:")


def test_block_style_points_at_the_exact_line() -> None:
    text = BASE + "  - id: leak-1\n    kind: leak_sensor\n    zone: mr\n    vendor: zigbee2mqtt\n    address: leak-1\n    colour: blue\n"
    [problem] = problems(text)
    assert problem.startswith("edge.yaml:21: devices[6].colour: unknown key")


def test_cross_checks() -> None:
    bad_siren = BASE.replace("siren: siren-f3-z1}", "siren: siren-nowhere}")
    assert problems(bad_siren) == ["edge.yaml:13: devices[3].siren: 'siren-nowhere' is not a configured siren; "
                                   "add it under devices or fix the id"]
    both = BASE.replace("cuttable: true, essential: false", "cuttable: true, essential: true")
    [problem] = problems(both)
    assert problem.startswith("edge.yaml:11: devices[1]:") and "both cuttable and essential" in problem
    wrong_vendor = BASE.replace("kind: door_controller, zone: f3-z1, vendor: generic",
                                "kind: door_controller, zone: f3-z1, vendor: shelly")
    assert any("vendor shelly cannot be a door_controller" in p for p in problems(wrong_vendor))
    twice = BASE + "  - {id: door-f3-main, kind: door_controller, zone: f3-z1, vendor: generic, address: x}\n"
    assert problems(twice) == ["edge.yaml:16: devices[6].id: device id 'door-f3-main' is used twice; ids are unique"]


def test_duplicate_yaml_keys_and_yaml_errors() -> None:
    assert problems(BASE.replace("edge: edge-f3\n", "edge: edge-f3\nedge: edge-f4\n"))[0].startswith(
        "edge.yaml:3: edge: key appears twice")
    assert problems("site: [unclosed\n")[0].startswith("edge.yaml:2: (document): not valid YAML")


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--config", str(EXAMPLE), "--check"]) == 0
    assert "OK: site hq, edge edge-f3" in capsys.readouterr().out
    broken = tmp_path / "edge.yaml"
    broken.write_text(BASE.replace("zone: f3-z1, vendor: tasmota, address: strip-f3-02", "zone: f3-z1, vendr: tasmota, address: strip-f3-02"))
    assert cli.main(["--config", str(broken), "--check"]) == 2
    err = capsys.readouterr().err
    assert f"{broken}:12: devices[2].vendr: unknown key" in err and f"{broken}:12: devices[2].vendor: missing: this key is required" in err
    assert cli.main(["--config", str(tmp_path / "missing.yaml"), "--check"]) == 2


def test_the_site_file_given_as_the_edge_file_is_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("site: {id: hq}\nfloors: [{id: f1}]\nzones: [{id: z1, floor: f1}]\ndevices: []\n", "site.yaml")
    assert caught.value.problems == [
        "site.yaml:1: (document): this is a site file (floors:, zones:, people: ...), not an edge agent's file: give "
        "the edge's file, the one with edge:, uplink:, floor_broker:"]


def test_tls_files_are_relative_to_the_file_and_a_missing_one_is_refused_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing CA file passed --check and then stopped the agent with a traceback at its first connection;
    under a service manager the working directory is not the file's folder."""
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    path = tmp_path / "edge.yaml"
    path.write_text("site: hq\nedge: e1\nuplink: {host: mqtt, port: 8883, tls: true, ca_file: certs/ca.crt}\n"
                    "floor_broker: {host: floor, ca_file: certs/floor-ca.crt}\n")
    config = load_config(path)
    assert config.uplink.ca_file == str(tmp_path / "certs" / "ca.crt")
    assert cli.main(["--config", str(path), "--check"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:4: floor_broker.ca_file: {tmp_path / 'certs' / 'floor-ca.crt'}: no such file; give the file's path "
        "(relative to this file's folder, or absolute) or remove the key",
        f"{path}: 1 problem(s); nothing started"]


def test_a_command_key_that_cannot_be_read_is_refused_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("site: hq\nedge: e1\ncommands: {key_file: keys/e1.key}\n")
    assert cli.main(["--config", str(path), "--check"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:3: commands.key_file: cannot read {tmp_path / 'keys' / 'e1.key'}: No such file or directory; give "
        "the key `floorwatch keys` wrote for this edge (relative to this file's folder, or absolute)",
        f"{path}: 1 problem(s); nothing started"]
