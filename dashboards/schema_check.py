"""Check that boards name only measurements, tags and fields that the time-series writer produces.

The schema comes from `server.adapters.timeseries.schema()`. In each InfluxQL query:

* a quoted name after FROM must be a measurement;
* a name compared with a regex or a quoted string, and every name in GROUP BY, must be a tag;
* a name inside an aggregate function, or compared with true/false/a number, must be a field
  (or an alias that the query itself defines with AS, for queries over subqueries);
* `SHOW TAG VALUES WITH KEY = "x"` must name a tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from server.adapters.timeseries import schema

_FROM = re.compile(r'\bFROM\s+"((?:[^"\\]|\\.)+)"')
_ALIAS = re.compile(r'\bAS\s+"((?:[^"\\]|\\.)+)"')
_TAG_CMP = re.compile(r'"(\w+)"\s*(?:=~|!~|=\s*\'|!=\s*\')')
_FIELD_CMP = re.compile(r'"(\w+)"\s*(?:=|!=|<|>|<=|>=)\s*(?:true|false|-?\d)')
_FUNC_ARG = re.compile(r'\b\w+\(\s*"(\w+)"')
_GROUP_BY = re.compile(r"GROUP BY ([^()]*(?:\([^)]*\)[^()]*)*?)(?=\)|\s+fill\(|\s+ORDER|\s+LIMIT|$)")
_KEY = re.compile(r'WITH KEY\s*=\s*"(\w+)"')
_QUOTED = re.compile(r'"(\w+)"')


def problems_in_query(query: str, where: str = "") -> list[str]:
    known = schema()
    all_tags = frozenset().union(*(tags for tags, _ in known.values()))
    out: list[str] = []
    measurements = _FROM.findall(query)
    for m in measurements:
        if m not in known:
            out.append(f"{where}: unknown measurement {m!r}")
    key = _KEY.findall(query)
    for k in key:
        if k not in all_tags:
            out.append(f"{where}: SHOW TAG VALUES of unknown tag {k!r}")
    if query.lstrip().upper().startswith("SHOW"):
        for name in _TAG_CMP.findall(query):
            if name not in all_tags:
                out.append(f"{where}: unknown tag {name!r}")
        return out
    scoped = [known[m] for m in measurements if m in known]
    tags = frozenset().union(*(t for t, _ in scoped)) if scoped else frozenset()
    fields = frozenset().union(*(f for _, f in scoped)) if scoped else frozenset()
    aliases = frozenset(_ALIAS.findall(query))
    for name in _TAG_CMP.findall(query):
        if name not in tags:
            out.append(f"{where}: {name!r} is used as a tag but {measurements} have no such tag")
    for clause in _GROUP_BY.findall(query):
        for name in _QUOTED.findall(clause):
            if name not in tags:
                out.append(f"{where}: GROUP BY {name!r}, not a tag of {measurements}")
    for name in _FUNC_ARG.findall(query) + _FIELD_CMP.findall(query):
        if name not in fields and name not in aliases:
            out.append(f"{where}: {name!r} is used as a field but {measurements} have no such field")
    return out


def queries(board: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, query) for every panel target and template variable of a board."""
    for panel in board.get("panels", []):
        for target in panel.get("targets", []):
            yield f"{board['uid']} / {panel['title']} / {target['refId']}", target["query"]
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            yield f"{board['uid']} / ${var['name']}", var["query"]


def problems(boards: Iterable[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for board in boards:
        for where, query in queries(board):
            out += problems_in_query(query, where)
    return out
