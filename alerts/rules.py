"""The default rule pack: `alerts/rulepacks/default.toml`, loaded on demand (not at import)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alerts.rule_file import RuleSet, load_rule_file

DEFAULT_RULE_FILE = Path(__file__).resolve().parent / "rulepacks" / "default.toml"


@cache
def default_rule_set() -> RuleSet:
    return load_rule_file(DEFAULT_RULE_FILE)
