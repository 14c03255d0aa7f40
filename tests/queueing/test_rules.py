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


def test_hold_announcements_per_queue_inherit_and_survive_redis_json(tmp_path: Path) -> None:
    from queueing.rules import rules_from_json

    path = tmp_path / "queues.yaml"
    path.write_text("default:\n  announce_every_s: 45\n  announce_position: false\n"
                    "queues:\n  billing: {announce_every_s: 120, announce_estimate: false}\n"
                    "  sales: {announce_position: true}\n")
    rules = load_rules(path)
    assert (rules.default.announce_every_s, rules.default.announce_position,
            rules.default.announce_estimate) == (45, False, True)
    billing = rules.for_queue("billing")
    assert (billing.announce_every_s, billing.announce_position,
            billing.announce_estimate) == (120, False, False)
    assert rules.for_queue("sales").announce_position is True
    assert rules_from_json(billing.to_json()) == billing  # as every process reads them
    assert rules_from_json('{"wrap_up_s": 30}').announce_every_s == 30  # older JSON


@pytest.mark.parametrize("text, message", [
    ("default: {announce_every_s: 10}", "default.announce_every_s: expected whole seconds 15..300"),
    ("queues: {x: {announce_every_s: 301}}", "queues.x.announce_every_s: expected whole seconds"),
    ("queues: {x: {announce_every_s: 30.5}}", "announce_every_s: expected whole seconds"),
    ("queues: {x: {announce_every_s: true}}", "announce_every_s: expected whole seconds"),
    ("queues: {x: {announce_position: 'no'}}", "queues.x.announce_position: expected true or false"),
    ("default: {announce_estimate: 1}", "default.announce_estimate: expected true or false"),
])
def test_bad_announcement_rules_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "queues.yaml"
    path.write_text(text)
    with pytest.raises(RulesError, match=message):
        load_rules(path)
