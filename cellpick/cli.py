"""The `cellpick` command: thin Typer commands over the library; the only module that prints.

Exit codes: 0 done; 2 the user's input or options are wrong (one line on stderr, no
traceback); 1 anything else (traceback only with --debug).
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from cellpick.config import FitConfig
from cellpick.events import Event

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Which recurrent cell, and how wide, for my data? "
                       "Search LSTM/GRU/SimpleRNN honestly, track in MLflow, export the winner.")


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _guard(fn, debug: bool = False):
    """Run fn; map user errors to exit 2 and anything else to exit 1."""
    from cellpick.errors import CellpickError, FitFailed

    try:
        return fn()
    except CellpickError as e:
        _err(f"error: {e}")
        raise typer.Exit(2)
    except KeyboardInterrupt:
        again = " ".join(["cellpick", *sys.argv[1:]] + ([] if "--resume" in sys.argv else ["--resume"]))
        _err(f"interrupted: no export was written; the MLflow runs are marked KILLED. "
             f"Continue with: {again}")
        raise typer.Exit(130)
    except typer.Exit:
        raise
    except Exception as e:  # noqa: BLE001 - the last line of defence
        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(e, FitFailed):  # not the user's doing, and its message names the cause
            _err(f"error: {e}")
        else:
            _err(f"error: {type(e).__name__}: {e}" + ("" if debug else " (rerun with --debug for the traceback)"))
        raise typer.Exit(1)


class _Progress:
    """Prints a fit's progress to stderr: one line per trial, seed and stage. Every Event
    has its handler in `handlers` (an unknown event raises); warnings show with --quiet too."""

    def __init__(self, quiet: bool, total: int | None, echo=_err):
        self.quiet, self.total, self.t0, self.echo = quiet, total, time.perf_counter(), echo
        self.best = None
        self.metric = "score"
        self.greater = False
        self.handlers = {
            Event.DATASET: self._on_dataset, Event.PLAN: self._on_plan,
            Event.TRACKING: self._on_tracking, Event.STAGE: self._on_stage,
            Event.DATA: self._on_data, Event.DATA_CANDIDATE: self._on_data_candidate,
            Event.TRIAL_BEGIN: self._not_shown, Event.TRIAL_END: self._on_trial_end,
            Event.CELL_END: self._on_cell_end, Event.CONTESTANT: self._on_contestant,
            Event.NOTE: self._on_note, Event.DISTRIBUTED: self._on_distributed,
            Event.WARNING: self._on_warning,
            Event.DONE: self._not_shown,  # the summary is printed once the fit returns
        }

    def __call__(self, event: Event, info: dict) -> None:
        handler = self.handlers[Event(event)]
        if not self.quiet or event == Event.WARNING:  # the user asked for something not done
            handler(info)

    def _not_shown(self, info: dict) -> None:
        pass

    def _on_warning(self, info: dict) -> None:
        self.echo(f"warning: {info['message']}")

    def _elapsed(self) -> str:
        return time.strftime("%M:%S", time.gmtime(time.perf_counter() - self.t0))

    def _on_dataset(self, info: dict) -> None:
        self.echo(info["description"])
        for note in info["notes"]:
            self.echo(f"note: {note}")

    def _on_plan(self, info: dict) -> None:
        self.metric, self.greater = info["metric"], info["task"] == "classify"
        sizes = " / ".join(f"{k} {v}" for k, v in info["sizes"].items())
        how = info.get("season_how")
        how = "--season" if how in (None, "--season") else f"{how}; --season"
        season = (f", season {info['season']} ({how})" if info["season"]
                  else f", no season ({how})" if info.get("season_how") else "")
        window = (f", lookback {info['lookback']}, horizon {info['horizon']}{season}"
                  if info["lookback"] else "")
        patches = (f", read as patches of {info['patch']} steps (--patch)"
                   if info.get("patch", 1) > 1 else "")
        self.echo(f"split: {sizes} {'windows' if info['lookback'] else 'samples'}; "
                  f"input {_shape(info['input'])}{window}{patches}")
        cand = info.get("candidates") or {}
        listed = {"grid": f" (the whole grid of {cand.get('grid')}, the same for every cell)",
                  "quasi-random": f" (the same {cand.get('per_cell')} of a grid of "
                                  f"{cand.get('grid')} for every cell: the defaults"
                                  + (", then quasi-random)" if cand.get("per_cell", 1) > 1
                                     else ")")}.get(cand.get("kind"), "")
        self.echo(f"search: {','.join(info['cells'])} x units {info['units']} x layers {info['layers']}; "
                  f"{info['tuner']} tuner, {info['max_trials']} trials per cell{listed}, up to "
                  f"{info['epochs']} epochs (patience {info['patience']}); metric {info['metric']} "
                  f"on validation")
        test = (f"a test block of {info['test_size']:.0%} held out" if info["test_size"]
                else "no test block (too little data for one to be informative; --test-size)")
        self.echo(f"verdict: {info['resampling']}, {info['folds']} folds x {info['seeds']} seeds "
                  f"(--folds, --seeds); {test}")
        for note in info["notes"]:
            self.echo(f"note: {note}")
        if info.get("data_level") is not None:
            self.echo(_data_plan(info["data_level"]))
        if info.get("dry_run"):
            self.echo("also searched: " + "; ".join(f"{k} {v}" for k, v in info["space"].items()))
            self.echo(f"batch size: {info['batch_size']}; time budget: "
                      f"{info['time_budget'] or 'none'}")
            self.echo(f"mlflow: {info['tracking_uri']} experiment '{info['experiment']}'")
            self.echo(f"export: {info['out']}")
        if info.get("budget"):  # --time-budget: its division (pipeline.budget_for)
            self.echo(info["budget"])

    def _on_data(self, info: dict) -> None:
        how = " (as chosen before this resume)" if info.get("reused") else ""
        self.echo(f"[data] {info['line']}{how}")

    def _on_data_candidate(self, info: dict) -> None:
        shown = " ".join(f"{k}={_word(v)}" for k, v in info["values"].items())
        score = ("FAILED: " + info["error"] if info.get("error") else
                 f"{self.metric} {info['score']:.4g}" if info["score"] is not None else "no score")
        self.echo(f"[data  ] {shown}  {score} (median of {info.get('units', 3)} folds)  "
                  f"{info['seconds']:.1f}s  "
                  f"{self._elapsed()}")

    def _on_distributed(self, info: dict) -> None:
        self.echo(info["message"])

    def _on_tracking(self, info: dict) -> None:
        self.echo(f"mlflow: {info['uri']} experiment '{info['experiment']}' run {info['run_id']}")

    def _on_trial_end(self, info: dict) -> None:
        score = info["score"]
        if score is not None and (self.best is None or (score > self.best if self.greater else score < self.best)):
            self.best = score
        n = info["n"]
        total = f"/{self.total}" if self.total else ""
        shown = "FAILED: " + (info["error"] or "") if score is None else f"{self.metric} {score:.4g}"
        best = f"(best {self.best:.4g})" if self.best is not None else ""
        self.echo(f"[trial {n:>2}{total}] {info['cell']:<4} units {info['units']:<4} layers "
                  f"{info['layers']}  {shown} {best}  {info['train_seconds']:.1f}s  {self._elapsed()}"
                  + self._eta(n))

    def _eta(self, done: int) -> str:
        """'  search left ~01:40': the remaining trials at the mean pace so far (trials of
        one fit are alike in cost; the verdict and baselines come after)."""
        if not self.total or done >= self.total or done < 1:
            return ""
        left = (time.perf_counter() - self.t0) / done * (self.total - done)
        return f"  search left ~{time.strftime('%M:%S', time.gmtime(left))}"

    def _on_cell_end(self, info: dict) -> None:
        self.echo(f"[verdict] {info['cell']:<4} {info['units']} fold x seed models: {info['metric']} "
                  f"{info['mean']:.4g} (folds {info['low']:.4g} to {info['high']:.4g})  "
                  f"{info['seconds']:.1f}s  {self._elapsed()}")

    def _on_contestant(self, info: dict) -> None:
        if info["status"] == "scored":
            self.echo(f"[contest] {info['name']:<12} {info['metric']} {info['mean']:.4g}  "
                      f"{info['seconds']:.1f}s  {self._elapsed()}")
        else:
            self.echo(f"[contest] {info['name']:<12} left out ({info['status']}, "
                      f"{info['seconds']:.1f}s): {info['reason']}")

    def _on_note(self, info: dict) -> None:
        self.echo(f"note: {info['message']}")

    def _on_stage(self, info: dict) -> None:
        if info["name"] == "data":
            self.echo(f"data-level: {info['fits']} fits of {info['reference']} on "
                      f"{info['units']} of the verdict's {info['unit_word']}: "
                      + "; then ".join(info["steps"]))
        elif info["name"] == "verdict":
            at_once = f" ({info['jobs']} cells at once, --jobs)" if info.get("jobs", 1) > 1 else ""
            self.echo(f"verdict: training the best configuration of {', '.join(info['cells'])} "
                      f"on {info['folds']} folds x {info['seeds']} seeds{at_once}")
        elif info["name"] == "baselines":
            self.echo(f"contestants: {', '.join(info['contestants'])} on the same {info['folds']} "
                      f"folds, at most {info['limit']:.0f} s each (--contestant-limit)")
        elif info["name"] == "refit":
            n = info.get("models", 1)
            what = f"the winner's {n} seed models" if n > 1 else "the winner"
            self.echo(f"refit: retraining {what} on all non-test data ({info['epochs']:.3g} "
                      f"epochs: the median of its folds' best)")
        elif info["name"] == "final":
            self.echo(f"final: training the winner's {info['models']} seed models on the search "
                      f"split (early stopping on validation; --refit retrains on all non-test data)")
        elif info["name"] == "export":
            self.echo("export: scoring the winner on the test split, writing the report and the model")


def _word(v) -> str:
    return ("yes" if v else "no") if isinstance(v, bool) else str(v)


def _data_plan(planned: dict) -> str:
    """The dry run's line for the data-level stage (datalevel.planned)."""
    from cellpick.stages.datalevel import FLAGS, REFERENCE_NAME, REFERENCE_UNITS

    given = f"; given: {', '.join(FLAGS[n] for n in planned['given'])}" if planned["given"] else ""
    if not planned["names"]:
        return "data-level: nothing to choose for this layout"
    if not planned["fits"]:
        return f"data-level: nothing to train (defaults or options){given}"
    return (f"data-level: {'; then '.join(planned['steps'])} ({planned['fits']} fits of "
            f"{REFERENCE_NAME} on {REFERENCE_UNITS} of the verdict's folds){given}")


def _shape(shape) -> str:
    """(lookback, features) as is; long sequences have any number of steps; text is strings."""
    if not shape:
        return "raw text (one string per sample)"
    return "(" + ", ".join("any" if d is None else str(d) for d in shape) + ")"


_CLI_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "list[str]": str, "list[int]": str}


def _fit_parameters() -> list[inspect.Parameter]:
    """`cellpick fit`'s parameters: one per FitConfig field (its metadata holds the help and
    the flags), `--recipe` after `--test-size`, then the options of the command alone.

    Every FitConfig option defaults to None, meaning "not given": the recipe or the field's
    default applies (config.resolve)."""
    params = []
    for f in dataclasses.fields(FitConfig):
        meta = f.metadata
        kind = meta["type"] or _CLI_TYPES[f.type.split(" | ")[0]]
        if f.name == "data":
            info = typer.Argument(None, help=meta["help"])
        else:
            info = typer.Option(None, *meta["decls"], help=meta["help"])
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info,
                                        annotation=Optional[kind]))
        if f.name == "test_size":
            params.append(_param("recipe", Optional[Path], typer.Option(
                None, help="TOML recipe; command-line options override it.")))
    return params + [
        _param("dry_run", bool, typer.Option(False, "--dry-run",
                                             help="Print the resolved plan; train nothing.")),
        _param("debug", bool, typer.Option(False, "--debug",
                                           help="Show tracebacks of unexpected errors.")),
    ]


def _param(name: str, annotation, info) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info,
                             annotation=annotation)


def fit(recipe: Optional[Path] = None, dry_run: bool = False, debug: bool = False,
        **options) -> None:
    """Search cell x width on DATA, decide honestly, export the winner."""
    given = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
    shown = {"json": bool(given["json"]), "quiet": bool(given["quiet"])}

    def work():
        from cellpick.config import resolve
        from cellpick.pipeline import start

        t0 = time.time()  # a dry run's budget counts from here, as a fit's from pipeline.run
        config = resolve(given, recipe)
        shown.update(json=config.json, quiet=config.quiet)
        total = None if config.tuner == "hyperband" else config.max_trials * len(config.cells)
        if dry_run:
            from cellpick.pipeline import make_plan
            from cellpick.stages.datalevel import planned

            plan = make_plan(config)
            info, refused = {**plan.summary(), "dry_run": True, "data_level": planned(plan)}, None
            if config.time_budget:  # the division needs the calibration: a few training steps
                from cellpick._quiet import tensorflow
                from cellpick.errors import ConfigError
                from cellpick.pipeline import budget_for

                tensorflow()
                try:
                    info["budget"] = budget_for(plan, t0).line()
                except ConfigError as e:  # the plan is shown, then the refusal (exit 2)
                    refused = e
            show = _Progress(False, total, echo=typer.echo)
            show(Event.DATASET, {"description": plan.dataset.describe(), "notes": plan.dataset.notes})
            show(Event.PLAN, info)
            if refused:
                raise refused
            return None
        return start(config, _Progress(config.quiet, total))

    result = _guard(work, debug)
    if getattr(result, "worker", None):  # a distributed worker: the chief has the verdict
        units = "".join(f", {n} {stage} units" for stage, n in result.units.items())
        typer.echo(f"worker {result.worker}: {result.trials} trials of {','.join(result.cells) or 'no cell'}"
                   f"{units} under run {result.parent_run_id}; the chief finishes the fit (refit, export)")
        return
    if result is not None:
        _print_summary(result, shown["json"], shown["quiet"])


fit.__signature__ = inspect.Signature(_fit_parameters())
fit.__annotations__ = {p.name: p.annotation for p in fit.__signature__.parameters.values()}
app.command()(fit)


def _print_summary(result, json_out: bool, quiet: bool) -> None:
    from cellpick.output.leaderboard import leaderboard_text

    if not quiet:
        from cellpick.output.leaderboard import leaderboard

        board = leaderboard(result.verdict, [])
        typer.echo(leaderboard_text(board, result.verdict))
        test = "" if result.test_score is None else f"; test {result.metric} {result.test_score:.4g}"
        typer.echo(f"winner: {result.winner} {result.config}{test}")
        held = (f" (the {result.verdict['export']['baseline']} baseline: --export best)"
                if result.exported == "baseline" else "")
        typer.echo(f"export: {result.export_path}{held}")
        if result.registered_model:
            typer.echo(f"registered: {result.registered_model}")
        for line in _ui_lines(result.tracking_uri, result.parent_run_id):
            typer.echo(line)
    if json_out:
        summary = {k: v for k, v in result.to_dict().items() if k != "verdict"}
        typer.echo(json.dumps(summary, default=str))


def _ui_lines(uri: str, run_id: str) -> list[str]:
    """The fit's pages in the MLflow UI, its verdict first, then how to open the UI."""
    from cellpick.tracking import DEFAULT_URI, UI_PORT, fit_urls

    try:
        urls = fit_urls(run_id, uri)
    except Exception as e:  # noqa: BLE001 - the fit is done; a URL is a convenience
        urls = {"verdict": f"unavailable ({type(e).__name__}: {e})"}
    lines = [f"{what + ':':<9}{url}" for what, url in urls.items()]
    if uri.startswith(("http://", "https://")):  # a tracking server serves its own UI
        return lines
    store = "" if uri == DEFAULT_URI else f" --tracking-uri {uri}"
    return lines + [f"inspect: cellpick ui{store}   "
                    f"(or: mlflow ui --backend-store-uri {uri} --port {UI_PORT})"]


@app.command()
def predict(
    model_dir: Path = typer.Argument(..., help="Export directory written by `cellpick fit`."),
    data: Path = typer.Argument(..., help="CSV with new raw data."),
    out: Optional[Path] = typer.Option(None, help="Write predictions here (default: stdout)."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Apply an exported model to new raw data; writes CSV."""

    def work():
        from cellpick.errors import ConfigError
        from cellpick.output.inference import predict as run_predict

        table = run_predict(model_dir, data)
        if out:
            tmp = out.with_name(f".{out.name}.tmp")
            try:
                table.to_csv(tmp, index=False)
                tmp.replace(out)
            except OSError as e:
                tmp.unlink(missing_ok=True)
                raise ConfigError(f"The 'out' option names '{out}', which cannot be written "
                                  f"({e.strerror}); choose another --out.") from None
        else:
            table.to_csv(sys.stdout, index=False)

    _guard(work, debug)


@app.command()
def report(
    run_id: Optional[str] = typer.Argument(None, help="Parent run id (default: the latest fit)."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI."),
    debug: bool = typer.Option(False, "--debug"),
) -> None:
    """Leaderboard and verdict of a past fit, from MLflow alone."""

    def work():
        from cellpick.output.leaderboard import leaderboard_text
        from cellpick.tracking import load_fit

        info = load_fit(run_id, tracking_uri)
        typer.echo(f"fit {info['run_id']} ({info['experiment']}, {info['status']})")
        typer.echo(leaderboard_text(info["leaderboard"], info["verdict"]))

    _guard(work, debug)


@app.command()
def ui(
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI."),
    port: int = typer.Option(5000, help="Port on 127.0.0.1."),
) -> None:
    """Start the MLflow UI on 127.0.0.1 over the same store."""
    from cellpick.tracking import fit_urls, resolve_uri
    from cellpick.tracking.ui import serve

    uri = resolve_uri(tracking_uri)
    try:
        urls = fit_urls(None, uri, port)
    except Exception:  # noqa: BLE001 - an empty or missing store: the UI still starts
        urls = {}
    for what, url in urls.items():  # the verdict first: the page to open
        _err(f"latest fit's {what}: {url}")
    _err(f"MLflow UI on http://127.0.0.1:{port}  (store {uri}); Ctrl-C to stop")
    raise typer.Exit(serve(uri, port))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
