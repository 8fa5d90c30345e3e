"""The fit, stage by stage: data -> windows -> search -> verdict seeds -> baselines -> test -> export.

`fit()` is the Python API; the CLI is a thin layer over it. Progress is reported through a
callback (the CLI prints it); nothing here prints.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from .config import FitConfig, resolve

Progress = Callable[[str, dict], None]
BASELINE_LIMIT = 20_000  # windows per split used for scoring and baselines (evenly spaced)
REFIT_BELOW = 5_000  # training windows/samples: below this, the winner is refit on train+val


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
    verdict: dict[str, Any] = field(repr=False, default_factory=dict)
    registered_model: str | None = None  # models:/NAME/VERSION with --register

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit(data: str | Path | None = None, *, recipe: str | Path | None = None,
        progress: Progress | None = None, **options) -> FitResult:
    """Search cells and widths on `data`, decide honestly, export the winner.

    Options are the `cellpick fit` options with `_` for `-` (see FitConfig); they override
    the values of `recipe` (a TOML file, as `cellpick fit --recipe`).
    """
    config = resolve({"data": str(data) if data is not None else None, **options}, recipe)
    return run(config, progress)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("cellpick", "tensorflow", "keras", "keras-tuner", "mlflow", "scikit-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _split_predictions(model, prep, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(y raw, prediction in user units) for a split, through the export model."""
    x, y = _arrays(prep, split)
    pred = model.predict(x, verbose=0, batch_size=256)
    return y, pred


def _arrays(prep, split: str, baselines: bool = False):
    """At most BASELINE_LIMIT samples of a split, chosen before windows are materialised."""
    get = prep.baseline_arrays if baselines else prep.arrays
    return get(split, limit=BASELINE_LIMIT)


class SeedRun(NamedTuple):
    """One verdict seed of a cell's best configuration."""

    score: float  # validation score in user units
    model: Any  # its export model
    seed: int
    epochs: int  # best epoch count (what a refit trains for)
    seconds: float


@dataclass
class Plan:
    """What a fit will do, resolved before any training (`cellpick fit --dry-run` prints it)."""

    config: FitConfig
    path: Path
    dataset: Any
    prep: Any
    season: int | None
    metric: str
    greater_is_better: bool
    schedule: Any = None

    def summary(self) -> dict[str, Any]:
        c, p = self.config, self.prep
        from .tracking import resolve_uri

        return {"task": self.dataset.task, "layout": self.dataset.layout, "sizes": p.sizes,
                "input": p.input_shape, "patch": p.patch, "lookback": p.lookback, "horizon": p.horizon,
                "season": self.season, "cells": c.cells, "units": c.units, "layers": c.layers,
                "max_trials": c.max_trials, "epochs": self.schedule.epochs,
                "patience": self.schedule.patience, "steps_per_epoch": self.schedule.steps_per_epoch,
                "seeds": c.seeds,
                "tuner": c.tuner, "metric": self.metric, "notes": p.notes,
                "batch_size": p.batch_size(), "tracking_uri": resolve_uri(c.tracking_uri),
                "experiment": c.experiment or self.path.stem, "out": str(Path(c.out).resolve()),
                "time_budget": c.time_budget, "space": self.space()}

    def space(self) -> dict[str, list]:
        """The hyperparameters searched besides cell, units and layers (see space.py)."""
        from .space import DROPOUTS, LEARNING_RATES

        extra = {"dropout": DROPOUTS, "learning_rate": LEARNING_RATES}
        if self.prep.kind == "sequence":
            extra["bidirectional"] = [False, True]
        return extra


def make_plan(config: FitConfig) -> Plan:
    """Read the data, detect layout and task, split and window it; no training."""
    from . import data as data_mod
    from . import verdict
    from .errors import ConfigError
    from .space import patch_size
    from .train import Schedule
    from .windows import prepare

    if not config.data:
        raise ConfigError("no data file given; pass DATA.csv or a recipe with a 'data' key")
    path = Path(config.data)
    ds = data_mod.load(
        path, target=config.target, task=config.task, id=config.id, time=config.time,
        text=config.text,
        forecast_hint=any(v is not None for v in (config.lookback, config.horizon, config.season)),
    )
    season = config.season
    if ds.layout == "series" and season is None:
        target = ds.frame[ds.target].to_numpy(dtype="float64")
        season = verdict.detect_season(target[: int(len(target) * 0.6)], max_lag=max(2, len(target) // 6))
    prep = prepare(ds, lookback=config.lookback, horizon=config.horizon or 1,
                   test_size=config.test_size, season=season, seed=config.seed)
    prep.patch = patch_size(prep.kind, prep.input_shape[0] if prep.input_shape else None,
                            prep.masked, config.patch)
    if config.patch is not None and config.patch > 1 and prep.patch == 1:
        prep.notes.append("--patch applies to fixed-length sequences (wide layout); ignored")
    metric, greater = verdict.METRICS[ds.task]
    schedule = Schedule.for_data(prep.sizes["train"], prep.batch_size(), config.epochs)
    return Plan(config, path, ds, prep, season, metric, greater, schedule)


def _deterministic(tf) -> None:
    """Same seed, same result on a CPU: TensorFlow's op determinism. On a GPU the cuDNN
    kernels stay non-deterministic (and fast); results there can differ in the last digits."""
    if not tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()


def run(config: FitConfig, progress: Progress | None = None) -> FitResult:
    from . import report, verdict
    from ._quiet import tensorflow
    from .export import write_export
    from .search import frozen_heap, run_search
    from .space import ensemble_model, export_model, user_units
    from .errors import ConfigError
    from .tracking import (Tracker, baseline_run_name, fit_key, fit_run_name, seed_run_name,
                           summary_key, summary_metrics)
    from .train import Budget, fit_one, refit_one, strategy

    if config.role == "worker":  # trials only: the chief decides and exports
        from .distributed import run_worker

        return run_worker(config, progress)
    say = progress or (lambda event, info: None)
    t_start = time.perf_counter()
    budget = Budget(config.time_budget, time.time(), config.seeds) if config.time_budget else None
    plan = make_plan(config)
    _deterministic(tensorflow())
    distribute = strategy(config.strategy)
    ds, prep, season, path = plan.dataset, plan.prep, plan.season, plan.path
    metric, greater = plan.metric, plan.greater_is_better
    say("dataset", {"description": ds.describe(), "notes": ds.notes})
    say("plan", plan.summary())

    experiment = config.experiment or path.stem
    tracker = Tracker(config.tracking_uri, experiment)
    key = fit_key({k: v for k, v in asdict(config).items()})
    if config.resume:
        parent = tracker.find_resumable(key)
        if parent is None:
            raise ConfigError(f"nothing to resume: no unfinished fit of {path.name} with these options "
                              f"in {tracker.uri} (experiment '{experiment}'); run without --resume")
        tracker.reopen_fit(parent)
        # Seeds and baselines of the interrupted process are redone from scratch.
        tracker.close_children(("verdict", "baseline"), "KILLED",
                               "superseded: the fit was resumed", only_running=False)
    else:
        parent = tracker.start_fit(
            fit_run_name(path.stem, datetime.now()),
            params={"data": str(path), "task": ds.task, "layout": ds.layout, "target": ds.target,
                    "lookback": prep.lookback, "horizon": prep.horizon, "season": season,
                    "cells": ",".join(config.cells), "units": ",".join(map(str, config.units)),
                    "layers": ",".join(map(str, config.layers)), "tuner": config.tuner,
                    "max_trials": config.max_trials, "epochs": plan.schedule.epochs,
                    "patience": plan.schedule.patience, "seeds": config.seeds,
                    "seed": config.seed, "test_size": config.test_size, "metric": metric,
                    "time_budget": config.time_budget},
            tags={"cellpick.task": ds.task, "cellpick.layout": ds.layout, "cellpick.fit_key": key},
        )
    say("tracking", {"uri": tracker.uri, "experiment": experiment, "run_id": parent,
                     "resumed": config.resume})
    try:
        tracker.show_in_ui(metric, greater)
        tracker.log_dataset(ds.frame, source=str(path.resolve()), name=path.stem,
                            on_parent=not config.resume)
        workdir = Path(".cellpick") / "tuner" / parent
        if config.role == "chief":  # workers run the trials: cellpick.distributed
            from .distributed import chief_search as run_search
        search = run_search(
            prep, cells=config.cells, units=config.units, layers=config.layers,
            tuner=config.tuner, max_trials=config.max_trials, schedule=plan.schedule,
            seed=config.seed, workdir=workdir, tracker=tracker, progress=say, resume=config.resume,
            budget=budget, distribute=distribute,
            **({"oracle": config.oracle, "config": config} if config.role == "chief" else {}),
        )
        n_seeds = budget.seeds_that_fit(search.trials, len(search.best)) if budget else config.seeds

        # Verdict: each cell's best configuration retrained with K seeds on the same split.
        say("stage", {"name": "verdict", "cells": list(search.best), "seeds": n_seeds})
        cells, members = [], {}  # cell -> its SeedRuns, best first
        y_val = None
        with frozen_heap():  # as in the search: full collections skip the libraries' heap
            for cell, cfg in search.best.items():
                scores, seconds, runs = [], [], []
                for k in range(n_seeds):
                    seed = config.seed + 1000 * (k + 1)
                    name = seed_run_name(k + 1, cfg)
                    run_id = tracker.start_child("verdict", name, {**cfg, "seed": seed})
                    model, history, secs = fit_one(prep, cfg, seed, plan.schedule,
                                                   deadline=budget.deadline if budget else None,
                                                   distribute=distribute)
                    final = export_model(prep, model)
                    y_val, pred = _split_predictions(final, prep, "val")
                    score = verdict.score(ds.task, y_val, pred)
                    history = user_units(prep, history)
                    summary = summary_metrics(history, metric)
                    be = summary["best_epoch"]
                    tracker.log_epochs(run_id, history)
                    tracker.log_metrics(run_id, {"score": score, "n_params": model.count_params(),
                                                 "train_seconds": secs, **summary})
                    tracker.end_child(run_id)
                    search.curves[name] = {"cell": cell, "val_loss": history["val_loss"]}
                    scores.append(score)
                    seconds.append(secs)
                    runs.append(SeedRun(score, final, seed, be + 1, secs))
                    say("seed_end", {"cell": cell, "seed": seed, "k": k + 1, "score": score,
                                     "metric": metric, "seconds": secs})
                # Best seed first (ties: the earlier seed), so a one-model export takes it; a
                # seed with no finite score (diverged) never joins the export.
                runs = sorted((r for r in runs if np.isfinite(r.score)),
                              key=lambda r: -r.score if greater else r.score) or runs
                members[cell] = runs
                cells.append(verdict.CellResult(cell=cell, config=cfg, scores=scores,
                                                n_params=int(runs[0].model.count_params()),
                                                train_seconds=float(np.mean(seconds))))

        # Baselines on the same split.
        say("stage", {"name": "baselines"})
        x_train, y_train = _arrays(prep, "train", baselines=True)
        x_val, y_val = _arrays(prep, "val", baselines=True)
        fitted = verdict.fit_baselines(ds.task, x_train, y_train, season=season,
                                        n_classes=len(ds.classes) if ds.classes else None)
        baselines = {}
        for name, predictor in fitted.items():
            baselines[name] = verdict.score(ds.task, y_val, predictor(x_val))
            run_id = tracker.start_child("baseline", baseline_run_name(name), {"baseline": name})
            # No epochs: its validation score is also its summary, so it sorts with the cells.
            tracker.log_metrics(run_id, {"score": baselines[name], summary_key(metric): baselines[name]})
            tracker.end_child(run_id)
        decision = verdict.decide(cells, metric, greater, baselines=baselines)

        # The winner, scored once on the test split.
        winner = decision.winner
        win_cfg = next(c.config for c in cells if c.cell == winner)
        runs = members[winner] if config.ensemble else members[winner][:1]
        refit = config.refit if config.refit is not None else prep.sizes["train"] < REFIT_BELOW
        if refit and budget and budget.left() < sum(r.seconds for r in runs) + budget.finish_allowance:
            refit = False  # no time to retrain: export the seed models as trained
        if refit:
            say("stage", {"name": "refit", "epochs": runs[0].epochs, "models": len(runs)})
            models = [export_model(prep, refit_one(prep, win_cfg, r.seed, r.epochs, distribute))
                      for r in runs]
        else:
            models = [r.model for r in runs]
        model = ensemble_model(prep, models) if len(models) > 1 else models[0]
        test_score = baseline_test = None
        if prep.sizes.get("test", 0) > 0:
            y_test, pred = _split_predictions(model, prep, "test")
            test_score = verdict.score(ds.task, y_test, pred)
            if decision.best_baseline:
                x_test, _ = _arrays(prep, "test", baselines=True)
                baseline_test = verdict.score(ds.task, y_test, fitted[decision.best_baseline](x_test))
        decision.test_score = test_score
        vdict = decision.to_dict()
        vdict["best_baseline_test_score"] = baseline_test
        vdict["refit"] = ({"on": "train+validation", "seed": runs[0].seed, "epochs": runs[0].epochs}
                          if refit else None)
        # The export: the mean of the winner's seed models (each refit when refit is on).
        vdict["ensemble"] = ({"models": len(runs), "seeds": [r.seed for r in runs],
                              "epochs": [r.epochs for r in runs]} if len(runs) > 1 else None)
        vdict["patch"] = int(win_cfg.get("patch", 1))
        vdict["linear_path"] = bool(win_cfg.get("linear", False))
        if budget:
            cut = search.cut_short or n_seeds < config.seeds
            vdict["budget"] = {"seconds": budget.seconds, "cut_short": cut,
                               "trials_per_cell": search.rounds, "seeds": n_seeds}
            if cut:
                vdict["reason"] += (f" The time budget ({budget.seconds:g} s) cut the search to "
                                    f"{search.rounds} of {config.max_trials} trials per cell and "
                                    f"{n_seeds} of {config.seeds} seeds.")

        # Report, artifacts, model, export.
        say("stage", {"name": "export"})
        board = report.leaderboard(vdict, search.trials)
        meta_report = {"data": str(path), "task": ds.task, "layout": ds.layout, "metric": metric,
                       "mlflow_run_id": parent, "experiment": experiment,
                       "date": datetime.now().isoformat(timespec="seconds")}
        with tempfile.TemporaryDirectory(prefix="cellpick-report-") as tmp:
            tmp = Path(tmp)
            plot_paths = report.plots(vdict, search.trials, search.curves, tmp)
            html = report.html(vdict, board, plot_paths, f"cellpick: {path.name}", meta_report)
            (tmp / "report.html").write_text(html, encoding="utf-8")
            board.to_csv(tmp / "leaderboard.csv", index=False)
            (tmp / "verdict.json").write_text(json.dumps(vdict, indent=2), encoding="utf-8")
            tracker.log_artifacts(parent, [tmp / "leaderboard.csv", tmp / "verdict.json",
                                           tmp / "report.html", *plot_paths])
        win_mean = vdict["cells"][winner]["mean"]
        tracker.log_metrics(parent, {f"val_{metric}": win_mean, **(
            {f"test_{metric}": test_score} if test_score is not None else {})})
        tracker.set_tags(parent, {"cellpick.winner": winner, "mlflow.note.content": vdict["reason"],
                                  **{f"cellpick.winner.{k}": v for k, v in win_cfg.items()}})
        example = _arrays(prep, "val")[0][:2]
        logged = tracker.log_model(model, example, register=config.register, verdict={
            "winner": winner, "metric": metric, "val_score": win_mean, "test_score": test_score,
            "beats_best_baseline": vdict.get("beats_best_baseline"),
            "best_baseline": vdict.get("best_baseline"), "reason": decision.reason,
            "parent_run_id": parent, "config": json.dumps(win_cfg)})
        model_uri = logged["model_uri"]
        meta = {
            "task": ds.task, "layout": ds.layout,
            "columns": {"target": ds.target, "time": ds.time, "id": ds.id, "features": ds.features,
                        "text": ds.text},
            "input": prep.input_meta(),
            "outputs": (["probabilities", "label"] if ds.task == "classify"
                        else ["forecast"] if ds.task == "forecast" else ["prediction"]),
            "lookback": prep.lookback, "horizon": prep.horizon, "season": season, "freq": ds.freq,
            "classes": ds.classes, "masked": prep.masked,
            "scaling": {"x_mean": prep.x_mean, "x_var": prep.x_var, "y_mean": prep.y_mean,
                        "y_std": prep.y_std},
            "winner": {"cell": winner, "config": win_cfg, "n_params": int(model.count_params()),
                       "models": len(models)},
            "scores": {"metric": metric, "greater_is_better": greater, "val": win_mean,
                       "test": test_score},
            "verdict": vdict, "versions": _versions(),
            "mlflow": {"tracking_uri": tracker.uri, "experiment": experiment,
                       "parent_run_id": parent, "model_uri": model_uri,
                       "registered_model": logged["registered"]},
        }
        out = write_export(config.out, model, prep, meta, report_html=html, onnx=config.onnx,
                           warn=lambda message: say("warning", {"message": message}))
        tracker.set_tags(parent, {"cellpick.export": str(out)})
        tracker.finish_fit("FINISHED")
    except KeyboardInterrupt:
        tracker.close_children(("trial", "verdict", "baseline"), "KILLED", "interrupted by the user")
        tracker.finish_fit("KILLED", "interrupted by the user")
        raise
    except BaseException as e:
        tracker.close_children(("trial", "verdict", "baseline"), "FAILED", f"the fit failed: {e}")
        tracker.finish_fit("FAILED", f"{type(e).__name__}: {e}")
        raise
    result = FitResult(
        winner=winner, config=win_cfg, metric=metric, greater_is_better=greater,
        val_score=win_mean, test_score=test_score, reason=vdict["reason"],
        parent_run_id=parent, experiment=experiment, tracking_uri=tracker.uri,
        export_path=str(out), task=ds.task, layout=ds.layout, trials=len(search.trials),
        seconds=round(time.perf_counter() - t_start, 2), verdict=vdict,
        registered_model=(logged["registered"] or {}).get("uri"),
    )
    say("done", {"result": result, "board": board})
    return result
