"""Callbacks are dialled only within business hours; outside them they keep their place.

Issue 5 audit, defect 2: retries, requeues and new callbacks were routed with no hours
check. Every path that can reserve an agent for a callback is tried here while the line
is closed (real redis-server, the real router script), then the line opens.
"""

from __future__ import annotations

import pytest
import redis

from queueing import callbacks
from queueing.model import AgentState, CallStatus, requirements
from queueing.store import QueueStore
from tests.queueing.conftest import RULES

NEEDS = requirements("es", "billing", 1)
SKILLS = {"lang:es": 1, "topic:billing": 2}


class Hours:
    """Opening hours the test switches (the router asks at every decision)."""

    def __init__(self) -> None:
        self.open = True

    def __call__(self, now: float) -> bool:
        return self.open


@pytest.fixture()
def hours() -> Hours:
    return Hours()


@pytest.fixture()
def hstore(redis_client: redis.Redis, hours: Hours) -> QueueStore:
    return QueueStore(redis_client, rules=RULES, is_open=hours)


def _agent(store: QueueStore, name: str = "a") -> None:
    store.upsert_agent(name, SKILLS, now=0)
    store.set_state(name, "available", now=1)


def test_a_new_callback_waits_for_opening_even_with_an_agent_free(
        hstore: QueueStore, hours: Hours) -> None:
    hours.open = False
    _agent(hstore)
    status, got, _ = hstore.enqueue_callback("cb", "support", "+34600000001", NEEDS, now=10)
    assert (status, got) == ("callback_pending", None)
    assert hstore.tick(now=20) == []  # the sweep offers it to nobody while closed
    _, live, _ = hstore.enqueue("live", "support", NEEDS, now=30)
    assert live is not None and live.call_id == "live"  # live callers are still served
    hstore.complete("a", "live", wrap_up_s=0, now=40)
    agent = hstore.agent("a")
    assert agent is not None and agent.state == AgentState.AVAILABLE  # not given "cb"
    hours.open = True
    [got] = hstore.tick(now=50)
    assert (got.call_id, got.agent_id, got.callback_number) == ("cb", "a", "+34600000001")


def test_a_retry_falling_due_while_closed_keeps_its_place(hstore: QueueStore,
                                                          hours: Hours) -> None:
    _agent(hstore)
    _, got, _ = hstore.enqueue_callback("cb", "support", "+34600000001", NEEDS, now=10)
    assert got is not None
    assert callbacks.on_status(hstore, "cb", "no-answer", now=20) == "callback_pending"
    hours.open = False  # the line closes before the retry falls due (retry_s is 60)
    assert hstore.tick(now=90) == []  # due, an agent is free, but closed: not dialled
    call = hstore.call("cb")
    assert call is not None and call.status == CallStatus.CALLBACK_PENDING and call.front
    _, live, _ = hstore.enqueue("live", "support", NEEDS, now=91)
    assert live is not None and live.call_id == "live"  # live callers are still served
    hstore.enqueue("last", "support", NEEDS, now=92)
    # the kept callback takes no agent while closed: not ahead of a caller holding now...
    assert hstore.hold_info("last", now=93).position == 1
    hours.open = True
    assert hstore.hold_info("last", now=94).position == 2  # ...and ahead again once open
    nxt = hstore.complete("a", "live", wrap_up_s=0, now=100)
    assert nxt is not None and (nxt.call_id, nxt.callback_number) == ("cb", "+34600000001")


def test_a_declined_callback_is_not_redialled_while_closed(hstore: QueueStore,
                                                           hours: Hours) -> None:
    _agent(hstore, "a")
    _agent(hstore, "b")
    _, got, _ = hstore.enqueue_callback("cb", "support", "+34600000001", NEEDS, now=10)
    assert got is not None
    hours.open = False
    # The agent declines: requeue would route the call at once to the other free agent.
    assert hstore.decline(got.agent_id, "cb", now=11) is None
    call = hstore.call("cb")
    assert call is not None and call.status == CallStatus.CALLBACK_PENDING and call.front
    hours.open = True
    [again] = hstore.tick(now=12)
    assert again.call_id == "cb" and again.agent_id != got.agent_id


def test_the_apps_router_follows_the_lines_business_hours(tmp_path, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from ivr.app import create_app
    from ivr.settings import Settings

    settings = Settings(data_dir=tmp_path / "var", redis_url=redis_url,
                        twilio_auth_token="t" * 32, admin_token="admin",
                        validate_signature=True, secret_key="s")
    app = create_app(settings)
    components = app.extensions["centralita"].components
    store, registry = components["queue"], components["flows"]
    line = registry.default_line
    assert not line.hours.always_open  # the demo line has opening hours
    for when in (datetime(2026, 11, 23, 11, 0, tzinfo=UTC),  # a Monday morning
                 datetime(2026, 11, 22, 11, 0, tzinfo=UTC),  # a Sunday
                 datetime(2026, 11, 21, 11, 0, tzinfo=UTC),  # a Saturday morning
                 datetime(2026, 12, 25, 11, 0, tzinfo=UTC),  # Christmas
                 datetime(2026, 11, 23, 23, 30, tzinfo=UTC)):  # a Monday night
        state = store.is_open(when.timestamp())
        assert state[""] == line.hours.is_open(when)  # the default line's
        assert state == {ln.name: ln.hours.is_open(when) for ln in registry.lines} | {
            "": line.hours.is_open(when)}
    assert store.is_open(datetime(2026, 11, 23, 11, 0, tzinfo=UTC).timestamp())[""]
    assert not store.is_open(datetime(2026, 11, 22, 11, 0, tzinfo=UTC).timestamp())[""]
    # Saturday morning: the support line opens, the international line (Mon-Fri) does not
    saturday = store.is_open(datetime(2026, 11, 21, 11, 0, tzinfo=UTC).timestamp())
    assert saturday["support"] and not saturday["international"]
    assert components["queue_adapter"].dispatch is components["queue_dispatch"]
    components["writer"].flush(5)


class LineHours:
    """Per-line opening hours the test switches: {line: open}, "" the default line."""

    def __init__(self) -> None:
        self.state = {"support": True, "international": False, "": True}

    def __call__(self, now: float) -> dict[str, bool]:
        return dict(self.state)


def test_a_callback_keeps_the_hours_of_the_line_the_customer_called(
        redis_client: redis.Redis) -> None:
    hours = LineHours()  # Saturday: support open, international closed
    store = QueueStore(redis_client, rules=RULES, is_open=hours)
    store.enqueue_callback("abroad", "support", "+442070000001", NEEDS, now=5,
                           line="international")
    store.enqueue_callback("here", "support", "+34600000001", NEEDS, now=6, line="support")
    store.enqueue_callback("legacy", "support", "+34600000002", NEEDS, now=7)  # no line
    _agent(store, "a")  # free: takes the first callback whose line is open
    got = store.agent("a")
    assert got is not None and got.calls == ("here",)
    assert store.call("abroad").status == CallStatus.CALLBACK_PENDING  # type: ignore[union-attr]
    _agent(store, "b")  # the one without a line keeps the default line's hours (open)
    assert store.agent("b").calls == ("legacy",)  # type: ignore[union-attr]
    # A waiting caller who asks for a callback takes their line's hours along.
    store.enqueue("waits", "support", NEEDS, now=8)
    store.request_callback("waits", "+442070000003", now=9, line="international")
    _agent(store, "c")
    assert store.agent("c").state == AgentState.AVAILABLE  # type: ignore[union-attr]
    # A reservation made while open, dialled after its line closed: nobody is rung.
    hours.state["international"] = True
    [first] = store.tick(now=20)
    assert first.call_id == "abroad" and first.agent_id == "c"
    hours.state["international"] = False
    assert store.callback_dialing("abroad", first.reservation_id, 40, now=21) is None
    assert store.call("abroad").status == CallStatus.CALLBACK_PENDING  # type: ignore[union-attr]
    hours.state = {"support": False, "international": True, "": False}  # Monday night abroad?
    [again] = store.tick(now=30)
    assert again.call_id == "abroad"


def test_the_customer_is_called_back_from_the_number_they_called(
        redis_client: redis.Redis) -> None:
    from tests.fakes import FakeTwilioCloud

    hours = LineHours()  # support open, international closed
    store = QueueStore(redis_client, rules=RULES, is_open=hours)
    config = callbacks.CallbackConfig(
        from_number="+34930001000", answer_url="https://ivr.example/voice/callback?call={call_id}",
        line_numbers={"support": "+34930001000", "international": "+442071838750"})
    store.enqueue_callback("abroad", "support", "+442070000001", NEEDS, now=5,
                           line="international")
    store.enqueue_callback("here", "support", "+34600000001", NEEDS, now=6, line="support")
    with FakeTwilioCloud() as cloud:
        rest = cloud.rest_client()
        store.upsert_agent("a", SKILLS, now=7)
        first = store.set_state("a", "available", now=8)
        assert first is not None and first.call_id == "here"
        assert callbacks.dial(store, rest, config, "here", first.reservation_id) is not None
        hours.state["international"] = True  # Monday: the international line opens
        store.upsert_agent("b", SKILLS, now=9)
        second = store.set_state("b", "available", now=10)
        assert second is not None and second.call_id == "abroad"
        assert callbacks.dial(store, rest, config, "abroad", second.reservation_id) is not None
        placed = {c.to: c.from_ for c in cloud.calls.values()}
    assert placed == {"+34600000001": "+34930001000", "+442070000001": "+442071838750"}
    assert config.caller_id("") == "+34930001000"  # unknown or no line: the default's


def _commands(client: redis.Redis) -> int:
    return sum(int(v["calls"]) for k, v in client.info("commandstats").items()
               if k not in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_info"))


def test_callbacks_of_a_closed_line_are_passed_over_whole(redis_client: redis.Redis) -> None:
    """Saturday: the international line's callbacks wait at the front of a queue the open
    support line shares. A freed agent's decision passes over them with one check, not
    one per callback, and they keep their place for Monday."""
    hours = LineHours()  # support open, international closed
    store = QueueStore(redis_client, rules=RULES, is_open=hours)
    for i in range(200):
        store.enqueue_callback(f"abroad{i}", "support", f"+4420700{i:05d}", NEEDS, now=i,
                               line="international")
    store.enqueue("here", "support", NEEDS, now=500)  # a caller holding on the open line
    assert store.hold_info("here", now=501).position == 1  # they take no agent before it
    hours.state["international"] = True
    assert store.hold_info("here", now=501).position == 201  # open: ahead, by their age
    hours.state["international"] = False
    store.upsert_agent("a", SKILLS, now=502)
    before = _commands(redis_client)
    got = store.set_state("a", "available", now=503)
    used = _commands(redis_client) - before
    assert got is not None and got.call_id == "here"
    assert used < 40, used  # (member by member it was 400 and more)
    hours.state["international"] = True  # Monday
    store.complete("a", "here", wrap_up_s=0, now=600)
    agent = store.agent("a")
    assert agent is not None and agent.calls == ("abroad0",)  # the oldest first


def test_callback_line_ids_end_as_every_line_id_does(redis_client: redis.Redis) -> None:
    """Every line id ends in #[f]priority, whatever the hours line is called (a "#5" in a
    line's name is not a priority), as the router before callback lines parsed them."""
    import re

    hours = LineHours()
    hours.state["ventas#5"] = True
    store = QueueStore(redis_client, rules=RULES, is_open=hours)
    store.enqueue_callback("cb", "support", "+34600000001", NEEDS, priority=0, now=1,
                           line="ventas#5")
    store.enqueue("vip", "support", NEEDS, priority=1, now=2)
    ids = redis_client.smembers("q:lines")
    assert len(ids) == 2
    for lid in ids:
        m = re.match(r"^([^|]*)\|.*#(f?)(\d+)$", lid)
        assert m is not None and m.group(1) == "support", lid
    assert {re.match(r".*#f?(\d+)$", lid).group(1) for lid in ids} == {"0", "1"}  # type: ignore[union-attr]
    _agent(store, "a")
    assert store.agent("a").calls == ("vip",)  # type: ignore[union-attr]  # priority 1 first
