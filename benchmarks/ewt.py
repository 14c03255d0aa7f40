"""`ivr bench ewt`: estimated wait time against the waits callers really had.

Replays a trace (format of ``shared/data/callcenter-1999-01.tsv``) in time order; at
every queue entry the three estimators of :mod:`queueing.wait_time` predict from the
past only, and the served callers who waited are scored (mean absolute error, share
inside our announced 80% range). Parameters are the committed constants of
:mod:`queueing.ewt_params`, fitted on January 1999 days 1-15; figures are given for the
whole file and for the held-out calls apart -- every call of a trace of another month is
held out. ``--tune`` re-fits on the tuning days of the trace's first month (never on the
others) and prints the parameters it used.

Figures from the bank trace credit its source: "Anonymous Bank" call-center data,
organised by Ilan Guedj and Avi Mandelbaum (Technion).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import click
import numpy as np

from queueing import ewt_params
from queueing.ewt_fit import FitError, collect, fit_state_params
from queueing.trace import Staffing, TraceCall, TraceError, parse_trace, replay
from queueing.wait_time import (
    AsteriskEstimator,
    ErlangCEstimator,
    OnlineEstimator,
    StateEstimator,
    StateParams,
    WaitEstimate,
)

CREDIT = ('"Anonymous Bank" call-center trace, organised by Ilan Guedj and Avi Mandelbaum '
          "(Technion, Faculty of Industrial Engineering and Management)")
ESTIMATORS = ("state", "asterisk", "erlang_c")


def parse_days(text: str) -> set[int]:
    """``"1-15"`` or ``"1,3,5-7"`` -> a set of days of the month."""
    days: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            a, b = int(lo), int(hi or lo)
            if not 1 <= a <= b <= 31:
                raise ValueError
            days.update(range(a, b + 1))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use days of the month like 1-15 or 1,3,5-7") from None
    return days


DEFAULT_TUNE_DAYS = "1-15"


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def in_tuning(call: TraceCall, month: str, days: set[int]) -> bool:
    """Whether ``call`` is on a day the parameters were fitted on (that month, those days)."""
    return month_of(call.day) == month and call.day.day in days


@dataclass
class Scored:
    call: TraceCall
    est: dict[str, WaitEstimate]


def _progress(label: str) -> Any:
    def report(done: int, total: int) -> None:
        click.echo(f"\r{label}: {done}/{total} events ({100 * done // max(1, total)}%)",
                   err=True, nl=done >= total)
    return report


def run(calls: Sequence[TraceCall], params: StateParams, on_shift_s: float,
        quiet: bool = True, staffing: Staffing = Staffing.CAUSAL) -> list[Scored]:
    ests: dict[str, OnlineEstimator] = {"state": StateEstimator(params),
                                        "asterisk": AsteriskEstimator(),
                                        "erlang_c": ErlangCEstimator()}
    out = []
    for p in replay(calls, ests, on_shift_s, None if quiet else _progress("replay"), staffing):
        if p.call.scored:
            out.append(Scored(p.call, p.estimates))
    return out


def summary(rows: Sequence[Scored]) -> dict[str, Any]:
    if not rows:
        return {"calls": 0}
    real = np.array([r.call.waited_s for r in rows])
    mae = {n: float(np.mean(np.abs(np.array([r.est[n].expected_s for r in rows]) - real)))
           for n in ESTIMATORS}
    low = np.array([r.est["state"].low_s for r in rows])
    high = np.array([r.est["state"].high_s for r in rows])
    return {"calls": len(rows), "mae_seconds": round(mae["state"], 2),
            "asterisk_mae_seconds": round(mae["asterisk"], 2),
            "erlang_c_mae_seconds": round(mae["erlang_c"], 2),
            "ratio_vs_asterisk": round(mae["state"] / mae["asterisk"], 3) if mae["asterisk"] else None,
            "ratio_vs_erlang_c": round(mae["state"] / mae["erlang_c"], 3) if mae["erlang_c"] else None,
            "coverage_80": round(float(np.mean((real >= low) & (real <= high))), 4),
            "range_mean_width_s": round(float(np.mean(high - low)), 1),
            "real_mean_wait_s": round(float(real.mean()), 1)}


def breakdowns(rows: Sequence[Scored]) -> dict[str, Any]:
    by_skill: dict[str, list[Scored]] = defaultdict(list)
    by_hour: dict[int, list[Scored]] = defaultdict(list)
    for r in rows:
        by_skill[r.call.skill].append(r)
        by_hour[int((r.call.queued_at or 0) % 86400 // 3600)].append(r)
    out: dict[str, Any] = {"per_skill": {k: summary(v) for k, v in sorted(by_skill.items())}}
    if by_hour:
        hour = max(by_hour, key=lambda h: len(by_hour[h]))
        out["busiest_hour"] = {"hour": f"{hour:02d}:00-{hour + 1:02d}:00", **summary(by_hour[hour])}
    return out


# ---------------------------------------------------------------- tuning

def fit(calls: Sequence[TraceCall], on_shift_s: float, quiet: bool = True,
        staffing: Staffing = Staffing.CAUSAL) -> tuple[StateParams, float]:
    """Fit the model and the range on ``calls`` (the tuning days only)."""
    x, y, days = collect(calls, on_shift_s, None if quiet else _progress("features"), staffing)
    say = None if quiet else (lambda step: click.echo(f"fitting: {step}...", err=True))
    try:
        return fit_state_params(x, y, days, progress=say)
    except FitError as exc:
        raise click.UsageError(f"{exc} (on the tuning days)") from None


def params_summary(params: StateParams) -> dict[str, Any]:
    """What the JSON line says about the parameters (the trees themselves: --save-model)."""
    d = params.to_dict()
    text = json.dumps(d, sort_keys=True)
    return {"model": f"{len(params.median.trees)} boosted trees for the median wait",
            "model_sha256": ewt_params.model_digest(text),
            **{k: d[k] for k in ("features", "edges", "low_ratio", "high_ratio", "floor_s")}}


# ---------------------------------------------------------------- command

@click.command("ewt")
@click.option("--trace", "trace_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Trace in the format of shared/data/callcenter-1999-01.tsv.")
@click.option("--tune-days", default=None,
              help="With --tune: the days of the trace's first month to fit on [default: "
                   "1-15]; every other call is held out. Without --tune the split is the one "
                   "the committed model records (January 1999, days 1-15): a trace of another "
                   "month is held out entirely.")
@click.option("--tune", is_flag=True,
              help="Re-fit the parameters on the tuning days (only) and print them.")
@click.option("--on-shift-minutes", type=click.FloatRange(min=1), default=None,
              help="An agent seen within this many minutes is on shift "
                   f"[default: {ewt_params.ON_SHIFT_S / 60:g}].")
@click.option("--staffing", type=click.Choice([s.value for s in Staffing]),
              default=ewt_params.STAFFING, show_default=True,
              help="Who is on shift in the replay: 'causal' = seen starting or ending a call "
                   "within --on-shift-minutes (or busy); 'presence' = logged in, i.e. between "
                   "the agent's first and last call of the day (the data README's shift). "
                   "The committed model was fitted with the default; add --tune to refit.")
@click.option("--strict", is_flag=True,
              help="Also skip rows whose unused fields are broken (customer id, IVR time).")
@click.option("--save-model", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              default=None, help="With --tune: write the fitted model (JSON) here, e.g. "
                                 "queueing/ewt_model.json to commit it.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def command(trace_file: Path, tune_days: str, tune: bool, on_shift_minutes: float | None,
            staffing: str, strict: bool, save_model: Path | None, quiet: bool) -> None:
    """Score the wait estimators on a trace; print one JSON line."""
    mode = Staffing(staffing)
    on_shift_s = on_shift_minutes * 60 if on_shift_minutes else ewt_params.ON_SHIFT_S
    try:
        report = parse_trace(trace_file, strict=strict)
    except TraceError as exc:
        raise click.ClickException(str(exc)) from None
    if not report.calls:
        raise click.ClickException(f"{trace_file}: no usable rows ({report.skipped} skipped)")
    if save_model is not None and not tune:
        raise click.UsageError("--save-model writes what --tune fits: add --tune")
    if (save_model is not None and mode.value != ewt_params.STAFFING
            and save_model.resolve() == ewt_params.MODEL_PATH.resolve()):
        raise click.UsageError(f"the committed model is read with --staffing {ewt_params.STAFFING} "
                               "(queueing.ewt_params.STAFFING): change that constant first")
    level = None
    if tune:
        tune_days = tune_days or DEFAULT_TUNE_DAYS
        days = parse_days(tune_days)
        month = month_of(min(c.day for c in report.calls))
        if not quiet:
            click.echo(f"fitting on {month} days {tune_days}...", err=True)
        params, level = fit([c for c in report.calls if in_tuning(c, month, days)], on_shift_s,
                            quiet, mode)
        if save_model is not None:
            saved = {"tuned_on": f"{trace_file.name} days {tune_days}", "tuned_month": month,
                     "tuned_days": tune_days, "range_level": level, **params.to_dict()}
            save_model.write_text(json.dumps(saved, sort_keys=True) + "\n", encoding="utf-8")
    else:
        try:
            params = ewt_params.state_params()
            level = ewt_params.saved_model().get("range_level")
            month, committed_days = ewt_params.tuning_split()
        except (OSError, ValueError, KeyError) as exc:
            raise click.ClickException(f"cannot load the committed model "
                                       f"{ewt_params.MODEL_PATH}: {exc}; re-create it with "
                                       "--tune --save-model") from None
        if tune_days is not None and parse_days(tune_days) != parse_days(committed_days):
            raise click.UsageError(f"the committed model was fitted on {month} days "
                                   f"{committed_days}; --tune-days {tune_days} needs --tune "
                                   "to refit on those days")
        tune_days, days = committed_days, parse_days(committed_days)
    if not tune and mode.value != ewt_params.STAFFING and not quiet:
        click.echo(f"note: the committed model was fitted with --staffing {ewt_params.STAFFING};"
                   " add --tune to refit it for this staffing", err=True)
    rows = run(report.calls, params, on_shift_s, quiet, mode)
    held = [r for r in rows if not in_tuning(r.call, month, days)]
    tuned = [r for r in rows if in_tuning(r.call, month, days)]
    result: dict[str, Any] = {
        **summary(rows), "skipped": report.skipped,
        "skipped_reasons": dict(report.skipped_reasons),
        "anomalies_kept": dict(report.anomalies),
        **breakdowns(rows),
        "holdout": {"days": f"all but {month} days {tune_days}", **summary(held),
                    **breakdowns(held)},
        "tuning_days": {"days": f"{month} days {tune_days}", **summary(tuned)},
        "params": {"tuned_on": (f"this run, {month} days {tune_days}" if tune
                               else ewt_params.saved_model().get("tuned_on", ewt_params.TUNED_ON)),
                   "staffing": mode.value, "on_shift_s": on_shift_s, **params_summary(params),
                   **({"range_level": level} if level is not None else {})},
    }
    if "callcenter-1999" in trace_file.name:
        result["credit"] = CREDIT
    click.echo(json.dumps(result))
    sys.stdout.flush()
