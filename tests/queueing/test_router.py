"""The router's rules against the real Redis: order, skills, priority, aging, agents."""

from __future__ import annotations

import pytest

from queueing.errors import InvalidTransition, QueueError, UnknownAgent
from queueing.model import AgentState, CallStatus, requirements
from queueing.store import QueueStore

ES_BILL = requirements("es", "billing", 3)


def free_agent(store: QueueStore, aid: str, skills: dict[str, int], now: float = 0.0,
               queues: tuple[str, ...] = ()) -> None:
    store.upsert_agent(aid, skills, queues=queues, now=now)
    assert store.set_state(aid, "available", now=now) is None


def test_new_call_goes_to_a_free_agent_with_the_skills(store: QueueStore) -> None:
    free_agent(store, "fr", {"lang:fr": 1, "topic:billing": 5}, now=0)
    free_agent(store, "es", {"lang:es": 1, "topic:billing": 3}, now=1)
    status, got, _ = store.enqueue("c1", "support", ES_BILL, now=5)
    assert status == "reserved" and got is not None
    assert (got.agent_id, got.deadline) == ("es", 5 + 15)
    assert store.agent("es").state == AgentState.RESERVED  # type: ignore[union-attr]
    assert store.call("c1").status == CallStatus.RESERVED  # type: ignore[union-attr]
    # nobody else can take a Spanish billing call at level 3
    assert store.enqueue("c2", "support", ES_BILL, now=6)[:2] == ("waiting", None)


def test_most_skilled_then_longest_idle(store: QueueStore) -> None:
    free_agent(store, "junior", {"lang:es": 1, "topic:billing": 3}, now=0)
    free_agent(store, "expert", {"lang:es": 1, "topic:billing": 5}, now=9)
    free_agent(store, "expert2", {"lang:es": 1, "topic:billing": 5}, now=3)
    assert store.enqueue("c1", "support", ES_BILL, now=10)[1].agent_id == "expert2"  # type: ignore[union-attr]
    assert store.enqueue("c2", "support", ES_BILL, now=11)[1].agent_id == "expert"  # type: ignore[union-attr]
    assert store.enqueue("c3", "support", ES_BILL, now=12)[1].agent_id == "junior"  # type: ignore[union-attr]


def test_longest_idle_order_ignores_level(store: QueueStore) -> None:
    free_agent(store, "expert", {"lang:es": 1, "topic:billing": 5}, now=5)
    free_agent(store, "junior", {"lang:es": 1, "topic:billing": 3}, now=1)
    assert store.enqueue("c1", "idle", ES_BILL, now=10)[1].agent_id == "junior"  # type: ignore[union-attr]


def test_freed_agent_takes_priority_first_then_longest_wait(store: QueueStore) -> None:
    store.upsert_agent("a", {"lang:es": 1, "topic:billing": 3}, now=0)
    store.enqueue("old", "support", ES_BILL, priority=0, now=10)
    store.enqueue("older", "support", ES_BILL, priority=0, now=5)
    store.enqueue("vip", "support", ES_BILL, priority=3, now=20)
    store.enqueue("other", "support", requirements("en", "billing", 1), now=1)
    order = []
    got = store.set_state("a", "available", now=30)
    for t in (30, 40, 50):
        assert got is not None
        order.append(got.call_id)
        store.accept("a", got.call_id, now=t)
        got = store.complete("a", got.call_id, wrap_up_s=0, now=t + 1)
    assert order == ["vip", "older", "old"] and got is None
    assert store.hold_info("other", now=60).position == 1


def test_head_start_counts_as_waiting(store: QueueStore) -> None:
    store.upsert_agent("a", {"lang:es": 1, "topic:billing": 3}, now=0)
    store.enqueue("normal", "support", ES_BILL, priority=1, now=100)
    store.enqueue("p2", "support", ES_BILL, priority=2, now=120)  # 30 s head start
    store.enqueue("p1late", "support", ES_BILL, priority=1, now=101)
    got = store.set_state("a", "available", now=130)
    assert got is not None and got.call_id == "p2"


def test_aging_relaxes_level_raises_priority_and_overflows(store: QueueStore) -> None:
    store.upsert_agent("novice", {"lang:es": 1, "topic:billing": 1}, now=0)
    store.upsert_agent("general", {"lang:es": 1, "topic:billing": 5}, queues=("general",), now=0)
    store.enqueue("c1", "billing", ES_BILL, now=0)
    assert store.set_state("novice", "available", now=30) is None  # level 3 needed
    assert store.set_state("general", "available", now=30) is None  # other queue
    # after 60 s the required level relaxes to 1: the periodic sweep offers it
    got = store.tick(now=61)
    assert [(a.call_id, a.agent_id) for a in got] == [("c1", "novice")]
    store.accept("novice", "c1", now=62)

    store.upsert_agent("x", {"lang:es": 1, "topic:billing": 3}, queues=("nothing",), now=0)
    store.enqueue("c2", "billing", ES_BILL, now=100)
    assert store.hold_info("c2", now=350).overflowed_to is None
    info = store.hold_info("c2", now=401)
    assert info.overflowed_to == "general" and not info.offer_voicemail
    assert [(a.call_id, a.agent_id) for a in store.tick(now=401)] == [("c2", "general")]
    store.enqueue("c3", "billing", ES_BILL, now=1000)
    assert store.hold_info("c3", now=1601).offer_voicemail


def test_aged_call_overtakes_a_newer_priority_call(store: QueueStore) -> None:
    store.upsert_agent("a", {"lang:es": 1, "topic:billing": 3}, now=0)
    store.enqueue("aged", "billing", ES_BILL, priority=0, now=0)
    store.enqueue("vip", "billing", ES_BILL, priority=1, now=100)
    # at 130 s "aged" has +2 priority (after 120 s): 2 > 1
    got = store.set_state("a", "available", now=130)
    assert got is not None and got.call_id == "aged"


def test_no_answer_requeues_at_head_and_pauses_agent(store: QueueStore) -> None:
    free_agent(store, "a", {"lang:es": 1, "topic:billing": 3}, now=0)
    _, got, _ = store.enqueue("first", "support", ES_BILL, now=1)
    store.enqueue("second", "support", ES_BILL, now=2)
    assert got is not None
    assert store.expire_reservation("first", got.reservation_id, now=10) == (False, None)
    assert store.tick(now=16) == []
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.PAUSED
    assert agent.pause_reason == "no_answer" and agent.load == 0
    call = store.call("first")
    assert call is not None and call.status == CallStatus.WAITING and call.front
    assert store.hold_info("first", now=17).position == 1
    assert store.hold_info("second", now=17).position == 2
    store.upsert_agent("b", {"lang:es": 1, "topic:billing": 4}, now=17)
    again = store.set_state("b", "available", now=17)
    assert again is not None and (again.call_id, again.agent_id) == ("first", "b")
    # the old reservation id no longer expires anything
    assert store.expire_reservation("first", got.reservation_id, now=100) == (False, None)


def test_decline_puts_call_back_and_offers_it_to_the_next_agent(store: QueueStore) -> None:
    free_agent(store, "a", {"lang:es": 1, "topic:billing": 5}, now=0)
    free_agent(store, "b", {"lang:es": 1, "topic:billing": 3}, now=0)
    _, got, _ = store.enqueue("c", "support", ES_BILL, now=1)
    assert got is not None and got.agent_id == "a"
    again = store.decline("a", "c", now=2)
    assert again is not None and again.agent_id == "b"
    assert store.agent("a").state == AgentState.PAUSED  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition):
        store.accept("a", "c", now=3)


def test_accept_complete_wrap_up_then_available(store: QueueStore) -> None:
    free_agent(store, "a", {"lang:es": 1, "topic:billing": 3}, now=0)
    store.enqueue("c1", "support", ES_BILL, now=1)
    store.accept("a", "c1", now=4)
    assert store.agent("a").state == AgentState.BUSY  # type: ignore[union-attr]
    store.enqueue("c2", "support", ES_BILL, now=5)
    assert store.complete("a", "c1", now=60) is None
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.WRAP_UP and agent.wrap_up_until == 70
    assert store.tick(now=65) == []
    got = store.tick(now=70)
    assert [(a.call_id, a.agent_id) for a in got] == [("c2", "a")]
    assert store.call("c1").status == CallStatus.COMPLETED  # type: ignore[union-attr]
    counters = store.counters()["support"]
    assert counters["answered"] == 1 and counters["answered_in_sl"] == 1
    assert counters["answer_wait_sum"] == 3


def test_capacity_two_takes_two_calls(store: QueueStore) -> None:
    store.upsert_agent("chat", {"lang:es": 1}, capacity=2, now=0)
    store.set_state("chat", "available", now=0)
    assert store.enqueue("c1", "s", {"lang:es": 1}, now=1)[1].agent_id == "chat"  # type: ignore[union-attr]
    assert store.enqueue("c2", "s", {"lang:es": 1}, now=2)[1].agent_id == "chat"  # type: ignore[union-attr]
    assert store.enqueue("c3", "s", {"lang:es": 1}, now=3)[0] == "waiting"
    store.accept("chat", "c1", now=4)
    got = store.complete("chat", "c1", now=5)
    assert got is not None and got.call_id == "c3"
    assert store.agent("chat").load == 2  # type: ignore[union-attr]


def test_abandon_is_recorded_and_resume_gives_the_place_back(store: QueueStore) -> None:
    store.upsert_agent("a", {"lang:es": 1, "topic:billing": 3}, now=0)
    store.enqueue("early", "support", ES_BILL, caller="+34600000001", now=100)
    store.enqueue("mid", "support", ES_BILL, caller="+34600000002", now=110)
    assert store.abandon("early", now=160) is None
    assert store.abandons()[0]["wait_s"] == 60 and store.abandons()[0]["call_id"] == "early"
    assert store.call("early").status == CallStatus.ABANDONED  # type: ignore[union-attr]
    status, _, resumed = store.enqueue("again", "support", ES_BILL, caller="+34600000001",
                                       now=200)
    assert (status, resumed) == ("waiting", "early")
    assert store.hold_info("again", now=201).position == 1
    assert store.hold_info("again", now=201).wait_s == 101
    assert store.call("early").status == CallStatus.RESUMED  # type: ignore[union-attr]
    # too late: outside the 300 s window the place is gone
    store.abandon("mid", now=220)
    assert store.enqueue("late", "support", ES_BILL, caller="+34600000002", now=521)[2] is None


def test_bad_input_is_refused_with_a_reason(store: QueueStore) -> None:
    with pytest.raises(UnknownAgent, match="no agent ghost"):
        store.set_state("ghost", "available")
    with pytest.raises(QueueError, match="level of 'topic:x' must be an integer 1..5"):
        store.upsert_agent("a", {"topic:x": 9})
    with pytest.raises(QueueError, match="pausing needs a reason"):
        store.upsert_agent("a", {"lang:es": 1}) or store.set_state("a", "paused")
    store.enqueue("c1", "s", {"lang:es": 1}, now=0)
    store.set_state("a", "available", now=1)
    with pytest.raises(InvalidTransition, match="complete them before going offline"):
        store.set_state("a", "offline", now=2)


def test_enqueue_twice_changes_nothing(store: QueueStore) -> None:
    assert store.enqueue("c1", "s", {}, now=0)[0] == "waiting"
    assert store.enqueue("c1", "s", {}, now=5)[0] == "waiting"
    assert len(store.waiting("s")) == 1 and store.counters()["s"]["offered"] == 1


def test_an_accepted_call_whose_agent_never_answers_goes_back_to_the_head(
        store: QueueStore) -> None:
    free_agent(store, "a", {"lang:es": 1, "topic:billing": 3}, now=0)
    _, got, _ = store.enqueue("first", "support", ES_BILL, now=1)
    store.enqueue("second", "support", ES_BILL, now=2)
    assert got is not None
    store.accept("a", "first", now=5)
    assert store.counters()["support"]["answered"] == 1
    # The bridge rang the agent's phone and nobody picked up.
    status, again = store.bounce("first", now=35)
    assert (status, again) == ("requeued", None)  # nobody else is free yet
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.PAUSED
    assert agent.pause_reason == "no_answer" and agent.load == 0
    call = store.call("first")
    assert call is not None and call.status == CallStatus.WAITING and call.front
    assert store.hold_info("first", now=36).position == 1  # ahead of "second"
    stats = store.counters()["support"]
    assert stats["answered"] == 0 and stats["answer_wait_sum"] == 0  # it was not answered
    assert store.bounce("first", now=40) == ("waiting", None)  # a retry changes nothing
    store.upsert_agent("b", {"lang:es": 1, "topic:billing": 4}, now=50)
    offered = store.set_state("b", "available", now=50)
    assert offered is not None and (offered.call_id, offered.agent_id) == ("first", "b")


def test_each_change_is_one_event_that_says_the_agents_new_state(store: QueueStore) -> None:
    free_agent(store, "a", {"lang:es": 1, "topic:billing": 3}, now=0)
    start = store.last_event_id()
    store.enqueue("c1", "support", ES_BILL, now=1)
    store.accept("a", "c1", now=4)
    store.complete("a", "c1", now=60)
    store.tick(now=70)  # wrap-up over: the agent is available again (its own event)
    seen = [(f["type"], f.get("call", ""), f.get("agent_state", f.get("state", "")))
            for _, f in store.events(after=start, block_ms=None)]
    assert seen == [("enqueued", "c1", ""), ("reserved", "c1", "reserved"),
                    ("bridged", "c1", "busy"), ("completed", "c1", "wrap_up"),
                    ("agent", "", "available")]


def test_an_agent_leaving_wrap_up_for_a_waiting_call_is_one_change(store: QueueStore) -> None:
    free_agent(store, "a", {"lang:es": 1, "topic:billing": 3}, now=0)
    store.enqueue("c1", "support", ES_BILL, now=1)
    store.accept("a", "c1", now=4)
    store.enqueue("c2", "support", ES_BILL, now=5)  # waits for the agent
    store.complete("a", "c1", now=60)
    start = store.last_event_id()
    [got] = store.tick(now=70)  # wrap-up over: straight to the waiting call
    assert (got.call_id, got.agent_id) == ("c2", "a")
    seen = [(f["type"], f.get("call", ""), f.get("agent_state", f.get("state", "")))
            for _, f in store.events(after=start, block_ms=None)]
    assert seen == [("reserved", "c2", "reserved")]  # no "available" in between
    agent = store.agent("a")
    assert agent is not None and agent.state == AgentState.RESERVED
    assert agent.idle_since == 70 and agent.wrap_up_until is None and agent.calls == ("c2",)
    call = store.call("c2")
    assert call is not None and call.status == CallStatus.RESERVED and call.entered_at == 5
    # a new call an idle agent takes at once is written whole, with its reservation
    store.complete("a", "c2", wrap_up_s=0, now=80)
    _, direct, _ = store.enqueue("c3", "support", ES_BILL, priority=1, caller="+34600000003",
                                 now=90)
    assert direct is not None and direct.agent_id == "a"
    c3 = store.call("c3")
    assert c3 is not None and (c3.status, c3.queue, c3.priority, c3.caller, c3.entered_at) == (
        CallStatus.RESERVED, "support", 1, "+34600000003", 90)
    assert c3.needs == ES_BILL and store.hold_info("c3", now=91).position == 0
