"""Placing a callback's leg fails: was it placed anyway?

Creating a call is not idempotent. After a read timeout or a 5xx Twilio may have created
the call; only a 4xx proves it did not. Real redis-server and router script, Twilio's
REST API as the hand-written fake cloud over HTTP.
"""

from __future__ import annotations

import pytest

from ivr.twilio_rest import RetryPolicy
from queueing import callbacks
from queueing.errors import QueueError
from queueing.model import CallStatus, requirements
from queueing.store import QueueStore
from tests.fakes import FakeTwilioCloud
from tests.queueing.conftest import CALLBACK_CONFIG as CONFIG

NEEDS = requirements("es", "billing", 1)
NUMBER = "+34600000001"
#: One try, a short read timeout: the "create call" answer held back is a timeout.
ONCE = RetryPolicy(attempts=1, timeout=(2.0, 0.5))


def _reserved(store: QueueStore) -> str:
    store.upsert_agent("a", {"lang:es": 1, "topic:billing": 2}, now=0)
    store.set_state("a", "available", now=1)
    _, got, _ = store.enqueue_callback("cb", "support", NUMBER, NEEDS, now=100)
    assert got is not None
    return got.reservation_id


def test_a_timeout_after_twilio_placed_the_call_adopts_it(store: QueueStore,
                                                          cloud: FakeTwilioCloud) -> None:
    res = _reserved(store)
    gate = cloud.hold_creates(timeout_s=10)
    try:
        sid = callbacks.dial(store, cloud.rest_client(retry=ONCE), CONFIG, "cb", res)
    finally:
        gate.release()
    assert sid is not None and list(cloud.calls) == [sid]  # placed once, and known
    call = store.call("cb")
    assert call is not None and call.status == CallStatus.RESERVED  # not a failed attempt
    assert call.callback_attempts == 0
    # A second run of the job (a retry) places nothing more.
    assert callbacks.dial(store, cloud.rest_client(retry=ONCE), CONFIG, "cb", res) is None
    assert len(cloud.calls) == 1


def test_a_5xx_with_nothing_placed_counts_as_unanswered(store: QueueStore,
                                                        cloud: FakeTwilioCloud) -> None:
    res = _reserved(store)
    cloud.fail(times=1, status=500)
    with pytest.raises(QueueError, match="could not be placed"):
        callbacks.dial(store, cloud.rest_client(retry=ONCE), CONFIG, "cb", res)
    assert cloud.calls == {}
    call = store.call("cb")
    assert call is not None and call.status == CallStatus.CALLBACK_PENDING
    assert call.callback_attempts == 1


def test_a_4xx_is_a_refusal_and_nobody_is_asked_about_it(store: QueueStore,
                                                         cloud: FakeTwilioCloud) -> None:
    res = _reserved(store)
    cloud.fail(times=1, status=400)
    with pytest.raises(QueueError, match="could not be placed"):
        callbacks.dial(store, cloud.rest_client(retry=ONCE), CONFIG, "cb", res)
    lists = [r for r in cloud.requests if r.method == "GET"]
    assert lists == []  # a refusal proves nothing was placed: no need to look
    assert store.call("cb").status == CallStatus.CALLBACK_PENDING  # type: ignore[union-attr]
