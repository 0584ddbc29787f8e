"""A configuration file's data built straight from libyaml's events, without PyYAML's node tree.

The node tree costs two `Mark` objects per scalar and a Python constructor call per node: on a
50,000-device site file (13 MB) it was about 650 MB and most of the start-up. Files use a plain subset
of YAML (mappings, sequences, scalars); for that subset this builds the same data as `SafeLoader` and
finds the same duplicate keys. Anything else (anchors, aliases, tags, merge keys, several documents,
a syntax error) returns None, and the caller takes the node tree path, whose messages and semantics
are PyYAML's own. Line numbers of later messages come from the node tree, parsed only when a message
needs one (`YamlDoc.line`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml when PyYAML was built with it: the same events, nodes and marks, many times faster."""
_STR = "tag:yaml.org,2002:str"
_PLAIN_TAGS = {"tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null", "timestamp")}
"""What an untagged scalar may resolve to here; the rest (merge `<<`, value `=`) take the node path."""


class _Fallback(Exception):
    """The file uses YAML beyond the plain subset."""


class _Scalars:
    """Tag resolution and construction of plain scalars, memoized: a site file repeats few values
    (kinds, zones, ratings) many times, and every value built here is immutable."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self._loader = loader
        self._resolve: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = loader.resolve
        self._built: dict[str, Any] = {}

    def value(self, text: str, plain: bool) -> Any:
        if not plain:
            return text
        try:
            return self._built[text]
        except KeyError:
            pass
        tag = self._resolve(yaml.ScalarNode, text, (True, False))
        if tag not in _PLAIN_TAGS:
            raise _Fallback
        built = text if tag == _STR else self._loader.construct_object(yaml.ScalarNode(tag, text))
        self._built[text] = built
        return built


class _Frame:
    __slots__ = ("container", "key", "key_text", "seen", "where")

    def __init__(self, container: dict[Any, Any] | list[Any], where: str) -> None:
        self.container = container
        self.where = where
        self.key: Any = None
        self.key_text: str | None = None
        """The raw text of the key whose value comes next (None: the next scalar is a key)."""
        self.seen: set[str] = set()


def load_plain(text: str) -> tuple[Any, list[tuple[int, str]]] | None:
    """(data, duplicate keys as (line, field)) of a single-document file in the plain subset, with the
    data `SafeLoader` would build and the duplicates `yaml_lines.duplicate_keys` would find; None for
    anything else (the caller parses it the full way)."""
    loader = LOADER(text)
    try:
        return _build(loader)
    except (_Fallback, yaml.YAMLError):
        return None
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader) -> tuple[Any, list[tuple[int, str]]]:
    scalars = _Scalars(loader)
    duplicates: list[tuple[int, str]] = []
    stack: list[_Frame] = []
    root: Any = None
    documents = 0
    get_event: Callable[[], Any] = loader.get_event  # the C parser's own method: untyped in the stubs

    def place(value: Any) -> str:
        """Put a finished value into its parent; returns the child's field name for a new collection."""
        nonlocal root
        if not stack:
            root = value
            return ""
        frame = stack[-1]
        container = frame.container
        if isinstance(container, list):
            name = f"{frame.where}[{len(container)}]"
            container.append(value)
            return name
        key_text = frame.key_text
        if key_text is None:
            raise _Fallback  # a collection as a key
        container[frame.key] = value
        frame.key_text = None
        return f"{frame.where}.{key_text}" if frame.where else key_text

    while True:
        event = get_event()
        kind = type(event)
        if kind is yaml.ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Fallback
            value = scalars.value(event.value, event.implicit[0])
            frame = stack[-1] if stack else None
            if frame is not None and isinstance(frame.container, dict) and frame.key_text is None:
                raw = event.value
                if raw in frame.seen:
                    where = frame.where
                    duplicates.append((event.start_mark.line + 1, f"{where}.{raw}" if where else str(raw)))
                frame.seen.add(raw)
                frame.key, frame.key_text = value, raw
            else:
                place(value)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if event.anchor is not None or event.tag is not None:
                raise _Fallback
            new: dict[Any, Any] | list[Any] = {} if kind is yaml.MappingStartEvent else []
            stack.append(_Frame(new, place(new)))
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            stack.pop()
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Fallback  # PyYAML's own message for several documents
        elif kind is yaml.StreamEndEvent:
            return root, duplicates
        elif kind not in (yaml.StreamStartEvent, yaml.DocumentEndEvent):
            raise _Fallback  # an alias
