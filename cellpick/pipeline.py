"""The fit as the list of stages the terminal shows, each in its own module:

plan (stages.plan) -> data-level choices (stages.datalevel) -> search (engine.search;
engine.distributed for a chief) -> the verdict's seeds and folds (stages.crossval) ->
contestants (stages.contest) -> decision (verdict) -> refit and test (stages.refit) ->
the fit's record (stages.record) -> report (output.report) -> export (output.export).
Stages take records and return new ones; none changes another's. MLflow is behind
`tracking.Tracker`.

`fit()` is the Python API and `start()` the one place a role is dispatched (a distributed
worker runs the trials and units its chief serves); the CLI is a thin layer over them.
Progress is reported through a callback of `events.Event`s (the CLI prints it); nothing here
prints.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellpick.config import FitConfig, resolve
from cellpick.events import Event, Progress
from cellpick.stages.plan import Plan, make_plan  # noqa: F401 - make_plan: part of this module's API
from cellpick.tracking import Role

if TYPE_CHECKING:
    from cellpick.engine.distributed import WorkerResult
    from cellpick.stages.record import FitRecord


@dataclass
class FitResult:
    """The facts of one fit (also the `--json` summary)."""

    winner: str
    config: dict[str, Any]
    metric: str
    greater_is_better: bool
    val_score: float
    test_score: float | None
    reason: str
    parent_run_id: str
    experiment: str
    tracking_uri: str
    export_path: str
    task: str
    layout: str
    trials: int
    seconds: float
    verdict: dict[str, Any] = field(repr=False, default_factory=dict)  # verdict.json's contents
    registered_model: str | None = None  # models:/NAME/VERSION with --register
    decision: str | None = None  # better | equivalent | undecided | only (verdict.decide)
    exported: str = "cell"  # what the export holds: "cell", or "baseline" (--export best)
    beats_best_baseline: bool | None = None  # None: no baseline could be fitted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit(data: str | Path | None = None, *, recipe: str | Path | None = None,
        progress: Progress | None = None, **options) -> FitResult | WorkerResult:
    """Search cells and widths on `data`, decide honestly, export the winner.

    Options are the `cellpick fit` options with `_` for `-` (see FitConfig); they override
    the values of `recipe` (a TOML file, as `cellpick fit --recipe`). With role="worker" it
    runs the trials and units a chief serves and returns what this worker did.
    """
    config = resolve({"data": str(data) if data is not None else None, **options}, recipe)
    return start(config, progress)


def start(config: FitConfig, progress: Progress | None = None) -> FitResult | WorkerResult:
    """Run this process's role: a distributed worker's trials and units (-> WorkerResult),
    otherwise the whole fit, on one machine or as the chief (-> FitResult)."""
    if config.role == "worker":  # the chief's trials and units: the chief decides and exports
        return _worker(config, progress or (lambda event, info: None))
    from cellpick.engine.threads import frozen_heap

    # Every stage's full collections skip what was alive before the fit: the libraries' heap,
    # and in a long-lived process (tests, a notebook) what earlier fits left.
    with frozen_heap():
        return run(config, progress)


def _worker(config: FitConfig, say: Progress) -> WorkerResult:
    """A distributed worker: the plan, the chief's run and its data-level choice, then trials."""
    import time

    from cellpick.engine.distributed import distributed_key, find_parent
    from cellpick.engine.units import work
    from cellpick.stages import contest, crossval, datalevel
    from cellpick.tracking import Tracker

    t0 = time.perf_counter()
    plan = make_plan(config)
    say(Event.DATASET, {"description": plan.dataset.describe(), "notes": plan.dataset.notes})
    say(Event.PLAN, plan.summary())
    tracker = Tracker(config.tracking_uri, config.experiment or plan.path.stem)
    parent = tracker.parent_id = find_parent(tracker, distributed_key(config))

    def chosen(plan):  # the chief tags its data-level choice before it opens the search
        values = tracker.chosen_values(parent)
        return datalevel.apply(plan, values) if values else plan

    return work(plan, config, tracker, parent, say, t0, before_search=chosen,
                stages={"data-level": datalevel.work, "verdict": crossval.work,
                        "contestants": contest.work})


def run(config: FitConfig, progress: Progress | None = None) -> FitResult:
    """The fit on one machine, or as a distributed chief: every stage, in the order shown."""
    from cellpick._quiet import tensorflow
    from cellpick.engine.threads import deterministic, frozen_heap
    from cellpick.engine.train import strategy
    from cellpick.errors import ConfigError
    from cellpick.output.export import export_fit
    from cellpick.output.report import write_report
    from cellpick.stages.record import build as build_record
    from cellpick.stages.contest import final_baselines, run_baselines, with_final
    from cellpick.stages.crossval import cross_validate
    from cellpick.stages.datalevel import choose
    from cellpick.stages.refit import build_winner, choose_export, score_test

    if config.role == "worker":
        raise ConfigError("a worker runs its chief's trials and units only: call pipeline.start")
    say = progress or (lambda event, info: None)
    t_start, wall_start = time.perf_counter(), time.time()  # the budget counts from here
    plan = make_plan(config)
    _check_contestants(plan)
    deterministic(tensorflow())
    distribute = strategy(config.strategy)
    budget = budget_for(plan, wall_start) if config.time_budget else None  # exit 2 if too small
    say(Event.DATASET, {"description": plan.dataset.describe(), "notes": plan.dataset.notes})
    say(Event.PLAN, {**plan.summary(), **({"budget": budget.line()} if budget else {})})
    tracker = _open_fit(plan)
    say(Event.TRACKING, {"uri": tracker.uri, "experiment": tracker.experiment_name,
                         "run_id": tracker.parent_id, "resumed": config.resume})
    try:
        tracker.show_in_ui(plan.metric, plan.greater_is_better)
        tracker.log_dataset(plan.dataset.frame, source=str(plan.path.resolve()),
                            name=plan.path.stem, on_parent=not config.resume)
        cluster = _chief(config, tracker, say)  # None on one machine
        _stage(budget, "data-level")
        with frozen_heap():  # as the search and the verdict do: collections skip the libraries
            plan, data_choice = choose(plan, tracker=tracker, budget=budget, progress=say,
                                       cluster=cluster)
        _stage(budget, "search", after="data-level")
        search = _search(plan, tracker, budget, distribute, say, cluster)
        if budget:
            budget.end("search")
        workers = len(cluster.workers()) if cluster else 1  # a seed's cells train at once on them
        plan, n_seeds = _seeds_that_fit(plan, search, budget, workers)  # begins the verdict's share
        t_cells = time.perf_counter()
        cv = cross_validate(plan, search.best, tracker=tracker, budget=budget, progress=say,
                            cluster=cluster)
        _stage(budget, "contestants", after="verdict")
        baselines = run_baselines(plan, tracker=tracker, progress=say, budget=budget,
                                  cells_seconds=time.perf_counter() - t_cells, cluster=cluster)
        _stage(budget, "refit+export", after="contestants")
        decision = _decide(plan, cv, baselines)
        winner = build_winner(plan, decision.winner, cv, budget=budget, progress=say)
        final = final_baselines(plan, baselines, refit=winner.refit, progress=say)
        baselines = with_final(baselines, final)
        winner, choice = choose_export(plan, decision, winner, baselines, final)
        test = score_test(plan, winner, decision.best_baseline, final.test)
        if budget:  # what follows (report, export) is what the reserve and tolerance are for
            budget.end("refit+export")
        record = build_record(plan, decision, winner, test, choice, search=search,
                              baselines=baselines, data_level=data_choice, n_seeds=n_seeds,
                              budget=budget, spread=cluster.spread if cluster else None)
        say(Event.STAGE, {"name": "export"})
        report = write_report(plan, record, search.trials, {**search.curves, **cv.curves},
                              tracker=tracker)
        exported = export_fit(plan, winner, record, test, tracker=tracker,
                              report_html=report.html,
                              warn=lambda message: say(Event.WARNING, {"message": message}))
        tracker.finish_fit("FINISHED")
    except KeyboardInterrupt:
        tracker.close_children(_CHILDREN, "KILLED", "interrupted by the user")
        tracker.finish_fit("KILLED", "interrupted by the user")
        raise
    except BaseException as e:
        tracker.close_children(_CHILDREN, "FAILED", f"the fit failed: {e}")
        tracker.finish_fit("FAILED", f"{type(e).__name__}: {e}")
        raise
    result = _result(plan, record, test, tracker, exported, trials=len(search.trials),
                     seconds=round(time.perf_counter() - t_start, 2))
    say(Event.DONE, {"result": result, "board": report.board})
    return result


_CHILDREN = (Role.DATA, Role.TRIAL, Role.VERDICT, Role.BASELINE, Role.FOLD)  # closed if the fit stops


def _chief(config: FitConfig, tracker, say: Progress):
    """A distributed chief's unit server (engine.units.Chief), its run tagged for the workers
    to find before its first stage; None on one machine."""
    if config.role != "chief":
        return None
    from cellpick.engine.distributed import distributed_key
    from cellpick.engine.units import Chief
    from cellpick.tracking import DISTRIBUTED_KEY_TAG, DISTRIBUTED_TAG, ORACLE_TAG

    tracker.set_tags(tracker.parent_id, {DISTRIBUTED_TAG: "chief", ORACLE_TAG: config.oracle,
                                         DISTRIBUTED_KEY_TAG: distributed_key(config)})
    return Chief(config, tracker, say)


def _result(plan: Plan, record: FitRecord, test, tracker, exported, *, trials: int,
            seconds: float) -> FitResult:
    return FitResult(
        winner=record.winner, config=record.cells[record.winner]["config"],
        metric=plan.metric, greater_is_better=plan.greater_is_better,
        val_score=record.val_score, test_score=test.winner, reason=record.reason,
        parent_run_id=tracker.parent_id, experiment=tracker.experiment_name,
        tracking_uri=tracker.uri, export_path=str(exported.path), task=plan.dataset.task,
        layout=plan.dataset.layout, trials=trials, seconds=seconds, verdict=record.to_dict(),
        registered_model=(exported.registered or {}).get("uri"), decision=record.decision,
        exported=record.export["kind"], beats_best_baseline=record.beats_best_baseline)


def _check_contestants(plan: Plan) -> None:
    """--contestants names only contestants that fit the task (ConfigError otherwise)."""
    from cellpick.errors import ConfigError
    from cellpick.stages.contest import contestant_names

    try:
        contestant_names(plan)
    except ValueError as e:
        raise ConfigError(f"The 'contestants' option: {e}.") from None


def budget_for(plan: Plan, start: float):
    """The fit's time budget (engine.budget.Budget), counted from `start` (time.time()): each
    cell's cheapest and costliest candidates calibrated on the plan's windows, each stage's
    minimum and expected seconds from those costs, the division fixed. ConfigError (exit 2)
    when one minimum-trained trial per cell and one seed per fold cannot fit. docs/budget.md."""
    from cellpick.engine.budget import FINISH_SECONDS, Budget, calibrate_range, recurrent_inputs
    from cellpick.engine.isolation import BUDGET_FLOOR
    from cellpick.engine.members import round_steps
    from cellpick.stages.contest import contestant_names
    from cellpick.stages.crossval import unit_schedule
    from cellpick.stages.datalevel import REFERENCE_UNITS, planned

    config, res, sched, prep = plan.config, plan.resampling, plan.schedule, plan.prep
    ends = _candidates_at_the_ends(plan)
    costs = calibrate_range(prep, *ends, seed=config.seed)
    budget = Budget(config.time_budget, start, res.seeds, min_steps=sched.min_steps,
                    round_steps=round_steps(sched), costs=costs,
                    features=recurrent_inputs(prep))
    unit = unit_schedule(plan)
    u_n = round_steps(unit)

    def expected(s):  # a model is expected to train its minimum and one patience more
        return min(s.epochs * s.steps_per_epoch, s.min_steps + s.patience * s.steps_per_epoch)

    def middle(cell):  # a candidate of the cell's middle cost (the search may choose any)
        m = costs[cell]
        return m.at((m.low_macs + m.high_macs) // 2)

    first = {c: budget.cost(c) for c in costs}
    unit_min = sum(first[c].seconds(unit.min_steps, u_n) for c in costs)
    unit_exp = [middle(c).seconds(expected(unit), u_n) for c in costs]
    trial_exp = sum(first[c].seconds(expected(sched), budget.round_steps)
                    + (config.max_trials - 1) * middle(c).seconds(expected(sched), budget.round_steps)
                    for c in costs)
    # The reference model (GRU-16) costs about the cheapest cell's first candidate.
    ref = first.get("gru") or min(first.values(), key=lambda c: c.step)
    budget.estimates["reference_fit"] = ref.seconds(unit.min_steps, u_n, REFERENCE_UNITS)
    verdict = res.folds * res.seeds * sum(unit_exp)
    contestants = len(contestant_names(plan))
    exported = res.seeds if config.ensemble else 1
    budget.plan = {
        "data-level": (0.0, planned(plan)["fits"] * budget.estimates["reference_fit"]),
        "search": (sum(budget.trial_seconds(c) for c in costs), trial_exp),
        "verdict": (res.folds * unit_min, verdict),
        "contestants": (0.0, max(contestants * BUDGET_FLOOR, verdict / 2) if contestants else 0.0),
        "refit+export": (FINISH_SECONDS, FINISH_SECONDS + exported * max(unit_exp)),
    }
    budget.check()
    return budget


def _candidates_at_the_ends(plan: Plan) -> tuple[dict, dict, dict]:
    """Per cell: its cheapest candidate (fewest units and layers, one direction), its
    costliest (most units and layers, bidirectional if searched), and the first candidate
    every search's first round trains (each list's first value: models/candidates.py)."""
    from cellpick.models.cells import DROPOUTS, LEARNING_RATES

    c, prep = plan.config, plan.prep
    common = {"dropout": DROPOUTS[0], "learning_rate": LEARNING_RATES[0],
              **(prep.preprocessing or {}), **({"patch": prep.patch} if prep.patch > 1 else {})}
    both = "bidirectional" in plan.space()
    cheapest = {"units": min(c.units), "layers": min(c.layers), **common}
    costliest = {"units": max(c.units), "layers": max(c.layers), **common,
                 **({"bidirectional": True} if both else {})}
    first = {"units": c.units[0], "layers": c.layers[0], **common,
             **({"bidirectional": False} if both else {})}
    if both:
        cheapest["bidirectional"] = False
    return tuple({cell: {"cell": cell, **cfg} for cell in c.cells}
                 for cfg in (cheapest, costliest, first))


def _stage(budget, stage: str, after: str | None = None) -> None:
    """The budget's clock: `after` ends, `stage` begins with its re-balanced share."""
    if budget is not None:
        if after:
            budget.end(after)
        budget.begin(stage)


def _seeds_that_fit(plan: Plan, search, budget, workers: int = 1) -> tuple[Plan, int]:
    """(plan, the verdict's seeds per fold): all of them, or as many as the verdict's share
    covers (it begins here, re-balanced), in a new plan whose resampling keeps its first
    repetitions. A seed costs every cell's folds, each a model at the measured trial time of
    its cell's chosen configuration (else its cell's trials' mean, else the estimate); the
    verdict's minimum stays the chosen configurations' estimated minimum training. The
    contestants and the refit are expected from the same measurements. With `workers`
    (a distributed chief's), a seed's cells train `workers` at once."""
    res = plan.resampling
    if budget is None:
        return plan, res.seeds
    scored = [r for r in search.trials
              if r.get("status", "COMPLETED") == "COMPLETED" and r.get("train_seconds")]
    from cellpick.engine.budget import FINISH_SECONDS
    from cellpick.engine.isolation import BUDGET_FLOOR
    from cellpick.stages.contest import contestant_names

    per_seed = minimum = longest = 0.0
    for cell, chosen in search.best.items():
        mine = [r for r in scored if r.get("cell") == cell]
        times = ([r["train_seconds"] for r in mine if _same_config(r, chosen)]
                 or [r["train_seconds"] for r in mine] or [r["train_seconds"] for r in scored])
        estimate = budget.trial_seconds(cell, chosen)
        model = sum(times) / len(times) if times else estimate
        per_seed += res.folds * model
        minimum += res.folds * estimate
        longest = max(longest, model)
    per_seed /= max(1, min(workers, len(search.best)))
    # The later stages' expectations from the same measurements (not the calibration's
    # middle-cost candidate), so the verdict's share is not held back for them.
    n_contestants = len(contestant_names(plan))
    exported = res.seeds if plan.config.ensemble else 1
    budget.plan.update({
        "verdict": (minimum, per_seed * res.seeds),
        "contestants": (0.0, max(n_contestants * BUDGET_FLOOR, per_seed / 2) if n_contestants else 0.0),
        "refit+export": (FINISH_SECONDS, FINISH_SECONDS + exported * longest),
    })
    share = budget.begin("verdict")
    n = max(1, min(res.seeds, int(share // per_seed))) if per_seed > 0 else res.seeds
    if n >= res.seeds:
        return plan, res.seeds
    cut = dataclasses.replace(res, seeds=n, units=[u for u in res.units if u.repeat < n])
    return dataclasses.replace(plan, resampling=cut), n


def _same_config(trial: dict, config: dict) -> bool:
    """A search trial's record holds `config` (the keys both have agree)."""
    return all(trial[k] == v for k, v in config.items() if k in trial)


def _decide(plan: Plan, cv, baselines):
    from cellpick import verdict

    res = plan.resampling
    return verdict.decide(cv.cells, plan.metric, plan.greater_is_better,
                          baselines=baselines.matrices, resampling=res, rope=plan.config.rope,
                          n_validated=res.n_validated, task=plan.dataset.task)


def _open_fit(plan: Plan):
    """The fit's MLflow parent run: a new one, or with --resume the interrupted one (its
    verdict seeds and baselines are redone from scratch)."""
    from cellpick.errors import ConfigError
    from cellpick.stages.datalevel import names
    from cellpick.tracking import FIT_KEY_TAG, LAYOUT_TAG, TASK_TAG, Tracker, fit_key, fit_run_name

    config, ds, prep, path = plan.config, plan.dataset, plan.prep, plan.path
    # A lookback the data-level stage chooses goes on the run as `chosen.lookback`.
    decided = "lookback" in names(plan) and config.lookback is None
    tracker = Tracker(config.tracking_uri, config.experiment or path.stem)
    key = fit_key(asdict(config))
    if config.resume:
        parent = tracker.find_resumable(key)
        if parent is None:
            raise ConfigError(f"nothing to resume: no unfinished fit of {path.name} with these options "
                              f"in {tracker.uri} (experiment '{tracker.experiment_name}'); "
                              f"run without --resume")
        tracker.reopen_fit(parent)
        tracker.close_children((Role.VERDICT, Role.BASELINE, Role.SUMMARY, Role.OLD_SUMMARY), "KILLED",
                               "superseded: the fit was resumed", only_running=False)
        return tracker
    tracker.start_fit(
        fit_run_name(path.stem, datetime.now()),
        params={"data": str(path), "task": ds.task, "layout": ds.layout, "target": ds.target,
                "lookback": None if decided else prep.lookback, "horizon": prep.horizon, "season": plan.season,
                "cells": ",".join(config.cells), "units": ",".join(map(str, config.units)),
                "layers": ",".join(map(str, config.layers)), "tuner": config.tuner,
                "max_trials": config.max_trials, "epochs": plan.schedule.epochs,
                "patience": plan.schedule.patience, "seeds": plan.resampling.seeds,
                "folds": plan.resampling.folds, "resampling": plan.resampling.kind,
                "seed": config.seed, "test_size": plan.test_size, "metric": plan.metric,
                "time_budget": config.time_budget},
        tags={TASK_TAG: ds.task, LAYOUT_TAG: ds.layout, FIT_KEY_TAG: key},
    )
    return tracker


def _search(plan: Plan, tracker, budget, distribute, say: Progress, cluster=None):
    """The search stage: round-robin on this machine, or the chief (`cluster`: engine.units.Chief)
    serving its workers."""
    config = plan.config
    workdir = Path(".cellpick") / "tuner" / tracker.parent_id
    common = dict(cells=config.cells, units=config.units, layers=config.layers,
                  tuner=config.tuner, max_trials=config.max_trials, schedule=plan.schedule,
                  seed=config.seed, workdir=workdir, tracker=tracker, progress=say)
    if config.role == "chief":  # workers run the trials: cellpick.distributed
        from cellpick.engine.distributed import chief_search

        cluster.announce("search")  # the workers join the cells' oracles
        result = chief_search(plan.prep, oracle=config.oracle, config=config, budget=budget,
                              workers=len(cluster.workers()), **common)
        cluster.heard(result.workers)
        return result
    from cellpick.engine.search import run_search
    from cellpick.engine.threads import default_jobs

    return run_search(plan.prep, resume=config.resume, budget=budget, distribute=distribute,
                      jobs=config.jobs or default_jobs(), **common)
