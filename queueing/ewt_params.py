"""Committed constants of the state-dependent wait estimator.

The model (boosted trees for the median wait and the range's ratios) is data:
``ewt_model.json`` beside this module, written by ``ivr bench ewt --trace
shared/data/callcenter-1999-01.tsv --tune --save-model queueing/ewt_model.json``,
fitted on days 1-15 of January 1999 only (data: "Anonymous Bank" call-center trace,
organised by Ilan Guedj and Avi Mandelbaum, Technion); the benchmark scores on the
other days. The file also records the range's tail level the fit chose.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from queueing.wait_time import StateParams

TUNED_ON = "callcenter-1999-01.tsv days 1-15"
TUNED_MONTH, TUNED_DAYS = "1999-01", "1-15"
"""The month and days of the month the committed model was fitted on, when its file does
not say (files written before ``--save-model`` recorded them)."""
ON_SHIFT_S = 1200.0
"""An agent counts as on shift for this long after they were last seen starting or ending a call."""
STAFFING = "causal"
"""Who the replay counts as on shift when fitting the committed model (``queueing.trace.Staffing``):
``causal`` (seen within ON_SHIFT_S). ``presence`` (first to last call of the day, the data
README's shift) was measured and did not help (``ivr bench ewt --staffing presence --tune``)."""
MODEL_PATH = Path(__file__).with_name("ewt_model.json")


def model_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=1)
def saved_model() -> dict[str, Any]:
    """The committed file as written by ``--save-model`` (parameters, tuning days, range level)."""
    data: dict[str, Any] = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    return data


def tuning_split() -> tuple[str, str]:
    """(``YYYY-MM``, days such as ``1-15``): the calls the committed model was fitted on;
    every other call -- another month included -- is held out."""
    data = saved_model()
    return str(data.get("tuned_month", TUNED_MONTH)), str(data.get("tuned_days", TUNED_DAYS))


@lru_cache(maxsize=1)
def state_params() -> StateParams:
    """The committed parameters, read once per process."""
    return StateParams.from_dict(saved_model())
