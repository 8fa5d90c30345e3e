"""Distributed tuning on keras-tuner's own engine: one chief, any number of workers.

`cellpick fit DATA --role chief --oracle HOST:PORT` serves the cells' search oracles
(`chief_search`), and a worker runs their trials (`run_worker`); engine/units.py serves and
runs every later stage's units over the same `serve` and servicer. Every process talks to
one MLflow tracking server, where workers find the chief's parent run (by `distributed_key`)
and hang their runs under it. Cells run one after another, cell i's oracle on PORT + i. The
chief serves keras-tuner's OracleServicer, changed so that a worker asking for a trial waits
while others still run one (unless it holds units itself), and a trial whose worker is
silent for `lost_after()` seconds (CELLPICK_WORKER_TIMEOUT) goes back to the retry queue
with its run marked KILLED. docs/engine.md, "Distribution", says how and why.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from cellpick._quiet import tensorflow
from cellpick.config import FitConfig, parse_oracle
from cellpick.engine import internals
from cellpick.engine.search import TUNER_KEYS, SearchFailed, SearchResult, make_tuner
from cellpick.engine.threads import deterministic
from cellpick.engine.train import callbacks, strategy
from cellpick.errors import ConfigError
from cellpick.events import Event
from cellpick.tracking import CELLS_DONE_TAG as DONE_TAG
from cellpick.tracking import WORKER_TAG, Role, fit_key

HEARTBEAT_SECONDS = 3.0
PARENT_WAIT_SECONDS = 600.0  # how long a worker waits for the chief's parent run
SETTLE_SECONDS = 60.0  # how long the chief waits for a cell's last trial runs to be closed
POLL_SECONDS = 0.5  # how often an idle worker reads the chief's run for the next stage
_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def lost_after() -> float:
    """Seconds of silence after which a worker's trial is given to another worker."""
    return float(os.environ.get("CELLPICK_WORKER_TIMEOUT", "60"))


@contextlib.contextmanager
def keras_tuner_env(tuner_id: str, host: str, port: int):
    """keras-tuner's distribution variables for one cell's tuner (restored afterwards)."""
    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ.update({"KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": host,
                       "KERASTUNER_ORACLE_PORT": str(port)})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def worker_id() -> str:
    # keras-tuner treats any tuner id containing "chief" as the chief.
    host = socket.gethostname().split(".")[0].replace("chief", "chf")
    return f"worker-{host}-{os.getpid()}"


def distributed_key(config: FitConfig) -> str:
    """Identifies the chief's fit for its workers: the data's content and every option that
    shapes the trials (paths may differ between machines; the export options do not matter)."""
    digest = hashlib.sha256(Path(config.data).read_bytes()).hexdigest() if config.data else None
    values = {**asdict(config), "data": None, "data_sha256": digest, "out": None,
              "register": None, "role": None, "oracle": None, "refit": None}
    return fit_key(values)


# -- worker ------------------------------------------------------------------------------
class WorkerHooks:
    """What a worker's tracked tuner adds to its trials: a global trial number, the worker
    tag, and a heartbeat to the chief's oracle while a trial trains."""

    def __init__(self, worker: str, cell_index: int, max_trials: int):
        self.worker, self.cell_index, self.max_trials = worker, cell_index, max_trials
        self.tags = {WORKER_TAG: worker}
        self._stop: threading.Event | None = None

    def number(self, trial) -> int:
        # The same name whichever worker runs the trial (a retried trial keeps its name).
        return self.cell_index * self.max_trials + int(trial.trial_id) + 1

    def begin(self, oracle, trial) -> None:
        stop = self._stop = threading.Event()

        def beat():
            while not stop.wait(HEARTBEAT_SECONDS):
                with contextlib.suppress(Exception):
                    oracle.get_trial(trial.trial_id)

        threading.Thread(target=beat, daemon=True, name="cellpick-heartbeat").start()

    def end(self) -> None:
        if self._stop is not None:
            self._stop.set()


@dataclass
class WorkerResult:
    """What one worker did (`cellpick fit --role worker` prints it)."""

    worker: str
    parent_run_id: str
    trials: int
    cells: list[str]
    seconds: float
    units: dict[str, int] = field(default_factory=dict)  # stage -> units this worker ran


def find_parent(tracker, key: str, wait: float = PARENT_WAIT_SECONDS) -> str:
    """The chief's running parent run for this fit, polled for at most `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        parent = tracker.find_chief(key)
        if parent is not None:
            return parent
        if time.monotonic() > deadline:
            raise ConfigError(
                f"no running chief for this fit in {tracker.uri} (experiment "
                f"'{tracker.experiment_name}') after {wait:.0f} s; start `cellpick fit --role chief` "
                f"with the same data, options and --tracking-uri")
        time.sleep(1)


def run_worker(plan, config: FitConfig, tracker, parent: str, say: Callable[[str, dict], None],
               t0: float) -> WorkerResult:
    """Run trials for the chief's searches under its run `parent`, cell by cell, until the
    chief has served them all. `plan` carries the chief's data-level choice."""
    deterministic(tensorflow())
    distribute = strategy(config.strategy)
    prep = plan.prep
    me = worker_id()
    say(Event.DISTRIBUTED, {"message": f"worker {me}: trials go under the chief's run {parent}"})
    host, port = parse_oracle(config.oracle)
    result, counter = SearchResult(), {"n": 0}
    bs = prep.batch_size()
    train_ds = prep.dataset("train", bs, shuffle=True, seed=config.seed)
    val_ds = prep.dataset("val", bs)
    workdir = Path(".cellpick") / "tuner" / parent / me
    served = []
    for i, cell in enumerate(config.cells):
        state = _chief_state(tracker, parent, cell)
        if state == "ended":
            break
        if state == "done":
            continue  # this worker came late: the chief has finished the cell
        with keras_tuner_env(me, host, port + i):
            t = make_tuner(prep, cell, units=config.units, layers=config.layers,
                           tuner=config.tuner, max_trials=config.max_trials,
                           epochs=plan.schedule.epochs, seed=config.seed, workdir=workdir,
                           distribute=distribute)
            t.setup(prep=prep, tracker=tracker, result=result, progress=say, seed=config.seed,
                    counter=counter, worker=WorkerHooks(me, i, config.max_trials),
                    schedule=plan.schedule)
            with _watchdog(t, tracker, parent, cell, host, port + i) as watch:
                try:
                    t.search(train_ds, validation_data=val_ds, epochs=plan.schedule.epochs,
                             callbacks=callbacks(plan.schedule), shuffle=False, verbose=0)
                    served.append(cell)
                except Exception:
                    if not watch.state:
                        raise
        if watch.state == "ended":
            break
    return WorkerResult(worker=me, parent_run_id=parent, trials=len(result.trials), cells=served,
                        seconds=round(time.perf_counter() - t0, 2))


def _chief_state(tracker, parent: str, cell: str) -> str:
    """'ended' (the chief's run is over), 'done' (the chief has finished the cell) or 'open'."""
    state = tracker.fit_state(parent)
    if not state.running:
        return "ended"
    return "done" if cell in state.cells_done else "open"


@contextlib.contextmanager
def _watchdog(tuner, tracker, parent: str, cell: str, host: str, port: int):
    """keras-tuner's client waits up to an hour for an oracle that is gone: this gives the
    tuner a channel of its own and closes it (the search then raises) when the chief marks
    the cell done or its run ends. `watch.state` says which, None if it never fired."""
    import grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    tuner.oracle.stub = internals.keras_tuner_protos().get_service_grpc().OracleStub(channel)
    watch = type("Watch", (), {"state": None})()
    stop = threading.Event()

    def poll():
        while not stop.wait(5):
            with contextlib.suppress(Exception):
                state = _chief_state(tracker, parent, cell)
                if state != "open":
                    watch.state = state
                    channel.close()
                    return

    thread = threading.Thread(target=poll, daemon=True, name="cellpick-watchdog")
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        channel.close()


# -- chief -------------------------------------------------------------------------------
def rounds_that_fit(tuners: dict, budget, schedule, max_trials: int, workers: int,
                    left: float) -> int:
    """Trials per cell (at least 1) whose estimates fit in `left` seconds: rounds of one
    trial per cell (search._round_estimate), a cell's trials `workers` at a time."""
    from cellpick.engine.search import _round_estimate

    total, rounds = 0.0, 1
    for r in range(1, max_trials + 1):
        total += _round_estimate(tuners, r, budget, schedule)
        if r > 1 and total / min(r, max(1, workers)) > left:
            break
        rounds = r
    return rounds


def _servicer_class():
    OracleServicer = internals.oracle_servicer_class()
    trial_module = internals.keras_tuner_trial()
    stopped = trial_module.TrialStatus.STOPPED

    class Servicer(OracleServicer):
        """keras-tuner's servicer, plus when each worker was last heard from."""

        def __init__(self, oracle):
            super().__init__(oracle)
            self.seen: dict[str, float] = {}
            self.waiting: set[str] = set()  # workers inside CreateTrial

        def _heard(self, tuner_id: str | None = None, trial_id: str | None = None) -> None:
            if tuner_id is None:
                tuner_id = next((tid for tid, t in list(self.oracle.ongoing_trials.items())
                                 if t.trial_id == trial_id), None)
            if tuner_id is not None:
                self.seen[tuner_id] = time.monotonic()

        def CreateTrial(self, request, context):
            tuner_id = request.tuner_id
            self.waiting.add(tuner_id)
            try:
                while True:
                    self._heard(tuner_id)
                    response = super().CreateTrial(request, context)
                    # No trial left: wait while another worker still trains one, in case it
                    # dies and its trial comes back for retry.
                    if trial_module.Trial.from_proto(response.trial).status != stopped:
                        return response
                    # A worker that holds units itself (engine/units.py) is answered at once.
                    ongoing = list(self.oracle.ongoing_trials)
                    mine = [t for t in ongoing if owner(t) == owner(tuner_id)]
                    others = [t for t in ongoing if owner(t) != owner(tuner_id)]
                    if mine or not others or not context.is_active():
                        return response
                    time.sleep(0.25)
            finally:
                self.waiting.discard(tuner_id)

        def UpdateTrial(self, request, context):
            self._heard(trial_id=request.trial_id)
            return super().UpdateTrial(request, context)

        def EndTrial(self, request, context):
            self._heard(trial_id=request.trial.trial_id)
            return super().EndTrial(request, context)

        def GetTrial(self, request, context):  # also the workers' heartbeat
            self._heard(trial_id=request.trial_id)
            return super().GetTrial(request, context)

    return Servicer


def _reap(oracle, servicer, timeout: float, on_lost: Callable[[str, str], None]) -> None:
    """Give the trials of workers silent for `timeout` seconds back to the retry queue."""
    now = time.monotonic()
    lost = []
    with internals.oracle_lock(oracle):
        for tuner_id, trial in list(oracle.ongoing_trials.items()):
            if now - servicer.seen.get(tuner_id, now) > timeout:
                oracle.ongoing_trials.pop(tuner_id)
                oracle.tuner_ids.discard(tuner_id)
                internals.retry_queue(oracle).append(trial.trial_id)
                lost.append((tuner_id, trial.trial_id))
        for tuner_id in list(oracle.tuner_ids):
            if tuner_id not in oracle.ongoing_trials and now - servicer.seen.get(tuner_id, now) > timeout:
                oracle.tuner_ids.discard(tuner_id)
        if lost:
            oracle.save()
    for tuner_id, trial_id in lost:
        on_lost(tuner_id, trial_id)


def owner(tuner_id: str) -> str:
    """The worker behind a tuner id: a worker registers one id per unit it stacks ("W/m2")."""
    return tuner_id.split("/")[0]


def serve(oracle, host: str, port: int, on_lost: Callable[[str, str], None],
          on_ready: Callable[[], None] | None = None,
          finished: Callable[[], bool] | None = None) -> set[str]:
    """Serve an oracle (a cell's search, or a stage's units) until its trials are done and
    every worker has been told so. `on_ready` runs once the port listens; `finished` (the
    oracle's own test, if given) replaces the search's: no trial left to hand out. Returns
    the workers heard from in its last lost_after() seconds (those still alive)."""
    from concurrent import futures

    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    servicer = _servicer_class()(oracle)
    internals.keras_tuner_protos().get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise ConfigError(f"cannot listen on {host}:{port} for the oracle (port in use or host not "
                          f"local); choose another --oracle HOST:PORT (cell i uses PORT + i)")
    server.start()
    if hasattr(oracle, "heard"):  # a UnitOracle: when each tuner id last called
        oracle.heard = servicer.seen
    if on_ready is not None:
        on_ready()
    timeout = lost_after()
    try:
        while True:
            time.sleep(0.2)
            _reap(oracle, servicer, timeout, on_lost)
            # Done when the oracle has no trial left (a lost worker's trial waits for another
            # worker, a new one if need be) and every worker has been told so.
            if finished is not None:
                if finished() and not servicer.waiting:
                    break
            elif (servicer.stop_triggered and not oracle.ongoing_trials and not oracle.tuner_ids
                    and not servicer.waiting and not internals.retry_queue(oracle)):
                break
    finally:
        server.stop(grace=2)
    now = time.monotonic()
    return {owner(t) for t, seen in servicer.seen.items() if now - seen <= timeout}


def chief_search(prep, *, oracle: str, cells: list[str], units: list[int], layers: list[int],
                 tuner: str, max_trials: int, schedule, seed: int, workdir: Path, tracker,
                 progress: Callable[[str, dict], None], config: FitConfig, budget=None,
                 workers: int = 1):
    """The chief's side of `search.run_search`: serve each cell's oracle in turn, then return
    the trial records (from MLflow) and each cell's best configuration (from its oracle).
    Under `budget` (begun for "search") every cell gets the same number of trials: as many
    as the share covers at the budget's estimates, `workers` trials of a cell at once."""
    host, port = parse_oracle(oracle)
    parent = tracker.parent_id  # tagged for the workers when the fit began (pipeline._chief)
    result = SearchResult(rounds=max_trials)
    tuners = {}
    for i, cell in enumerate(cells):
        with keras_tuner_env("chief", host, port + i):
            tuners[cell] = make_tuner(prep, cell, units=units, layers=layers, tuner=tuner,
                                      max_trials=max_trials, epochs=schedule.epochs, seed=seed,
                                      workdir=workdir / "chief")
    if budget is not None and tuner != "hyperband":
        result.rounds = rounds_that_fit(tuners, budget, schedule, max_trials, workers,
                                        budget.stage_left("search"))
        result.cut_short = result.rounds < max_trials
        for t in tuners.values():
            t.oracle.max_trials = result.rounds

    def trial_runs(cell: str, status: str | None = None) -> list:
        return tracker.child_runs(Role.TRIAL, cell=cell, status=status)

    for i, cell in enumerate(cells):
        def on_lost(tuner_id: str, trial_id: str, cell=cell) -> None:
            for run in trial_runs(cell, "RUNNING"):
                if run.trial_id == trial_id:
                    tracker.end_child(run.run_id, "KILLED",
                                      f"worker {tuner_id} stopped answering; the trial is rerun")
            progress(Event.DISTRIBUTED, {"message": f"{cell} trial {trial_id}: worker {tuner_id} lost; "
                                                f"the trial goes to another worker"})

        t = tuners[cell]
        t.oracle.verbose = 0
        t.save()
        progress(Event.DISTRIBUTED, {"message": f"{cell}: oracle on {host}:{port + i}, waiting for workers"})
        result.workers = serve(t.oracle, host, port + i, on_lost)
        # A worker closes its MLflow run just after it reports to the oracle: wait for it.
        deadline = time.monotonic() + SETTLE_SECONDS
        while trial_runs(cell, "RUNNING") and time.monotonic() < deadline:
            time.sleep(0.2)
        for run in trial_runs(cell, "RUNNING"):
            tracker.end_child(run.run_id, "KILLED", "its worker never closed it")
        tracker.set_tags(parent, {DONE_TAG: ",".join(cells[: i + 1])})
        records, curves = tracker.trial_records()
        mine = [r for r in records if r["cell"] == cell]
        for r in mine:
            progress(Event.TRIAL_END, {**r, "n": int(r["name"][1:].split("-")[0])})  # "t03-gru-..."
        if not mine:
            failed = [r.error for r in trial_runs(cell, "FAILED")]
            failed = [e for e in failed if e]
            raise SearchFailed(f"every {cell} trial failed; first error: "
                               f"{failed[0].strip().splitlines()[-1] if failed else 'unknown'}")
        best = t.get_best_hyperparameters(1)[0].values
        result.best[cell] = {k: v for k, v in best.items() if k not in TUNER_KEYS}
    result.trials, result.curves = tracker.trial_records()
    return result
