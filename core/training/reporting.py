"""What a background job tells the pages: ``StoreReporter`` writes its status, log lines and chart
points to the workspace (every write also a heartbeat), and ``explain_failure`` turns what ended
it into one line a person can act on."""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.workspace.errors import WorkspaceError, explain_db_error, explain_out_of_room, is_out_of_room
from core.workspace.store import Store

log = logging.getLogger(__name__)


class StoreReporter:
    """A job's progress, written to the workspace for the pages to read; every write is also a
    heartbeat, the job's last sign of life should its process end without a word.

    A progress write that finds the workspace locked past the busy timeout (another process
    writing for that long) is skipped with a warning: a lost loss point must not end a
    training run. Any other failure to write (a full disk, a read-only folder) ends the job.
    """

    def __init__(self, store: Store, job_id: int):
        self.store, self.job_id = store, job_id

    @contextmanager
    def _unless_locked(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as error:
            text = str(error).lower()
            if "locked" not in text and "busy" not in text:
                raise
            log.warning("job %s: %s not written, the workspace stayed locked", self.job_id, what)

    def _event(self, kind: str, payload: dict) -> None:
        with self._unless_locked(kind):
            self.store.add_job_event(self.job_id, kind, payload)

    def status(self, text: str) -> None:
        """A new stage: its progress starts from 0 and its clock from now."""
        with self._unless_locked("status"):
            self.store.start_job_stage(self.job_id, text)
        self.log(text)

    def progress(self, fraction: float) -> None:
        with self._unless_locked("progress"):
            self.store.set_job_progress(self.job_id, fraction)

    def heartbeat(self) -> None:
        self.store.job_heartbeat(self.job_id)

    def log(self, line: str) -> None:
        self._event("log", {"line": line})

    def point(self, series: str, step: int, value: float, epoch: float | None = None) -> None:
        self._event("point", {"series": series, "step": step, "value": value, "epoch": epoch})

    def should_stop(self) -> bool:
        return self.store.job_cancel_requested(self.job_id)


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
