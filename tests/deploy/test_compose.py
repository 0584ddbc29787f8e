"""Consistency of docker-compose.yml, Dockerfile and .env.example (Docker itself cannot run here).

`problems(compose)` returns every inconsistency as text; the test asserts it is empty, and the negative
tests break a parsed copy one way at a time and assert the checker names the break.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import load_config
from server.settings import OTHER_COMMANDS, TOOLING, setting_names, unknown_variables

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"

# Bind-mounted files that are generated, not committed, with the command (in README.md) that writes them.
GENERATED = {
    "deploy/mosquitto/mosquitto.conf": "floorwatch broker files",
    "deploy/mosquitto/acl": "floorwatch broker files",
    "deploy/mosquitto/passwd": "floorwatch broker files",
    "deploy/edge/edge.yaml": "deploy/make_edge_config.py",
    "deploy/keys": "floorwatch keys",
    "deploy/keys/edge-f3.key": "floorwatch keys",
}

# Variables the third-party images document.
# https://github.com/docker-library/docs/blob/master/influxdb/README.md ("Automated Setup", InfluxDB v2)
INFLUXDB_INIT_VARS = {
    "DOCKER_INFLUXDB_INIT_MODE", "DOCKER_INFLUXDB_INIT_USERNAME", "DOCKER_INFLUXDB_INIT_PASSWORD",
    "DOCKER_INFLUXDB_INIT_ORG", "DOCKER_INFLUXDB_INIT_BUCKET", "DOCKER_INFLUXDB_INIT_RETENTION",
    "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN", "DOCKER_INFLUXDB_INIT_CLI_CONFIG_NAME",
}
# https://grafana.com/docs/grafana/latest/setup-grafana/configure-grafana/ (GF_<SECTION>_<KEY> overrides
# for [security] admin_user/admin_password, [users] allow_sign_up, [analytics] reporting_enabled,
# check_for_updates, [server] root_url, [auth.anonymous] enabled)
GRAFANA_VARS = {
    "GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD", "GF_USERS_ALLOW_SIGN_UP",
    "GF_ANALYTICS_REPORTING_ENABLED", "GF_ANALYTICS_CHECK_FOR_UPDATES", "GF_SERVER_ROOT_URL",
    "GF_AUTH_ANONYMOUS_ENABLED",
}
# https://hub.docker.com/_/postgres ("Environment Variables")
POSTGRES_VARS = {"POSTGRES_PASSWORD", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_INITDB_ARGS", "PGDATA"}
# https://docs.influxdata.com/influxdb/v2/reference/cli/influx/ (flags that map to environment variables)
INFLUX_CLI_VARS = {"INFLUX_HOST", "INFLUX_TOKEN", "INFLUX_ORG", "INFLUX_CONFIGS_PATH", "INFLUX_SKIP_VERIFY"}

VAR_REF = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
PROVISIONING_REF = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)\}?")


# --------------------------------------------------------------------------------------------------
# What the code and the files say
# --------------------------------------------------------------------------------------------------


def env_example_names() -> set[str]:
    names = set()
    for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line.partition("=")[0].strip())
    return names


def provisioning_vars() -> set[str]:
    """The variables Grafana's provisioning files expand from its environment."""
    found: set[str] = set()
    for path in (REPO / "dashboards/provisioning").rglob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        found |= set(PROVISIONING_REF.findall(yaml.safe_dump(data)))
    return found


def console_scripts() -> set[str]:
    with (REPO / "pyproject.toml").open("rb") as f:
        return set(tomllib.load(f)["project"]["scripts"])


def dockerfile_entrypoint() -> list[str]:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    match = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", text, re.M)
    assert match, "Dockerfile has no exec-form ENTRYPOINT"
    return list(yaml.safe_load(match.group(1)))


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------------------


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return {k: v for k, _, v in (item.partition("=") for item in env)}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


def _depends(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "no")) == "no"


def _builds_floorwatch(service: dict[str, Any]) -> bool:
    return "build" in service


def _host_ports(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host ip, host port, protocol) of each published port."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published") is not None:
                out.append((str(port.get("host_ip", "0.0.0.0")), str(port["published"]),
                            str(port.get("protocol", "tcp"))))
            continue
        spec, _, proto = str(port).partition("/")
        parts = spec.split(":")
        if len(parts) == 3:
            out.append((parts[0], parts[1], proto or "tcp"))
        elif len(parts) == 2:
            out.append(("0.0.0.0", parts[0], proto or "tcp"))
    return out


def _bind_sources(service: dict[str, Any]) -> list[str]:
    sources = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                sources.append(str(volume["source"]))
            continue
        source = str(volume).split(":")[0]
        if source.startswith((".", "/", "~")):
            sources.append(source)
    return sources


def _named_volumes(service: dict[str, Any]) -> list[str]:
    names = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            if volume.get("type") == "volume":
                names.append(str(volume["source"]))
            continue
        source = str(volume).split(":")[0]
        if ":" in str(volume) and not source.startswith((".", "/", "~")):
            names.append(source)
    return names


def problems(compose: dict[str, Any]) -> list[str]:
    found: list[str] = []
    services: dict[str, dict[str, Any]] = compose.get("services") or {}
    settings = setting_names()
    env_example = env_example_names()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    entrypoint = dockerfile_entrypoint()

    # ${VAR} references: every one listed in .env.example; secrets have no default.
    for text in _strings(compose):
        for name, _op, _word in VAR_REF.findall(text):
            if name not in env_example:
                found.append(f"${{{name}}} is used but not listed in .env.example")

    dependents: dict[str, list[str]] = {}
    for name, service in services.items():
        # images pinned
        image = service.get("image")
        if image is None and not _builds_floorwatch(service):
            found.append(f"{name}: neither image nor build")
        if image is not None and not _builds_floorwatch(service):
            last = str(image).split("/")[-1]
            tag = last.partition(":")[2].partition("@")[0]
            if not tag or tag == "latest" or "$" in str(image):
                found.append(f"{name}: image {image!r} is unpinned or latest")
            elif not re.fullmatch(r"\d+\.\d+(\.\d+)?([-.][\w.]+)?", tag):
                found.append(f"{name}: image {image!r} is not pinned to a version")
        # environment
        env = _env(service)
        for var in env:
            if var.startswith("FLOORWATCH_") and _builds_floorwatch(service) and var not in settings:
                found.append(f"{name}: {var} is not a server setting (server/settings.py)")
            if var.startswith("GF_") and var not in GRAFANA_VARS:
                found.append(f"{name}: {var} is not in the documented Grafana allow-list")
            if var.startswith("DOCKER_INFLUXDB_INIT_") and var not in INFLUXDB_INIT_VARS:
                found.append(f"{name}: {var} is not a documented influxdb image variable")
            if var.startswith("POSTGRES_") and var not in POSTGRES_VARS:
                found.append(f"{name}: {var} is not a documented postgres image variable")
            if var.startswith("INFLUX_") and var not in INFLUX_CLI_VARS:
                found.append(f"{name}: {var} is not an influx CLI variable")
        if str(image or "").startswith("grafana/grafana:"):
            own = {v for v in env if v.startswith("FLOORWATCH_")}
            needed = provisioning_vars()
            for var in sorted(needed - set(env)):
                found.append(f"{name}: provisioning reads ${var} but it is not set")
            for var in sorted(own - needed):
                found.append(f"{name}: {var} is read by no provisioning file")
        # depends_on
        for dep, condition in _depends(service).items():
            dependents.setdefault(dep, []).append(name)
            if dep not in services:
                found.append(f"{name}: depends_on {dep!r}, which is not a service")
                continue
            target = services[dep]
            if condition == "service_healthy" and "healthcheck" not in target:
                found.append(f"{name}: waits for {dep} to be healthy, but {dep} has no healthcheck")
            elif condition == "service_completed_successfully" and not _one_shot(target):
                found.append(f"{name}: waits for {dep} to complete, but {dep} is long-running")
            elif condition == "service_started" and not _one_shot(target):
                found.append(f"{name}: depends on {dep} without condition service_healthy")
        # healthchecks on long-running services
        if not _one_shot(service):
            check = service.get("healthcheck")
            if not check or check.get("disable") or check.get("test") in (["NONE"], "NONE"):
                found.append(f"{name}: long-running service without a healthcheck")
        # named volumes declared, bind mounts present
        declared = set((compose.get("volumes") or {}).keys())
        for volume in _named_volumes(service):
            if volume not in declared:
                found.append(f"{name}: volume {volume!r} is not declared under volumes:")
        for source in _bind_sources(service):
            rel = Path(source).as_posix().removeprefix("./")
            if rel in GENERATED:
                if GENERATED[rel] not in readme:
                    found.append(f"{name}: {rel} is generated by `{GENERATED[rel]}`, which README.md never names")
            elif source.startswith(("/", "~")) or not (REPO / rel).exists():
                found.append(f"{name}: bind-mounted {source} does not exist in the repository")
        # the image's entry point and subcommands
        if _builds_floorwatch(service):
            command = service.get("command") or []
            if service.get("entrypoint") is not None:
                found.append(f"{name}: overrides the Dockerfile's entrypoint")
            if command and command[0] not in {"server", "worker", "edge", "simulate", "demo"}:
                found.append(f"{name}: {command[0]!r} is not a floorwatch subcommand")
    for name in dependents:
        service = services.get(name)
        if service is not None and not _one_shot(service) and "healthcheck" not in service:
            found.append(f"{name}: has dependents {dependents[name]} but no healthcheck")

    # host ports
    published: list[tuple[str, str, str]] = []  # (ip, port/proto, service)
    for name, service in services.items():
        for ip, port, proto in _host_ports(service):
            key = f"{port}/{proto}"
            for other_ip, other_key, other in published:
                if other_key == key and (ip == other_ip or "0.0.0.0" in (ip, other_ip)):
                    found.append(f"{name}: host port {key} collides with {other}")
            published.append((ip, key, name))
    # the Dockerfile entry point
    if not entrypoint or entrypoint[0] not in console_scripts():
        found.append(f"Dockerfile ENTRYPOINT {entrypoint} is not a console script in pyproject.toml")
    return found


# --------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------


def test_compose_is_consistent() -> None:
    assert problems(load_compose()) == []


def test_settings_names_come_from_the_code() -> None:
    names = setting_names()
    assert {"FLOORWATCH_MQTT__HOST", "FLOORWATCH_MQTT__PASSWORD", "FLOORWATCH_INFLUX__TOKEN",
            "FLOORWATCH_DATABASE_URL", "FLOORWATCH_HTTP_HOST"} <= names
    assert "FLOORWATCH_MQTT_HOST" not in names


def test_the_stack_has_every_part() -> None:
    services = load_compose()["services"]
    assert services["server"]["environment"]["FLOORWATCH_HTTP_HOST"] == "0.0.0.0"
    assert services["edge"]["command"][:2] == ["edge", "--config"]
    assert services["simulator"]["profiles"] == ["sim"]
    for image, prefix in [("mosquitto", "eclipse-mosquitto:2."), ("influxdb", "influxdb:2.7."),
                          ("postgres", "postgres:16."), ("grafana", "grafana/grafana:11.")]:
        assert services[image]["image"].startswith(prefix)
    assert "dbrp create" in (REPO / "deploy/influxdb/create-dbrp.sh").read_text(encoding="utf-8")
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.11-slim" in dockerfile and "USER floorwatch" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/api/health" in dockerfile


def test_secrets_must_be_set() -> None:
    """Every variable without a default in .env.example is required (`${VAR:?...}`) where it is used."""
    text = COMPOSE.read_text(encoding="utf-8")
    for name, op, _ in VAR_REF.findall(text):
        if any(word in name for word in ("PASSWORD", "TOKEN")):
            assert op == ":?", f"${{{name}}} must use ${{{name}:?message}}"


def _make_edge_config() -> Any:
    spec = importlib.util.spec_from_file_location("make_edge_config", REPO / "deploy/make_edge_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_edge_config_generator(tmp_path: Path) -> None:
    make_edge_config = _make_edge_config()
    (tmp_path / "credentials.txt").write_text("floorwatch-server s3cret\nedge-f3 e-pass\n")
    out = tmp_path / "edge.yaml"
    assert make_edge_config.main(["--credentials", str(tmp_path / "credentials.txt"), "--out", str(out)]) == 0
    config = load_config(out)
    assert (config.uplink.host, config.uplink.username) == ("mosquitto", "edge-f3")
    assert config.uplink.password is not None and config.uplink.password.get_secret_value() == "e-pass"
    assert config.floor_broker.host == "floor-broker"
    assert str(config.buffer.path).startswith("/data/")
    assert str(config.commands.key_file) == "/config/command.key"


def test_edge_config_generator_refuses_a_bad_template_or_no_credentials_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Step 2 before step 1, or a template with a key written twice: said at the template's line, exit 2,
    nothing written (was a traceback, and the duplicate key silently lost)."""
    make_edge_config = _make_edge_config()
    credentials, out = tmp_path / "credentials.txt", tmp_path / "edge.yaml"
    assert make_edge_config.main(["--credentials", str(credentials), "--out", str(out)]) == 2
    assert f"--credentials {credentials}: no such file; run step 1 first" in capsys.readouterr().err
    credentials.write_text("floorwatch-server s3cret\nedge-f4 e-pass\n")
    template = tmp_path / "edge-f4.yaml"
    template.write_text("site: hq\nedge: edge-f4\nedge: edge-f5\ndevices: []\n")
    assert make_edge_config.main(["--template", str(template), "--credentials", str(credentials),
                                  "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{template}:3: edge: key appears twice; keep one" in err and "Traceback" not in err
    assert not out.exists()


def test_commands_are_signed_in_the_stack() -> None:
    """The server signs with the keys folder; the edge's generated config reads the key compose mounts."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    server, edge = compose["services"]["server"], compose["services"]["edge"]
    keys_dir = server["environment"]["FLOORWATCH_COMMAND_KEYS_DIR"]
    assert f"./deploy/keys:{keys_dir}:ro" in server["volumes"]
    assert "./deploy/keys/edge-f3.key:/config/command.key:ro" in edge["volumes"]


def _mutations() -> list[tuple[str, Any, str]]:
    def latest(c: dict[str, Any]) -> None:
        c["services"]["postgres"]["image"] = "postgres:latest"

    def untagged(c: dict[str, Any]) -> None:
        c["services"]["grafana"]["image"] = "grafana/grafana"

    def unknown_setting(c: dict[str, Any]) -> None:
        c["services"]["server"]["environment"]["FLOORWATCH_MQTT_HOST"] = "mosquitto"

    def unknown_nested(c: dict[str, Any]) -> None:
        c["services"]["server"]["environment"]["FLOORWATCH_INFLUX__DATABASE"] = "floorwatch"

    def undocumented_gf(c: dict[str, Any]) -> None:
        c["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASS"] = "x"

    def undocumented_influx(c: dict[str, Any]) -> None:
        c["services"]["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_TOKEN"] = "x"

    def unlisted_var(c: dict[str, Any]) -> None:
        c["services"]["server"]["environment"]["FLOORWATCH_DATA_DIR"] = "${SOMETHING_NEW:?x}"

    def missing_dep(c: dict[str, Any]) -> None:
        c["services"]["server"]["depends_on"]["redis"] = {"condition": "service_healthy"}

    def no_healthcheck(c: dict[str, Any]) -> None:
        del c["services"]["postgres"]["healthcheck"]

    def undeclared_volume(c: dict[str, Any]) -> None:
        del c["volumes"]["postgres-data"]

    def port_collision(c: dict[str, Any]) -> None:
        c["services"]["grafana"]["ports"] = ["8000:3000"]

    def missing_bind(c: dict[str, Any]) -> None:
        c["services"]["grafana"]["volumes"][0] = "./dashboards/nowhere:/etc/grafana/provisioning/datasources:ro"

    def bad_subcommand(c: dict[str, Any]) -> None:
        c["services"]["edge"]["command"] = ["agent", "--config", "/config/edge.yaml"]

    def provisioning_var_unset(c: dict[str, Any]) -> None:
        del c["services"]["grafana"]["environment"]["FLOORWATCH_INFLUX_TOKEN"]

    return [
        ("latest", latest, "unpinned or latest"),
        ("untagged", untagged, "unpinned or latest"),
        ("unknown setting", unknown_setting, "FLOORWATCH_MQTT_HOST is not a server setting"),
        ("unknown nested setting", unknown_nested, "FLOORWATCH_INFLUX__DATABASE is not a server setting"),
        ("undocumented GF_", undocumented_gf, "GF_SECURITY_ADMIN_PASS"),
        ("undocumented influx init", undocumented_influx, "DOCKER_INFLUXDB_INIT_TOKEN"),
        ("variable not in .env.example", unlisted_var, "${SOMETHING_NEW} is used but not listed"),
        ("depends on a missing service", missing_dep, "'redis', which is not a service"),
        ("dependency without healthcheck", no_healthcheck, "postgres has no healthcheck"),
        ("undeclared volume", undeclared_volume, "'postgres-data' is not declared"),
        ("host port collision", port_collision, "host port 8000/tcp collides"),
        ("missing bind mount", missing_bind, "dashboards/nowhere does not exist"),
        ("unknown subcommand", bad_subcommand, "'agent' is not a floorwatch subcommand"),
        ("provisioning variable unset", provisioning_var_unset, "FLOORWATCH_INFLUX_TOKEN but it is not set"),
    ]


@pytest.mark.parametrize(("mutate", "expected"), [(m, e) for _, m, e in _mutations()],
                         ids=[name for name, _, _ in _mutations()])
def test_checker_catches(mutate: Any, expected: str) -> None:
    broken = copy.deepcopy(load_compose())
    mutate(broken)
    found = problems(broken)
    assert any(expected in p for p in found), found


def test_unknown_variables_are_found_and_the_other_commands_are_left_alone() -> None:
    problems, warnings = unknown_variables({
        "FLOORWATCH_MQTT__HOST": "mqtt", "FLOORWATCH_MQTT_PORT": "1883", "floorwatch_influx_url": "http://i:8086",
        "FLOORWATCH_TOKEN": "t", "FLOORWATCH_TEST_POSTGRES": "postgresql://", "FLOORWATCH_LONG": "1", "PATH": "/bin"})
    assert [p.split(" is not")[0] for p in problems] == ["FLOORWATCH_MQTT_PORT"]
    assert "did you mean FLOORWATCH_MQTT__PORT?" in problems[0]
    # grafana push's variable beside an unset server setting of the same look: a warning, not a refusal
    assert warnings == ["FLOORWATCH_INFLUX_URL is read by `floorwatch grafana push` and Grafana's datasource, not "
                        "by the server; the server's setting is FLOORWATCH_INFLUX__URL (unset: its default applies)"]
    assert unknown_variables({"FLOORWATCH_INFLUX_URL": "a", "FLOORWATCH_INFLUX__URL": "b"}) == ([], [])
    # The bucket create-dbrp.sh maps, beside the server's own setting of it: neither refused nor warned about.
    assert unknown_variables({"FLOORWATCH_INFLUX_BUCKET": "a", "FLOORWATCH_INFLUX__BUCKET": "a"}) == ([], [])


def test_the_readme_hands_each_private_file_to_the_user_of_the_container_that_reads_it() -> None:
    """Mode-600 files the installer generates are unreadable to a container's own user until chowned:
    Mosquitto 2 opens its password file after dropping to `mosquitto` (uid 1883 in eclipse-mosquitto) and
    exits with "Unable to open pwfile"; the edge runs as floorwatch (uid 10001, the Dockerfile's USER)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    chowns = re.findall(r"^sudo chown (?:-R )?(\d+) (\S+)", readme, re.MULTILINE)
    for uid, path in [("1883", "deploy/mosquitto/passwd"), ("10001", "deploy/edge/edge.yaml"),
                      ("10001", "deploy/keys")]:
        assert (uid, path) in chowns, f"README.md never runs `sudo chown {uid} {path}`"


def test_every_floorwatch_variable_the_code_and_deploy_files_name_is_one_the_server_knows() -> None:
    """A message telling users to set a variable that is no setting, or a script reading one the server's
    unknown-variable check refuses beside it, sends an installer in circles."""
    allowed = setting_names() | set(OTHER_COMMANDS)
    misspelt_on_purpose = {"FLOORWATCH_MQTT_HOST"}  # the example of a missing `__` in the check's own hint
    files = [p for folder in ("deploy", "server", "gateway", "edge", "simulators", "dashboards", "scripts")
             for p in (REPO / folder).rglob("*") if p.is_file() and p.suffix in (".py", ".sh", ".yaml", ".yml")]
    strays = sorted(
        f"{path.relative_to(REPO)}: {name}"
        for path in [*files, REPO / "docker-compose.yml", REPO / "Dockerfile"]
        for name in set(re.findall(r"\bFLOORWATCH_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
        if name not in allowed and name not in misspelt_on_purpose and not name.startswith(TOOLING))
    assert strays == []
