"""The one bounded wait of the tests: they wait for an outcome, never sleep a fixed time for it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    """Poll a condition (bounded). Returns the predicate's last value, so `assert wait_until(...)` fails
    when it never held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition", step: float = 0.05) -> Any:
    """`wait_until` that fails the test naming `what` when the condition never held; returns its value."""
    value = wait_until(predicate, timeout, step)
    if not value:
        raise AssertionError(f"{what} did not happen within {timeout} s")
    return value
