"""One wall-clock budget for the whole fit (--time-budget): estimated, divided, re-balanced.

`calibrate` times a few training steps of a configuration on the plan's own windows (`Cost`);
`CostModel` holds a cell's cheapest and costliest candidates' costs and interpolates any
candidate between them by its recurrent multiply-adds. The caller states each stage's minimum
and expected seconds (`Budget.plan`) from those costs; `Budget.check` refuses a budget below
the sum of the minimums, naming the smallest that would do. `Budget.begin(stage)` gives a
stage its share of the time left when it starts (the division re-balanced: what earlier stages
left unused flows on); `end(stage)` records what it spent; `cut` what the budget took from it.
`record()` is verdict.json's `budget` entry. How and why: docs/budget.md.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from cellpick.errors import ConfigError

STAGES = ("data-level", "search", "verdict", "contestants", "refit+export")
RESERVE_SHARE, RESERVE_FLOOR = 0.10, 5.0  # of the budget, given to no stage: estimate errors
TOLERANCE_SHARE, TOLERANCE_FLOOR = 0.10, 10.0  # the most a fit may end past its budget
CALIBRATION_STEPS = 8  # steps per calibration round; 3 rounds per cell
COSTLIEST_STEPS = 4  # the same for the costliest candidate (one cell's: its steps are long)
TRIAL_OVERHEAD = 1.0  # s per trial: its MLflow run and keras-tuner's bookkeeping
FINISH_SECONDS = 15.0  # s: report, MLflow model and export after the last training
SAFETY = 2.0  # a trial may always run this many times its estimated minimum
HEADROOM = 1.5  # the budget a refusal names: the smallest times this (the timing varies)


@dataclass(frozen=True)
class Cost:
    """One model's training cost, measured: setup (build and trace), seconds per gradient step,
    seconds per validation round."""

    setup: float
    step: float
    round: float

    def seconds(self, steps: int, round_steps: int, members: int = 1) -> float:
        """`members` models of this cost training `steps` steps, validated every `round_steps`
        (counted as one model after another: batching members only makes it cheaper)."""
        rounds = math.ceil(steps / max(1, round_steps))
        return members * (self.setup + steps * self.step + rounds * self.round) + TRIAL_OVERHEAD

    def to_dict(self) -> dict[str, float]:
        return {"setup": round(self.setup, 3), "step": round(self.step, 5),
                "round": round(self.round, 4)}


GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def recurrent_inputs(prep) -> int:
    """The width of what the first recurrent layer reads: the features, or text's embedding."""
    return int(prep.embed_dim) if prep.kind == "text" else int(prep.input_shape[-1])


def recurrent_macs(config: dict[str, Any], features: int) -> int:
    """Multiply-adds of one time step of `config`'s recurrent layers on `features` inputs (the
    dense head and the patching are left out: they are the same for every candidate)."""
    g, u = GATES.get(config.get("cell"), 4), int(config["units"])
    both = 2 if config.get("bidirectional") else 1
    total, width = 0, features
    for _ in range(int(config["layers"])):
        total += both * g * (width + u) * u
        width = both * u
    return total


@dataclass(frozen=True)
class CostModel:
    """A cell's cost at its cheapest (`low`) and costliest (`high`) candidate, measured; any
    candidate in between is interpolated linearly in recurrent multiply-adds."""

    low: Cost
    high: Cost
    low_macs: int
    high_macs: int
    first: dict[str, Any]  # the candidate every search's first round trains

    def at(self, macs: int) -> Cost:
        span = self.high_macs - self.low_macs
        f = 0.0 if span <= 0 else min(1.0, max(0.0, (macs - self.low_macs) / span))
        return Cost(*(a + f * (b - a) for a, b in ((self.low.setup, self.high.setup),
                                                    (self.low.step, self.high.step),
                                                    (self.low.round, self.high.round))))


def calibrate(prep, configs: dict[str, dict[str, Any]], seed: int = 0,
              steps: int = CALIBRATION_STEPS) -> dict[str, Cost]:
    """Per key, `Cost` of its configuration in `configs`, timed on `prep`'s training windows:
    3 rounds of `steps` steps on the members engine, the engine a search trial trains on (the
    first round holds the build and trace)."""
    from cellpick.engine.members import Member, fit_members
    from cellpick.engine.train import Schedule

    k = steps
    # patience 8 epochs of k steps: rounds of k steps (members.round_steps), none stopped early
    schedule = Schedule(epochs=3, patience=8, steps_per_epoch=k)
    out = {}
    for key, config in configs.items():
        t0 = time.perf_counter()
        [res] = fit_members([Member(prep, seed)], config, schedule)
        wall = time.perf_counter() - t0
        first, later = res.extra["first_round_seconds"], res.extra["round_seconds"]
        step = later / k
        rounds = max(0.0, (res.seconds - first - 2 * later) / 3)  # validation and bookkeeping
        setup = max(0.0, wall - 3 * k * step - 3 * rounds)
        out[key] = Cost(setup=setup, step=step, round=rounds)
    return out


def calibrate_range(prep, cheapest: dict[str, dict[str, Any]], costliest: dict[str, dict[str, Any]],
                    first: dict[str, dict[str, Any]], seed: int = 0) -> dict[str, CostModel]:
    """Per cell, a `CostModel`: its cheapest candidate calibrated; the costliest candidate of
    the cell with the most multiply-adds calibrated (COSTLIEST_STEPS a round), and the other
    cells' costliest taken from it in proportion to their multiply-adds (never below their
    own cheapest)."""
    features = recurrent_inputs(prep)
    low = calibrate(prep, cheapest, seed)
    lo_macs = {c: recurrent_macs(cfg, features) for c, cfg in cheapest.items()}
    hi_macs = {c: recurrent_macs(cfg, features) for c, cfg in costliest.items()}
    top = max(hi_macs, key=hi_macs.get)
    if costliest[top] == cheapest[top]:
        measured = low[top]
    else:
        measured = calibrate(prep, {top: costliest[top]}, seed, steps=COSTLIEST_STEPS)[top]
    out = {}
    for c in cheapest:
        f = hi_macs[c] / max(1, hi_macs[top])
        high = low[c] if hi_macs[c] <= lo_macs[c] else Cost(
            setup=max(low[c].setup, measured.setup), step=max(low[c].step, f * measured.step),
            round=max(low[c].round, f * measured.round))
        out[c] = CostModel(low[c], high, lo_macs[c], hi_macs[c], first[c])
    return out


def duration(seconds: float) -> str:
    """90 -> '1m30s', 600 -> '10m', 3725 -> '1h2m5s' (what --time-budget reads back)."""
    s = max(0, int(math.ceil(seconds)))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def nice_ceiling(seconds: float) -> float:
    """Rounded up to a budget a user would type: 10 s steps below 10 min, then whole minutes."""
    step = 10 if seconds < 600 else 60
    return float(math.ceil(seconds / step) * step)


def split(available: float, stages: list[tuple[str, float, float]]) -> dict[str, float]:
    """`available` seconds over (stage, minimum, expected): each its minimum, the rest in
    proportion to what each expects beyond it (so a stage may get more or less than expected;
    what it leaves flows to the next). Below the sum of minimums each gets its minimum."""
    need = sum(m for _, m, _ in stages)
    wants = [max(0.0, e - m) for _, m, e in stages]
    extra = max(0.0, available - need)
    if sum(wants) <= 0:  # nothing expects more than its minimum: the last stage holds the rest
        return {n: m + (extra if i == len(stages) - 1 else 0.0)
                for i, (n, m, _) in enumerate(stages)}
    f = extra / sum(wants)
    return {n: m + f * w for (n, m, _), w in zip(stages, wants)}


@dataclass
class Budget:
    """A wall-clock budget for the whole fit, counted from `start` (time.time() when the fit
    began: reading the data and TensorFlow's import are in it)."""

    seconds: float
    start: float
    seeds: int  # the verdict's seeds per fold asked for
    min_steps: int = 0  # the steps a search trial trains before it may be scored
    round_steps: int = 1  # a search trial's steps between validations
    costs: dict[str, CostModel] = field(default_factory=dict)  # per cell, calibrated
    features: int = 1  # the recurrent input's width (the candidates' multiply-adds)
    plan: dict[str, tuple[float, float]] = field(default_factory=dict)  # stage -> (min, expected)
    estimates: dict[str, float] = field(default_factory=dict)  # named costs the stages read
    division: dict[str, float] = field(default_factory=dict)  # the shares up front
    spent: dict[str, float] = field(default_factory=dict)  # stage -> seconds (and "start")
    shares: dict[str, float] = field(default_factory=dict)  # stage -> share when it began
    cuts: dict[str, Any] = field(default_factory=dict)
    _began: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def deadline(self) -> float:
        return self.start + self.seconds

    @property
    def reserve(self) -> float:
        return max(RESERVE_FLOOR, RESERVE_SHARE * self.seconds)

    @property
    def tolerance(self) -> float:
        return max(TOLERANCE_FLOOR, TOLERANCE_SHARE * self.seconds)

    def left(self) -> float:
        return self.deadline - time.time()

    def cost(self, cell: str, config: dict[str, Any] | None = None) -> Cost | None:
        """`config`'s cost (default: the cell's first candidate); None if not measured."""
        model = self.costs.get(cell)
        if model is None:
            return None
        return model.at(recurrent_macs({**(config or model.first), "cell": cell}, self.features))

    def trial_seconds(self, cell: str, config: dict[str, Any] | None = None,
                      steps: int | None = None) -> float:
        """A search trial of `config` (default: the cell's first candidate) trained `steps`
        (default: `min_steps`); 0 when not measured."""
        cost = self.cost(cell, config)
        if cost is None:
            return 0.0
        return cost.seconds(self.min_steps if steps is None else steps, self.round_steps)

    # -- the division -----------------------------------------------------------------------

    def smallest(self) -> float:
        """The least budget that covers what is spent, every stage's minimum and the reserve."""
        need = round(sum(self.spent.values()) + sum(m for m, _ in self.plan.values()), 1)
        return nice_ceiling(max(need + RESERVE_FLOOR, need / (1 - RESERVE_SHARE)))

    def divide(self) -> dict[str, float]:
        """The shares of the stages not yet begun, from the time left less the reserve."""
        todo = [s for s in STAGES if s not in self._began and s not in self.spent]
        return split(self.left() - self.reserve, [(s, *self.plan.get(s, (0.0, 0.0))) for s in todo])

    def check(self) -> None:
        """Fix the division up front; ConfigError (exit 2) when the minimums cannot fit."""
        self.spent["start"] = time.time() - self.start
        if self.smallest() > self.seconds:
            need, ask = duration(self.smallest()), duration(nice_ceiling(HEADROOM * self.smallest()))
            raise ConfigError(
                f"--time-budget {duration(self.seconds)} is too small for this data: one trained "
                f"trial per cell and one seed per fold need about {need}; pass --time-budget "
                f"{ask} or more")
        self.division = self.divide()

    # -- the stages -------------------------------------------------------------------------

    def begin(self, stage: str) -> float:
        """The stage's share now (re-balanced over the stages left); its clock starts."""
        share = self.divide().get(stage, 0.0)
        self._began[stage], self.shares[stage] = time.time(), share
        return share

    def end(self, stage: str) -> None:
        if stage in self._began and stage not in self.spent:
            self.spent[stage] = time.time() - self._began[stage]

    def stage_deadline(self, stage: str) -> float:
        """When the stage's share runs out (the fit's deadline less the reserve if not begun)."""
        if stage not in self._began:
            return self.deadline - self.reserve
        return self._began[stage] + self.shares[stage]

    def stage_left(self, stage: str) -> float:
        return self.stage_deadline(stage) - time.time()

    def cut(self, what: str, value: Any) -> None:
        self.cuts[what] = value

    def record(self) -> dict[str, Any]:
        """verdict.json's `budget`: the division up front, what each stage spent, what was cut."""
        def r(d):
            return {k: round(v, 1) for k, v in d.items()}
        return {"seconds": self.seconds, "reserve": round(self.reserve, 1),
                "tolerance": round(self.tolerance, 1), "min_steps": self.min_steps,
                "division": r(self.division), "spent": r(self.spent),
                "cut_short": bool(self.cuts), "cut": dict(self.cuts)}

    def line(self) -> str:
        """The division as the plan prints it."""
        shares = ", ".join(f"{s} {duration(v)}" for s, v in self.division.items())
        per = ", ".join(f"{c} {self.trial_seconds(c):.1f}s" for c in self.costs)  # first candidate
        return (f"time budget {duration(self.seconds)}: start {duration(self.spent.get('start', 0))} "
                f"(spent), {shares}, reserve {duration(self.reserve)}; ends by "
                f"{duration(self.seconds)} + {duration(self.tolerance)} tolerance. A trial trains "
                f"at least {self.min_steps} steps before it is scored (a first-round trial, measured: {per})")
