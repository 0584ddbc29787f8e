"""Shared parts of the fault-injection tests (issue 9): a Mosquitto that keeps its persistence across a
stop, and the record each test leaves behind with its measured figures.

Every figure is printed (`pytest -s` shows it) and written as JSON to `artifacts/faults-<name>.json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.broker import EmbeddedBroker
from tests.conftest import persistent_mosquitto
from tests.server.adapters.timeseries.conftest import victoria_metrics  # noqa: F401  (re-exported pytest fixture)

Record = Callable[[str, dict[str, Any]], None]


@pytest.fixture
def persistent_broker() -> Iterator[EmbeddedBroker]:
    """A private Mosquitto (the project's configuration) whose data folder outlives `stop()`, so a stop
    and start on the same port keeps persistent sessions and retained messages, as a real restart does."""
    yield from persistent_mosquitto("fw-faults-broker-")


@pytest.fixture
def record(artifacts_dir: Path, capsys: pytest.CaptureFixture[str]) -> Record:
    """`record(name, figures)`: print the figures and keep them as artifacts/faults-<name>.json."""

    def write(name: str, figures: dict[str, Any]) -> None:
        text = json.dumps(figures, indent=2, sort_keys=True, default=str)
        (artifacts_dir / f"faults-{name}.json").write_text(text + "\n", encoding="utf-8")
        with capsys.disabled():
            print(f"\n[faults:{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))

    return write
