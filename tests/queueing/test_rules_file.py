"""The shipped example of queue rules loads, and the app applies IVR_QUEUES_FILE."""

from __future__ import annotations

from pathlib import Path

from ivr.app import create_app
from ivr.settings import Settings
from queueing.rules import load_rules

EXAMPLE = Path(__file__).resolve().parents[2] / "queueing" / "queues.example.yaml"


def test_example_rules_load_with_their_values() -> None:
    rules = load_rules(EXAMPLE)
    assert rules.default.reservation_timeout_s == 20
    assert rules.for_queue("support").wrap_up_s == 45
    assert [step.after_s for step in rules.default.steps] == [60, 180, 300]


def test_app_uses_the_rules_file(tmp_path: Path, redis_url: str) -> None:
    app = create_app(Settings(data_dir=tmp_path, redis_url=redis_url, admin_token="t",
                              validate_signature=False, queues_file=EXAMPLE))
    store = app.extensions["centralita"].components["queue"]
    assert store.rules().for_queue("support").wrap_up_s == 45
