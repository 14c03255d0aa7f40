"""Fixtures for the router tests: a QueueStore on the real, flushed redis-server."""

from __future__ import annotations

import pytest
import redis

from queueing.rules import AgingStep, QueueRules, RulesConfig
from queueing.store import QueueStore

RULES = RulesConfig(
    default=QueueRules(reservation_timeout_s=15, wrap_up_s=10, service_level_s=20,
                       head_start_s={2: 30}, resume_window_s=300,
                       callback_max_attempts=2, callback_retry_s=60),
    queues={
        "billing": QueueRules(
            reservation_timeout_s=15, wrap_up_s=10, resume_window_s=300,
            steps=(AgingStep(after_s=60, min_level=1), AgingStep(after_s=120, raise_priority=2),
                   AgingStep(after_s=300, overflow_to="general"),
                   AgingStep(after_s=600, offer_voicemail=True))),
        "idle": QueueRules(agent_order="longest_idle"),
    })


@pytest.fixture()
def store(redis_client: redis.Redis) -> QueueStore:
    return QueueStore(redis_client, rules=RULES)
