"""The sequence and text contestants as Keras graphs (cellpick/graphs/sequence.py): each one,
written through cellpick's own export and loaded in a fresh process, answers as its library
did on raw input, within docs/graphs-sequence.md's tolerances: regression within 1e-4 of the
target's scale; class labels identical except near-ties (library margin below 1e-5, counted);
MiniRocket's features within one step's share."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
NEAR_TIE = 1e-5
RTOL = 1e-4

# Run in a fresh process, with only TensorFlow and Keras (and cellpick's registered layers for
# model.keras): every export's serving_default on its saved inputs, and model.keras loaded with
# safe_mode=True, before and after the layers are registered.
CHECK = r"""
import json, sys, numpy as np, tensorflow as tf, keras
root = sys.argv[1]
cases = json.load(open(f"{root}/cases.json"))
unregistered = None
try:
    keras.saving.load_model(f"{root}/{cases[0]['name']}/export/model.keras", safe_mode=True)
    unregistered = "loaded"
except Exception as e:
    unregistered = type(e).__name__
from cellpick.models.graphs.sequence import custom_objects
custom_objects()
report = {"unregistered": unregistered}
for case in cases:
    d = f"{root}/{case['name']}"
    x = (np.asarray(json.load(open(f"{d}/x.json")), dtype=object) if case["text"]
         else np.load(f"{d}/x.npy"))
    fn = tf.saved_model.load(f"{d}/export/saved_model").signatures["serving_default"]
    out = fn(**{case["input"]: tf.constant(x.tolist() if case["text"] else x)})
    np.save(f"{d}/served.npy", out[case["output"]].numpy())
    m = keras.saving.load_model(f"{d}/export/model.keras", safe_mode=True)
    np.save(f"{d}/keras.npy", np.asarray(m(tf.constant(x.tolist() if case["text"] else x))))
print(json.dumps(report))
"""


def _plan(path: Path, **given):
    from cellpick.config import resolve
    from cellpick.stages.plan import make_plan

    return make_plan(resolve({"data": str(path), **given}))


def _wide_csv(path: Path, task: str, n: int = 60, steps: int = 40, seed: int = 0) -> Path:
    """Three shapes (sine, ramp, cosine) with noise; regress: the target is the shape's
    amplitude."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, steps)
    rows = []
    for i in range(n):
        label = i % 3
        amp = rng.uniform(0.5, 2.0)
        shape = [np.sin(4 * np.pi * t), 2 * t - 1, np.cos(2 * np.pi * t)][label]
        rows.append([label if task == "classify" else 10 * amp,
                     *(amp * shape + rng.normal(0, 0.3, steps))])
    pd.DataFrame(rows, columns=["y", *[f"t{k}" for k in range(steps)]]).to_csv(path, index=False)
    return path


def _long_csv(path: Path, n: int = 48, channels: int = 3, lengths=(30, 30), seed: int = 1) -> Path:
    """Long layout: `channels` features per step; class 1 has a bump in channel 1. Lengths
    drawn from `lengths` (equal bounds: a fixed length)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = i % 2
        steps = int(rng.integers(lengths[0], lengths[1] + 1))
        t = np.linspace(0, 1, steps)
        for s in range(steps):
            v = rng.normal(0, 0.4, channels) + np.sin(2 * np.pi * t[s] * (1 + np.arange(channels)))
            if label:
                v[1] += 2.0 * np.exp(-((t[s] - 0.5) ** 2) / 0.01)
            rows.append([i, s, *v, label])
    cols = ["sample", "step", *[f"c{k}" for k in range(channels)], "label"]
    pd.DataFrame(rows, columns=cols).to_csv(path, index=False)
    return path


WORDS = {0: "cheap awful broken refund slow NOISY défaut kaputt",
         1: "great lovely superb fast perfect naïve-ly ÉCOLE Straße"}


def _text_csv(path: Path, task: str, n: int = 64, seed: int = 2) -> Path:
    """Short reviews with punctuation, case, accents, digits, underscores, one-letter words
    and repeats (sublinear tf); regress: the share of positive words, scaled."""
    rng = np.random.default_rng(seed)
    texts, ys = [], []
    filler = ["the", "item", "a", "I", "x_1", "2024", "it's", "is", "and", "!!", "--", "β-test"]
    for i in range(n):
        pos = rng.integers(0, 5)
        words = (list(rng.choice(WORDS[1].split(), pos)) + list(rng.choice(WORDS[0].split(), 4 - pos))
                 + list(rng.choice(filler, 3)))
        rng.shuffle(words)
        if i % 7 == 0:
            words += words[:2]  # a repeated word: tf 2
        texts.append(" ".join(words) + ("." if i % 2 else "?!"))
        ys.append(int(pos >= 2) if task == "classify" else float(pos) * 2.5 + 1.0)
    texts[3] = "a b ? zz_unknown_zz"  # no term of the vocabulary (unless it is in training)
    pd.DataFrame({"text": texts, "y": ys}).to_csv(path, index=False)
    return path


def _cases(tmp: Path) -> list[dict]:
    """(case name, plan, contestant, split checked) for every layout, task and contestant."""
    data = ROOT / "recipes" / "data"
    plans = {
        "wide": _plan(_wide_csv(tmp / "wide.csv", "classify"), target="y", test_size=0.25),
        "wide_regress": _plan(_wide_csv(tmp / "wider.csv", "regress"), target="y",
                              task="regress", test_size=0.25),
        "multi": _plan(_long_csv(tmp / "multi.csv"), target="label", id="sample", time="step",
                       test_size=0.25),
        "varlen": _plan(_long_csv(tmp / "varlen.csv", channels=2, lengths=(12, 30)),
                        target="label", id="sample", time="step", test_size=0.25),
        "text": _plan(_text_csv(tmp / "text.csv", "classify"), target="y", text="text",
                      test_size=0.25),
        "text_regress": _plan(_text_csv(tmp / "textr.csv", "regress"), target="y", text="text",
                              task="regress", test_size=0.25),
        "vowels": _plan(data / "JapaneseVowels_train.csv", target="label", id="sample_id",
                        time="step", test_size=0.25),
    }
    which = {"wide": ["minirocket", "1nn", "majority"], "wide_regress": ["minirocket", "mean"],
             "multi": ["minirocket", "1nn"], "varlen": ["minirocket", "1nn"],
             "text": ["tfidf_logreg", "majority"], "text_regress": ["tfidf_ridge", "mean"],
             "vowels": ["minirocket", "1nn"]}
    return [{"case": f"{key}-{name}", "plan": plans[key], "name": name}
            for key in plans for name in which[key]]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Fit every case's contestant, export it with write_export, and run all the exports in
    one fresh process: {case: (case dict, what the fresh process answered)}."""
    from cellpick.models.contestants import fit_one
    from cellpick.models.graphs.sequence import graph_inputs, keras_model
    from cellpick.output.export import write_export

    tmp = tmp_path_factory.mktemp("graphs")
    cases, listed = _cases(tmp), []
    for c in cases:
        plan, name = c["plan"], c["name"]
        prep = plan.prep
        split = "test" if prep.sizes.get("test") else "val"
        baseline = fit_one(name, prep, season=None)
        model = keras_model(prep, baseline)
        d = tmp / c["case"]
        meta = {"task": prep.task, "classes": plan.dataset.classes,
                "model": {"kind": "baseline", "name": name}}
        write_export(d / "export", model, prep, meta)
        x = graph_inputs(prep, split)
        if prep.input_dtype == "string":
            (d / "x.json").write_text(json.dumps(x.tolist()), encoding="utf-8")
        else:
            np.save(d / "x.npy", x)
        c.update(prep=prep, baseline=baseline, model=model, split=split, x=x, dir=d,
                 want=baseline.predict(split))
        listed.append({"name": c["case"], "input": prep.input_name,
                       "text": prep.input_dtype == "string",
                       "output": "probabilities" if prep.task == "classify" else "prediction"})
    (tmp / "cases.json").write_text(json.dumps(listed))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                      os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", CHECK, str(tmp)], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    for c in cases:
        c["served"] = np.load(c["dir"] / "served.npy")
        c["keras"] = np.load(c["dir"] / "keras.npy")
    return {c["case"]: c for c in cases}, report


CASES = ["wide-minirocket", "wide-1nn", "wide-majority", "wide_regress-minirocket",
         "wide_regress-mean", "multi-minirocket", "multi-1nn", "varlen-minirocket", "varlen-1nn",
         "text-tfidf_logreg", "text-majority", "text_regress-tfidf_ridge", "text_regress-mean",
         "vowels-minirocket", "vowels-1nn"]


@pytest.mark.parametrize("case", CASES)
def test_the_saved_model_answers_as_the_library_in_a_fresh_process(checked, case):
    from cellpick.models.graphs.sequence import compare

    c = checked[0][case]
    prep, got, want = c["prep"], c["served"], c["want"]
    np.testing.assert_allclose(c["keras"], got, rtol=1e-6, atol=1e-6)  # model.keras: the same
    assert got.shape == ((len(want), 1) if prep.task == "regress" else want.shape)
    result = compare(prep, c["baseline"], got, c["split"])
    assert result["reason"] == "" and result["checked"] == len(want), (case, result)
    assert result["near_ties"] <= 0.05 * len(want), (case, result)
    if prep.task == "regress":
        assert np.max(np.abs(got[:, 0] - want)) <= RTOL * prep.y_std
    elif c["name"] != "tfidf_logreg" and not result["near_ties"]:
        assert np.array_equal(got, want)  # one-hot rows (ridge classifier, 1-NN, majority)


def test_compare_counts_near_ties_and_refuses_a_real_difference(checked):
    from cellpick.models.graphs.sequence import compare, margins

    c = checked[0]["vowels-1nn"]
    want = c["want"]
    m = margins(c["prep"], c["baseline"], c["split"])
    assert m.shape == (len(want),) and (m >= 0).all()
    flipped = want.copy()
    k = int(np.argmin(m))
    flipped[k] = np.roll(flipped[k], 1)  # another label on the row with the smallest margin
    result = compare(c["prep"], c["baseline"], flipped, c["split"])
    if m[k] < NEAR_TIE:
        assert result["near_ties"] == 1 and result["reason"] == ""
    else:
        assert result["reason"] == (f"1 of {len(want)} labels differ at a decision margin of "
                                    "at least 1e-05")
    c = checked[0]["wide_regress-minirocket"]
    shifted = c["want"][:, None] + 2e-4 * c["prep"].y_std
    assert compare(c["prep"], c["baseline"], shifted, c["split"])["reason"].startswith(
        "predictions differ by up to 2.00e-04 of the target's std")


def test_model_keras_loads_with_safe_mode_once_the_layers_are_registered(checked):
    # Without cellpick's registered layers Keras cannot rebuild the contestant's layers.
    assert checked[1]["unregistered"] != "loaded"


@pytest.mark.parametrize("case", ["multi-minirocket", "varlen-minirocket", "vowels-minirocket"])
def test_minirocket_features_are_within_one_step_of_aeons(checked, case):
    import keras

    c = checked[0][case]
    from cellpick.models.graphs.sequence import training_length

    rocket = c["baseline"].model["rocket"]
    steps = max(9, training_length(c["prep"]))
    features = keras.Model(c["model"].input, c["model"].get_layer("minirocket_features").output)
    got = np.asarray(features(c["x"]))
    x = c["x"].transpose(0, 2, 1)
    want = rocket.transform(np.ascontiguousarray(np.pad(x, ((0, 0), (0, 0), (0, steps - x.shape[2])))))
    widest = steps - 8 * int(np.max(rocket.parameters[2]))  # the shortest region a share is over
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1.0 / widest + 1e-7


def test_variable_length_input_is_padded_to_the_training_length(checked):
    """The long layout: a batch padded less (or more) than the training data answers the same."""
    import tensorflow as tf

    from cellpick.data.prepared import padded_lengths

    for case in ("varlen-minirocket", "varlen-1nn"):
        c = checked[0][case]
        x = c["x"]
        short = x[:, : int(padded_lengths(x).max())]
        longer = np.pad(x, ((0, 0), (0, 7), (0, 0)))
        base = np.asarray(c["model"](tf.constant(x)))
        for other in (short, longer):
            np.testing.assert_array_equal(np.asarray(c["model"](tf.constant(other))), base)


def test_one_nn_above_its_size_is_not_exportable_and_says_why(checked, monkeypatch):
    from cellpick.models.graphs import NotExportable, sequence

    c = checked[0]["wide-1nn"]
    monkeypatch.setattr(sequence, "NN_EXPORT_VALUES", 100)
    n = c["baseline"].fit_rows
    with pytest.raises(NotExportable, match=f"{n} samples x 40 values exceed the export's "
                                            "limit of 100 values"):
        sequence.keras_model(c["prep"], c["baseline"])


def test_minirocket_in_row_chunks_answers_as_in_one(checked, monkeypatch):
    from cellpick.models.graphs import sequence

    c = checked[0]["vowels-minirocket"]
    whole = np.asarray(c["model"](c["x"]))
    steps = sequence.training_length(c["prep"])
    monkeypatch.setattr(sequence, "MINIROCKET_CHUNK_BYTES", 84 * 4 * steps * 5)  # 5 rows a chunk
    chunked = np.asarray(sequence.keras_model(c["prep"], c["baseline"])(c["x"]))
    assert len(c["x"]) % 5 and np.array_equal(chunked, whole)


def test_minirocket_on_fewer_than_nine_steps_pads_as_the_baseline(tmp_path):
    from cellpick.models.contestants import fit_one
    from cellpick.models.graphs.sequence import graph_inputs, keras_model

    prep = _plan(_wide_csv(tmp_path / "short.csv", "classify", n=36, steps=6), target="y",
                 test_size=0.25).prep
    rocket = fit_one("minirocket", prep, season=None)
    model = keras_model(prep, rocket)
    assert tuple(model.input.shape[1:]) == (6, 1)
    got = np.asarray(model(graph_inputs(prep, "test")))
    assert np.array_equal(got, rocket.predict("test"))


TRICKY = ["GREAT!!!great\tgreat\nlovely_superb", "", "   ", "?!.,;", "a b c d", "3.14 3,14 x²y",
          "naïve nai\u0308ve ÉCOLE école Straße STRASSE", "don't can't it's", "東京 タワー 東京タワー",
          "emoji 🙂🙂 great🙂great", "İstanbul ΣΑΣ σας", "tab\tsep\u00a0nbsp\u2003em",
          "great great great great lovely", "under_score __ _x x_ 1_2"]


@pytest.mark.parametrize("task", ["classify", "regress"])
def test_tfidf_tokens_vocabulary_and_head_match_scikit_learn_on_odd_text(task):
    """sklearn's lowercase, token pattern (runs of 2+ word characters), bigrams across
    punctuation, sublinear tf, idf and l2 norm on Unicode, empty and term-less strings."""
    from types import SimpleNamespace

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline

    from cellpick.models.graphs.sequence import keras_model

    rng = np.random.default_rng(0)
    train = TRICKY * 3
    classify = task == "classify"
    y = rng.integers(0, 3, len(train)) if classify else rng.normal(0, 5, len(train))
    head = LogisticRegression(C=10, max_iter=1000) if classify else Ridge(alpha=0.1)
    pipe = make_pipeline(TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1,
                                         max_features=100_000), head).fit(train, y)
    prep = SimpleNamespace(task=task, n_outputs=4 if classify else 1, input_shape=(),
                           input_name="text", input_dtype="string")
    name = "tfidf_logreg" if classify else "tfidf_ridge"
    model = keras_model(prep, SimpleNamespace(name=name, model=pipe))
    texts = TRICKY + ["GREAT lovely", "nothing known here", "x² 東京"]
    got = np.asarray(model(np.asarray(texts, dtype=object)))
    if classify:
        want = np.zeros((len(texts), 4))
        want[:, pipe[-1].classes_] = pipe.predict_proba(texts)
        assert np.max(np.abs(got - want)) <= RTOL and got[:, 3].max() == 0  # class 3: unseen
    else:
        assert np.max(np.abs(got[:, 0] - pipe.predict(texts))) <= RTOL * np.std(y)


@pytest.mark.parametrize("task", ["classify", "regress"])
def test_minirocket_sgd_head_exports_as_scikit_learn_predicts(tmp_path, monkeypatch, task):
    """At size MiniRocket's head is SGD (here from 10 samples): the graph carries its weights
    (a regressor's target scaling folded in) and answers as scikit-learn does."""
    from cellpick.models import contestants
    from cellpick.models.graphs.sequence import compare, graph_inputs, keras_model

    monkeypatch.setattr(contestants, "MINIROCKET_SGD_FROM", 10)
    plan = _plan(_wide_csv(tmp_path / f"{task}.csv", task, n=60, steps=20), target="y",
                 task=task, test_size=0.25)
    prep = plan.prep
    rocket = contestants.fit_one("minirocket", prep, season=None)
    assert rocket.params["head"] == "sgd" and rocket.params["epochs"] >= 1
    got = np.asarray(keras_model(prep, rocket)(graph_inputs(prep, "test")))
    want = rocket.predict("test")
    result = compare(prep, rocket, got, "test")
    assert result["reason"] == "" and result["near_ties"] == 0, result
    if task == "classify":
        assert np.array_equal(got, want)
    else:
        assert np.max(np.abs(got[:, 0] - want)) <= RTOL * prep.y_std
