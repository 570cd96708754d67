"""Background jobs: one runner thread per server process, one job at a time, the rest queued.

The workspace is the only channel between a job and the pages: the runner writes every state
change, status line, log line and chart point to SQLite, and pages poll it. Nothing lives only
in memory, so closing the browser changes nothing, and after a server restart the jobs that were
running are marked ``interrupted`` and can be resumed from their last checkpoint.

States: queued → running → succeeded | failed | canceled | interrupted (its process is gone, or
its server stopped). Cancel of a queued job is immediate; a running job stops at its next
training step. Every state change is one of this module's functions; nothing else writes
``jobs.state``.

Ownership is an OS file lock (``flock``) on ``files/locks/job-<id>.lock``, taken before a job is
marked running and held by the owning process until the job's end is recorded. The kernel
frees it when that process ends, however it ends (SIGKILL included), and never while it lives,
however long it is paused: so "the owner is gone" is exactly "the lock is free", with no clock
to misjudge. Any server finds such jobs within ``RECOVER_SECONDS`` and marks them interrupted,
and so does every CLI command that acts on jobs. The lock lives outside the job's folder, so no
delete of that folder can free it while the job is live.

One rule for every job kind: what a job uses (``USES``: its corpus, pair sets, the run whose
model it starts from) and the run it is cannot be deleted while it is queued or running
(``core.using.runs.why_not_delete``), and only a job whose owner is gone can be resumed. Every state
and ownership question is answered from the job table and the lock, never from the folder.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.workspace.errors import WorkspaceError
from core.training.reporting import StoreReporter
from core.workspace.store import Store

log = logging.getLogger(__name__)
FINISHED = ("succeeded", "failed", "canceled", "interrupted")
ACTIVE = ("queued", "running")
HEARTBEAT_SECONDS = 10.0  # the last sign of life, so an interrupted job's time excludes downtime
RECOVER_SECONDS = 15.0  # how often a server looks for jobs whose owner is gone
SHUTDOWN_WAIT_SECONDS = 5.0  # how long a stopping server waits for its job to record its end
MAX_BACKOFF_SECONDS = 30.0
INTERRUPTED = "Interrupted: its server stopped; resume to continue from the last checkpoint"


@dataclass
class Job:
    id: int
    kind: str
    state: str
    config: dict
    created: float
    started: float | None
    finished: float | None
    cancel_requested: bool
    progress: float
    status: str
    error: str | None
    result: dict
    resume: bool = False  # continue from the last checkpoint instead of starting over
    owner: str | None = None
    heartbeat: float | None = None
    stage_started: float | None = None  # when ``status`` was last set; ``progress`` is its share

    @property
    def elapsed(self) -> float:
        if not self.started:
            return 0.0
        return (self.finished or time.time()) - self.started

    @property
    def eta(self) -> float | None:
        """Seconds left in the current stage, from its own pace so far."""
        if self.state != "running" or self.progress <= 0.02:
            return None
        spent = time.time() - (self.stage_started or self.started or time.time())
        return spent * (1 - self.progress) / self.progress

    @property
    def ran(self) -> bool:
        """Whether the job ever started: a job canceled in the queue is no run."""
        return self.started is not None


def _job(row) -> Job:
    return Job(row["id"], row["kind"], row["state"], json.loads(row["config"]), row["created"],
               row["started"], row["finished"], bool(row["cancel_requested"]), row["progress"],
               row["status"], row["error"], json.loads(row["result"]), bool(row["resume"]),
               row["owner"], row["heartbeat"], row["stage_started"])


def this_process() -> str:
    """``host:pid:start-time``, recorded with a running job so a person can tell who runs it."""
    started = psutil.Process().create_time()
    return f"{socket.gethostname()}:{psutil.Process().pid}:{started:.0f}"


# -- ownership: a lock file per job ----------------------------------------------------------
_held: dict[tuple[str, int], int] = {}  # (workspace, job id) → descriptor holding the lock
_held_lock = threading.Lock()


def lock_path(store: Store, job_id: int) -> Path:
    """The file whose lock says who runs the job. Not in the job's folder: a delete that
    removed the folder (as one of a documents-only run once did while it ran) took the lock
    file with it, the job looked ownerless and a Resume ran it in a second process."""
    return store.files / "locks" / f"job-{job_id}.lock"


def _legacy_lock(store: Store, job_id: int) -> Path:
    """Where a process of an earlier release locks the jobs it runs."""
    return job_dir(store, job_id) / ".lock"


def _take(store: Store, job_id: int) -> bool:
    """Lock the job for this process, without waiting; False when another process holds it."""
    path = lock_path(store, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    with _held_lock:
        _held[(str(store.home), job_id)] = fd
    return True


def _release(store: Store, job_id: int) -> None:
    with _held_lock:
        fd = _held.pop((str(store.home), job_id), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor frees the lock


def holds(store: Store, job_id: int) -> bool:
    """Whether this process owns the job."""
    with _held_lock:
        return (str(store.home), job_id) in _held


def owner_alive(store: Store, job_id: int) -> bool:
    """Whether some live process holds the job's lock (this one included)."""
    return holds(store, job_id) or any(_locked(path) for path in (lock_path(store, job_id),
                                                                   _legacy_lock(store, job_id)))


def _locked(path: Path) -> bool:
    """Whether another process holds ``path``'s lock."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False  # never locked: a row from before locks, or from a process that died first
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


# -- state changes ---------------------------------------------------------------------------
def _same(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def request(store: Store, kind: str, config: dict) -> tuple[int, bool]:
    """The job for this request: a queued or running job with the same kind and config if
    there is one (a second click on Start), else a new queued job. The config is validated
    first, so a mistake is reported before anything is queued.

    Returns:
        (job id, whether it was newly queued).
    """
    if kind not in HANDLERS:
        raise WorkspaceError(f"unknown job kind {kind!r}")
    config = VALIDATORS[kind](store, config)
    with store.transaction():  # one writer at a time: two clicks cannot both insert
        for row in store.active_job_configs(kind):
            if _same(json.loads(row["config"])) == _same(config):
                return int(row["id"]), False
        job_id = store.add_queued_job(kind, config)
    return job_id, True


def submit(store: Store, kind: str, config: dict) -> int:
    """Queue a job (or find its running twin, see ``request``); returns its id."""
    return request(store, kind, config)[0]


def get(store: Store, job_id: int) -> Job:
    row = store.job_row(job_id)
    if row is None:
        raise WorkspaceError(f"no job {job_id}")
    return _job(row)


def all_jobs(store: Store) -> list[Job]:
    return [_job(r) for r in store.job_rows()]


def queue_positions(store: Store) -> dict[int, int]:
    """Queued job id → its place in line (1: it runs next)."""
    return {job_id: place for place, job_id in enumerate(store.queued_job_ids(), 1)}


def claim(store: Store, job_id: int | None = None) -> Job | None:
    """Take a queued job for this process and mark it running: the given one, or the oldest.

    The job's lock is taken before the row says running, so a running row always has a live
    owner or a free lock. Returns None when there is no such queued job (or another process
    took it first).
    """
    taken = None
    try:
        with store.transaction():
            taken = next((i for i in store.queued_job_ids(job_id) if _take(store, i)), None)
            if taken is None:
                return None
            store.mark_job_running(taken, this_process())
    except BaseException:
        if taken is not None:
            _release(store, taken)
        raise
    return get(store, taken)


def finish(store: Store, job_id: int, result: dict, canceled: bool = False) -> None:
    """Record a job's successful end (or its stop on request, keeping its progress) and free
    its lock."""
    store.mark_job_ended(
        job_id, "canceled" if canceled else "succeeded", result,
        ("Canceled; what was saved is kept" if result else "Canceled before it kept anything")
        if canceled else "Done", canceled)
    _release(store, job_id)


def fail(store: Store, job_id: int, message: str, trace: str | None = None) -> None:
    """Record a job's failure with its one-line reason (and the trace in its log)."""
    reporter = StoreReporter(store, job_id)
    with store.transaction():
        reporter.log("failed: " + message)
        if trace:
            reporter.log(trace)
        store.mark_job_failed(job_id, message)
    _release(store, job_id)


def interrupt(store: Store, job_id: int, why: str = INTERRUPTED) -> None:
    """Record that this process stopped running the job before its end (its server is
    stopping); it can be resumed."""
    reporter = StoreReporter(store, job_id)
    with store.transaction():
        reporter.log(why)
        store.mark_job_interrupted(job_id, why)
    _release(store, job_id)


def cancel(store: Store, job_id: int) -> str:
    """Cancel a queued job now, or ask a running one to stop; returns the resulting state."""
    job = get(store, job_id)
    if job.state == "queued":
        store.cancel_queued_job(job_id)
    elif job.state == "running":
        store.ask_job_to_stop(job_id)
    else:
        raise WorkspaceError(f"job {job_id} has already ended ({job.state})")
    return get(store, job_id).state


def why_not_resume(store: Store, job: Job) -> str | None:
    """The reason a job cannot be resumed, or None when it can: it must have ended, its owner
    must be gone (a job marked ended while a process still runs it would run twice), and what
    it needs must still be there."""
    if job.state not in ("interrupted", "failed", "canceled"):
        return (f"job {job.id} is {job.state}; only an interrupted, failed or canceled job "
                "can be resumed")
    if owner_alive(store, job.id):
        return (f"job {job.id} is still running in another process ({job.owner}); wait for "
                "it to end, then resume")
    for use in uses(store, job):
        if use.needed and not _exists(store, use):
            return (f"job {job.id} {use.past} {use.kind} {use.ref}, which was deleted; start a "
                    f"new job on an existing {use.kind}")
    return None


def resume(store: Store, job_id: int) -> None:
    """Queue an interrupted, failed or canceled job again; training continues from its last
    saved checkpoint."""
    reason = why_not_resume(store, get(store, job_id))
    if reason:
        raise WorkspaceError(reason)
    if not store.requeue_job(job_id):  # another page resumed it a moment ago
        raise WorkspaceError(f"job {job_id} was resumed already; follow it on the Fine-tune page")


def forget(store: Store, job_ids: list[int]) -> None:
    """Delete ended jobs' rows (inside the caller's transaction) and their lock files; the
    caller removes their folders. A queued or running job keeps its row and its lock."""
    for job_id in job_ids:
        if store.delete_ended_job(job_id) and not owner_alive(store, job_id):
            lock_path(store, job_id).unlink(missing_ok=True)


def recover(store: Store) -> int:
    """Mark interrupted the running jobs whose owner process is gone (their lock is free); a
    job another live process runs is left alone, however long it has been silent. The CLI
    calls it before it acts on jobs, so it needs no server to notice a dead owner; the write
    lock is taken only when there is something to mark."""
    if all(owner_alive(store, job_id) for job_id in store.running_job_ids()):
        return 0
    with store.transaction():
        lost = [job_id for job_id in store.running_job_ids() if not owner_alive(store, job_id)]
        # It stopped at its last sign of life, not now: elapsed time must not count the downtime.
        store.mark_jobs_lost(lost, INTERRUPTED)
    return len(lost)


def events(store: Store, job_id: int, kind: str, limit: int | None = None) -> list[dict]:
    rows = store.job_events(job_id, kind, limit)
    out = [{"ts": r["ts"], **json.loads(r["payload"])} for r in rows]
    return out[::-1] if limit else out


def time_left(store: Store, job: Job) -> float | None:
    """Seconds of training a running job has left: the newest time left its run reported
    (``core.training.train.PlanKeeper``: the plan's, then the measured rate's), counted down since; None
    before training has planned. (It once fell back to the current stage's pace, so the page
    showed the baseline's "about 3 s" as training time, then nothing, then "3 min 58 s".)"""
    if job.state != "running":
        return None
    row = store.last_job_point(job.id, "seconds_left")
    if row is None:
        return None
    return max(0.0, json.loads(row["payload"])["value"] - (time.time() - row["ts"]))


def check_train_config(store: Store, config: dict) -> dict:
    from core.training.config import TrainConfig
    from core.training.validation import for_pair_set
    from core.workspace import models
    train_config = TrainConfig.from_dict(config)
    if train_config.pair_set_id is None:
        raise WorkspaceError("choose a pair set to train on")
    # Refused now, not after the baseline: no split, or too few pairs to spare validation ones.
    held = for_pair_set(store, train_config.pair_set_id, bool(train_config.generated_pairs),
                        train_config.seed)
    n_pairs = min(len(held.train), train_config.max_pairs or len(held.train))
    dim = models.load(train_config.model).get_embedding_dimension()
    train_config.resolved(dim, n_pairs)
    return config


def run_train_job(store: Store, job: Job, reporter: StoreReporter) -> dict:
    from core.measuring.evaluate import (
        RetrievalSet,
        evaluation_label,
        finetuned_label,
        same_measurement,
        save,
    )
    from core.training.config import TrainConfig
    from core.training.finetune import run_experiment
    config = TrainConfig.from_dict(job.config)
    if config.pair_set_id is None:
        raise WorkspaceError("the job names no pair set")
    try:
        pair_set = store.pair_set(config.pair_set_id)
    except WorkspaceError:
        raise WorkspaceError(f"pair set {config.pair_set_id} was deleted after this job was "
                             "queued; start a new job on an existing pair set") from None
    pairs = [(p["query"], p["positive"]) for p in store.pairs(pair_set.id, "train")]
    if not pairs:
        raise WorkspaceError(f"pair set '{pair_set.name}' has no train split; split it first")
    data = RetrievalSet.from_pair_set(store, pair_set.id)
    corpus = [c["text"] for c in store.chunks(pair_set.corpus_id)]
    result = run_experiment(config, pairs, data, job_dir(store, job.id), reporter, store, corpus,
                            resume=job.resume)
    # One entry per base model and test set, labelled by the model's name as every page labels
    # it ("baseline" for the bundled one): a job measuring the same base on the same questions
    # again points at the evaluation already stored.
    base = result.baseline.model
    baseline_id = same_measurement(store, pair_set.id, base, data, result.baseline.dims) \
        or save(store, result.baseline, pair_set.id, evaluation_label(base), job.id)
    out = {**result.to_json(), "baseline_evaluation": baseline_id}
    if result.finetuned:
        out["finetuned_evaluation"] = save(store, result.finetuned, pair_set.id,
                                           finetuned_label(job.id), job.id)
    return out


def run_tune_job(store: Store, job: Job, reporter: StoreReporter) -> dict:
    from core.training.tune import run_job
    return run_job(store, job.config, job.id, job_dir(store, job.id), reporter)


def check_tune_config(store: Store, config: dict) -> dict:
    from core.training.tune import check_config
    return check_config(store, config)


def run_curve_job(store: Store, job: Job, reporter: StoreReporter) -> dict:
    from core.training.curve import run_job
    return run_job(store, job.config, job_dir(store, job.id), reporter)


def check_curve_config(store: Store, config: dict) -> dict:
    from core.training.curve import check_config
    return check_config(store, config)


# "tune": the documents-only run (core.training.tune), a rotation or model chosen without questions;
# "curve": the learning curve (core.training.curve), a fine-tune per share of the questions.
HANDLERS: dict[str, Callable[[Store, Job, StoreReporter], dict]] = {
    "train": run_train_job, "tune": run_tune_job, "curve": run_curve_job}
VALIDATORS: dict[str, Callable[[Store, dict], dict]] = {
    "train": check_train_config, "tune": check_tune_config, "curve": check_curve_config}


# -- what a job uses -------------------------------------------------------------------------
@dataclass(frozen=True)
class Use:
    """Something a job reads while it runs, so no delete may take it from a live job.

    Attributes:
        kind: "run", "pair set" or "corpus", as ``core.using.runs.why_not_delete`` names them.
        ref: the run id (``j3``) or the pair set's or corpus's id.
        why: how the job uses it, finishing "job 3 is running and …".
        needed: whether the job cannot resume without it.
        past: the same in the past tense, for the refusal of a resume ("trained on").
    """
    kind: str
    ref: int | str
    why: str
    needed: bool = False
    past: str = ""


def model_job(store: Store, model: str | None) -> int | None:
    """The job whose model folder ``model`` names, if it is one made in this workspace."""
    if not model:
        return None
    path = Path(model).expanduser().resolve()
    root = (store.files / "jobs").resolve()
    if not path.is_relative_to(root):
        return None
    first = path.relative_to(root).parts[:1]
    return int(first[0]) if first and first[0].isdigit() else None


def _model_use(store: Store, job: Job, why: str) -> list[Use]:
    source = model_job(store, job.config.get("model"))
    return [] if source is None else [Use("run", f"j{source}", why)]


def _train_uses(store: Store, job: Job) -> list[Use]:
    pair_set_id = job.config.get("pair_set_id")
    corpus_id = store.corpus_of_pair_set(pair_set_id)
    corpus = [] if corpus_id is None else [Use("corpus", corpus_id,
                                               "it trains on a pair set of this corpus")]
    return [Use("pair set", pair_set_id, "it trains on this pair set", pair_set_id is not None,
                "trained on"),
            *corpus,
            *_model_use(store, job, "it trains from this run's model")]


def _tune_uses(store: Store, job: Job) -> list[Use]:
    """The corpus, and every pair set of it: the run may generate questions there, judge on
    people's, and is measured on any split one at its end."""
    corpus_id, questions = job.config.get("corpus_id"), job.config.get("questions")
    judged = [] if questions is None else [
        Use("pair set", questions, "it judges its candidates on this pair set", True,
            "judged its candidates on")]
    return [Use("corpus", corpus_id, "it tunes a model for this corpus", True, "tuned a model for"),
            *judged,
            *[Use("pair set", i, "it reads the pair sets of this corpus")
              for i in store.pair_set_ids(corpus_id)],
            *_model_use(store, job, "it starts from this run's model")]


def _curve_uses(store: Store, job: Job) -> list[Use]:
    pair_set_id = job.config.get("pair_set_id")
    corpus_id = store.corpus_of_pair_set(pair_set_id)
    corpus = [] if corpus_id is None else [Use("corpus", corpus_id,
                                               "it measures a learning curve on a pair set of this corpus")]
    return [Use("pair set", pair_set_id, "it measures a learning curve on this pair set",
                pair_set_id is not None, "measured a learning curve on"),
            *corpus, *_model_use(store, job, "it trains from this run's model")]


# Every job kind says what it uses; tests/test_job_rules.py checks each HANDLERS kind has one.
USES: dict[str, Callable[[Store, Job], list[Use]]] = {"train": _train_uses, "tune": _tune_uses,
                                                      "curve": _curve_uses}


def uses(store: Store, job: Job) -> list[Use]:
    """What ``job`` uses (see ``Use``); nothing for a kind that has no handler here (a row
    of a kind this release does not run)."""
    return USES[job.kind](store, job) if job.kind in USES else []


def _exists(store: Store, use: Use) -> bool:
    exists = {"pair set": store.has_pair_set, "corpus": store.has_corpus}.get(use.kind)
    return exists is None or exists(use.ref)


def job_dir(store: Store, job_id: int) -> Path:
    return store.files / "jobs" / str(job_id)
