"""Reading the site file, and `floorwatch site --check SITE [--edge EDGE ...]`.

The site file is read here (the domain gets parsed data, never a file or a YAML parser). With edge
files, the check also compares the two sides an installer edits by hand, each problem at its own
file and line: an edge file's site id, an edge id no site device names, a device of the edge file that
is not in the site file (or is, under another edge, kind or zone, or with another rating, essential,
cuttable, strip or door type: what the edge's interlocks act on; or a plug the edge may cut whose site
`class: essential` forbids any cut), a site device that its edge's file does not list (nothing would
ever report it).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from edge.config import EdgeConfig, config_from_doc
from gateway.yamlfile import YamlDoc, YamlFileError, read_yaml
from server.domain.power import cuttable
from server.domain.reach import unreachable_warnings
from server.domain.site import DeviceKind, PlugClass, Site, SiteError, site_from_doc

SITE_SHAPE = "a site file is a mapping with at least `site:`"
EDGE_SHAPE = "the file must be a mapping with site, edge, devices, ..."


def load_site(path: str | Path) -> Site:
    """Read and validate a site file; SiteError lists every problem as file:line: field: reason."""
    try:
        doc = read_yaml(path, SITE_SHAPE)
    except YamlFileError as exc:
        raise SiteError(exc.problems) from None
    return site_from_doc(doc)


def check_edge_against_site(site: Site, site_doc: YamlDoc, edge_doc: YamlDoc, config: EdgeConfig) -> list[str]:
    """What one edge file and the site file disagree on, each at the line of the file to change."""
    problems: list[str] = []
    if config.site != site.id:
        problems.append(edge_doc.message(("site",), f"{config.site!r} is not the site file's id {site.id!r}; "
                                         "use the same site id in both files"))
    if config.edge not in site.edges():
        known = ", ".join(site.edges()) or "none"
        problems.append(edge_doc.message(("edge",), f"no device of the site file names edge {config.edge!r} "
                                         f"(edges there: {known}); set `edge: {config.edge}` on its devices in "
                                         "the site file, or fix this id"))
    listed = set()
    for i, device in enumerate(config.devices):
        listed.add(device.id)
        registered = site.devices.get(device.id)
        if registered is None:
            problems.append(edge_doc.message(("devices", i, "id"), f"{device.id!r} is not in the site file; add it "
                                             "under the site file's devices (the server ignores unknown devices)"))
            continue
        for name, mine, theirs in (("edge", config.edge, registered.edge), ("kind", device.kind, registered.kind),
                                   ("zone", device.zone, registered.zone)):
            if mine != theirs:
                loc: tuple[str | int, ...] = ("edge",) if name == "edge" else ("devices", i, name)
                problems.append(edge_doc.message(loc, f"device {device.id!r}: {name} {str(mine)!r} here but "
                                                 f"{str(theirs)!r} in the site file; make them the same"))
        # What the edge acts on by itself (its overload interlock cuts cuttable plugs over rated_a, never an
        # essential one) must be what the server's rules assume: a plug essential in the site file that the
        # edge may cut would lose a PC, a phone or a door controller with no rule of the server's saying so.
        flags_agree = True
        for name in ("rated_a", "essential", "cuttable", "strip", "door_type"):
            mine, theirs = getattr(device, name), getattr(registered, name)
            if name == "rated_a" and mine is None:
                continue  # not needed by the edge unless the plug is cuttable (its own check)
            if (str(mine) if mine is not None else None) != (str(theirs) if theirs is not None else None):
                flags_agree &= name not in ("essential", "cuttable")
                problems.append(edge_doc.message(("devices", i, name), (
                    f"device {device.id!r}: {name} {_shown(mine)} here but {_shown(theirs)} in the site file; "
                    "make them the same (the edge's interlocks act on this file, the server's rules on the site "
                    "file)")))
        # Equal flags are not enough: the site's `class: essential` forbids a cut the edge file cannot express.
        edge_cuts = device.kind is DeviceKind.SMART_PLUG and device.cuttable and not device.essential
        if flags_agree and edge_cuts and not cuttable(registered) and registered.plug_class is PlugClass.ESSENTIAL:
            problems.append(edge_doc.message(("devices", i, "cuttable"), (
                f"device {device.id!r}: cuttable true here, but its class is essential in the site file, which "
                "forbids any cut (the edge's overload interlock would switch it off); set cuttable: false here "
                "and in the site file")))
    index = {d.id: i for i, d in enumerate(site.config.devices)}
    for on_edge in site.devices_of_edge(config.edge):
        if on_edge.id not in listed:
            problems.append(site_doc.message(("devices", index[on_edge.id], "edge"), (
                f"{on_edge.id!r} is on edge {config.edge!r} but not in {edge_doc.source}; add it there (nothing "
                "would report it) or change its edge")))
    return problems


def _shown(value: object) -> str:
    """A setting as written in YAML: 10 (not 10.0), true, none for unset."""
    if value is None:
        return "none (unset)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(str(value))


def check(site_path: Path, edge_paths: list[Path]) -> tuple[list[str], list[str]]:
    """(problems, report lines) of a site file and any edge files, every problem of every file at once;
    the report is the site's warnings and its summary line `FILE: ok: N devices ...`."""
    try:
        site_doc = read_yaml(site_path, SITE_SHAPE)
        site = site_from_doc(site_doc)
    except (SiteError, YamlFileError) as exc:
        site, site_problems = None, exc.problems
    else:
        site_problems = []
    problems = list(site_problems)
    edges: list[EdgeConfig] = []
    for path in edge_paths:
        try:
            edge_doc = read_yaml(path, EDGE_SHAPE)
            config = config_from_doc(edge_doc, base_dir=path.resolve().parent)
        except YamlFileError as exc:
            problems += exc.problems
            continue
        edges.append(config)
        if site is not None:
            problems += check_edge_against_site(site, site_doc, edge_doc, config)
    if site is None:
        return problems, []
    kinds = Counter(d.kind.value for d in site.config.devices)
    by_kind = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    summary = (f"{site_path}: ok: {len(site.devices)} devices ({by_kind}), {len(site.zones)} zones on "
               f"{len(site.floors)} floor(s), {len(site.people)} people, edges {', '.join(site.edges()) or 'none'}")
    if edges:
        summary += f"; {len(edges)} edge file(s) agree with it"
    warnings = [f"warning: {w}" if w.startswith(f"{site_path}:") else f"{site_path}: warning: {w}"
                for w in [*site.warnings, *unreachable_warnings(site)]]  # some name their own file:line
    return problems, [*warnings, summary]


def main(site_path: Path, edge_paths: list[Path]) -> int:
    problems, report = check(site_path, edge_paths)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s); fix them and run `floorwatch site --check` again", file=sys.stderr)
        return 2
    print("\n".join(report))
    return 0
