"""The background pass of a service: a failing pass is logged and the next one runs."""

from __future__ import annotations

import logging
import threading

import pytest

from server.services.periodic import Periodic


def test_a_pass_that_raises_is_logged_and_the_next_pass_runs(caplog: pytest.LogCaptureFixture) -> None:
    passes: list[str] = []
    second = threading.Event()

    def run_pass() -> None:
        passes.append(threading.current_thread().name)
        if len(passes) == 1:
            raise RuntimeError("boom")
        second.set()

    worker = Periodic("test-pass", 0.01, run_pass, logging.getLogger("test.periodic"), "the test pass failed")
    with caplog.at_level(logging.ERROR, logger="test.periodic"):
        worker.start()
        try:
            assert second.wait(10), "the pass after a failing one never ran"
        finally:
            worker.stop()
    assert passes[:2] == ["test-pass", "test-pass"]
    failures = [r for r in caplog.records if r.name == "test.periodic"]
    assert [r.getMessage() for r in failures] == ["the test pass failed"]
    assert failures[0].exc_info is not None and "boom" in str(failures[0].exc_info[1])


def test_stop_ends_the_thread_and_no_pass_runs_after_it() -> None:
    ran = threading.Event()
    worker = Periodic("test-stop", 0.01, ran.set, logging.getLogger("test.periodic"), "failed")
    worker.start()
    assert ran.wait(10)
    thread = worker._thread
    worker.stop()
    assert thread is not None and not thread.is_alive()
    ran.clear()
    assert not ran.wait(0.1), "a pass ran after stop"
