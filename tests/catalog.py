"""Where the rule catalog is: docs/RULES.md in this repository, the specification the code follows.
Tests that compare the code with it read it from here, so they run wherever the checkout is."""

from __future__ import annotations

from pathlib import Path

CATALOG = Path(__file__).resolve().parents[1] / "docs" / "RULES.md"


def rules_md_text() -> str:
    return CATALOG.read_text(encoding="utf-8")
