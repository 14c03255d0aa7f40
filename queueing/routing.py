"""Routing rules as pure functions: who may take a call, and in which order.

This is the specification the Lua router (``queueing/lua/router.lua``) implements
atomically inside Redis; tests replay random states through both and compare.

* A call's *order score* is ``entered_at - head_start_s[priority]``; its *effective
  wait* is ``now - score`` (head starts count as time already waited).
* Aging (queue rules) from the effective wait relaxes required levels, raises the
  priority and may let another queue's agents take the call.
* Calls are ranked by effective priority (a call put back at the head after a
  no-answer ranks above all others), then by score (longest effective wait), then id.
* For a new call, free agents are ranked, in ``most_skilled`` order, by their level in
  the call's primary skill (the one required at the highest level), then by how long
  they have been idle, then id; in ``longest_idle`` order by idle time only.
* A callback (``callback_pending``) is routed only while callbacks are open (the line's
  business hours), whichever way it would reach an agent: a freed agent looking for
  work, a retry falling due, or a requeue. Closed, it keeps its place in line.
* A reservation lasts the queue's ``reservation_timeout_s``; a callback's lasts at
  least the ring timeout plus a margin (:func:`reservation_hold_s`), because the agent
  waits while we ring the customer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from queueing.model import Agent, AgentState, Call, CallStatus
from queueing.rules import QueueRules

FRONT_BONUS = 100  # a requeued call outranks every priority level
SKILL_SCALE = 1e11  # free-agent score: -level * SKILL_SCALE + idle_since

RulesFor = Callable[[str], QueueRules]


def bucket_key(queue: str, needs: Mapping[str, int]) -> str:
    """Calls with the same queue and requirements share a bucket."""
    return queue + "|" + ",".join(f"{s}={lvl}" for s, lvl in sorted(needs.items()))


def line_key(queue: str, needs: Mapping[str, int], priority: int, front: bool) -> str:
    """One sorted set per bucket and priority (and head-of-line flag)."""
    return f"{bucket_key(queue, needs)}#{'f' if front else ''}{priority}"


def order_score(call: Call, rules: QueueRules) -> float:
    return call.entered_at - rules.head_start_s.get(call.priority, 0.0)


def effective_wait(call: Call, now: float, rules: QueueRules) -> float:
    return now - order_score(call, rules)


def effective_priority(call: Call, now: float, rules: QueueRules) -> int:
    _, boost, _, _ = rules.aging(effective_wait(call, now, rules))
    return call.priority + boost + (FRONT_BONUS if call.front else 0)


def effective_needs(call: Call, now: float, rules: QueueRules) -> dict[str, int]:
    relaxed, _, _, _ = rules.aging(effective_wait(call, now, rules))
    if relaxed is None:
        return dict(call.needs)
    return {skill: min(level, relaxed) for skill, level in call.needs.items()}


_TAKING = (AgentState.AVAILABLE, AgentState.RESERVED, AgentState.BUSY)


def is_free(agent: Agent) -> bool:
    """Logged in, not paused or wrapping up, and below capacity."""
    return agent.state in _TAKING and agent.load < agent.capacity


def can_serve(agent: Agent, call: Call, now: float, rules: QueueRules) -> bool:
    """Whether ``agent`` has the skills and queue for ``call`` at time ``now``."""
    _, _, overflow, _ = rules.aging(effective_wait(call, now, rules))
    if not (agent.serves(call.queue) or (overflow is not None and agent.serves(overflow))):
        return False
    return all(agent.skills.get(skill, 0) >= level
               for skill, level in effective_needs(call, now, rules).items())


def call_rank(call: Call, now: float, rules: QueueRules) -> tuple[int, float, str]:
    """Smaller is served first."""
    return (-effective_priority(call, now, rules), order_score(call, rules), call.call_id)


def is_routable(call: Call, callbacks_open: bool) -> bool:
    if call.status == CallStatus.WAITING:
        return True
    return call.status == CallStatus.CALLBACK_PENDING and callbacks_open


def best_call(agent: Agent, calls: Iterable[Call], now: float, rules_for: RulesFor,
              callbacks_open: bool = True) -> Call | None:
    """The waiting call a freed agent should take, or None."""
    best: Call | None = None
    best_key: tuple[int, float, str] | None = None
    for call in calls:
        if not is_routable(call, callbacks_open):
            continue
        rules = rules_for(call.queue)
        if not can_serve(agent, call, now, rules):
            continue
        key = call_rank(call, now, rules)
        if best_key is None or key < best_key:
            best, best_key = call, key
    return best


def primary_skill(needs: Mapping[str, int]) -> str | None:
    """The skill required at the highest level (ties: first by name)."""
    if not needs:
        return None
    return min(needs, key=lambda skill: (-needs[skill], skill))


def agent_rank(agent: Agent, call: Call, order: str) -> tuple[float, str]:
    idle = agent.idle_since if agent.idle_since is not None else 0.0
    skill = primary_skill(call.needs)
    if order == "longest_idle" or skill is None:
        return (idle, agent.agent_id)
    return (-agent.skills.get(skill, 0) * SKILL_SCALE + idle, agent.agent_id)


def reservation_hold_s(call: Call, rules: QueueRules, callback_hold_s: float) -> float:
    """How long an agent stays reserved for ``call`` before the reservation lapses."""
    if call.callback_number:
        return max(rules.reservation_timeout_s, callback_hold_s)
    return rules.reservation_timeout_s


def best_agent(call: Call, agents: Iterable[Agent], now: float, rules: QueueRules,
               callbacks_open: bool = True) -> Agent | None:
    """The free agent a new (or requeued) call should go to, or None."""
    if not is_routable(call, callbacks_open):
        return None
    best: Agent | None = None
    best_key: tuple[float, str] | None = None
    for agent in agents:
        if not is_free(agent) or not can_serve(agent, call, now, rules):
            continue
        key = agent_rank(agent, call, rules.agent_order)
        if best_key is None or key < best_key:
            best, best_key = agent, key
    return best
