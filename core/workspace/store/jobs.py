"""The job tables (``jobs``, ``job_events``): every statement ``core.training.jobs`` runs, by name.

A mixin of ``Store`` (see its docstring for why): each method runs on the calling thread's
connection, so one called inside ``store.transaction()`` is part of that transaction, which is
how ``jobs.claim``, ``jobs.recover`` and the rest keep a lock-file check and their writes in one
transaction. The rules (who may claim, what counts as alive) stay in ``core.training.jobs``.
"""
from __future__ import annotations

import json
import sqlite3
import time


class JobRows:
    """Rows of ``jobs`` and ``job_events``; mixed into ``Store``."""

    def job_row(self, job_id: int) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM jobs WHERE id = ?", [job_id])
        return rows[0] if rows else None

    def job_rows(self) -> list[sqlite3.Row]:
        """Every job, newest first."""
        return self.query("SELECT * FROM jobs ORDER BY id DESC")

    def active_job_configs(self, kind: str) -> list[sqlite3.Row]:
        """(id, config) of the queued or running jobs of a kind, oldest first."""
        return self.db.execute("SELECT id, config FROM jobs WHERE kind = ? AND state IN "
                               "('queued', 'running') ORDER BY id", (kind,)).fetchall()

    def add_queued_job(self, kind: str, config: dict) -> int:
        cur = self.db.execute("INSERT INTO jobs (kind, state, config, created) VALUES (?, 'queued', ?, ?)",
                              (kind, json.dumps(config), time.time()))
        return int(cur.lastrowid)

    def queued_job_ids(self, job_id: int | None = None) -> list[int]:
        """The queued jobs, oldest first: all of them, or ``job_id`` alone if it is queued."""
        sql = "SELECT id FROM jobs WHERE state = 'queued'"
        rows = self.db.execute(sql + (" AND id = ?" if job_id is not None else "") + " ORDER BY id",
                               () if job_id is None else (job_id,)).fetchall()
        return [r["id"] for r in rows]

    def running_job_ids(self) -> list[int]:
        return [r["id"] for r in self.db.execute("SELECT id FROM jobs WHERE state = 'running'")]

    def mark_job_running(self, job_id: int, owner: str) -> None:
        """A claimed job starts: running, owned by ``owner``, its clock and heartbeat now."""
        now = time.time()
        self.db.execute("UPDATE jobs SET state = 'running', started = ?, progress = 0, "
                        "status = 'Starting', owner = ?, heartbeat = ? WHERE id = ?",
                        (now, owner, now, job_id))

    def mark_job_ended(self, job_id: int, state: str, result: dict, status: str,
                       keep_progress: bool) -> None:
        """A job's end as ``state`` (succeeded or canceled) with its result; progress goes to 1
        unless ``keep_progress`` (a stop on request keeps how far it got)."""
        self.db.execute(
            "UPDATE jobs SET state = ?, finished = ?, result = ?, status = ?, "
            "progress = CASE WHEN ? THEN progress ELSE 1.0 END WHERE id = ?",
            (state, time.time(), json.dumps(result), status, keep_progress, job_id))

    def mark_job_failed(self, job_id: int, message: str) -> None:
        self.db.execute("UPDATE jobs SET state = 'failed', finished = ?, error = ?, status = ? "
                        "WHERE id = ?", (time.time(), message, "Failed", job_id))

    def mark_job_interrupted(self, job_id: int, why: str) -> None:
        """This process stopped running the job now (its server is stopping)."""
        self.db.execute("UPDATE jobs SET state = 'interrupted', finished = ?, status = ? WHERE id = ?",
                        (time.time(), why, job_id))

    def mark_jobs_lost(self, job_ids: list[int], why: str) -> None:
        """Running jobs whose owner is gone become interrupted, ended at their last sign of
        life, not now: elapsed time must not count the downtime."""
        self.db.executemany("UPDATE jobs SET state = 'interrupted', finished = COALESCE("
                            "(SELECT MAX(ts) FROM job_events e WHERE e.job_id = jobs.id), heartbeat, "
                            "started), status = ? WHERE id = ? AND state = 'running'",
                            [(why, i) for i in job_ids])

    def cancel_queued_job(self, job_id: int) -> None:
        """Cancel the job if it is still queued (a runner may have claimed it meanwhile)."""
        self.db.execute("UPDATE jobs SET state = 'canceled', finished = ? WHERE id = ? AND state = 'queued'",
                        (time.time(), job_id))

    def ask_job_to_stop(self, job_id: int) -> None:
        self.db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))

    def job_cancel_requested(self, job_id: int) -> bool:
        rows = self.query("SELECT cancel_requested FROM jobs WHERE id = ?", [job_id])
        return bool(rows and rows[0][0])

    def requeue_job(self, job_id: int) -> bool:
        """Queue an ended job again to resume; False when it is no longer interrupted, failed
        or canceled (another page resumed it a moment ago)."""
        return bool(self.db.execute(
            "UPDATE jobs SET state = 'queued', cancel_requested = 0, error = NULL, finished = NULL, "
            "resume = 1, owner = NULL WHERE id = ? AND state IN ('interrupted', 'failed', 'canceled')",
            (job_id,)).rowcount)

    def delete_ended_job(self, job_id: int) -> bool:
        """Delete the job's row unless it is queued or running; whether it was deleted."""
        return bool(self.db.execute("DELETE FROM jobs WHERE id = ? AND state NOT IN "
                                    "('queued', 'running')", (job_id,)).rowcount)

    # -- what a running job reports -----------------------------------------------------------
    def add_job_event(self, job_id: int, kind: str, payload: dict) -> None:
        """A log line or chart point, and the heartbeat it is, in one transaction."""
        now = time.time()
        with self.transaction() as db:
            db.execute("INSERT INTO job_events (job_id, ts, kind, payload) VALUES (?, ?, ?, ?)",
                       (job_id, now, kind, json.dumps(payload)))
            db.execute("UPDATE jobs SET heartbeat = ? WHERE id = ?", (now, job_id))

    def start_job_stage(self, job_id: int, status: str) -> None:
        """A new stage: its progress from 0 and its clock (and the heartbeat) from now."""
        now = time.time()
        self.db.execute("UPDATE jobs SET status = ?, progress = 0, stage_started = ?, "
                        "heartbeat = ? WHERE id = ?", (status, now, now, job_id))

    def set_job_progress(self, job_id: int, fraction: float) -> None:
        self.db.execute("UPDATE jobs SET progress = ?, heartbeat = ? WHERE id = ?",
                        (fraction, time.time(), job_id))

    def job_heartbeat(self, job_id: int) -> None:
        self.db.execute("UPDATE jobs SET heartbeat = ? WHERE id = ?", (time.time(), job_id))

    def job_events(self, job_id: int, kind: str, limit: int | None = None) -> list[sqlite3.Row]:
        """(ts, payload) of a job's events of a kind, oldest first; with ``limit``, the newest
        ``limit`` of them, newest first."""
        sql = "SELECT ts, payload FROM job_events WHERE job_id = ? AND kind = ? ORDER BY id"
        return self.query(sql + (" DESC LIMIT ?" if limit else ""),
                          [job_id, kind, *([limit] if limit else [])])

    def last_job_point(self, job_id: int, series: str) -> sqlite3.Row | None:
        """(ts, payload) of the newest chart point of ``series`` the job reported."""
        rows = self.query("SELECT ts, payload FROM job_events WHERE job_id = ? AND kind = 'point' "
                          "AND json_extract(payload, '$.series') = ? "
                          "ORDER BY id DESC LIMIT 1", [job_id, series])
        return rows[0] if rows else None
