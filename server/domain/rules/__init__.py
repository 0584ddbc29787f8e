"""The rules of RULES.md §2.1–§2.7 and the engine that runs them (`RuleEngine`)."""

from server.domain.rules.access import Approval
from server.domain.rules.engine import RULES, RuleEngine

__all__ = ["RULES", "Approval", "RuleEngine"]
