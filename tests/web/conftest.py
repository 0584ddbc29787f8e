"""The browser tests reuse the whole-stack fixture of the end-to-end tests (real broker, server, edge), the
webhook and mail receivers of the response tests, and share one Debian chromium fixture."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service
from tests.e2e.conftest import stack  # noqa: F401  (re-exported pytest fixture)
from tests.server.services.conftest import (
    hook,  # noqa: F401  (re-exported pytest fixture: the webhook receiver)
    smtp,  # noqa: F401  (re-exported pytest fixture: the mail receiver)
)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--disable-component-update", "--disable-sync", "--disable-quic"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev extras install it
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture
def browser() -> Iterator[Any]:
    require_service(sync_playwright is not None, "the playwright python package (pip install -e .[dev])")
    require_service(CHROMIUM.exists() and shutil.which(str(CHROMIUM)) is not None,
                    "Debian's chromium at /usr/bin/chromium (bash scripts/system-packages.sh)")
    with sync_playwright() as p:
        # A default launch runs on a fresh temporary profile.
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()
