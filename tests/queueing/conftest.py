"""Fixtures for the router tests: a QueueStore on the real, flushed redis-server, and
for the callback tests the fake Twilio cloud and how we call customers back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from queueing.callbacks import CallbackConfig
from queueing.rules import AgingStep, QueueRules, RulesConfig
from queueing.store import QueueStore
from tests.fakes import FakeTwilioCloud

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


#: How the callback tests call customers back (Twilio's URLs point at a test host).
CALLBACK_CONFIG = CallbackConfig(
    from_number="+34910000000", answer_url="http://ivr.test/voice/callback?call={call_id}",
    status_url="http://ivr.test/voice/callback-status?call={call_id}")


@pytest.fixture()
def cloud() -> Iterator[FakeTwilioCloud]:
    with FakeTwilioCloud() as fake:
        yield fake
