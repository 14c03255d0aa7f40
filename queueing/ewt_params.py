"""Committed constants of the state-dependent wait estimator.

Fitted by ``ivr bench ewt --trace shared/data/callcenter-1999-01.tsv --tune`` on days
1-15 of January 1999 only (data: "Anonymous Bank" call-center trace, organised by
Ilan Guedj and Avi Mandelbaum, Technion); the benchmark scores on the other days.
"""

from __future__ import annotations

from queueing.wait_time import StateParams

TUNED_ON = "callcenter-1999-01.tsv days 1-15"
ON_SHIFT_S = 1200.0
"""An agent counts as on shift for this long after they were last seen starting or ending a call."""

STATE_PARAMS = StateParams(
    # FEATURES: one, ql_busy, ql_shift, les, hol, recent_wait, ahead_per_agent
    weights=(12.1795, -0.1179, 0.35, 0.0836, 0.1683, 0.1563, 36.6625),
    edges=(28.8, 39.9, 56.2, 83.2),
    low_ratio=(0.2213, 0.1999, 0.2496, 0.2529, 0.3493),
    high_ratio=(3.6676, 3.2782, 2.8495, 2.51, 2.1065),
    floor_s=5.0,
)
