"""Background jobs: one runner thread per server process, one job at a time, the rest queued.

The workspace is the only channel between a job and the pages: the runner writes every state
change, status line, log line and chart point to SQLite, and pages poll it. Nothing lives only
in memory, so closing the browser changes nothing, and after a server restart the jobs that were
running are marked ``interrupted`` and can be resumed from their last checkpoint.

States: queued → running → succeeded | failed | canceled; running → interrupted (its process
is gone). Cancel of a queued job is immediate; a running job stops at its next training step.

Each running job names its owner (host, pid and process start time) and carries a heartbeat, so
a second server or the CLI on the same workspace can tell a live job from an orphaned one.
"""
from __future__ import annotations

import json
import logging
import socket
import sqlite3
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import psutil

from .errors import WorkspaceError, explain_db_error, explain_out_of_room, is_out_of_room
from .store import Store

log = logging.getLogger(__name__)
FINISHED = ("succeeded", "failed", "canceled", "interrupted")
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 60.0  # no heartbeat for this long: the owner is hung or on a lost host
MAX_BACKOFF_SECONDS = 30.0
T = TypeVar("T")


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
               row["status"], row["error"], json.loads(row["result"]), bool(row["resume"]),
               row["owner"], row["heartbeat"])


def this_process() -> str:
    """``host:pid:start-time``: the start time tells a live process from a later one that
    happens to reuse the pid."""
    started = psutil.Process().create_time()
    return f"{socket.gethostname()}:{psutil.Process().pid}:{started:.0f}"


def owner_alive(owner: str | None) -> bool | None:
    """Whether the process named by ``owner`` still runs; None when that cannot be told (another
    host, or no owner recorded), leaving the heartbeat to decide."""
    if not owner:
        return None
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return None
    pid, _, started = rest.partition(":")
    try:
        return f"{psutil.Process(int(pid)).create_time():.0f}" == started
    except (psutil.Error, ValueError):
        return False


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
                     "finished = NULL, resume = 1, owner = NULL WHERE id = ?", (job_id,))


def orphaned(job: Job, now: float | None = None) -> bool:
    """A running job whose owner process is gone, or that has shown no life for a minute
    (rows from before owners were recorded have no heartbeat and count from their start)."""
    stale = (now or time.time()) - (job.heartbeat or job.started or 0) > STALE_SECONDS
    return owner_alive(job.owner) is False or stale


def recover(store: Store) -> int:
    """At start-up: mark interrupted the running jobs no live process owns any more; a job
    another server (or the CLI) is running on this workspace is left alone."""
    with store.transaction() as db:
        running = [_job(r) for r in db.execute("SELECT * FROM jobs WHERE state = 'running'")]
        lost = [job.id for job in running if orphaned(job)]
        # It stopped at its last sign of life, not now: elapsed time must not count the downtime.
        db.executemany("UPDATE jobs SET state = 'interrupted', finished = COALESCE("
                       "(SELECT MAX(ts) FROM job_events e WHERE e.job_id = jobs.id), heartbeat, "
                       "started), status = 'Interrupted: its server stopped; resume to continue "
                       "from the last checkpoint' WHERE id = ? AND state = 'running'",
                       [(i,) for i in lost])
    return len(lost)


def events(store: Store, job_id: int, kind: str, limit: int | None = None) -> list[dict]:
    sql = "SELECT ts, payload FROM job_events WHERE job_id = ? AND kind = ? ORDER BY id"
    rows = store.query(sql + (" DESC LIMIT ?" if limit else ""),
                       [job_id, kind, *([limit] if limit else [])])
    out = [{"ts": r["ts"], **json.loads(r["payload"])} for r in rows]
    return out[::-1] if limit else out


def time_left(store: Store, job: Job) -> float | None:
    """Seconds of training a running job has left, from the rate its run measured: the newest
    time left it reported (``core.train.PlanKeeper``), counted down since; before training has
    timed its first steps, the job's own guess from its progress."""
    if job.state != "running":
        return None
    rows = store.query("SELECT ts, payload FROM job_events WHERE job_id = ? AND kind = 'point' "
                       "AND json_extract(payload, '$.series') = 'seconds_left' "
                       "ORDER BY id DESC LIMIT 1", [job.id])
    if not rows:
        return job.eta
    return max(0.0, json.loads(rows[0]["payload"])["value"] - (time.time() - rows[0]["ts"]))


class StoreReporter:
    """A job's progress, written to the workspace for the pages to read; every write is also a
    heartbeat, the sign of life that keeps other processes from calling the job interrupted."""

    def __init__(self, store: Store, job_id: int):
        self.store, self.job_id = store, job_id

    def _event(self, kind: str, payload: dict) -> None:
        now = time.time()
        with self.store.transaction() as db:
            db.execute("INSERT INTO job_events (job_id, ts, kind, payload) VALUES (?, ?, ?, ?)",
                       (self.job_id, now, kind, json.dumps(payload)))
            db.execute("UPDATE jobs SET heartbeat = ? WHERE id = ?", (now, self.job_id))

    def status(self, text: str) -> None:
        self.store.db.execute("UPDATE jobs SET status = ?, heartbeat = ? WHERE id = ?",
                              (text, time.time(), self.job_id))
        self.log(text)

    def progress(self, fraction: float) -> None:
        self.store.db.execute("UPDATE jobs SET progress = ?, heartbeat = ? WHERE id = ?",
                              (fraction, time.time(), self.job_id))

    def heartbeat(self) -> None:
        self.store.db.execute("UPDATE jobs SET heartbeat = ? WHERE id = ?", (time.time(), self.job_id))

    def log(self, line: str) -> None:
        self._event("log", {"line": line})

    def point(self, series: str, step: int, value: float, epoch: float | None = None) -> None:
        self._event("point", {"series": series, "step": step, "value": value, "epoch": epoch})

    def should_stop(self) -> bool:
        rows = self.store.query("SELECT cancel_requested FROM jobs WHERE id = ?", [self.job_id])
        return bool(rows and rows[0][0])


def explain_failure(error: BaseException, config: dict, folder: Path | None = None,
                    database: Path | None = None) -> str:
    """One line a person can act on.

    Args:
        error: what ended the job.
        config: the job's config, for advice on what to change.
        folder: where the job writes its files, named when the disk is full.
        database: the workspace database, named when it failed.
    """
    if isinstance(error, WorkspaceError):
        return str(error)
    if isinstance(error, sqlite3.Error) and database:
        return explain_db_error(error, database)
    if is_out_of_room(error) and folder:
        return explain_out_of_room("the job's files", folder)
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
    train_config = TrainConfig.from_dict(config)
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
    baseline_id = save(store, result.baseline, pair_set.id, "baseline", job.id)
    out = {**result.to_json(), "baseline_evaluation": baseline_id}
    if result.finetuned:
        out["finetuned_evaluation"] = save(store, result.finetuned, pair_set.id,
                                           f"fine-tuned (job {job.id})", job.id)
    return out


HANDLERS: dict[str, Callable[[Store, Job, StoreReporter], dict]] = {"train": run_train_job}
VALIDATORS: dict[str, Callable[[Store, dict], dict]] = {"train": check_train_config}


class Runner:
    """Runs queued jobs one at a time in a daemon thread that no error can end: a failure to
    reach the database is logged and retried with a growing pause."""

    def __init__(self, store: Store, poll_seconds: float = 1.0,
                 give_up_seconds: float | None = None):
        """Args:
            store: the workspace.
            poll_seconds: how often an idle runner looks for queued jobs.
            give_up_seconds: how long to retry recording a job's end before raising the
                database error. None (a server) retries until the runner stops, so the job's
                end is recorded once disk space is freed; the CLI, in the foreground, gives up
                and says why.
        """
        self.store, self.poll, self.give_up = store, poll_seconds, give_up_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Runner":
        """Start the thread, or start a new one if the previous one has died."""
        if self.alive():
            return self
        self._stop.clear()
        try:
            recover(self.store)
        except sqlite3.Error:  # the loop retries the database; recovery can wait for a restart
            log.exception("could not check for interrupted jobs")
        self._thread = threading.Thread(target=self._loop, name="ragtune-jobs", daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def _claim(self) -> Job | None:
        now = time.time()
        with self.store.transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = 'running', started = ?, progress = 0, "
                       "status = 'Starting' WHERE id = ?", (now, row["id"]))
            _own(db, row["id"])
        return get(self.store, row["id"])

    def _loop(self) -> None:
        pause = self.poll
        while not self._stop.is_set():
            try:
                job = self._claim()
                pause = self.poll
                if job is not None:
                    self.run_one(job)
                    continue
            except Exception:  # the runner must outlive a locked or failing database
                log.exception("job runner: retrying in %.1f s", pause)
                pause = min(pause * 2, MAX_BACKOFF_SECONDS)
            self._wake.wait(pause)
            self._wake.clear()

    def _retry(self, write: Callable[[], T], what: str) -> T:
        """Run a write until it succeeds: the final state of a job must reach the workspace,
        or the job would look running forever."""
        pause = 0.2
        deadline = None if self.give_up is None else time.monotonic() + self.give_up
        while True:
            try:
                return write()
            except sqlite3.Error as error:
                if deadline is not None and time.monotonic() > deadline:
                    raise
                log.warning("job runner: could not %s (%s); retrying in %.1f s", what,
                            explain_db_error(error, self.store.path), pause)
                if self._stop.wait(pause):
                    raise
                pause = min(pause * 2, MAX_BACKOFF_SECONDS)

    def _beat(self, reporter: StoreReporter, done: threading.Event) -> None:
        """Heartbeats while a long step (encoding, saving) reports nothing."""
        while not done.wait(HEARTBEAT_SECONDS):
            try:
                reporter.heartbeat()
            except sqlite3.Error:
                log.warning("job %s: heartbeat not written", reporter.job_id)

    def run_one(self, job: Job) -> None:
        """Run a claimed job to its end state; the job is (again) marked as this process's, as
        callers that claim a job themselves (the finetune command) do not record an owner."""
        self._retry(lambda: _own(self.store.db, job.id), f"take ownership of job {job.id}")
        reporter = StoreReporter(self.store, job.id)
        done = threading.Event()
        threading.Thread(target=self._beat, args=(reporter, done), daemon=True).start()
        try:
            result = HANDLERS[job.kind](self.store, job, reporter)
            state = "canceled" if reporter.should_stop() else "succeeded"
            finished = state == "succeeded"
            self._retry(lambda: self.store.db.execute(  # a canceled job keeps its progress
                "UPDATE jobs SET state = ?, finished = ?, result = ?, status = ?, "
                "progress = CASE WHEN ? THEN 1.0 ELSE progress END WHERE id = ?",
                (state, time.time(), json.dumps(result),
                 "Done" if finished else "Canceled; what was saved is kept", finished, job.id)),
                f"record the end of job {job.id}")
        except BaseException as error:  # a job must never take the runner down with it
            message = explain_failure(error, job.config, job_dir(self.store, job.id),
                                      self.store.path)
            trace = None if isinstance(error, WorkspaceError) else traceback.format_exc()[-4000:]
            self._retry(lambda: self._record_failure(reporter, message, trace),
                        f"record the failure of job {job.id}")
        finally:
            done.set()

    def _record_failure(self, reporter: StoreReporter, message: str, trace: str | None) -> None:
        with self.store.transaction() as db:
            reporter.log("failed: " + message)
            if trace:
                reporter.log(trace)
            db.execute("UPDATE jobs SET state = 'failed', finished = ?, error = ?, status = ? "
                       "WHERE id = ?", (time.time(), message, "Failed", reporter.job_id))


def _own(db, job_id: int) -> None:
    db.execute("UPDATE jobs SET owner = ?, heartbeat = ? WHERE id = ?",
               (this_process(), time.time(), job_id))


def job_dir(store: Store, job_id: int) -> Path:
    return store.files / "jobs" / str(job_id)
