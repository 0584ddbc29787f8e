"""The domain stays pure: no I/O library imports, no clock, no randomness."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[3] / "server" / "domain"
FORBIDDEN = {
    "paho",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "influxdb_client",
    "apscheduler",
    "httpx",
    "requests",
    "apprise",
    "uvicorn",
    "random",
    "socket",
    "urllib",
    "aiohttp",
    "time",
    "secrets",
    "uuid",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_imports_no_io_library() -> None:
    sources = sorted(DOMAIN.rglob("*.py"))
    assert sources
    bad = {str(p.relative_to(DOMAIN)): sorted(_imports(p) & FORBIDDEN) for p in sources}
    assert {k: v for k, v in bad.items() if v} == {}


def test_domain_never_reads_the_clock() -> None:
    for path in sorted(DOMAIN.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for call in ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(", "time.monotonic("):
            assert call not in text, f"{path.name} calls {call}"
