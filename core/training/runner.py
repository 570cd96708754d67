"""The runner: one thread per server process that claims the next queued job, runs it with its
kind's handler (``jobs.HANDLERS``), beats its heartbeat, records how it ended, and every
``RECOVER_SECONDS`` marks interrupted the jobs whose owner is gone.

Example::

    runner = Runner(store).start()   # app.py starts one per server
    runner.stop()
"""
from __future__ import annotations

import errno
import sqlite3
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TypeVar

from core.training.jobs import (HANDLERS, HEARTBEAT_SECONDS, MAX_BACKOFF_SECONDS, RECOVER_SECONDS,
                                SHUTDOWN_WAIT_SECONDS, Job, claim, fail, finish, holds, interrupt, job_dir,
                                recover)
from core.training.reporting import StoreReporter, explain_failure
from core.workspace.errors import Canceled, WorkspaceError, explain_db_error
from core.workspace.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


class Runner:
    """Runs queued jobs one at a time in a daemon thread that no error can end: a failure to
    reach the database is logged and retried with a growing pause, and a workspace that cannot
    be written leaves the runner idle. A second thread marks interrupted, every
    ``recover_seconds``, the jobs of any process on this workspace that has ended."""

    def __init__(self, store: Store, poll_seconds: float = 1.0,
                 give_up_seconds: float | None = None, recover_seconds: float = RECOVER_SECONDS):
        """Args:
            store: the workspace.
            poll_seconds: how often an idle runner looks for queued jobs.
            give_up_seconds: how long to retry recording a job's end before raising the
                database error. None (a server) retries until the runner stops, so the job's
                end is recorded once disk space is freed; the CLI, in the foreground, gives up
                and says why.
            recover_seconds: how often to look for jobs whose owner is gone.
        """
        self.store, self.poll, self.give_up = store, poll_seconds, give_up_seconds
        self.recover_every = recover_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._read_only_told = False

    def start(self) -> Runner:
        """Start the threads, or start new ones if the previous ones have died."""
        if self.alive():
            return self
        self._stop.clear()
        # Before concurrent.futures refuses new work at interpreter exit (it registers the
        # same kind of hook, and they run last-registered first), so a job that fails because
        # the server is stopping is recorded as interrupted, not failed. Where its hook runs
        # first after all, interpreter_stopping() tells.
        threading._register_atexit(self._shutting_down)
        self._thread = threading.Thread(target=self._loop, name="ragtune-jobs", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch, name="ragtune-recover", daemon=True).start()
        return self

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)

    def _shutting_down(self) -> None:
        self._stop.set()
        self._wake.set()
        self._idle.wait(SHUTDOWN_WAIT_SECONDS)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                recover(self.store)
            except sqlite3.Error as error:  # read-only or locked: the next round retries
                log.debug("job runner: recovery skipped (%s)", error)
            self._stop.wait(self.recover_every)

    def _loop(self) -> None:
        pause = self.poll
        while not self._stop.is_set():
            try:
                job = claim(self.store)
                pause = self.poll
                if job is not None:
                    self.run_one(job)
                    continue
            except Exception as error:  # the runner must outlive a locked or failing database
                pause = min(pause * 2, MAX_BACKOFF_SECONDS)
                if _read_only(error):  # nothing will change until someone fixes it: say it once
                    if not self._read_only_told:
                        log.warning("job runner idle: %s", explain_db_error(error, self.store.path)
                                    if isinstance(error, sqlite3.Error) else error)
                    self._read_only_told = True
                    pause = MAX_BACKOFF_SECONDS
                else:
                    log.exception("job runner: retrying in %.1f s", pause)
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
        """Run a job this process has claimed (``claim``) to its end state."""
        if not holds(self.store, job.id):
            raise WorkspaceError(f"job {job.id} is not claimed by this process; claim it first")
        self._idle.clear()
        reporter = StoreReporter(self.store, job.id)
        done = threading.Event()
        threading.Thread(target=self._beat, args=(reporter, done), daemon=True).start()
        try:
            result = HANDLERS[job.kind](self.store, job, reporter)
            canceled = reporter.should_stop()
            self._retry(lambda: finish(self.store, job.id, result, canceled),
                        f"record the end of job {job.id}")
        except Canceled:  # stopped on request before it kept anything
            self._retry(lambda: finish(self.store, job.id, {}, canceled=True),
                        f"record the end of job {job.id}")
        except BaseException as error:  # a job must never take the runner down with it
            if self._stop.is_set() or interpreter_stopping():  # the server is stopping: not its fault
                self._retry(lambda: interrupt(self.store, job.id),
                            f"record the interruption of job {job.id}")
                return
            message = explain_failure(error, job.config, job_dir(self.store, job.id),
                                      self.store.path)
            trace = None if isinstance(error, WorkspaceError) else traceback.format_exc()[-4000:]
            self._retry(lambda: fail(self.store, job.id, message, trace),
                        f"record the failure of job {job.id}")
        finally:
            done.set()
            self._idle.set()


def interpreter_stopping() -> bool:
    """Whether the interpreter has begun to exit: concurrent.futures raises its flag first
    thing in its exit hook, before it refuses work to the pools a job may be using."""
    futures = sys.modules.get("concurrent.futures.thread")
    return bool(getattr(futures, "_shutdown", False)) or sys.is_finalizing()


def _read_only(error: BaseException) -> bool:
    """Whether ``error`` says the workspace cannot be written at all."""
    if isinstance(error, OSError) and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return True
    text = str(error).lower()
    return any(words in text for words in ("readonly", "read-only", "unable to open"))
