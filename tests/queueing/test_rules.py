"""Queue rules from YAML: defaults, per-queue overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from queueing.errors import RulesError
from queueing.rules import load_rules


def test_rules_load_with_defaults_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "queues.yaml"
    path.write_text("default:\n  wrap_up_s: 20\n  head_start_s: {2: 30}\n  steps:\n"
                    "    - {after_s: 300, overflow_to: general}\n    - {after_s: 60, min_level: 1}\n"
                    "queues:\n  billing: {wrap_up_s: 45, agent_order: longest_idle}\n")
    rules = load_rules(path)
    assert rules.default.wrap_up_s == 20 and rules.default.head_start_s == {2: 30.0}
    assert [s.after_s for s in rules.default.steps] == [60, 300]
    billing = rules.for_queue("billing")
    assert (billing.wrap_up_s, billing.agent_order, billing.head_start_s) == (45, "longest_idle",
                                                                              {2: 30.0})
    assert rules.for_queue("other") is rules.default
    assert billing.aging(301) == (1, 0, "general", False)


@pytest.mark.parametrize("text, message", [
    ("default: {wrap_up_s: -1}", "default.wrap_up_s: expected a number >= 0"),
    ("queues: {x: {steps: [{after_s: 5}]}}", "steps[0]: the step does nothing"),
    ("queues: {x: {agent_order: random}}", "agent_order: expected one of"),
    ("queues: {x: {steps: [{after_s: 5, overflow_to: x}]}}", "overflows to itself"),
    ("default: [1, 2", "not valid YAML"),
    ("default: {colour: red}", "unknown rule 'colour'"),
])
def test_bad_rules_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "queues.yaml"
    path.write_text(text)
    with pytest.raises(RulesError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_rules(path)
