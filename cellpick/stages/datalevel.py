"""The data-level stage: choices that belong to the data, settled once before the cells.

Forecasts: the target scaling, logs, a linear path and the lookback; fixed-length sequences
read in patches: the patch size. An option the user set skips its choice. `choose` scores
each candidate with one small fixed reference model (REFERENCE, GRU-16) on REFERENCE_UNITS
of the verdict's resampling units (never the test split), one choice at a time against the
best so far; a challenger replaces the incumbent only when it scores better on every unit
(`_pick`). The choice is then fixed for every cell and the ridge contestant, and logged:
each candidate a child run (role data), the chosen values `chosen.<name>` params on the
parent run, from which a resumed fit and a distributed worker read them (`choose` reuses
them). With --time-budget the stage spends its share (engine/budget.py): a step's candidates
start only when the share left covers their estimated minimum training, else the best so far
(at first the defaults) is kept and the budget's record says what was not tried.
What is tried, the rule and why: docs/datalevel.md.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cellpick import verdict
from cellpick.data.prepared import default_lookback, series_blocks, series_groups
from cellpick.engine.budget import SAFETY
from cellpick.engine.members import Member, fit_groups
from cellpick.engine.threads import default_jobs
from cellpick.engine.train import split_predictions, summary_metrics
from cellpick.events import Event
from cellpick.models.cells import (
    DEFAULT_PREPROCESSING,
    export_model,
    patch_size,
    user_units,
)
from cellpick.stages.crossval import unit_schedule
from cellpick.stages.plan import windowed
from cellpick.tracking import Role, data_run_name, summary_key

REFERENCE = {"cell": "gru", "units": 16, "layers": 1, "dropout": 0.0, "learning_rate": 1e-3}
REFERENCE_NAME = "GRU-16"
REFERENCE_UNITS = 3  # of the verdict's resampling units (repetition 0)
REFERENCE_SEEDS = 1  # reference models per unit, their mean its score (docs/datalevel.md)
# The options that override each choice, as the progress line names them.
FLAGS = {"scaling": "--scaling", "log": "--log/--no-log", "linear": "--linear/--no-linear",
         "lookback": "--lookback", "patch": "--patch"}
PREPROCESSING = ("scaling", "log", "linear")


@dataclass
class Candidate:
    values: dict[str, Any]  # the data-level values this candidate sets
    score: float | None = None  # median over the reference units of the task metric
    val_loss: float | None = None  # median best validation loss
    scores: list[float] = field(default_factory=list)  # per unit (its scoring block)
    seconds: float = 0.0
    run_id: str | None = None
    outcome: str = ""  # the rule's outcome for it: "won 2 of 3 origins: kept the default"
    error: str | None = None  # why it could not train (it is then never chosen)

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "score": self.score, "val_loss": self.val_loss,
                "scores": self.scores, "seconds": round(self.seconds, 3),
                "outcome": self.outcome}


@dataclass
class DataChoice:
    """The data-level values every cell and the ridge baseline use."""
    values: dict[str, Any]  # name -> chosen or given value
    decided: list[str]  # names this stage chose
    given: list[str]  # names the user set (their options skip the choice)
    candidates: list[Candidate] = field(default_factory=list)
    reused: bool = False  # read back from the parent run (--resume, distributed worker)
    greater: bool = False  # the metric's direction: which median is better

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "decided": self.decided, "given": self.given,
                "reference": {**REFERENCE, "units": REFERENCE_UNITS},
                "chosen_on": "the scoring blocks of the verdict's first repetition: the "
                             "latest origins of a series, the first folds of sequences",
                "candidates": [c.to_dict() for c in self.candidates]}

    def line(self) -> str:
        """`scaling=relative log=yes linear=no lookback=24 (override: --scaling, ...)`, then
        each candidate with a better median that the rule did not choose, and why:
        `; d-rel-log-lin-lb24 had the best median (18.83) but won 2 of 3 origins: kept the
        default` (the rule: better on every unit)."""
        shown = " ".join(f"{k}={_word(v)}" for k, v in self.values.items())
        parts = []
        if self.decided:
            parts.append("override: " + ", ".join(FLAGS[k] for k in self.decided))
        if self.given:
            parts.append("given: " + ", ".join(FLAGS[k] for k in self.given))
        text = f"{shown} ({'; '.join(parts)})" if parts else shown
        chosen = next((c for c in self.candidates if c.values == self.values), None)
        for c in self.candidates:
            if (chosen is not None and c is not chosen and c.score is not None
                    and chosen.score is not None and c.outcome.startswith("won")
                    and "kept" in c.outcome and _better(c.score, chosen.score, self.greater)):
                text += (f"; {_run_name(c.values)} had a better median ({c.score:.4g}) but "
                         f"{c.outcome}")
        return text


def _better(a: float, b: float, greater: bool) -> bool:
    return a > b if greater else a < b


def _word(v: Any) -> str:
    return ("yes" if v else "no") if isinstance(v, bool) else str(v)


# -- what is tried --------------------------------------------------------------------------


def names(plan) -> list[str]:
    """The data-level choices that apply to this data (decided or given)."""
    prep = plan.prep
    if prep.task == "forecast":
        out = ["scaling"] + (["log"] if "log" in prep.target_stats else []) + ["linear"]
        return out + ["lookback"]
    if prep.kind == "sequence" and not prep.masked and (
            plan.config.patch is not None or _patches(plan)[0] > 1):
        return ["patch"]
    return []


def _given(plan) -> list[str]:
    return [n for n in names(plan) if getattr(plan.config, n) is not None]


def _lookbacks(plan) -> list[int]:
    """The lookbacks tried beside the default: one and three seasons (a season known), else
    half and one and a half times the default; each within the default's cap."""
    prep = plan.prep
    default = prep.lookback
    cap = default_lookback(10**9, prep.horizon, _cap_rows(plan))  # the default's own cap
    if plan.season:
        others = [plan.season, 3 * plan.season]
    else:
        others = [max(1, default // 2), default + default // 2]
    return [lb for lb in dict.fromkeys(others) if lb != default and 1 <= lb <= cap]


def _cap_rows(plan) -> int:
    """The rows default_lookback caps the lookback by (as data.prepared.prepare counts them)."""
    ds, horizon = plan.dataset, plan.prep.horizon
    shortest = min(len(g) for g in series_groups(ds))
    n_val, n_test = series_blocks(shortest, horizon, plan.test_size)
    return shortest - n_val - n_test - horizon


def _patches(plan) -> list[int]:
    prep = plan.prep
    steps = prep.input_shape[0]
    default = patch_size(prep.kind, steps, prep.masked, None)
    other = min(steps, 2 * default)
    return [default] + ([other] if other != default else [])


def planned(plan) -> dict[str, Any]:
    """What the stage would try on this plan (the dry run prints it): the preprocessing
    candidates of step 1, whether step 2 (logs) follows, the other lookbacks, the patches."""
    given = _given(plan)
    out: dict[str, Any] = {"names": names(plan), "given": given, "steps": []}
    if plan.prep.task == "forecast":
        steps = _forecast_steps(plan)
        start = _start(plan)
        words = {"scaling": "scaling {}", "linear": "linear path {}", "log": "logs {}",
                 "lookback": "lookback {}"}
        for name, options in steps:
            values = [start[name] if name != "lookback" else plan.prep.lookback] + options
            out["steps"].append(words[name].format(" or ".join(_word(v) for v in values)))
        out["fits"] = 1 + sum(len(o) for _, o in steps) if steps else 0
    elif out["names"] == ["patch"] and not given:
        patches = _patches(plan)
        out["steps"].append("patch " + " or ".join(map(str, patches)) + " steps")
        out["fits"] = len(patches) if len(patches) > 1 else 0
    else:
        out["fits"] = 0
    if out["fits"] <= 1:
        out["fits"] = 0
    return out


# -- the stage ------------------------------------------------------------------------------


def choose(plan, *, tracker, budget=None, progress: Callable[[str, dict], None] | None = None,
           cluster=None):
    """Settle the data-level choices and apply them; returns (plan, DataChoice). The plan is
    rebuilt when the chosen lookback differs from the default (plan.windowed). With `cluster`
    (engine.units.Chief) each step's candidates train on the workers (`work`)."""
    say = progress or (lambda event, info: None)
    chosen = tracker.chosen_values() if tracker is not None else None
    if chosen:  # a resumed fit (or a distributed worker): the choice made before
        chosen = {k: chosen[k] for k in FLAGS if k in chosen}
        plan = apply(plan, chosen)
        choice = DataChoice(values=chosen, decided=[n for n in chosen if n not in _given(plan)],
                            given=_given(plan), reused=True)
        say(Event.DATA, {"line": choice.line(), "reused": True})
        return plan, choice
    if tracker is not None and plan.config.resume:  # stopped during this stage: start over
        tracker.close_children((Role.DATA,), "KILLED", "superseded: the fit was resumed",
                               only_running=False)
    todo = planned(plan)
    if not todo["names"]:
        return plan, DataChoice(values={}, decided=[], given=[])
    if todo["fits"]:
        say(Event.STAGE, {"name": "data", "fits": todo["fits"], "reference": REFERENCE_NAME,
                      "units": len(reference_units(plan)), "steps": todo["steps"],
                      "unit_word": "origins" if plan.prep.task == "forecast" else "folds"})
    gate = _Gate(budget)
    tried: list[Candidate] = []
    if plan.prep.task == "forecast":
        values = _forecast(plan, tried, tracker, gate, say, cluster)
    else:
        values = _patch(plan, tried, tracker, gate, say, cluster)
    if gate.skipped and budget is not None:
        budget.cut("data_level", f"{todo['fits'] - len(tried)} of {todo['fits']} candidates "
                                 f"not tried (the best so far kept)")
    given = _given(plan)
    choice = DataChoice(values=values, decided=[n for n in values if n not in given],
                        given=given, candidates=tried, greater=plan.greater_is_better)
    plan = apply(plan, values)
    if tracker is not None:
        tracker.log_chosen(values)
        best = next((c for c in tried if c.values == values), None)
        if best is not None and best.run_id:
            tracker.mark_chosen(best.run_id)
        for c in tried:  # each data run says what the rule made of it
            if c.run_id and c.outcome:
                tracker.note_outcome(c.run_id, c.outcome + (
                    " (the final choice)" if c is best else ""))
    say(Event.DATA, {"line": choice.line(), "reused": False})
    return plan, choice


class _Gate:
    """The stage's share of a time budget: whether a step's candidates may start, and when
    their training stops (never before SAFETY times their estimated minimum)."""

    def __init__(self, budget):
        self.budget, self.skipped = budget, 0

    def allows(self, n: int) -> bool:
        b = self.budget
        if b is None or b.stage_left("data-level") >= n * b.estimates.get("reference_fit", 0.0):
            return True
        self.skipped += n
        return False

    def deadline(self, n: int) -> float | None:
        b = self.budget
        if b is None:
            return None
        return max(b.stage_deadline("data-level"),
                   time.time() + SAFETY * n * b.estimates.get("reference_fit", 0.0))


def _forecast(plan, tried, tracker, gate, say, cluster=None) -> dict[str, Any]:
    """One choice at a time (scaling, linear path, logs, lookback), each against the best so
    far. A step's candidates train at once (--jobs): the defaults with the first choice's
    options, then each later choice's options."""
    prep = plan.prep
    has_log = "log" in prep.target_stats
    lb0 = prep.lookback
    steps = _forecast_steps(plan)
    current = {**_start(plan), "lookback": lb0}

    def score(batch: list[dict[str, Any]]) -> list[Candidate]:
        if not gate.allows(len(batch)):
            return []
        items = []
        for values in batch:
            lb = values["lookback"]
            try:  # a lookback the data cannot window is no candidate
                other = plan if lb == lb0 else plan_with(plan, lookback=lb)
            except Exception:  # noqa: BLE001
                continue
            items.append((other, {k: values[k] for k in PREPROCESSING}, lb))
        return _score(plan, items, tracker, gate.deadline(len(items)), say, cluster)

    if sum(len(options) for _, options in steps) > 0:
        (name, options), rest = steps[0], steps[1:]
        first = score([current] + [{**current, name: v} for v in options])
        if first:  # else the budget left no time for the stage: the defaults stay
            best = _pick(first, plan, tried)
            for name, options in rest:
                base = {**best.values, "log": best.values.get("log", False)}
                best = _pick([best] + score([{**base, name: v} for v in options]), plan, tried)
            current = {**current, **best.values}
    out = {"scaling": current["scaling"]}
    if has_log:
        out["log"] = bool(current["log"])
    return {**out, "linear": bool(current["linear"]), "lookback": int(current["lookback"])}


def _start(plan) -> dict[str, Any]:
    """The first candidate: the options given, else models.cells.DEFAULT_PREPROCESSING."""
    cfg = plan.config
    out = {k: getattr(cfg, k) if getattr(cfg, k) is not None else v
           for k, v in DEFAULT_PREPROCESSING.items()}
    out["log"] = bool(out["log"]) and "log" in plan.prep.target_stats
    return out


def _forecast_steps(plan) -> list[tuple[str, list]]:
    """(choice, the values tried besides the current best) in order; choices given skipped."""
    cfg, start = plan.config, _start(plan)
    steps = []
    if cfg.scaling is None:
        steps.append(("scaling", [s for s in ("relative", "diff", "global") if s != start["scaling"]]))
    if cfg.linear is None:
        steps.append(("linear", [not start["linear"]]))
    if cfg.log is None and "log" in plan.prep.target_stats:
        steps.append(("log", [not start["log"]]))
    if cfg.lookback is None and _lookbacks(plan):
        steps.append(("lookback", _lookbacks(plan)))
    return steps


def _patch(plan, tried, tracker, gate, say, cluster=None) -> dict[str, Any]:
    if plan.config.patch is not None:
        return {"patch": plan.prep.patch}
    patches = _patches(plan)
    if len(patches) == 1:
        return {"patch": patches[0]}
    if not gate.allows(len(patches)):  # the budget left no time for the stage: the default
        return {"patch": plan.prep.patch}
    items = [(plan_with(plan, patch=p) if p != plan.prep.patch else plan, {"patch": p}, None)
             for p in patches]
    scored = _score(plan, items, tracker, gate.deadline(len(items)), say, cluster)
    return {"patch": int(_pick(scored, plan, tried).values["patch"])}


def _pick(candidates: list[Candidate], plan, tried: list[Candidate]) -> Candidate:
    """The incumbent (the first candidate: the default, or the best so far) unless a
    challenger scores better on every reference unit; among those that do, the best median,
    then the lower validation loss, then the order given. Records new candidates in `tried`.
    Why not the best median alone: docs/datalevel.md."""
    for c in candidates:
        if not any(c is t for t in tried):
            tried.append(c)
    sign = -1.0 if plan.greater_is_better else 1.0

    def key(ic):
        i, c = ic
        s = sign * c.score if c.score is not None and math.isfinite(c.score) else math.inf
        v = c.val_loss if c.val_loss is not None and math.isfinite(c.val_loss) else math.inf
        return (s, v, i)

    incumbent = candidates[0]
    better = [(i, c) for i, c in enumerate(candidates) if i == 0 or _beats(c, incumbent, sign)]
    chosen = min(better, key=key)[1]
    _outcomes(candidates, chosen, plan, tried, sign)
    return chosen


def _outcomes(candidates: list[Candidate], chosen: Candidate, plan, tried: list[Candidate],
              sign: float) -> None:
    """Each candidate's outcome under the rule, in words: 'won 2 of 3 origins: kept the
    default', 'won 3 of 3 origins: chosen over the default'; the incumbent's: 'the default:
    kept (no challenger won every origin)' or '...: replaced by d-diff-lb24, which won every
    origin' (appended to what an earlier step said of it)."""
    incumbent = candidates[0]
    what = "the default" if incumbent is tried[0] else f"the best so far ({_run_name(incumbent.values)})"
    unit = "origins" if plan.prep.task == "forecast" else "folds"
    for c in candidates[1:]:
        n = len(c.scores)
        wins = sum(1 for m, t in zip(c.scores, incumbent.scores)
                   if math.isfinite(m) and (not math.isfinite(t) or sign * m < sign * t))
        if c.score is None:
            c.outcome = f"failed: kept {what}"
        elif c is chosen:
            c.outcome = f"won {wins} of {n} {unit}: chosen over {what}"
        elif _beats(c, incumbent, sign):
            c.outcome = f"won {wins} of {n} {unit}, but another challenger had a better median"
        else:
            c.outcome = (f"won {wins} of {n} {unit}: kept {what} "
                         f"(a challenger must win every one)")
    if chosen is incumbent:
        then = f"kept (no challenger won every {unit[:-1]})"
    else:
        then = f"replaced by {_run_name(chosen.values)}, which won every {unit[:-1]}"
    incumbent.outcome = (f"{incumbent.outcome}; then {then}" if incumbent.outcome
                         else f"{what}: {then}")


def _beats(challenger: Candidate, incumbent: Candidate, sign: float) -> bool:
    """Better on every unit: a score on each where the incumbent's failed (NaN) or is worse.
    A challenger with a failed unit never beats; an incumbent with no score is beaten by any
    challenger that scored on every unit."""
    mine, theirs = challenger.scores, incumbent.scores
    if not mine or any(not math.isfinite(s) for s in mine):
        return False
    if not theirs or len(theirs) != len(mine):
        return incumbent.score is None
    return all(not math.isfinite(t) or sign * m < sign * t for m, t in zip(mine, theirs))


def reference_units(plan) -> list:
    """The resampling units the reference model is scored on: REFERENCE_UNITS of the verdict's
    units of repetition 0 (one seed each), the latest origins of a series (the most training
    data) or the first folds of sequences."""
    units = [u for u in plan.resampling.units if u.repeat == 0]
    if plan.prep.task == "forecast":
        return sorted(units, key=lambda u: u.fold)[-REFERENCE_UNITS:]
    return units[:REFERENCE_UNITS]


def _score(plan, items: list[tuple[Any, dict[str, Any], int | None]], tracker, deadline,
           say, cluster=None, tags: list[dict] | None = None) -> list[Candidate]:
    """Candidates (plan, values, lookback): each the reference model trained on
    `reference_units` of its plan as members of one graph (one seed each), scored on each
    unit's scoring block; the candidates train at once, --jobs of them (members.fit_groups),
    or on the workers of `cluster`, one unit per candidate. `tags`: per candidate, on its run."""
    if cluster is not None:
        return _on_workers(items, deadline, cluster, say)
    cands, groups, schedules, units_of = [], [], [], []
    for k, (cplan, values, lookback) in enumerate(items):
        prep = cplan.prep
        shown = {**values, **({"lookback": lookback} if lookback is not None else {})}
        if prep.task == "forecast" and "log" not in prep.target_stats:
            shown.pop("log", None)
        cand = Candidate(values=shown)
        if tracker is not None:
            cand.run_id = tracker.start_child(Role.DATA, _run_name(shown),
                                              {**shown, "reference": REFERENCE_NAME,
                                               "reference_units": REFERENCE_UNITS,
                                               "reference_seeds": REFERENCE_SEEDS},
                                              tags=tags[k] if tags else None)
        units = reference_units(cplan)
        schedules.append(unit_schedule(cplan))  # short ones train without XLA (engine/members.py)
        # Seed s of unit i: plan seed + i + 1000 s (s = 0 is the one-seed stage's member).
        seeded = [(u, plan.config.seed + i + 1000 * s) for s in range(REFERENCE_SEEDS)
                  for i, u in enumerate(units)]
        groups.append(([Member(u.prep, seed) for u, seed in seeded], {**REFERENCE, **values}))
        units_of.append([u for u, _ in seeded])
        cands.append(cand)
    jobs = min(plan.config.jobs or default_jobs(), len(groups)) if groups else 1
    outcomes = fit_groups(groups, schedules, jobs=jobs, deadline=deadline,
                          errors="return") if groups else []
    for cand, units, outcome in zip(cands, units_of, outcomes):
        _record(plan, cand, units, outcome, tracker, say)
    return cands


def _on_workers(items: list, deadline, cluster, say) -> list[Candidate]:
    """One unit per candidate (its values, its lookback or patch), trained and logged by a
    worker (`work`); the candidates back as this machine would have scored them."""
    from cellpick.engine.units import Unit

    timing = {"deadline": deadline} if deadline is not None else {}
    units = [Unit(f"candidate {k}", {**values, **({"lookback": lb} if lb is not None else {}),
                                     **({"patch": cplan.prep.patch} if "patch" in values else {}),
                                     **timing})
             for k, (cplan, values, lb) in enumerate(items)]
    cands = []
    for r in cluster.run("data-level", units):
        cand = Candidate(values=r["values"], score=r["score"], val_loss=r["val_loss"],
                         scores=r["scores"], seconds=r["seconds"], run_id=r["run_id"])
        say(Event.DATA_CANDIDATE, {"values": cand.values, "score": cand.score,
                                   "metric": r["metric"], "seconds": cand.seconds,
                                   "error": r.get("failed"), "units": r["units"]})
        cands.append(cand)
    return cands


def work(plan, trials: list, *, tracker, worker: str, key) -> list[dict]:
    """A worker's share of a data-level step: its candidates (keras-tuner trials), trained,
    scored and logged as `_score` does here, each run tagged with the worker; one result
    dict per trial."""
    from cellpick.engine.units import deadline_of
    from cellpick.tracking import TRIAL_ID_TAG, WORKER_TAG

    items, tags, deadlines = [], [], []
    for t in trials:
        v = t.hyperparameters.values
        lb, patch = v.get("lookback"), v.get("patch")
        same = (lb is None or lb == plan.prep.lookback) and (patch is None or patch == plan.prep.patch)
        cplan = plan if same else plan_with(plan, lookback=lb, patch=patch)
        values = {k: v[k] for k in (*PREPROCESSING, "patch") if k in v}
        items.append((cplan, values, lb))
        tags.append({WORKER_TAG: worker, TRIAL_ID_TAG: key(t)})
        deadlines.append(deadline_of(v))
    cands = _score(plan, items, tracker, deadlines, lambda event, info: None, tags=tags)
    return [{**c.to_dict(), "seconds": c.seconds, "run_id": c.run_id, "metric": plan.metric,
             "units": len(reference_units(cp)), "failed": c.error}
            for c, (cp, _, _) in zip(cands, items)]


def _run_name(shown: dict[str, Any]) -> str:
    return data_run_name(shown)


def _record(plan, cand: Candidate, units: list, outcome, tracker, say) -> None:
    """A candidate's scores (each unit's scoring block) and validation losses from its members'
    results, or its error; logged and shown."""
    metric = plan.metric
    error = None
    if isinstance(outcome, Exception):  # a candidate that cannot train is not chosen
        error = cand.error = f"{type(outcome).__name__}: {outcome}"
    else:
        scores, losses = [], []
        for unit, res in zip(units, outcome):
            try:
                y, pred = split_predictions(export_model(unit.prep, res.model), unit.prep, "score")
                value = verdict.score(plan.dataset.task, y, pred)
            except Exception:  # noqa: BLE001 - a unit that cannot be scored counts as failed
                value = math.nan
            scores.append(float(value) if math.isfinite(value) else math.nan)
            h = user_units(unit.prep, res.history)
            s = summary_metrics({"val_loss": h["val_loss"], f"val_{metric}": h[f"val_{metric}"]},
                                metric)
            losses.append(float(s["best_val_loss"]))
            cand.seconds += res.seconds
        # One score per unit: the mean over its reference seeds (members are seed-major).
        n_units = len(units) // REFERENCE_SEEDS
        per_seed = np.array(scores, dtype=float).reshape(-1, n_units)
        scores = [float(v) for v in np.mean(per_seed, axis=0)]  # a failed seed fails its unit
        cand.scores = scores
        cand.score = _median(scores, greater_is_better=plan.greater_is_better)
        cand.val_loss = _median(losses)
    if tracker is not None:
        tracker.log_metrics(cand.run_id, {"score": cand.score, "val_loss": cand.val_loss,
                                          summary_key(metric): cand.score,
                                          "train_seconds": cand.seconds})
        for i, s in enumerate(cand.scores, start=1):  # step: the unit, counted from 1
            tracker.log_metrics(cand.run_id, {"unit_score": s}, step=i)
        tracker.end_child(cand.run_id, "FAILED" if error else "FINISHED", error)
    say(Event.DATA_CANDIDATE, {"values": cand.values, "score": cand.score, "metric": metric,
                           "seconds": cand.seconds, "error": error,
                           "units": len(units) // REFERENCE_SEEDS})


def _median(values: list[float], greater_is_better: bool = False) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    # A failed seed counts as the worst: the median of 3 with one failure is the worse of two.
    if not finite:
        return None
    if len(finite) == len(values):
        return float(np.median(values))
    return float(min(finite) if greater_is_better else max(finite))


# -- applying a choice ----------------------------------------------------------------------


def plan_with(plan, *, lookback: int | None = None, patch: int | None = None):
    """The plan with other windows (plan.windowed), its other choices kept."""
    new = windowed(plan.config, plan.path, plan.dataset, plan.season, plan.season_how,
                   plan.test_size, lookback if lookback is not None else plan.prep.lookback,
                   patch)
    return new


def apply(plan, values: dict[str, Any]):
    """The plan with `values` fixed: windows rebuilt for another lookback or patch, the
    forecast preprocessing set on the search split and every fold."""
    if not values:
        return plan
    lookback, patch = values.get("lookback"), values.get("patch")
    if (lookback is not None and lookback != plan.prep.lookback) or (
            patch is not None and patch != plan.prep.patch):
        plan = plan_with(plan, lookback=lookback, patch=patch)
    if plan.prep.task == "forecast":
        pre = {k: bool(values.get(k, False)) if k != "scaling" else values.get(k, "relative")
               for k in PREPROCESSING}
        for prep in [plan.prep] + [u.prep for u in plan.resampling.units]:
            prep.preprocessing = dict(pre)
    return plan
