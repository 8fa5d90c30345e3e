"""CLI wiring: exit codes, one-line errors, --json, predict to stdout, report, instant --help."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA_LEVEL_ARGS
from typer.testing import CliRunner

from cellpick.cli import app

runner = CliRunner()
TINY = ["--units", "8", "--layers", "1", "--max-trials", "1", "--epochs", "1", "--folds", "2",
        "--seeds", "1"]


def test_help_does_not_import_tensorflow():
    code = "import sys, cellpick.cli; assert 'tensorflow' not in sys.modules and 'mlflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    proc = subprocess.run([sys.executable, "-m", "cellpick", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "fit" in proc.stdout and "predict" in proc.stdout


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _series(n: int) -> str:
    """A monthly series of n points starting 2000-01."""
    rows = (f"{2000 + i // 12}-{1 + i % 12:02d}-01,{10 + (i * 37) % 11}\n" for i in range(n))
    return "date,value\n" + "".join(rows)


@pytest.mark.parametrize("make_args, message", [
    (lambda t: [str(t / "nope.csv")], "not found"),
    (lambda t: [str(_write(t, "s.csv", _series(40))), "--target", "sales"], "'sales'"),
    (lambda t: [str(_write(t, "s.csv", _series(30))), "--lookback", "24", "--horizon", "12"], "too few"),
    (lambda t: [str(_write(t, "s.csv", _series(60))), "--cells", "lstn"], "'cells' option must be a subset"),
    (lambda t: [str(_write(t, "s.csv", _series(60))), "--tuner", "genetic"], "'tuner' option must be one of"),
    (lambda t: [str(_write(t, "w.csv", "label,t0,t1,t2\na,1,2,x\nb,2,3,4\na,1,1,1\nb,3,3,3\n")),
                "--target", "label"], "t2"),
    (lambda t: [str(_write(t, "s.csv", _series(60))), "--time-budget", "soon"], "duration"),
])
def test_bad_input_exits_2_with_one_line_and_no_export(tmp_path, monkeypatch, make_args, message):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["fit", *make_args(tmp_path), "--out", str(tmp_path / "model"), *TINY])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not (tmp_path / "model").exists()


def test_recipe_unknown_key_names_file_line_and_valid_keys(tmp_path):
    recipe = _write(tmp_path, "r.toml", "# demo\nhorizon = 12\nlookbak = 24\n")
    result = runner.invoke(app, ["fit", "--recipe", str(recipe)])
    assert result.exit_code == 2
    assert "line 3: unknown key 'lookbak'" in result.stderr and "lookback" in result.stderr


def test_fit_json_then_predict_and_report(tmp_path, monkeypatch, data_dir):
    monkeypatch.chdir(tmp_path)  # the embedded default store lands in ./mlruns
    result = runner.invoke(app, ["fit", str(data_dir / "airline_train.csv"), "--horizon", "12",
                                 "--lookback", "24", "--cells", "gru", *TINY, *DATA_LEVEL_ARGS,
                                 "--json"])
    assert result.exit_code == 0, result.output + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["winner"] == "gru" and summary["tracking_uri"] == "sqlite:///mlruns/mlflow.db"
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    assert Path(summary["export_path"]) == tmp_path / "cellpick-model"
    assert "[trial  1/1] gru" in result.stderr

    pred = runner.invoke(app, ["predict", "cellpick-model", str(data_dir / "airline_train.csv")])
    assert pred.exit_code == 0, pred.stderr
    assert pred.stdout.splitlines()[0] == "step,date,prediction" and len(pred.stdout.splitlines()) == 13

    rep = runner.invoke(app, ["report"])
    assert rep.exit_code == 0, rep.stderr
    assert summary["parent_run_id"] in rep.stdout
    assert " ".join(summary["reason"].split()) in " ".join(rep.stdout.split())


def test_predict_refuses_a_tampered_export(tmp_path, data_dir):
    bogus = tmp_path / "m"
    bogus.mkdir()
    result = runner.invoke(app, ["predict", str(bogus), str(data_dir / "airline_train.csv")])
    assert result.exit_code == 2 and "cellpick.json is missing" in result.stderr


def test_a_search_whose_every_trial_failed_ends_with_one_line_and_exit_code_1(capsys):
    import typer

    from cellpick.cli import _guard
    from cellpick.engine.search import SearchFailed
    from cellpick.errors import CellpickError

    def work():
        raise SearchFailed("every gru trial failed; first error: ResourceExhaustedError: OOM")

    assert not issubclass(SearchFailed, CellpickError)  # not the user's doing: not exit 2
    with pytest.raises(typer.Exit) as stop:
        _guard(work)
    assert stop.value.exit_code == 1
    assert capsys.readouterr().err == (
        "error: every gru trial failed; first error: ResourceExhaustedError: OOM\n")


def test_fit_options_are_the_fitconfig_fields():
    """`cellpick fit` builds its options from FitConfig: one per field, with the field's help."""
    import dataclasses

    import typer.main

    from cellpick.config import FitConfig

    params = {p.name: p for p in typer.main.get_command(app).commands["fit"].params}
    fields = {f.name: f for f in dataclasses.fields(FitConfig)}
    assert set(params) == set(fields) | {"recipe", "dry_run", "debug"}
    for name, f in fields.items():
        assert getattr(params[name], "help", f.metadata["help"]) == f.metadata["help"], name
    assert params["refit"].opts == ["--refit"] and params["refit"].secondary_opts == ["--no-refit"]
    assert params["max_trials"].opts == ["--max-trials"]


def test_an_out_folder_that_cannot_be_created_exits_2_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _write(tmp_path, "s.csv", _series(60))
    result = runner.invoke(app, ["fit", str(data), "--out", str(data / "model"), *TINY])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"error: The 'out' option names '{data / 'model'}', but "
                                     f"'{data}' is not a writable folder; choose another --out.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv"]  # no MLflow store, no export


def test_trial_lines_say_how_much_of_the_search_is_left():
    from cellpick.cli import _Progress

    lines = []
    show = _Progress(False, 4, echo=lines.append)
    show.t0 -= 60  # one minute in
    for n in (1, 4):
        show("trial_end", {"n": n, "name": f"t0{n}-gru-u8-l1", "score": 1.0, "cell": "gru", "units": 8,
                           "layers": 1, "train_seconds": 1.0, "error": None})
    assert lines[0].startswith("[trial  1/4] gru") and lines[0].endswith("search left ~03:00")
    assert "left" not in lines[1]  # the last trial
