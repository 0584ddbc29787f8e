"""Where in a YAML file a validation error is: pydantic error locations mapped to line numbers.

Every configuration file of Floorwatch (site, edge, scenario) reports errors as `file:line: field:
reason`; this is the one place that knows how to find the line.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

Loc = tuple[str | int, ...]


def loc_text(loc: Sequence[str | int]) -> str:
    """`("devices", 2, "rated_a")` → `devices[2].rated_a`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> int:
    """The 1-based line of the deepest node `loc` reaches: a key's line for a mapping entry, an item's
    line for a sequence entry; a loc part that is not in the file (a union member's name, a missing
    field) stops at its parent."""
    node = root
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


def duplicate_keys(node: yaml.Node | None, where: str = "") -> list[tuple[int, str]]:
    """(line, field) of every key that appears twice in its mapping: PyYAML keeps the last silently."""
    found: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = f"{where}.{key.value}" if where else str(key.value)
            if key.value in seen:
                found.append((key.start_mark.line + 1, name))
            seen.add(key.value)
            found += duplicate_keys(value, name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found += duplicate_keys(item, f"{where}[{index}]")
    return found
