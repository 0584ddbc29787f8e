"""Where the rule catalog (RULES.md) is: in `shared/` beside this checkout, as on the development
machines and in CI. Tests that compare the code with it need it (fail in CI, skip visibly elsewhere)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import require_service

CANDIDATES = (Path(__file__).resolve().parents[2] / "shared" / "RULES.md", Path("/work/shared/RULES.md"))


def rules_md_text() -> str:
    path = next((p for p in CANDIDATES if p.exists()), None)
    require_service(path is not None, "the rule catalog shared/RULES.md beside the checkout")
    assert path is not None
    return path.read_text(encoding="utf-8")
