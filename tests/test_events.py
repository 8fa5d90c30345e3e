"""Progress events (cellpick/events.py): the CLI has a handler for every event, every
emitter in cellpick sends an `Event`, and a trial's number travels in its event."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cellpick.cli import _Progress
from cellpick.events import Event

PACKAGE = Path(__file__).resolve().parents[1] / "cellpick"
TRIAL = {"name": "t07-gru-u8-l1", "score": 1.0, "cell": "gru", "units": 8, "layers": 1,
         "train_seconds": 1.0, "error": None}


def test_the_cli_has_a_handler_for_every_event_and_refuses_an_unknown_one():
    show = _Progress(False, None, echo=lambda line: None)
    assert set(show.handlers) == set(Event)
    with pytest.raises(ValueError, match="trial_ended"):
        show("trial_ended", {})


def _progress_calls():
    """(where, first argument) of every call to a progress callback in cellpick: `say(...)`,
    `progress(...)`, `state.progress(...)` and the CLI's `show(...)`."""
    for path in sorted(PACKAGE.rglob("*.py")):
        names = ("say", "progress", "show") if path.name == "cli.py" else ("say", "progress")
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            f = node.func
            if ((isinstance(f, ast.Name) and f.id in names)
                    or (isinstance(f, ast.Attribute) and f.attr == "progress")):
                yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno}", node.args[0]


def test_every_emitter_sends_an_event_member():
    calls = list(_progress_calls())
    assert len(calls) >= 20, calls  # the scan finds the emitters
    wrong = [where for where, arg in calls
             if not (isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name)
                     and arg.value.id == "Event" and arg.attr in Event.__members__)]
    assert not wrong, f"send an events.Event (one the CLI handles) at {wrong}"


def test_a_trial_line_takes_its_number_from_the_event():
    lines = []
    show = _Progress(False, 12, echo=lines.append)
    show(Event.TRIAL_END, {**TRIAL, "n": 11})
    assert lines[0].startswith("[trial 11/12] gru  units 8    layers 1  score 1 (best 1)")


def test_quiet_shows_warnings_only():
    lines = []
    show = _Progress(True, 12, echo=lines.append)
    for event in (Event.NOTE, Event.TRIAL_BEGIN, Event.DONE):
        show(event, {"message": "a note"})
    show(Event.TRIAL_END, {**TRIAL, "n": 1})
    show(Event.WARNING, {"message": "ONNX skipped"})
    assert lines == ["warning: ONNX skipped"]


def test_a_search_numbers_its_trials_in_their_events(tmp_path, data_dir):
    from conftest import DATA_LEVEL, store_uri

    from cellpick.config import FitConfig
    from cellpick.engine.search import run_search
    from cellpick.engine.train import Schedule
    from cellpick.stages.plan import make_plan
    from cellpick.tracking import Tracker

    config = FitConfig(data=str(data_dir / "airline_train.csv"), horizon=12, lookback=24,
                       cells=["rnn"], units=[8], layers=[1], max_trials=2, epochs=1, seeds=1,
                       **DATA_LEVEL).validate()
    tracker = Tracker(store_uri(tmp_path), "events")
    tracker.start_fit("events", {"metric": "mae"}, {})
    events = []
    run_search(make_plan(config).prep, cells=["rnn"], units=[8], layers=[1], tuner="random",
               max_trials=2, schedule=Schedule(1, 1, 1), seed=1, workdir=tmp_path / "tuner",
               tracker=tracker, progress=lambda event, info: events.append((event, info)))
    tracker.finish_fit()
    assert all(type(event) is Event for event, _ in events)
    ends = [info for event, info in events if event == Event.TRIAL_END]
    assert [info["n"] for info in ends] == [1, 2]
    assert [info["name"][:4] for info in ends] == ["t01-", "t02-"]
