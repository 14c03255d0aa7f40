"""What the state-dependent wait estimator looks at, computed from the present only.

:func:`features` turns a :class:`~queueing.wait_time.QueueSnapshot` (who is waiting,
which agents are on shift, since when they are busy or idle) and the recent history
(:class:`~queueing.wait_time.History`, fed by the ``observe_*`` hooks) into the numbers
the boosted model (:mod:`queueing.ewt_gbm`) reads, in the order of :data:`FEATURES`.

What the bank's trace taught (``ivr bench ewt``): agents who free up take the next
caller within seconds (median 6 s), so an agent who ended a call moments ago and is
not yet busy again is about to answer; the queue ahead (priority callers with a head
start included) and the pool of agents sharing the skill set the rest; delay history
(last to enter service, Asterisk's moving average, the recent mean wait) corrects for
what the snapshot cannot see (breaks, after-call work).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from queueing.wait_time import AgentView, History, QueueSnapshot, WaitingCall

FEATURES = ("ahead", "ahead_same_skill", "waiting_others", "head_of_line_s", "priority",
            "agents", "busy", "freed_15s", "freed_30s", "freed_60s", "freed_120s",
            "last_freed_s", "last_started_s", "longest_busy_s", "asterisk_s", "last_wait_s",
            "recent_wait_5min_s", "ends_5min")
"""Feature names, in the order :func:`features` returns them."""

NONE_S = 1200.0
"""Stands for "not seen within the memory" in the time-since features."""


def pool(snapshot: QueueSnapshot, skill: str) -> tuple[list[AgentView], set[str]]:
    """Agents able to serve ``skill`` and every skill those agents serve (they share them)."""
    agents = [a for a in snapshot.agents if skill in a.skills]
    skills = {skill}
    for a in agents:
        skills |= a.skills
    return agents, skills


def features(snapshot: QueueSnapshot, call: WaitingCall, history: History,
             short: History) -> tuple[float, ...]:
    """The inputs of the boosted model for ``call`` at ``snapshot.now``.

    ``history`` is the long memory (last wait per skill, Asterisk's average), ``short``
    a five-minute one (recent waits, calls ended)."""
    now = snapshot.now
    agents, skills = pool(snapshot, call.skill)
    mine = snapshot.rank(call)
    others = [w for w in snapshot.waiting if w.call_id != call.call_id]
    ahead = [w for w in others if w.skill in skills and snapshot.rank(w) <= mine]
    same = sum(1 for w in ahead if w.skill == call.skill)
    hol = max((now - w.entered_at for w in ahead), default=0.0)
    busy = sorted(now - a.busy_since for a in agents if a.busy_since is not None)
    freed = sorted(now - a.idle_since for a in agents
                   if a.busy_since is None and a.idle_since is not None)
    last = history.last_wait.get(call.skill)
    pool_last = max((history.last_wait[s] for s in sorted(skills) if s in history.last_wait),
                    key=lambda v: v[1], default=None)
    if last is None or (pool_last is not None and pool_last[1] - last[1] > 600):
        last = pool_last  # this skill has been quiet: the pool's last wait says more
    les = last[0] if last is not None else 0.0
    return (float(len(ahead)), float(same), float(len(others)), hol, float(call.priority),
            float(len(agents)), float(len(busy)),
            *(float(sum(1 for f in freed if f <= limit)) for limit in (15, 30, 60, 120)),
            freed[0] if freed else NONE_S, busy[0] if busy else NONE_S,
            min(busy[-1], 4 * NONE_S) if busy else 0.0,
            history.holdtime.get(call.skill, 0.0), les,
            short.mean(skills, "wait_sum", now, les), short.total(skills, "handle_n", now))
