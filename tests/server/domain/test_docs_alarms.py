"""docs/alarms.md names every rule id the code can raise, and every alarm state: a new rule or state
without its line in the user documentation fails here.

The ids come from the code, not from the catalog: the rule registry (`RuleEngine`'s RULES), the
parameter table (`thresholds.DEFAULTS`), the §2.9 overdue rules of the inspection service, the
service-raised ids (`sup.message_loss`), and, as a net for free-function rules, every rule-shaped
string given to `ctx.set` / `ctx.pulse` / `Finding` / `OverdueRule` or written anywhere in the
modules that raise alarms. Strings of that shape that are not alarms are listed in NOT_ALARMS with
the reason, and the test checks that none of them is ever raised. Each id found must be declared in
the catalog with its `AlarmDoc`, from which docgen writes the table (and the checked-in table must be
what docgen writes).
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from server.domain import inspections
from server.domain.alarms import AlarmState
from server.domain.catalog import CATALOG, docgen
from server.domain.catalog.docgen import alarm_family, declared_severities, regenerated
from server.domain.rules.base import Rule
from server.domain.rules.engine import RULES
from server.domain.thresholds import CONTROLS, DEFAULTS
from server.services.ingest import MESSAGE_LOSS_RULE

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "alarms.md"
RAISING_MODULES = [
    *sorted((ROOT / "server" / "domain" / "rules").glob("*.py")),
    *sorted((ROOT / "server" / "domain" / "inspections").glob("*.py")),
    *sorted((ROOT / "server" / "services").glob("*.py")),
    ROOT / "server" / "runtime.py",
]
RAISING_CALLS = frozenset({"set", "pulse", "Finding", "OverdueRule"})
"""Calls whose first argument (or `rule=`) is the id of a finding: Ctx.set/pulse, Finding, OverdueRule."""

NOT_ALARMS: dict[str, str] = {
    "sensor.temp": "state key of the temperature plausibility rule; it raises sensor.temp_* ids",
    "access.events": "dispatcher of badge events; it raises the access.* ids",
    "fire.interlock_seen": "records an edge's interlock trip as corroboration for sensor.temp_jump",
    "door.release": "the engine's shared table of door releases",
    "door.fire_release": "a prefix the notification routing matches",
    **{control: "a control (permission check), never an alarm: thresholds.CONTROLS" for control in CONTROLS},
}
TABLE_ROW = re.compile(r"^\| `([a-z]+\.[a-z_]+)` \|([^|]*)\|([^|]*)\|([^|]*)\|", re.M)
SEVERITY_WORDS = {"warning", "minor", "major", "critical"}


def _call_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _first_rule_arg(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "rule":
            return keyword.value
    return call.args[0] if call.args else None


def _module_constants(tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return out


def raised_literals(paths: Sequence[Path] = tuple(RAISING_MODULES)) -> set[str]:
    """Rule ids written literally (or as a module constant) as the id of a finding."""
    found: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _module_constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _call_name(node) not in RAISING_CALLS:
                continue
            if _call_name(node) in ("set", "pulse") and len(node.args) < 3:
                continue  # Event.set(), a builtin set(...): not Ctx.set(rule, subject, severity, ...)
            arg = _first_rule_arg(node)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in constants:
                found.add(constants[arg.id])
    return found


def registry_ids() -> set[str]:
    overdue = {rule.id for rule in inspections.OVERDUE_RULES} | {inspections.TRAIN_FIRE.id, inspections.TRAIN_NEW.id}
    return {rule.id for rule in RULES} | set(DEFAULTS) | overdue | {MESSAGE_LOSS_RULE}


def rule_shaped_strings(families: set[str], paths: Sequence[Path] = tuple(RAISING_MODULES)) -> set[str]:
    """Every string of the shape `<family>.<name>` in the raising modules (a rule picked by a variable,
    e.g. `rule = "mr.smoke" if probe else self.id`, is still written somewhere)."""
    shape = re.compile(rf"^(?:{'|'.join(sorted(families))})\.[a-z_]+$")
    out: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and shape.match(node.value):
                out.add(node.value)
    return out


def raisable() -> set[str]:
    known = registry_ids() | raised_literals()
    families = {rule.split(".")[0] for rule in known}
    return (known | rule_shaped_strings(families)) - set(NOT_ALARMS)


def documented() -> dict[str, tuple[str, str, str]]:
    """Rule id -> (family, severities, subject) from the table rows of docs/alarms.md."""
    text = DOC.read_text(encoding="utf-8")
    return {m.group(1): (m.group(2).strip(), m.group(3).strip(), m.group(4).strip()) for m in TABLE_ROW.finditer(text)}


def test_every_rule_the_code_can_raise_is_declared_with_its_doc() -> None:
    can_raise = raisable()  # walks the source: once
    undeclared = sorted(rule for rule in can_raise if rule not in CATALOG or CATALOG[rule].doc is None)
    assert not undeclared, f"{undeclared}: declare each in server/domain/catalog with doc=AlarmDoc(...)"
    never_raised = sorted(spec.id for spec in CATALOG.values() if spec.doc is not None and spec.id not in can_raise)
    assert not never_raised, f"{never_raised} have an AlarmDoc but the code never raises them"


def test_the_rule_table_is_what_the_catalog_says() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text == regenerated("docs/alarms.md", text), (
        "docs/alarms.md's rule table is stale: python -m server.domain.catalog.docgen --write"
    )


def _with_a_stale_row(text: str) -> str:
    stale = text.replace("| `fire.confirmed` | fire §2.2 |", "| `fire.confirmed` | fire §9 |")
    assert stale != text
    return stale


def test_the_generator_rewrites_a_stale_row_and_needs_its_markers() -> None:
    text = DOC.read_text(encoding="utf-8")
    stale = _with_a_stale_row(text)
    assert regenerated("docs/alarms.md", stale) == text
    with pytest.raises(ValueError, match="rule-table"):
        regenerated("docs/alarms.md", text.replace("<!-- /rule-table -->\n", ""))


def test_write_rewrites_every_generated_part(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    for doc in docgen.MARKED:  # each with every generated part emptied
        text = (ROOT / doc).read_text(encoding="utf-8")
        for marker in docgen.MARKED[doc]:
            text = docgen.with_part(text, marker, "")
        (tmp_path / doc).write_text(text, encoding="utf-8")
    (tmp_path / "docs" / "alarms.md").write_text(_with_a_stale_row(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    assert docgen.main(["--write"], root=tmp_path) == 0
    for doc in docgen.MARKED:
        assert (tmp_path / doc).read_text(encoding="utf-8") == (ROOT / doc).read_text(encoding="utf-8"), doc
    assert (tmp_path / docgen.REFERENCE).read_text(encoding="utf-8") == docgen.render()


def test_family_wordings_say_more_than_the_declaration() -> None:
    for spec in CATALOG.values():
        if spec.doc is not None and spec.doc.family:
            assert spec.doc.family != alarm_family(spec), f"{spec.id}: the family wording adds nothing: drop it"


def test_severity_wordings_name_the_declared_severities() -> None:
    """A rule's own severity wording only adds conditions: it names every severity it declares and no other, and
    is not what the declaration alone would write."""
    for spec in CATALOG.values():
        if spec.doc is None or not spec.doc.severity:
            continue
        words = set(re.findall(r"[a-z]+", spec.doc.severity))
        missing = {s.value for s in spec.severities} - words
        assert not missing, f"{spec.id}: its severity wording {spec.doc.severity!r} leaves out {sorted(missing)}"
        undeclared = words & SEVERITY_WORDS - {s.value for s in spec.severities}
        assert not undeclared, f"{spec.id}: its severity wording names {sorted(undeclared)}, which it does not declare"
        assert spec.doc.severity != declared_severities(spec), f"{spec.id}: the wording adds nothing: drop it"


def test_every_rule_the_code_can_raise_has_a_row() -> None:
    missing = sorted(raisable() - set(documented()))
    assert not missing, f"docs/alarms.md has no table row for {missing}: declare its AlarmDoc, run docgen --write"


def test_every_row_is_a_rule_the_code_raises() -> None:
    stale = sorted(set(documented()) - raisable())
    assert not stale, f"docs/alarms.md documents {stale}, which the code never raises"


def test_rows_name_severities_and_subject() -> None:
    for rule, (family, severities, subject) in documented().items():
        words = set(re.findall(r"[a-z]+", severities))
        assert words & SEVERITY_WORDS, f"{rule}: no severity in {severities!r}"
        assert subject, f"{rule}: the subject column is empty"
        assert family, f"{rule}: the family column is empty"


def test_the_walk_finds_the_free_function_and_service_rules() -> None:
    """The net is not empty-handed: ids raised only by free functions and services are found."""
    found = raisable()
    for rule in ("evac.notice", "mr.smoke", "fire.confirmed", "fire.false_alarm_close", "sup.gateway_offline",
                 "access.revoked_badge_used", "sup.message_loss", "train.new_staff", "esc.lead_not_forwarded"):
        assert rule in found, rule
    assert "mr.smoke" not in {rule.id for rule in RULES} and "mr.smoke" in raised_literals() | found


def test_a_new_free_function_rule_is_found(tmp_path: Path) -> None:
    """A rule raised only by a free function (no class, no parameters) is still found by the walk."""
    module = tmp_path / "new_rule.py"
    module.write_text(
        'LOSS = "sup.queue_full"\n'
        "def check(ctx, now):\n"
        '    ctx.set("door.lock_jammed", "door-1", None, "z1", None, now, "jammed")\n'
        '    ctx.pulse(LOSS, "edge-1", None, None, None, now, "full")\n'
        '    rule = "mr.fan_stopped" if now else "x"\n'
        "    ctx.set(rule, \"mr-1\", None, None, None, now, \"stopped\")\n",
        encoding="utf-8",
    )
    assert raised_literals([module]) == {"door.lock_jammed", "sup.queue_full"}
    assert rule_shaped_strings({"door", "sup", "mr"}, [module]) == {"door.lock_jammed", "sup.queue_full",
                                                                  "mr.fan_stopped"}


def test_not_alarms_are_never_raised() -> None:
    """Each exclusion is honest: never a finding's id, not a parameterised rule, not an overdue rule."""
    literals = raised_literals()
    registry_raising = set(DEFAULTS) | {rule.id for rule in inspections.OVERDUE_RULES} | {MESSAGE_LOSS_RULE}
    by_id = {rule.id: rule for rule in RULES}
    for name, why in NOT_ALARMS.items():
        assert name not in literals, f"{name} is raised although NOT_ALARMS says: {why}"
        assert name not in registry_raising, f"{name} is a rule with parameters although NOT_ALARMS says: {why}"
        rule = by_id.get(name)
        if rule is not None:
            mro = [cls for cls in type(rule).__mro__ if issubclass(cls, Rule) and cls is not Rule]
            sources = [inspect.getsource(cls) for cls in mro]
            assert not any("self.set(" in s for s in sources), f"{name} raises under its own id: {why}"


def test_every_alarm_state_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [state.value for state in AlarmState if f"`{state.value}`" not in text]
    assert not missing, f"docs/alarms.md does not describe the states {missing}"
