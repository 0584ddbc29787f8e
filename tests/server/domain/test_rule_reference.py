"""The rule catalog holds together, and docs/rule-reference.md is what the catalog says today."""

from __future__ import annotations

from pathlib import Path

from gateway.contract import Severity
from server.domain.catalog import ANY_SEVERITY, CATALOG, Check
from server.domain.catalog.docgen import render
from server.domain.rules.engine import RULES
from server.domain.rules.generic import GaugeRule
from tests.server.domain.test_catalog import played

REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "rule-reference.md"
RAISED = (Check.READINGS, Check.SCHEDULE, Check.SERVER)


def test_the_reference_is_current() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/rule-reference.md is stale: python -m server.domain.catalog.docgen --write"
    )


SHARED_EVALUATORS = ["access.events", "fire.interlock_seen", "sensor.temp"]
"""Engine rules that judge several catalog rules in one pass (each declared under its own id)."""


def test_every_engine_rule_is_declared_as_judged_from_readings() -> None:
    undeclared = sorted(rule.id for rule in RULES if rule.id not in CATALOG)
    assert undeclared == SHARED_EVALUATORS
    assert {CATALOG[rule.id].check for rule in RULES if rule.id in CATALOG} == {Check.READINGS}


def test_every_gauge_declaration_runs_as_a_rule_with_its_parameters_and_both_languages() -> None:
    gauged = {rule.id for rule in RULES if isinstance(rule, GaugeRule)}
    declared = {spec.id for spec in CATALOG.values() if spec.gauge is not None}
    assert gauged == declared and declared
    for rule in declared:
        spec = CATALOG[rule]
        assert spec.gauge is not None
        for stage in spec.gauge.stages:
            names = {stage.on, stage.off, stage.hold, stage.clear_hold}
            assert names <= set(spec.params), f"{rule}: stage names {sorted(names - set(spec.params))}"
            assert stage.severity in spec.severities, f"{rule}: {stage.severity} is not declared"
        assert spec.message.strip() and spec.message_zh.strip() and not spec.message_zh.isascii(), rule


def test_declarations_are_complete() -> None:
    severity_keys = {s.value for s in Severity} | {ANY_SEVERITY}
    for rule, spec in CATALOG.items():
        assert rule == spec.id and spec.section in {f"2.{n}" for n in range(1, 10)}, rule
        if spec.check in RAISED:
            assert spec.severities, f"{rule}: a raised rule declares no severity"
            assert spec.title and spec.title_zh, rule
        assert set(spec.pages) <= severity_keys, f"{rule}: pages by {sorted(set(spec.pages) - severity_keys)}"
        assert spec.site_wide <= set(spec.params), rule
        assert all(p.unit for p in spec.params.values()), f"{rule}: a parameter without a unit"
        if spec.check is not Check.READINGS:
            assert not spec.params and spec.gauge is None, f"{rule}: parameters only for rules judged from readings"


def test_every_severity_the_rule_rows_raise_is_declared() -> None:
    """What the engine raised while playing the rows, for every rule it raised (not what a row says it expects)."""
    undeclared = sorted({(f.rule, f.severity.value, row.rule) for row, findings in played() for f in findings
                         if f.is_raise and (f.rule not in CATALOG or f.severity not in CATALOG[f.rule].severities)})
    assert not undeclared, f"(rule, severity raised, by the row of) not in the catalog's severities: {undeclared}"


def test_every_declared_severity_of_a_rule_judged_from_readings_is_raised_by_a_row() -> None:
    """The other way round: a severity declared but never played is one the paging table routes by hand and
    nobody has seen the engine raise (test_catalog.STAGE_ROWS holds the rows for further severities)."""
    raised = {(f.rule, f.severity) for _, findings in played() for f in findings if f.is_raise}
    unplayed = sorted((rule, severity.value) for rule, spec in CATALOG.items() if spec.check is Check.READINGS
                      for severity in spec.severities if (rule, severity) not in raised)
    assert not unplayed, f"no row of test_catalog.py raises {unplayed}: add one to STAGE_ROWS"
