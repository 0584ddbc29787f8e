"""Build the boards: ``python -m dashboards.build`` (re)writes ``dashboards/generated/*.json``.

``python -m dashboards.build --check`` exits 1 when the committed JSON differs from a fresh build.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dashboards.boards import all_boards
from dashboards.builder import Json

GENERATED = Path(__file__).resolve().parent / "generated"


def build() -> dict[str, Json]:
    """File name -> dashboard JSON, for every board."""
    out: dict[str, Json] = {}
    for board in all_boards():
        name = board.uid.removeprefix("fw-") + ".json"
        out[name] = board.to_json()
    return out


def render(board: Json) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale(directory: Path = GENERATED) -> list[str]:
    """Files in `directory` that differ from a fresh build (missing, changed or left over)."""
    fresh = {name: render(board) for name, board in build().items()}
    problems = [name for name, text in fresh.items() if not (directory / name).is_file()
                or (directory / name).read_text(encoding="utf-8") != text]
    problems += [p.name for p in directory.glob("*.json") if p.name not in fresh]
    return sorted(problems)


def write(directory: Path = GENERATED) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    fresh = build()
    for old in directory.glob("*.json"):
        if old.name not in fresh:
            old.unlink()
    paths = []
    for name, board in fresh.items():
        path = directory / name
        path.write_text(render(board), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check that the committed JSON is fresh")
    parser.add_argument("--out", type=Path, default=GENERATED, help="output directory")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale(args.out)
        for name in problems:
            print(f"stale: {args.out / name} (run: python -m dashboards.build)", file=sys.stderr)
        return 1 if problems else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
