"""One fixed list of candidate configurations, shared by every cell's search.

`candidate_list` is the grid of the searched hyperparameters (units, layers, dropout,
learning rate, bidirectional) when the trial budget covers it; otherwise a scrambled Sobol
sequence (fixed scramble, LIST_SEED) mapped to grid indices and de-duplicated. The list
depends on the space and the budget only, never on results nor on --seed, so every cell,
parallel worker, resumed run and --seed tries the same configurations in the same order.
`CandidateOracle` serves the list as a keras-tuner Oracle (trial k runs candidate k), so
keras-tuner's resume, retries and distributed chief work unchanged; `CandidateSearch` is the
tuner for `--tuner random` and `--tuner grid` (bayesian and hyperband stay adaptive).
docs/engine.md, "The candidate list", says why.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

LIST_SEED = 0  # the Sobol scramble of every fit's list (not --seed: see the module notes)


def dimensions(hps) -> list[tuple[str, list]]:
    """(name, values) of every hyperparameter in a keras-tuner space, in its order; a Fixed
    one has a single value."""
    out = []
    for hp in hps.space:
        kind = type(hp).__name__
        if kind == "Fixed":
            out.append((hp.name, [hp.value]))
        elif kind == "Boolean":
            out.append((hp.name, [False, True]))
        elif kind == "Choice":
            out.append((hp.name, list(hp.values)))
        else:
            raise ValueError(f"the candidate list needs Choice, Boolean or Fixed hyperparameters; "
                             f"{hp.name!r} is {kind}")
    return out


def grid_size(dims: list[tuple[str, list]]) -> int:
    return math.prod(len(v) for _, v in dims)


def candidate_list(dims: list[tuple[str, list]], budget: int,
                   seed: int = LIST_SEED) -> list[dict[str, Any]]:
    """The first `budget` configurations every cell tries, in order: the whole grid (in grid
    order) when `budget` covers it, else the defaults (each hyperparameter's first value, a
    Boolean off: the cheapest configuration, and a one-trial search's only one) followed by
    `budget - 1` more distinct grid points of a scrambled Sobol sequence seeded with `seed`
    (LIST_SEED in every fit; each coordinate u in [0, 1) picks value floor(u * n))."""
    names = [n for n, _ in dims]
    sizes = [len(v) for _, v in dims]
    total = grid_size(dims)
    if budget >= total:
        picks = list(itertools.product(*[range(s) for s in sizes]))
    else:
        picks = _sobol_picks(sizes, budget, seed)
    return [{n: dims[j][1][i] for j, (n, i) in enumerate(zip(names, idx))} for idx in picks]


def _sobol_picks(sizes: list[int], budget: int, seed: int) -> list[tuple[int, ...]]:
    import warnings

    from scipy.stats import qmc

    free = [j for j, s in enumerate(sizes) if s > 1]
    picks: list[tuple[int, ...]] = [(0,) * len(sizes)]  # the defaults first
    seen = set(picks)
    if len(picks) == budget:
        return picks
    # 2^m points (Sobol's balance needs a power of two), 4x the budget: enough distinct grid
    # points for any budget below the grid size; the grid order fills up if ever not.
    m = max(1, math.ceil(math.log2(4 * budget)))
    sampler = qmc.Sobol(d=max(1, len(free)), scramble=True, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        points = sampler.random_base2(m)
    for u in points:
        idx = [0] * len(sizes)
        for k, j in enumerate(free):
            idx[j] = min(sizes[j] - 1, int(u[k] * sizes[j]))
        key = tuple(idx)
        if key not in seen:
            seen.add(key)
            picks.append(key)
        if len(picks) == budget:
            return picks
    for key in itertools.product(*[range(s) for s in sizes]):
        if key not in seen:
            seen.add(key)
            picks.append(key)
            if len(picks) == budget:
                break
    return picks


def oracle_class():
    """CandidateOracle (defined lazily: keras-tuner is imported only when searching)."""
    import keras_tuner as kt

    class CandidateOracle(kt.Oracle):
        """Trial k runs candidate k of `candidate_list(space, budget)`.

        `budget` is the user's trials per cell, fixed at construction: the search raises
        `max_trials` round by round (search.run_search), and the list must not change with
        it. The list is rebuilt from the space on demand, so it needs no saved state.
        """

        def __init__(self, objective=None, max_trials=None, seed=None, budget=None, **kwargs):
            super().__init__(objective=objective, max_trials=max_trials, seed=seed, **kwargs)
            self.budget = int(budget or max_trials or 1)

        def candidates(self) -> list[dict[str, Any]]:
            return candidate_list(dimensions(self.hyperparameters), self.budget)

        def populate_space(self, trial_id):
            listed = self.candidates()
            k = len(self.trials)  # trials are created in order; a retry reuses its own
            if k >= len(listed):
                return {"status": "STOPPED", "values": None}
            return {"status": "RUNNING", "values": dict(listed[k])}

    return CandidateOracle


def tuner_class():
    """CandidateSearch: a keras-tuner Tuner over the CandidateOracle."""
    import keras_tuner as kt

    oracle_cls = oracle_class()

    class CandidateSearch(kt.Tuner):
        def __init__(self, hypermodel=None, objective=None, max_trials=10, seed=None,
                     max_retries_per_trial=0, max_consecutive_failed_trials=3, **kwargs):
            self.seed = seed
            oracle = oracle_cls(objective=objective, max_trials=max_trials, seed=seed,
                                budget=max_trials, max_retries_per_trial=max_retries_per_trial,
                                max_consecutive_failed_trials=max_consecutive_failed_trials)
            super().__init__(oracle, hypermodel, **kwargs)

    return CandidateSearch
