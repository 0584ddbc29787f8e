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
        self.built: dict[str, Any] = {}
        """Plain scalar text -> its value, for texts seen before."""

    def value(self, text: str) -> Any:
        """The value of a plain (unquoted, untagged) scalar not seen before."""
        tag = self._resolve(yaml.ScalarNode, text, (True, False))
        if tag not in _PLAIN_TAGS:
            raise _Fallback
        built = text if tag == _STR else self._loader.construct_object(yaml.ScalarNode(tag, text))
        self.built[text] = built
        return built


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
    # One loop with the open collection in locals: it runs once per scalar (1.5 million at 50k devices).
    scalars = _Scalars(loader)
    built = scalars.built
    duplicates: list[tuple[int, str]] = []
    stack: list[tuple[Any, ...]] = []
    container: dict[Any, Any] | list[Any] | None = None
    """The innermost open collection (None: the top level)."""
    is_map = False
    where = ""
    """Its field name in messages (`devices[3]`)."""
    key: Any = None
    key_text: str | None = None
    """The raw text of the key whose value comes next (None: the next scalar is a key)."""
    seen: set[str] = set()
    root: Any = None
    documents = 0
    get_event: Callable[[], Any] = loader.get_event  # the C parser's own method: untyped in the stubs
    scalar_event, mapping_start, sequence_start = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
    ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    while True:
        event = get_event()
        kind = type(event)
        if kind is scalar_event:
            if event.anchor is not None or event.tag is not None:
                raise _Fallback
            text = event.value
            if not event.implicit[0]:
                value: Any = text
            elif text in built:
                value = built[text]
            else:
                value = scalars.value(text)
            if is_map:
                if key_text is None:
                    if text in seen:
                        duplicates.append((event.start_mark.line + 1, f"{where}.{text}" if where else text))
                    seen.add(text)
                    key, key_text = value, text
                    continue
                container[key] = value  # type: ignore[index]
                key_text = None
            elif container is not None:
                container.append(value)  # type: ignore[union-attr]
            else:
                root = value
        elif kind is mapping_start or kind is sequence_start:
            if event.anchor is not None or event.tag is not None:
                raise _Fallback
            new: dict[Any, Any] | list[Any] = {} if kind is mapping_start else []
            if is_map:
                if key_text is None:
                    raise _Fallback  # a collection as a key
                container[key] = new  # type: ignore[index]
                name = f"{where}.{key_text}" if where else key_text
                key_text = None
            elif container is not None:
                name = f"{where}[{len(container)}]"
                container.append(new)  # type: ignore[union-attr]
            else:
                root, name = new, ""
            stack.append((container, is_map, where, key, key_text, seen))
            container, is_map, where, key, key_text, seen = new, kind is mapping_start, name, None, None, set()
        elif kind in ends:
            container, is_map, where, key, key_text, seen = stack.pop()
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _Fallback  # PyYAML's own message for several documents
        elif kind is yaml.StreamEndEvent:
            return root, duplicates
        elif kind not in (yaml.StreamStartEvent, yaml.DocumentEndEvent):
            raise _Fallback  # an alias
