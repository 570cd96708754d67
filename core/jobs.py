"""Background jobs: one runner thread per server process, one job at a time, the rest queued.

The workspace is the only channel between a job and the pages: the runner writes every state
change, status line, log line and chart point to SQLite, and pages poll it. Nothing lives only
in memory, so closing the browser changes nothing, and after a server restart the jobs that were
running are marked ``interrupted`` and can be resumed from their last checkpoint.

States: queued → running → succeeded | failed | canceled; running → interrupted (restart).
Cancel of a queued job is immediate; a running job stops at its next training step.
"""
from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .store import Store, WorkspaceError

FINISHED = ("succeeded", "failed", "canceled", "interrupted")


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

    @property
    def elapsed(self) -> float:
        if not self.started:
            return 0.0
        return (self.finished or time.time()) - self.started

    @property
    def eta(self) -> float | None:
        if self.state != "running" or self.progress <= 0.02:
            return None
        return self.elapsed * (1 - self.progress) / self.progress


def _job(row) -> Job:
    return Job(row["id"], row["kind"], row["state"], json.loads(row["config"]), row["created"],
               row["started"], row["finished"], bool(row["cancel_requested"]), row["progress"],
               row["status"], row["error"], json.loads(row["result"]))


def submit(store: Store, kind: str, config: dict) -> int:
    """Validate the config now, so a mistake is reported before anything is queued."""
    if kind not in HANDLERS:
        raise WorkspaceError(f"unknown job kind {kind!r}")
    config = VALIDATORS[kind](store, config)
    cur = store.db.execute("INSERT INTO jobs (kind, state, config, created) VALUES (?, 'queued', ?, ?)",
                           (kind, json.dumps(config), time.time()))
    return int(cur.lastrowid)


def get(store: Store, job_id: int) -> Job:
    rows = store.query("SELECT * FROM jobs WHERE id = ?", [job_id])
    if not rows:
        raise WorkspaceError(f"no job {job_id}")
    return _job(rows[0])


def all_jobs(store: Store) -> list[Job]:
    return [_job(r) for r in store.query("SELECT * FROM jobs ORDER BY id DESC")]


def cancel(store: Store, job_id: int) -> str:
    """Cancel a queued job now, or ask a running one to stop; returns the resulting state."""
    job = get(store, job_id)
    if job.state == "queued":
        store.db.execute("UPDATE jobs SET state = 'canceled', finished = ? WHERE id = ? AND state = 'queued'",
                         (time.time(), job_id))
    elif job.state == "running":
        store.db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
    else:
        raise WorkspaceError(f"job {job_id} has already ended ({job.state})")
    return get(store, job_id).state


def resume(store: Store, job_id: int) -> None:
    """Queue an interrupted, failed or canceled job again; training continues from its last
    saved checkpoint."""
    job = get(store, job_id)
    if job.state not in ("interrupted", "failed", "canceled"):
        raise WorkspaceError(f"job {job_id} is {job.state}; only an interrupted, failed or "
                             "canceled job can be resumed")
    store.db.execute("UPDATE jobs SET state = 'queued', cancel_requested = 0, error = NULL, "
                     "finished = NULL, config = ? WHERE id = ?",
                     (json.dumps({**job.config, "resume": True}), job_id))


def recover(store: Store) -> int:
    """At start-up: jobs left running by a previous process can no longer be running."""
    # It stopped at its last sign of life, not now: elapsed time must not count the downtime.
    cur = store.db.execute("UPDATE jobs SET state = 'interrupted', finished = COALESCE("
                           "(SELECT MAX(ts) FROM job_events e WHERE e.job_id = jobs.id), started), "
                           "status = 'Interrupted by a server restart: resume to continue from the "
                           "last checkpoint' WHERE state = 'running'")
    return cur.rowcount


def events(store: Store, job_id: int, kind: str, limit: int | None = None) -> list[dict]:
    sql = "SELECT ts, payload FROM job_events WHERE job_id = ? AND kind = ? ORDER BY id"
    rows = store.query(sql + (" DESC LIMIT ?" if limit else ""),
                       [job_id, kind, *([limit] if limit else [])])
    out = [{"ts": r["ts"], **json.loads(r["payload"])} for r in rows]
    return out[::-1] if limit else out


class StoreReporter:
    """A job's progress, written to the workspace for the pages to read."""

    def __init__(self, store: Store, job_id: int):
        self.store, self.job_id = store, job_id

    def _event(self, kind: str, payload: dict) -> None:
        self.store.db.execute("INSERT INTO job_events (job_id, ts, kind, payload) VALUES (?, ?, ?, ?)",
                              (self.job_id, time.time(), kind, json.dumps(payload)))

    def status(self, text: str) -> None:
        self.store.db.execute("UPDATE jobs SET status = ? WHERE id = ?", (text, self.job_id))
        self.log(text)

    def progress(self, fraction: float) -> None:
        self.store.db.execute("UPDATE jobs SET progress = ? WHERE id = ?", (fraction, self.job_id))

    def log(self, line: str) -> None:
        self._event("log", {"line": line})

    def point(self, series: str, step: int, value: float, epoch: float | None = None) -> None:
        self._event("point", {"series": series, "step": step, "value": value, "epoch": epoch})

    def should_stop(self) -> bool:
        rows = self.store.query("SELECT cancel_requested FROM jobs WHERE id = ?", [self.job_id])
        return bool(rows and rows[0][0])


def explain_failure(error: BaseException, config: dict) -> str:
    """One line a person can act on."""
    if isinstance(error, WorkspaceError):
        return str(error)
    text = str(error)
    if isinstance(error, MemoryError) or "out of memory" in text.lower():
        batch = config.get("batch_size", 32)
        return (f"ran out of memory at batch size {batch}: try batch size {max(2, batch // 2)}, "
                "a shorter max_seq_length, or the cached_mnrl loss (big batches in little memory)")
    first = text.splitlines()[0][:200] if text else ""
    return f"{type(error).__name__}: {first}"


def check_train_config(store: Store, config: dict) -> dict:
    from . import models
    from .train import TrainConfig
    train_config = TrainConfig.from_dict({k: v for k, v in config.items() if k != "resume"})
    if train_config.pair_set_id is None:
        raise WorkspaceError("choose a pair set to train on")
    pair_set = store.pair_set(train_config.pair_set_id)
    n_pairs = len(store.pairs(pair_set.id, "train"))
    if not n_pairs or not store.split_counts(pair_set.id).get("test"):
        raise WorkspaceError(f"pair set '{pair_set.name}' needs a train/test split first "
                             "(Pairs page, or python -m core pairs split)")
    n_pairs = min(n_pairs, train_config.max_pairs or n_pairs)
    dim = models.load(train_config.model).get_embedding_dimension()
    train_config.resolved(dim, n_pairs)
    return config


def run_train_job(store: Store, job: Job, reporter: StoreReporter) -> dict:
    from .evaluate import RetrievalSet, save
    from .finetune import run_experiment
    from .train import TrainConfig
    settings = {k: v for k, v in job.config.items() if k != "resume"}
    config = TrainConfig.from_dict(settings)
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
                            resume=bool(job.config.get("resume")))
    baseline_id = save(store, result.baseline, pair_set.id, "baseline", job.id)
    out = {**result.to_json(), "baseline_evaluation": baseline_id}
    if result.finetuned:
        out["finetuned_evaluation"] = save(store, result.finetuned, pair_set.id,
                                           f"fine-tuned (job {job.id})", job.id)
    return out


HANDLERS: dict[str, Callable[[Store, Job, StoreReporter], dict]] = {"train": run_train_job}
VALIDATORS: dict[str, Callable[[Store, dict], dict]] = {"train": check_train_config}


class Runner:
    """Runs queued jobs one at a time in a daemon thread."""

    def __init__(self, store: Store, poll_seconds: float = 1.0):
        self.store, self.poll = store, poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Runner":
        recover(self.store)
        self._thread = threading.Thread(target=self._loop, name="ragtune-jobs", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def _claim(self) -> Job | None:
        with self.store.transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = 'running', started = ?, progress = 0, "
                       "status = 'Starting' WHERE id = ?", (time.time(), row["id"]))
        return get(self.store, row["id"])

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self._claim()
            if job is None:
                self._wake.wait(self.poll)
                self._wake.clear()
                continue
            self.run_one(job)

    def run_one(self, job: Job) -> None:
        reporter = StoreReporter(self.store, job.id)
        try:
            result = HANDLERS[job.kind](self.store, job, reporter)
            state = "canceled" if reporter.should_stop() else "succeeded"
            done = state == "succeeded"
            self.store.db.execute(  # a canceled job keeps the progress it reached
                "UPDATE jobs SET state = ?, finished = ?, result = ?, status = ?, "
                "progress = CASE WHEN ? THEN 1.0 ELSE progress END WHERE id = ?",
                (state, time.time(), json.dumps(result),
                 "Done" if done else "Canceled; what was saved is kept", done, job.id))
        except BaseException as error:  # a job must never take the runner down with it
            message = explain_failure(error, job.config)
            reporter.log("failed: " + message)
            if not isinstance(error, WorkspaceError):
                reporter.log(traceback.format_exc()[-4000:])
            self.store.db.execute("UPDATE jobs SET state = 'failed', finished = ?, error = ?, "
                                  "status = ? WHERE id = ?",
                                  (time.time(), message, "Failed", job.id))


def job_dir(store: Store, job_id: int) -> Path:
    return store.files / "jobs" / str(job_id)
