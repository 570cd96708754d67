"""Running a job in the foreground: the CLI's ``finetune``, ``train``, ``tune`` and ``resume`` submit a
job as the page would and run it in their own process, so a user gets the same run from either.

Example::

    store = open_workspace()
    job_id, result = run_here(store, "tune", {"corpus_id": 1}, say=print)
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from core.training import jobs
from core.training.runner import Runner
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store


# The kinds ``python -m core resume`` continues from a checkpoint; a curve starts over.
RESUMABLE = ("train", "tune")


def open_workspace() -> Store:
    """The workspace, its jobs whose process has ended marked interrupted first: the check a
    server's runner makes, so the CLI needs no server to notice a dead owner (a SIGKILLed
    ``finetune`` stayed "running", and ``delete run`` refused it for good)."""
    store = Store()
    jobs.recover(store)
    return store


def run_here(store: Store, kind: str, config: dict, say: Callable[[str], None],
             show_status: bool = False) -> tuple[int, dict]:
    """Submit a job as the page would and run it in this process; returns its id and result.
    Ctrl-C asks it to stop at its next step, like the page's Cancel button.

    Args:
        say: where a line for the person at the terminal goes (started, canceling).
        show_status: also pass on each new status line of the job (for a terminal, not a pipe).
    """
    job_id, _ = jobs.request(store, kind, config)
    # Claim it before a server's runner on the same workspace can; a twin already running
    # elsewhere is followed there, not trained twice.
    if jobs.claim(store, job_id) is None:
        raise WorkspaceError(f"job {job_id} with the same settings is already running in "
                             "another process; follow it on the Fine-tune page")
    return job_id, run_claimed(store, job_id, say, show_status)


def run_claimed(store: Store, job_id: int, say: Callable[[str], None], show_status: bool = False) -> dict:
    """Run a job this process has claimed to its end, here; returns its result. Ctrl-C asks it
    to stop at its next step; a failure or a cancel is an error with the job's own words."""
    done = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            Runner(store, give_up_seconds=10).run_one(jobs.get(store, job_id))
        except BaseException as error:  # its end could not be recorded (a full disk): say why
            failure.append(error)
        finally:
            done.set()

    # Wait by sleeping, not Thread.join: a join interrupted by Ctrl-C can report a live thread
    # as finished (CPython gh-90882), and the process would then exit under the running job.
    threading.Thread(target=work, name=f"job-{job_id}").start()
    say(f"job {job_id} started; Ctrl-C cancels it")
    shown = ""
    while not done.is_set():
        try:
            time.sleep(0.5)
        except KeyboardInterrupt:
            if jobs.get(store, job_id).state == "running":
                say(f"\ncanceling job {job_id} at its next step…")
                jobs.cancel(store, job_id)
            continue
        status = jobs.get(store, job_id).status
        if status != shown and show_status:
            say(status)
            shown = status
    if failure:
        raise failure[0]
    return finished_result(store, job_id)


def finished_result(store: Store, job_id: int) -> dict:
    """A job's result once it has ended; a failure or a cancel is an error that says what is
    kept and how to go on."""
    job = jobs.get(store, job_id)
    if job.state == "failed":
        again = (f"resume it with python -m core resume j{job_id}" if job.kind in RESUMABLE
                 else "fix that and start it again")
        raise WorkspaceError(f"job {job_id} failed: {job.error}; {again}")
    if job.state == "canceled":
        kept = ("what was saved is kept (python -m core runs list shows it as "
                f"j{job_id})" if job.result.get("model_path") else
                f"it kept nothing; python -m core resume j{job_id} starts it again"
                if job.kind in RESUMABLE else "the points it measured are kept with the job")
        error = WorkspaceError(f"job {job_id} canceled; {kept}")
        error.exit_code = 130
        raise error
    return job.result
