"""The one YAML loader of Floorwatch's configuration files (site, edge, scenario).

It parses once, keeps the node tree for line numbers, rejects duplicate keys (PyYAML silently keeps
the last one: a second `rated_a:` would quietly win) and turns every problem into one line
`file:line: field: what is wrong`. Each file's owner validates the parsed data with its own models
and cross-checks; this module only reads YAML and places messages, so the server's domain gets a
`YamlDoc` (data plus a line lookup) and never a YAML parser or node.

All problems of a file come out at once: duplicate keys are collected, not raised, so that the owner
can add its schema and cross-reference problems to the same list (`YamlDoc.problems`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gateway.yaml_events import LOADER, load_plain
from gateway.yaml_lines import Loc, duplicate_keys, line_of, loc_text


class YamlFileError(ValueError):
    """A configuration file that cannot be used; `problems` holds one `file:line: field: reason` each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


Explain = Callable[[ValidationError], list[tuple[Loc, str]]]


def message_of(error: ErrorDetails) -> str:
    """One pydantic error in words for the person editing the file, with what to do where pydantic says
    only what is wrong."""
    if error["type"] == "extra_forbidden":
        return "unknown key (typo?): remove it or check the spelling"
    if error["type"] == "missing":
        return "missing: this key is required"
    return error["msg"].removeprefix("Value error, ")


@dataclass(slots=True)
class YamlDoc:
    """A parsed YAML mapping with the marks needed to place a message on its line."""

    source: str
    data: dict[str, Any]
    root: yaml.Node | None = field(repr=False, default=None)
    problems: list[str] = field(default_factory=list)
    """Problems found so far (duplicate keys at parse time; owners append theirs)."""
    text: str | None = field(repr=False, default=None)
    """The file's text when `root` is not parsed yet: the node tree is built when a message needs a line."""

    def line(self, loc: Sequence[str | int]) -> int:
        if self.root is None and self.text is not None:
            self.root = _compose(self.text)
        return line_of(self.root, loc)

    def message(self, loc: Sequence[str | int], text: str) -> str:
        return f"{self.source}:{self.line(loc)}: {loc_text(loc)}: {text}"

    def add(self, loc: Sequence[str | int], text: str) -> None:
        self.problems.append(self.message(loc, text))

    def add_validation(self, exc: ValidationError, clean: Callable[[Loc], Loc] | None = None,
                       explain: Explain | None = None) -> list[Loc]:
        """Add one problem per pydantic error at its own line (`explain`: the owner's own wording of the
        errors, as (location, message)); returns the error locations (cleaned)."""
        explained = explain(exc) if explain is not None else [(tuple(e["loc"]), message_of(e)) for e in exc.errors()]
        locs: list[Loc] = []
        for loc, text in explained:
            if clean is not None:
                loc = clean(loc)
            self.add(loc, text)
            locs.append(loc)
        return locs

    def raise_if_problems(self) -> None:
        if self.problems:
            raise YamlFileError(self.problems)


def _compose(text: str) -> yaml.Node | None:
    loader = LOADER(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a parser mark (0-based line and column), or "" past the end."""
    lines = text.splitlines()
    return lines[line][column] if line < len(lines) and column < len(lines[line]) else ""


def parse_yaml(text: str, source: str, shape: str) -> YamlDoc:
    """Parse `text` (named `source` in messages). `shape` is the message when the top level is not a
    mapping (e.g. "a site file is a mapping with at least `site:`"). Raises YamlFileError for
    text that is not YAML or not a mapping; duplicate keys are in the returned `problems`."""
    plain = load_plain(text)  # no node tree for the usual file: see gateway/yaml_events.py
    if plain is not None:
        data, duplicates = plain
        root: yaml.Node | None = None
    else:
        loader = LOADER(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
                problem += ": a tab; YAML indents with spaces only, replace it with spaces"
            raise YamlFileError([f"{source}:{line}: (document): not valid YAML: {problem}"]) from None
        finally:
            loader.dispose()
        duplicates = duplicate_keys(root)
    if not isinstance(data, dict):
        raise YamlFileError([f"{source}:1: (document): {shape}"])
    doc = YamlDoc(source, data, root, text=text if root is None else None)
    for line, name in duplicates:
        doc.problems.append(f"{source}:{line}: {name}: key appears twice; keep one (YAML would silently "
                            "use the last)")
    return doc


def is_blank(text: str) -> bool:
    """Only blank lines and comments: a file with nothing in it yet, which an owner may take as empty."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def read_yaml(path: str | Path, shape: str, *, blank_is_empty: bool = False) -> YamlDoc:
    """Read and parse one file; an unreadable file is a YamlFileError naming it. `blank_is_empty`: a file
    with only blank lines and comments is an empty mapping, not refused as not being one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlFileError([f"{path}:1: (document): cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise YamlFileError([f"{path}:1: (document): not UTF-8 text ({exc.reason})"]) from None
    if blank_is_empty and is_blank(text):
        return YamlDoc(str(path), {})
    return parse_yaml(text, str(path), shape)


def read_mapping(path: str | Path, shape: str, *, blank_is_empty: bool = False) -> dict[str, Any]:
    """The data of a file read without a model of its own (the simulator's floor, the demo's copies), refused
    like the validated ones: a duplicate key raises YamlFileError naming file, line and key."""
    doc = read_yaml(path, shape, blank_is_empty=blank_is_empty)
    doc.raise_if_problems()
    return doc.data


M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True)
class Validated(Generic[M]):
    """A model validated from what was valid in a file, to cross-check the rest of the file with."""

    value: M | None
    """None when even the remainder does not validate (its problems are already reported)."""
    dropped: set[str] = field(default_factory=set)
    """Ids (or names) of list entries left out for their own errors."""
    kept: dict[str, list[int]] = field(default_factory=dict)
    """Per pruned list section, the file's index of each entry kept."""

    def place(self, loc: Loc) -> Loc:
        """A location in `value` as a location in the file (entries were left out before it)."""
        if loc and loc[0] in self.kept and len(loc) > 1 and isinstance(loc[1], int):
            return (loc[0], self.kept[str(loc[0])][loc[1]], *loc[2:])
        return loc

    def about_dropped(self, message: str) -> bool:
        """Does a cross-check message name an entry left out? Its own error already says what to fix."""
        return any(f"{name!r}" in message for name in self.dropped)


def validate(doc: YamlDoc, model: type[M], lists: Sequence[str], stand_ins: dict[str, Any] | None = None,
             clean: Callable[[Loc], Loc] | None = None, explain: Explain | None = None) -> Validated[M]:
    """Validate `doc.data` with `model`, adding each schema error to `doc.problems` at its line. So that a
    file's cross-references are checked in the same run, the entries of the `lists` sections that failed
    are left out, other failed top-level keys dropped (or replaced by their `stand_ins` when required),
    and the remainder is validated again for the owner to cross-check."""
    try:
        return Validated(model.model_validate(doc.data))
    except ValidationError as exc:
        locs = doc.add_validation(exc, clean, explain)
    data = dict(doc.data)
    bad: dict[str, set[int]] = {}
    for loc in locs:
        section = loc[0] if loc else None
        if not isinstance(section, str):
            continue
        if section in lists and len(loc) > 1 and isinstance(loc[1], int):
            bad.setdefault(section, set()).add(loc[1])
        elif stand_ins and section in stand_ins:
            data[section] = stand_ins[section]
        else:
            data.pop(section, None)
    result: Validated[M] = Validated(None)
    for section, indexes in bad.items():
        items = data.get(section)
        if not isinstance(items, list):
            continue
        for i in indexes:
            item = items[i] if i < len(items) else None
            for key in ("id", "name"):  # what other entries refer to it by
                if isinstance(item, dict) and isinstance(item.get(key), str):
                    result.dropped.add(item[key])
        result.kept[section] = [i for i in range(len(items)) if i not in indexes]
        data[section] = [items[i] for i in result.kept[section]]
    with suppress(ValidationError):  # what still fails does so through what was reported above
        result.value = model.model_validate(data)
    return result
