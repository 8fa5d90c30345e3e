"""Recipes: every shipped recipe loads, dry-runs and runs (on a tiny budget); broken ones exit 2.

The tiny-budget runs override the recipe from the command line, so they also check the
precedence: defaults < recipe < command line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import store_uri
from typer.testing import CliRunner

from cellpick.cli import app
from cellpick.config import load_recipe, option_names, resolve

runner = CliRunner()
RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SHIPPED = sorted(RECIPES.glob("*.toml"))
TINY = ["--max-trials", "1", "--epochs", "1", "--folds", "2", "--seeds", "1", "--units", "8",
        "--layers", "1"]

# What each recipe must resolve to: layout, task and the first words of the dry run.
EXPECTED = {
    "airline": ("series", "forecast", "lookback 24, horizon 12, season 12"),
    "gunpoint": ("wide", "classify", "input (150, 1), read as patches of 6 steps"),
    "japanese_vowels": ("long", "classify", "padded and masked"),
    "adding_problem": ("long", "regress", "3000 samples of 60 steps"),
}


def test_the_four_recipes_ship():
    assert {p.stem for p in SHIPPED} == set(EXPECTED)


@pytest.mark.parametrize("recipe", SHIPPED, ids=lambda p: p.stem)
def test_recipe_is_flat_commented_and_loads(recipe):
    values = load_recipe(recipe)
    assert set(values) <= set(option_names())
    assert Path(values["data"]).is_file(), "a recipe's data lives in recipes/data"
    for n, line in enumerate(recipe.read_text().splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, f"{recipe.name} line {n} says what it sets but not why: {line!r}"
    text = recipe.read_text()
    assert re.search(r"Expect: .*measured \d{4}-\d\d-\d\d", text, re.S), "no measured result in the comments"


@pytest.mark.parametrize("recipe", SHIPPED, ids=lambda p: p.stem)
def test_dry_run_prints_the_plan_and_trains_nothing(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["fit", "--recipe", str(recipe), "--dry-run"])
    assert result.exit_code == 0, result.output + result.stderr
    layout, task, detail = EXPECTED[recipe.stem]
    out = result.stdout
    assert f"layout: {layout}" in out and f"task: {task}" in out and detail in out
    for line in ("features:", "split: train", "search: lstm,gru,rnn", "also searched: dropout",
                 "batch size:", f"experiment '{recipe.stem}'", "export: "):
        assert line in out, f"{line!r} missing from the dry run:\n{out}"
    assert list(tmp_path.iterdir()) == [], "a dry run wrote files"


def test_recipe_settings_apply_to_other_data(tmp_path, monkeypatch, data_dir):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["fit", str(data_dir / "GunPoint_long_train.csv"),
                                 "--recipe", str(RECIPES / "japanese_vowels.toml"), "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert "data: " in result.stdout and "GunPoint_long_train.csv" in result.stdout
    assert "2 classes" in result.stdout and "experiment 'japanese_vowels'" in result.stdout
    assert "vowels-model" in result.stdout  # the recipe's out, resolved in the working folder


def test_command_line_and_api_options_override_the_recipe():
    config = resolve({"epochs": 1, "units": "8", "data": None}, RECIPES / "airline.toml")
    assert (config.epochs, config.units, config.max_trials, config.horizon) == (1, [8], 4, 12)
    assert config.data.endswith("recipes/data/airline_train.csv")


# One cell per recipe keeps the four fits at about a minute in all; every cell runs somewhere.
TINY_CELL = {"airline": "gru", "gunpoint": "rnn", "japanese_vowels": "lstm", "adding_problem": "rnn"}
# The data-level values the recipes' stage chooses (their comments), given: on a 1-epoch
# budget the stage's choice means nothing, and tests/test_datalevel.py covers the stage.
TINY_DATA_LEVEL = {"airline": ["--scaling", "relative", "--no-log", "--linear", "--lookback", "24"],
                   "gunpoint": ["--patch", "6"]}


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Every recipe fitted once with a command-line override to the smallest budget."""
    root = tmp_path_factory.mktemp("recipes")
    runs = {}
    for recipe in SHIPPED:
        out = root / f"{recipe.stem}-model"
        result = runner.invoke(app, [
            "fit", "--recipe", str(recipe), *TINY, *TINY_DATA_LEVEL.get(recipe.stem, []),
            "--cells", TINY_CELL[recipe.stem], "--json",
            "--quiet", "--tracking-uri", store_uri(root), "--out", str(out),
        ])
        runs[recipe.stem] = (out, result)
    return runs


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_runs_on_a_tiny_budget(tiny_runs, name):
    out, result = tiny_runs[name]
    assert result.exit_code == 0, result.output + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    layout, task, _ = EXPECTED[name]
    assert (summary["layout"], summary["task"], summary["experiment"]) == (layout, task, name)
    assert summary["trials"] == 1, "--max-trials 1 --cells X did not override the recipe's budget"
    assert summary["winner"] == TINY_CELL[name]
    assert summary["config"]["units"] == 8 and summary["config"]["layers"] == 1
    assert summary["export_path"] == str(out)
    assert (out / "cellpick.json").is_file()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("# a typo\nhorizon = 12\nlookbak = 24\n",
     "line 3: unknown key 'lookbak' (did you mean 'lookback'?). Valid keys: data, target"),
    ("horizon = 12\nlookback = \"24\"\n", "line 2: key 'lookback' expects an integer, got str '24'"),
    ("epochs = 1.5\n", "line 1: key 'epochs' expects an integer, got float 1.5"),
    ("resume = \"yes\"\n", "line 1: key 'resume' expects true or false"),
    ("\ncells = [\"lstm\", \"lstn\"]\n", "line 2: key 'cells': The 'cells' option must be a subset"),
    ("test_size = 0.7\n", "line 1: key 'test_size': The 'test_size' option must be 'auto' or a fraction"),
    ("[fit]\nhorizon = 12\n", "line 1: unknown key 'fit'"),
    ("# data next to the recipe\ndata = \"nowhere.csv\"\n",
     "line 2: key 'data': file '{dir}/nowhere.csv' not found"),
    ("horizon = 12\nhorizon = 13\n", "is not valid TOML"),
])
def test_broken_recipe_exits_2_naming_file_line_and_key(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    recipe = _write(tmp_path, text)
    result = runner.invoke(app, ["fit", "--recipe", str(recipe), "--dry-run"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert f"recipe '{recipe}'" in errors[0]
    assert message.format(dir=tmp_path) in errors[0], errors[0]


def test_missing_recipe_data_is_fine_when_data_is_given(tmp_path, monkeypatch, data_dir):
    monkeypatch.chdir(tmp_path)
    recipe = _write(tmp_path, 'data = "nowhere.csv"  # replaced on the command line\nhorizon = 12\n')
    result = runner.invoke(app, ["fit", str(data_dir / "airline_train.csv"), "--recipe", str(recipe),
                                 "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert "horizon 12" in result.stdout


def test_missing_recipe_file_exits_2(tmp_path):
    result = runner.invoke(app, ["fit", "--recipe", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "recipe" in result.stderr and "not found" in result.stderr
