"""`dashboards.push` against a Grafana stand-in speaking Grafana's HTTP API on 127.0.0.1."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dashboards.build import build
from dashboards.builder import DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID
from dashboards.push import main, push
from gateway.broker import free_port
from tests.dashboards.fake_grafana import FakeGrafana, serve

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "dashboards"


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    with serve(FakeGrafana(token="s3cret")) as fake:
        yield fake


def writes(fake: FakeGrafana) -> list[tuple[str, str]]:
    return [c for c in fake.calls if c[0] != "GET"]


def test_first_push_creates_everything(grafana: FakeGrafana) -> None:
    report = push(grafana.url, "s3cret", influx_url="http://influxdb:8086", influx_token="tok")
    boards = build()
    assert len(report.created) == 2 + len(boards) and not report.updated
    ds = grafana.datasources[DATASOURCE_UID]
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "InfluxQL"
    assert ds["jsonData"]["dbName"] == "floorwatch" and ds["url"] == "http://influxdb:8086"
    assert ds["secure"] == {"httpHeaderValue1": "Token tok"}
    assert grafana.folders[FOLDER_UID]["title"] == FOLDER_TITLE
    assert set(grafana.dashboards) == {b["uid"] for b in boards.values()}
    for stored in grafana.dashboards.values():
        assert stored["folderUid"] == FOLDER_UID


def test_second_push_creates_nothing(grafana: FakeGrafana) -> None:
    push(grafana.url, "s3cret", influx_url="http://influxdb:8086", influx_token="tok")
    counts = (len(grafana.datasources), len(grafana.folders), len(grafana.dashboards))
    versions = {uid: d["dashboard"]["version"] for uid, d in grafana.dashboards.items()}
    grafana.calls.clear()
    report = push(grafana.url, "s3cret", influx_url="http://influxdb:8086", influx_token="tok")
    assert not report.created and not report.updated
    assert len(report.unchanged) == 2 + len(build())
    assert writes(grafana) == []  # only look-ups
    assert (len(grafana.datasources), len(grafana.folders), len(grafana.dashboards)) == counts
    assert {uid: d["dashboard"]["version"] for uid, d in grafana.dashboards.items()} == versions


def test_changed_board_and_datasource_are_overwritten_by_uid(grafana: FakeGrafana) -> None:
    push(grafana.url, "s3cret", influx_url="http://influxdb:8086")
    boards = copy.deepcopy(build())
    boards["electrical.json"]["title"] = "Floorwatch / Electrical (v2)"
    report = push(grafana.url, "s3cret", influx_url="http://influx-2:8086", boards=boards)
    assert report.updated == [f"datasource {DATASOURCE_UID}", "dashboard fw-electrical"]
    assert not report.created
    stored = grafana.dashboards["fw-electrical"]["dashboard"]
    assert stored["title"] == "Floorwatch / Electrical (v2)" and stored["version"] == 2
    assert grafana.datasources[DATASOURCE_UID]["url"] == "http://influx-2:8086"
    assert ("POST", "/api/dashboards/db") in grafana.calls
    assert len(grafana.dashboards) == len(boards)


def test_a_board_moved_out_of_the_folder_is_moved_back(grafana: FakeGrafana) -> None:
    push(grafana.url, "s3cret", influx_url="http://influxdb:8086")
    grafana.dashboards["fw-access"]["folderUid"] = ""
    report = push(grafana.url, "s3cret", influx_url="http://influxdb:8086")
    assert report.updated == ["dashboard fw-access"]
    assert grafana.dashboards["fw-access"]["folderUid"] == FOLDER_UID


def test_basic_auth_and_wrong_credentials(grafana: FakeGrafana) -> None:
    report = push(grafana.url, ("admin", "admin"), influx_url="http://influxdb:8086")
    assert report.created
    from grafana_client.client import GrafanaUnauthorizedError

    with pytest.raises(GrafanaUnauthorizedError):
        push(grafana.url, "wrong", influx_url="http://influxdb:8086")


def test_cli_main(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--url", grafana.url, "--token", "s3cret", "--influx-url", "http://influxdb:8086"]
    assert main(argv) == 0
    assert "created 8" in capsys.readouterr().out
    assert main(argv) == 0
    assert "created 0, updated 0, unchanged 8" in capsys.readouterr().out
    assert main(["--url", grafana.url, "--token", "nope"]) == 1
    err = capsys.readouterr().err
    assert "grafana push failed" in err and "nope" not in err



def test_cli_without_a_grafana_or_credentials_says_what_to_give(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("GRAFANA_URL", "GRAFANA_TOKEN", "GRAFANA_BASIC_AUTH"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as usage:
        main([])
    assert usage.value.code == 2
    err = capsys.readouterr().err
    assert "--url URL or set GRAFANA_URL" in err and "--token TOKEN or set GRAFANA_TOKEN" in err
    assert "Traceback" not in err
    monkeypatch.setenv("GRAFANA_URL", "http://127.0.0.1:3000")
    with pytest.raises(SystemExit) as usage:
        main([])
    err = capsys.readouterr().err
    assert usage.value.code == 2 and "GRAFANA_URL" not in err and "GRAFANA_TOKEN" in err


def test_cli_names_the_grafana_it_cannot_reach_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://admin:pa55@127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["--url", url, "--token", "s3cret", "--influx-url", "http://influxdb:8086"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"grafana push failed: cannot reach Grafana at http://127.0.0.1:{url.rsplit(':', 1)[1]} ")
    assert "check --url" in line and "pa55" not in line and "s3cret" not in line


def test_cli_prints_no_secret_from_the_urls_query_or_fragment(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/grafana/?auth_token=t0ken&x=1#api_key=k3y"
    assert main(["--url", url, "--token", "s3cret", "--influx-url", "http://influxdb:8086"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"grafana push failed: cannot reach Grafana at http://127.0.0.1:{port}/grafana/ (")
    assert "t0ken" not in line and "k3y" not in line and "?" not in line


def test_provisioning_files_match_the_builder() -> None:
    ds = yaml.safe_load((DASHBOARDS_DIR / "provisioning/datasources/influxdb.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["url"].startswith("$") and "$" in source["secureJsonData"]["httpHeaderValue1"]
    prov = yaml.safe_load((DASHBOARDS_DIR / "provisioning/dashboards/floorwatch.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["folder"] == FOLDER_TITLE and provider["folderUid"] == FOLDER_UID
    assert provider["type"] == "file"
