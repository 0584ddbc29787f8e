"""Coverage-guided fuzzing with atheris (fuzz/harness.py, fuzz/run.py): a short seeded smoke run of
every target in the normal suite, long runs behind FLOORWATCH_LONG=1 (FLOORWATCH_FUZZ_SECONDS each,
default 120). A crash fails the test with libFuzzer's output and the crashing input's path."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from fuzz.run import run
from fuzz.targets import VENDORS
from tests.conftest import require_service

TARGETS = ["contract", *(v.value for v in VENDORS)]
LONG = os.environ.get("FLOORWATCH_LONG") == "1"


def _check(summary: dict[str, object]) -> None:
    print(json.dumps({k: v for k, v in summary.items() if k != "tail"}))  # figures for docs/reliability.md
    assert summary["returncode"] == 0 and not summary["crashes"], summary["tail"]


@pytest.mark.parametrize("target", TARGETS)
def test_atheris_smoke(target: str) -> None:
    require_service(importlib.util.find_spec("atheris") is not None, "atheris (pip install atheris)")
    summary = run(target, runs=2000, seed=1, max_time=None, corpus=None, timeout=600)
    _check(summary)
    assert summary["runs"] == 2000


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(not LONG, reason="long fuzzing runs only with FLOORWATCH_LONG=1")
@pytest.mark.parametrize("target", TARGETS)
def test_atheris_long(target: str) -> None:
    require_service(importlib.util.find_spec("atheris") is not None, "atheris (pip install atheris)")
    seconds = int(os.environ.get("FLOORWATCH_FUZZ_SECONDS", "120"))
    _check(run(target, runs=None, seed=int(os.environ.get("FLOORWATCH_FUZZ_SEED", "1")), max_time=seconds,
               corpus=None, timeout=seconds + 600))
