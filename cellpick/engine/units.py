"""A stage's independent units on the workers: served by the chief through keras-tuner's
oracle service, stacked into members by each worker.

A unit is one training (a verdict's cell x fold x seed, a data-level candidate) or one
contestant fold, fixed before the stage starts: its values (the cell's configuration, the
fold, the seed, ...) are the fixed hyperparameters of one trial of a `UnitOracle`, whose
result comes back as the trial's `result` value (JSON). `Chief.run(stage, units)` serves a
list on the next port (search cells take PORT .. PORT + cells - 1; stage k takes
PORT + cells + k), announces it on the parent run (SERVING_TAG) and returns each unit's
result in order. A worker (`work_session`) registers one tuner id per unit it takes
("W/m0", "W/m1", ...): the oracle hands it the rest of a group it holds first, a group nobody
holds next (one group per --jobs), so a cell's units train as one graph as on one machine.
A worker silent for lost_after() seconds loses its units to the retry queue; a unit whose
training fails is retried once elsewhere and then fails the stage (UnitsFailed), without
keras-tuner's consecutive-failure limit. docs/engine.md, "Distribution", says why.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from cellpick.config import FitConfig, parse_oracle
from cellpick.engine import internals
from cellpick.engine.distributed import HEARTBEAT_SECONDS, WorkerResult, owner, serve
from cellpick.events import Event
from cellpick.tracking import READY_PREFIX, SERVING_TAG

RESULT = "result"  # the hyperparameter a worker writes its unit's result into (JSON)
SAME = ":same"  # a tuner id ending so takes only units of the groups its worker holds
RETRIES = 1  # a unit whose training fails is tried once more, on any worker
RESERVED = ("unit", "group", RESULT)  # the values this module adds to a unit's own


class UnitsFailed(RuntimeError):
    """A unit failed on every try: the stage cannot decide without it."""


@dataclass(frozen=True)
class Unit:
    """One unit of a stage: `group` names the units that train as members of one graph."""

    group: str
    values: dict[str, Any]  # scalars only (keras-tuner hyperparameter values)


def dumps(value: Any) -> str:
    """JSON that keeps NaN and infinities (a diverged unit's score is a result too) and
    numpy scalars (as Python's); anything else as its text."""
    def plain(v):
        return v.item() if hasattr(v, "item") else str(v)
    return json.dumps(value, allow_nan=True, default=plain)


def scalar(value: Any) -> bool | int | float | str:
    """A unit value as keras-tuner's proto takes it (a numpy scalar as Python's)."""
    value = value.item() if hasattr(value, "item") else value
    if not isinstance(value, (bool, int, float, str)):
        raise TypeError(f"a unit value must be a bool, int, float or str, not {value!r}")
    return value


def unit_oracle_class():
    """UnitOracle (defined lazily: keras-tuner is imported only when serving)."""
    import keras_tuner as kt

    trial_module = internals.keras_tuner_trial()
    status = trial_module.TrialStatus

    class UnitOracle(kt.Oracle):
        """Trial i is unit i, created up front; `results[i]` once it ended for good."""

        def __init__(self, units: list[Unit], known: set[str] = frozenset()):
            super().__init__(objective=kt.Objective("seconds", "min"), max_trials=len(units),
                             max_retries_per_trial=RETRIES,
                             max_consecutive_failed_trials=len(units) + 1)
            self.units, self.known, self.heard = units, set(known), {}  # heard: set by serve()
            self.results: dict[int, dict] = {}
            self.failed: dict[int, str] = {}
            width = len(str(max(1, len(units))))
            self.order = [f"{i:0{width}d}" for i in range(len(units))]
            for i, (tid, unit) in enumerate(zip(self.order, units)):
                hps = self.hyperparameters.copy()
                hps.values = {**{k: scalar(v) for k, v in unit.values.items()},
                              "unit": i, "group": unit.group}
                self.trials[tid] = trial_module.Trial(hps, trial_id=tid, status=status.IDLE)
            self.pending = list(self.order)

        def finished(self) -> bool:
            return len(self.results) + len(self.failed) == len(self.units)

        def _group(self, trial_id: str) -> str:
            return self.trials[trial_id].hyperparameters.values["group"]

        def _pick(self, tuner_id: str) -> str | None:
            me = owner(tuner_id)
            held = {self._group(t.trial_id) for tid, t in self.ongoing_trials.items()
                    if owner(tid) == me}
            others = {self._group(t.trial_id) for tid, t in self.ongoing_trials.items()
                      if owner(tid) != me}
            queue = list(internals.retry_queue(self)) + self.pending
            same = [t for t in queue if self._group(t) in held]
            if same or tuner_id.endswith(SAME):
                return same[0] if same else None
            fresh = [t for t in queue if self._group(t) not in others]
            if held:  # another group only while no idle worker could take it instead
                busy = {owner(tid) for tid in self.ongoing_trials}
                idle = (self.known | {owner(t) for t in self.heard}) - busy - {me}
                if len({self._group(t) for t in fresh}) <= len(idle):
                    return None
            return fresh[0] if fresh else None

        def create_trial(self, tuner_id):
            with internals.oracle_lock(self):
                if tuner_id in self.ongoing_trials:
                    return self.ongoing_trials[tuner_id]
                trial_id = self._pick(tuner_id)
                if trial_id is None:
                    return trial_module.Trial(self.hyperparameters.copy(), status=status.STOPPED)
                retry = internals.retry_queue(self)
                (retry if trial_id in retry else self.pending).remove(trial_id)
                trial = self.trials[trial_id]
                trial.status = status.RUNNING
                self.tuner_ids.add(tuner_id)
                self.ongoing_trials[tuner_id] = trial
                return trial

        def update_trial(self, trial_id, metrics, step=0):
            return self.trials[trial_id]

        def end_trial(self, trial):
            with internals.oracle_lock(self):
                own = self.trials[trial.trial_id]
                for tuner_id, t in list(self.ongoing_trials.items()):
                    if t.trial_id == trial.trial_id:
                        self.ongoing_trials.pop(tuner_id)
                        self.tuner_ids.discard(tuner_id)
                i = int(own.hyperparameters.values["unit"])
                result = json.loads(trial.hyperparameters.values.get(RESULT) or "{}")
                self._run_times[trial.trial_id] += 1
                if trial.status == status.COMPLETED:  # perhaps from a worker given up for lost
                    own.status = status.COMPLETED
                    self.results[i] = result
                    if trial.trial_id in internals.retry_queue(self):
                        internals.retry_queue(self).remove(trial.trial_id)
                elif i in self.results:
                    pass  # a late failure of a unit another worker has finished
                elif self._run_times[trial.trial_id] <= RETRIES:
                    own.status = status.IDLE
                    internals.retry_queue(self).append(trial.trial_id)
                else:
                    own.status = status.FAILED
                    self.failed[i] = result.get("error") or "unknown error"

        def save(self):  # the chief keeps the units in memory: a chief that dies ends the fit
            return None

    return UnitOracle


class Chief:
    """The chief's side: each stage's units served on the next port, their results back."""

    def __init__(self, config, tracker, progress: Callable[[str, dict], None]):
        self.host, port = parse_oracle(config.oracle)
        self.next_port = port + len(config.cells)
        self.tracker, self.say, self.sessions = tracker, progress, 0
        self.spread: dict[str, dict[str, int]] = {}  # stage -> worker -> units it ran
        self.known: set[str] = set()  # the workers alive at the end of the last stage
        self.ever: set[str] = set()  # every worker heard from

    def workers(self) -> set[str]:
        """The workers counted on now: those alive at the last stage's end, and those that
        joined (READY_PREFIX) and have not been heard from yet."""
        joined = set(self.tracker.fit_state(self.tracker.parent_id).workers)
        return self.known | (joined - self.ever)

    def heard(self, live: set[str]) -> None:
        """A stage has ended: `live`, the workers heard from in its last moments."""
        self.known = set(live)
        self.ever |= live

    def announce(self, stage: str, port: int | None = None, done: bool = False) -> None:
        """Tell the workers (through the parent run) which stage is open and where."""
        self.sessions += 0 if done else 1
        self.tracker.set_tags(self.tracker.parent_id, {SERVING_TAG: dumps(
            {"n": self.sessions, "stage": stage, "port": port, "done": done})})

    def run(self, stage: str, units: list[Unit]) -> list[dict]:
        """Serve `units` until every one has a result; their results, in order."""
        if not units:
            return []
        port = self.next_port
        self.next_port += 1
        oracle = unit_oracle_class()(units, self.workers())
        oracle.verbose = 0

        def on_lost(tuner_id: str, trial_id: str) -> None:
            key = run_key(stage, self.sessions, trial_id)
            for run in self.tracker.child_runs(status="RUNNING"):
                if run.trial_id == key:
                    self.tracker.end_child(run.run_id, "KILLED",
                                           f"worker {owner(tuner_id)} stopped answering; the unit is rerun")
            self.say(Event.DISTRIBUTED, {"message": f"{stage} unit {trial_id}: worker {owner(tuner_id)} "
                                                    f"lost; the unit goes to another worker"})

        self.say(Event.DISTRIBUTED, {"message": f"{stage}: {len(units)} units on {self.host}:{port}, "
                                                f"waiting for workers"})
        self.heard(serve(oracle, self.host, port, on_lost,
                         on_ready=lambda: self.announce(stage, port), finished=oracle.finished))
        self.announce(stage, port, done=True)
        if oracle.failed:
            i, error = next(iter(sorted(oracle.failed.items())))
            raise UnitsFailed(f"{stage} unit {i + 1} of {len(units)} ({units[i].group}) failed on "
                              f"{RETRIES + 1} tries; last error: {error}")
        results = [oracle.results[i] for i in range(len(units))]
        ran: dict[str, int] = {}
        for r in results:
            ran[r.get("worker", "?")] = ran.get(r.get("worker", "?"), 0) + 1
        spread = self.spread.setdefault(stage, {})  # the stage's sessions together
        for worker, n in ran.items():
            spread[worker] = spread.get(worker, 0) + n
        self.say(Event.DISTRIBUTED, {"message": f"{stage}: {len(units)} units ran on {len(ran)} "
                                                f"workers (" + ", ".join(
                                                    f"{w} {n}" for w, n in ran.items()) + ")"})
        return results


# -- worker ------------------------------------------------------------------------------
def run_key(stage: str, session: int, trial_id: str) -> str:
    """What a unit's MLflow run is tagged with (TRIAL_ID_TAG), so a lost one can be closed."""
    return f"{stage}/{session}/{trial_id}"


def work(plan, config: FitConfig, tracker, parent: str, say: Callable[[str, dict], None],
         t0: float, *, stages: dict[str, Callable], before_search: Callable) -> WorkerResult:
    """A worker's whole part in the chief's fit: each stage the chief opens (SERVING_TAG on
    its run) joined in turn, until the chief's run ends. "search" runs trials (`run_worker`,
    on the plan `before_search` gives: the data-level choice applied); any other stage's units
    are trained by `stages[stage](plan, trials, tracker=, worker=, key=)`."""
    from cellpick._quiet import tensorflow
    from cellpick.engine.distributed import POLL_SECONDS, run_worker, worker_id
    from cellpick.engine.threads import default_jobs, deterministic

    deterministic(tensorflow())  # TensorFlow loaded before the first stage opens, not in it
    me = worker_id()
    host, _ = parse_oracle(config.oracle)
    jobs = config.jobs or default_jobs()
    done = WorkerResult(worker=me, parent_run_id=parent, trials=0, cells=[], seconds=0.0)
    seen = 0
    tracker.set_tags(parent, {READY_PREFIX + me: "joined"})  # the chief counts it from now on
    say(Event.DISTRIBUTED, {"message": f"worker {me}: waiting for the chief's stages under run {parent}"})
    while True:
        state = tracker.fit_state(parent)
        if not state.running:
            break
        open_ = state.serving
        if not open_ or open_["n"] <= seen or open_.get("done"):
            time.sleep(POLL_SECONDS)
            continue
        seen, stage = open_["n"], open_["stage"]
        if stage == "search":
            plan = before_search(plan)
            searched = run_worker(plan, config, tracker, parent, say, t0)
            done.trials, done.cells = done.trials + searched.trials, searched.cells
            continue

        def still_open(n=seen) -> bool:
            now = tracker.fit_state(parent)
            return now.running and bool(now.serving) and now.serving["n"] == n \
                and not now.serving.get("done")

        def train(trials, n=seen, stage=stage, plan=plan):
            groups = ", ".join(dict.fromkeys(t.hyperparameters.values["group"] for t in trials))
            say(Event.DISTRIBUTED, {"message": f"worker {me}: training {len(trials)} {stage} "
                                               f"units ({groups})"})
            return stages[stage](plan, trials, tracker=tracker, worker=me,
                                 key=lambda t: run_key(stage, n, t.trial_id))

        ran = work_session(me, host, open_["port"], jobs, train, still_open)
        done.units[stage] = done.units.get(stage, 0) + ran
        say(Event.DISTRIBUTED, {"message": f"worker {me}: {ran} {stage} units"})
    done.seconds = round(time.perf_counter() - t0, 2)
    return done




def work_session(me: str, host: str, port: int, jobs: int,
                 train: Callable[[list], list[dict]], still_open: Callable[[], bool]) -> int:
    """Take units from the oracle on host:port until it has none left for this worker,
    `jobs` groups at a time, each batch trained by `train(trials)` (one result dict per
    trial, {"error": ...} for a unit that failed); returns how many units this worker ran."""
    import grpc

    trial_module = internals.keras_tuner_trial()
    protos = internals.keras_tuner_protos()
    channel = grpc.insecure_channel(f"{host}:{port}")
    stub = protos.get_service_grpc().OracleStub(channel)
    service = protos.get_service()
    done = 0
    stop_watch = threading.Event()

    def watch():  # the chief closed the stage (or its run ended): stop waiting on it
        while not stop_watch.wait(5):
            with contextlib.suppress(Exception):
                if not still_open():
                    channel.close()
                    return

    threading.Thread(target=watch, daemon=True, name="cellpick-unit-watchdog").start()
    try:
        while True:
            held: list = []
            try:
                while True:
                    groups = {t.hyperparameters.values["group"] for t in held}
                    tuner_id = f"{me}/m{len(held)}" + ("" if len(groups) < jobs else SAME)
                    proto = stub.CreateTrial(service.CreateTrialRequest(tuner_id=tuner_id),
                                             wait_for_ready=True, timeout=24 * 3600)
                    trial = trial_module.Trial.from_proto(proto.trial)
                    if trial.status != trial_module.TrialStatus.RUNNING:
                        break
                    held.append(trial)
            except grpc.RpcError:
                if not held:
                    return done
            if not held:
                return done
            with _heartbeat(stub, service, [t.trial_id for t in held]):
                results = train(held)
            for trial, result in zip(held, results):
                trial.hyperparameters.values[RESULT] = dumps({**result, "worker": me})
                trial.status = (trial_module.TrialStatus.FAILED if "error" in result
                                else trial_module.TrialStatus.COMPLETED)
                try:
                    stub.EndTrial(service.EndTrialRequest(trial=trial.to_proto()),
                                  wait_for_ready=True, timeout=60)
                except grpc.RpcError:  # the chief closed the stage (another worker finished it)
                    return done
            done += len(held)
    finally:
        stop_watch.set()
        channel.close()


@contextlib.contextmanager
def _heartbeat(stub, service, trial_ids: list[str]):
    """Tell the chief every HEARTBEAT_SECONDS that these units are still training."""
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT_SECONDS):
            for tid in trial_ids:
                with contextlib.suppress(Exception):
                    stub.GetTrial(service.GetTrialRequest(trial_id=tid), timeout=10)

    thread = threading.Thread(target=beat, daemon=True, name="cellpick-unit-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()


def by_group(trials: list) -> dict[str, list]:
    """The trials a worker took, per group, in the order taken."""
    out: dict[str, list] = {}
    for t in trials:
        out.setdefault(t.hyperparameters.values["group"], []).append(t)
    return out


def deadline_of(values: dict[str, Any]) -> Callable[[], float] | None:
    """A unit's deadline, taken when its group starts training: the stage's end, never less
    than its floor from then (values `deadline` and `floor`, absent without a budget)."""
    if values.get("deadline") is None:
        return None
    end, floor = float(values["deadline"]), float(values.get("floor", 0.0))
    return lambda: max(end, time.time() + floor)

