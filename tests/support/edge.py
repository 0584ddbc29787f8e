"""One builder for the edge agent's configuration in tests: the uplink, floor broker, buffer and batch
sections every test repeats, and the devices and sections that differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from edge.config import EdgeConfig, parse_config
from gateway.mqtt import MqttSettings


def endpoint(broker: MqttSettings, **extra: Any) -> dict[str, Any]:
    """A broker section of the edge file, from the settings a test's broker gives its clients."""
    return {**broker.model_dump(exclude_none=True), **extra}


def edge_data(site: str, edge: str, broker: MqttSettings, buffer: Path, devices: list[dict[str, Any]], /, *,
              floor: MqttSettings | None = None, max_messages: int = 10_000, max_age_ms: int = 200,
              **sections: Any) -> dict[str, Any]:
    """The edge file as a mapping: uplink on `broker`, floor broker on `floor` (default: the same broker).
    A section given as a mapping is merged into the default one of that name (e.g. `uplink={"reconnect_max_s": 1}`),
    otherwise it replaces it."""
    data: dict[str, Any] = {
        "site": site, "edge": edge,
        "uplink": endpoint(broker),
        "floor_broker": endpoint(floor or broker),
        "buffer": {"path": str(buffer), "max_messages": max_messages},
        "batch": {"max_readings": 200, "max_age_ms": max_age_ms},
        "devices": devices,
    }
    return merge_sections(data, sections)


def merge_sections(data: dict[str, Any], sections: dict[str, Any]) -> dict[str, Any]:
    """`data` with each of `sections`: a mapping merged into the mapping of that name, anything else replacing it."""
    merged = dict(data)
    for key, value in sections.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def edge_yaml(*args: Any, **kwargs: Any) -> str:
    """`edge_data` as the YAML text an operator would write (what the agent's command line reads)."""
    return yaml.safe_dump(edge_data(*args, **kwargs), allow_unicode=True, sort_keys=False)


def edge_config(*args: Any, **kwargs: Any) -> EdgeConfig:
    """`edge_data` validated the way the agent validates its file."""
    return parse_config(edge_yaml(*args, **kwargs))
