"""The job runner with real (tiny) training runs: queue, cancel, failure, restart and resume;
and a runner that outlives a locked database, and job ownership across processes."""
import logging
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.documents.beir import load_demo
from core.measuring.evaluate import load_evaluations
from core.training import jobs, reporting
from core.training.runner import Runner
from core.workspace.store import Store, WorkspaceError

TINY = {"epochs": 1, "batch_size": 8, "max_seq_length": 64, "dims": [384, 64], "max_pairs": 24}


@pytest.fixture
def pair_set_id(store, count):
    return load_demo(store, count, limit=60)[1]


def wait_for(store, job_id, states, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.get(store, job_id)
        if job.state in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {jobs.get(store, job_id).state}")


@pytest.mark.slow
def test_a_job_trains_evaluates_and_stores_both_results(store, pair_set_id):
    job_id = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id})
    runner = Runner(store)
    runner.run_one(jobs.claim(store))
    job = jobs.get(store, job_id)
    assert job.state == "succeeded", job.error
    assert job.progress == 1.0
    assert set(job.result["finetuned"]) == {"384", "64"}
    model = Path(job.result["model_path"])
    assert (model / "ragtune.json").is_file() and "Fine-tuned with ragtune" in (model / "README.md").read_text()
    labels = [e.label for e in load_evaluations(store, pair_set_id)]
    assert labels == ["baseline", f"fine-tuned (job {job_id})"]
    points = jobs.events(store, job_id, "point")
    assert any(p["series"] == "loss" for p in points)
    assert any(p["series"] == "ndcg@10/64" for p in points)


@pytest.mark.slow
def test_jobs_queue_one_at_a_time_and_a_queued_job_cancels_at_once(store, pair_set_id):
    runner = Runner(store, poll_seconds=0.1).start()
    try:
        first = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, "max_pairs": 48,
                                             "epochs": 2})
        second = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id})
        third = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, "max_pairs": 16})
        runner.wake()
        wait_for(store, first, {"running"})
        assert jobs.get(store, second).state == "queued"  # waits its turn, not lost
        assert jobs.cancel(store, third) == "canceled"
        # A running job stops at its next step and keeps what it saved.
        while jobs.get(store, first).progress == 0:
            time.sleep(0.1)
        jobs.cancel(store, first)
        job = wait_for(store, first, jobs.FINISHED)
        assert job.state == "canceled" and job.progress < 1
        assert Path(job.result["model_path"]).is_dir()
        assert wait_for(store, second, jobs.FINISHED).state == "succeeded"
        assert jobs.get(store, third).state == "canceled" and jobs.get(store, third).started is None
    finally:
        runner.stop()
    with pytest.raises(WorkspaceError, match="already ended"):
        jobs.cancel(store, third)


def test_bad_configs_are_refused_before_anything_is_queued(store, pair_set_id):
    for change, message in (({"batch_size": 500, "max_pairs": None}, "larger than the"),
                            ({"dims": [64, 384]}, "largest to smallest"),
                            ({"dims": [512]}, "outside 1..384"),
                            ({"loss": "triplet"}, "loss must be one of"),
                            ({"epochs": 0}, "epochs 0 is out of range"),
                            ({"max_pairs": 1}, "max_pairs 1 is out of range"),
                            ({"budget_minutes": float("nan")}, "budget_minutes nan"),
                            ({"seed": -1}, "seed -1 is out of range"),
                            ({"pair_set_id": 2**63}, "pair_set_id .* is out of range"),
                            ({"learning_rate_typo": 1}, "unknown setting")):
        with pytest.raises(WorkspaceError, match=message):
            jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, **change})
    assert jobs.all_jobs(store) == []


def test_a_pair_set_under_a_queued_job_cannot_be_deleted(store, pair_set_id):
    from core.using import runs
    waiting = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id})
    with pytest.raises(WorkspaceError, match=f"job {waiting} is queued and it trains on this pair set"):
        runs.delete_pair_set(store, pair_set_id)
    assert jobs.get(store, waiting).state == "queued" and store.pair_set(pair_set_id)


def test_a_second_identical_request_is_the_same_job_and_a_queued_job_knows_its_place(store, pair_set_id):
    first, new = jobs.request(store, "train", {**TINY, "pair_set_id": pair_set_id})
    again, new_again = jobs.request(store, "train", {"pair_set_id": pair_set_id, **TINY})
    other = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, "epochs": 2})
    assert new and not new_again and again == first and other != first
    assert jobs.queue_positions(store) == {first: 1, other: 2}
    jobs.cancel(store, first)
    assert jobs.queue_positions(store) == {other: 1}
    assert jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id}) not in (first, other)


@pytest.mark.slow
def test_a_restart_marks_running_jobs_interrupted_and_resume_continues(store, pair_set_id):
    job_id = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, "epochs": 3,
                                          "max_pairs": 48})
    runner = Runner(store)
    job = jobs.claim(store)
    checkpoints = jobs.job_dir(store, job_id) / "checkpoints"

    def stop_after_the_first_checkpoint():
        while not any(checkpoints.glob("checkpoint-*")):
            time.sleep(0.05)
        jobs.cancel(Store(store.home), job_id)
    watcher = threading.Thread(target=stop_after_the_first_checkpoint, daemon=True)
    watcher.start()
    runner.run_one(job)  # stops in its second epoch, keeping the first epoch's checkpoint
    assert jobs.get(store, job_id).state == "canceled" and any(checkpoints.glob("checkpoint-*"))
    # Simulate a server that died mid-run: the row still says running, and no process holds
    # the job's lock.
    store.db.execute("UPDATE jobs SET state = 'running' WHERE id = ?", (job_id,))
    restarted = Runner(Store(store.home))
    assert jobs.recover(restarted.store) == 1
    interrupted = jobs.get(store, job_id)
    assert interrupted.state == "interrupted"
    last_event = max(e["ts"] for kind in ("log", "point") for e in jobs.events(store, job_id, kind))
    assert interrupted.finished == last_event  # the downtime is not counted as run time
    jobs.resume(store, job_id)
    resumed = jobs.get(store, job_id)
    assert resumed.resume and "resume" not in resumed.config  # the config stays a valid one
    assert jobs.check_train_config(store, resumed.config) == resumed.config
    restarted.run_one(jobs.claim(restarted.store))
    job = jobs.get(store, job_id)
    assert job.state == "succeeded", job.error
    assert any("Training" in e["line"] for e in jobs.events(store, job_id, "log"))


@pytest.mark.slow
def test_cached_loss_with_mined_hard_negatives_trains(store, pair_set_id):
    job_id = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, "loss": "cached_mnrl",
                                          "mini_batch_size": 4, "hard_negatives": 1})
    runner = Runner(store)
    runner.run_one(jobs.claim(store))
    job = jobs.get(store, job_id)
    assert job.state == "succeeded", job.error
    assert any("hard negatives" in e["line"] for e in jobs.events(store, job_id, "log"))
    card = (Path(job.result["model_path"]) / "README.md").read_text()
    assert "CachedMultipleNegativesRankingLoss" in card


def test_out_of_memory_is_explained_with_what_to_change():
    message = reporting.explain_failure(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   {"batch_size": 64})
    assert message.startswith("ran out of memory at batch size 64: try batch size 32")
    assert "cached_mnrl" in message
    assert reporting.explain_failure(ValueError("bad\nthing"), {}) == "ValueError: bad"


# -- a runner no error can end ------------------------------------------------------------
@pytest.fixture
def probe(monkeypatch):
    """A job kind that runs in no time, calling ``probe.action`` first if set."""
    class Probe:
        action = None

    def run(store, job, reporter):
        if Probe.action:
            Probe.action()
        reporter.progress(0.5)
        return {"ran": job.id}
    monkeypatch.setitem(jobs.HANDLERS, "probe", run)
    monkeypatch.setitem(jobs.VALIDATORS, "probe", lambda store, config: config)
    return Probe


def hold_write_lock(store: Store) -> sqlite3.Connection:
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_the_runner_survives_a_locked_database_and_runs_the_next_job(home, probe):
    store = Store(home, busy_timeout=0.1)  # "database is locked" after 0.1 s instead of 30
    other = hold_write_lock(store)
    runner = Runner(store, poll_seconds=0.05).start()
    try:
        time.sleep(0.6)  # several claims fail with "database is locked"
        assert runner.alive()
        other.execute("COMMIT")
        job_id = jobs.submit(store, "probe", {})
        runner.wake()
        job = wait_for(store, job_id, jobs.FINISHED, timeout=30)
        assert job.state == "succeeded" and job.result == {"ran": job_id}
    finally:
        runner.stop()


def test_a_failure_is_recorded_even_while_the_database_is_locked(home, probe):
    store = Store(home, busy_timeout=0.1)
    job_id = jobs.submit(store, "probe", {})
    runner = Runner(store)
    job = jobs.claim(store)

    def lock_then_fail():
        other = hold_write_lock(store)
        threading.Timer(0.5, other.execute, ["COMMIT"]).start()
        raise ValueError("boom")
    probe.action = lock_then_fail
    runner.run_one(job)
    job = jobs.get(store, job_id)
    assert job.state == "failed" and job.error == "ValueError: boom"
    assert any("boom" in e["line"] for e in jobs.events(store, job_id, "log"))


def test_a_progress_write_that_finds_the_workspace_locked_does_not_end_the_job(home, probe,
                                                                             caplog):
    store = Store(home, busy_timeout=0.1)  # another writer holds the lock past the timeout
    job = jobs.claim(store, jobs.submit(store, "probe", {}))
    reporter = reporting.StoreReporter(store, job.id)
    other = hold_write_lock(store)
    with caplog.at_level(logging.WARNING, logger="core.training.jobs"):
        reporter.status("Training")
        reporter.progress(0.5)
        reporter.point("loss", 1, 0.3)
    other.execute("COMMIT")
    # status (and its log line), progress, point
    assert len([r for r in caplog.records if "stayed locked" in r.getMessage()]) == 4
    reporter.point("loss", 2, 0.2)  # written once the lock is free
    assert [p["step"] for p in jobs.events(store, job.id, "point")] == [2]
    Runner(store).run_one(job)
    assert jobs.get(store, job.id).state == "succeeded"


def test_the_page_helper_restarts_a_dead_runner(home, probe):
    from views import common
    runner = common.runner()
    runner.stop()
    assert not runner.alive()
    try:
        assert common.runner().alive()
        job_id = jobs.submit(common.store(), "probe", {})
        common.runner().wake()
        assert wait_for(common.store(), job_id, jobs.FINISHED, timeout=30).state == "succeeded"
    finally:
        common.runner().stop()


# -- ownership: only jobs of a gone process are interrupted ---------------------------------
HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)
"""


def running_row(store) -> int:
    now = time.time()
    return store.db.execute(
        "INSERT INTO jobs (kind, state, config, created, started, heartbeat) "
        "VALUES ('train', 'running', '{}', ?, ?, ?)", (now - 200, now - 200, now - 200)).lastrowid


def test_recover_interrupts_only_jobs_whose_lock_is_free(store, probe):
    jobs.submit(store, "probe", {})
    mine = jobs.claim(store).id  # held by this process
    theirs, gone, old = running_row(store), running_row(store), running_row(store)
    lock = jobs.lock_path(store, theirs)
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # another live process owns it
        jobs.lock_path(store, gone).parent.mkdir(parents=True, exist_ok=True)
        jobs.lock_path(store, gone).touch()  # its owner ended: the lock is free
        # ``old``: a row from before locks (no lock file at all)
        assert jobs.recover(Store(store.home)) == 2
        states = {i: jobs.get(store, i).state for i in (mine, theirs, gone, old)}
        assert states == {mine: "running", theirs: "running", gone: "interrupted",
                          old: "interrupted"}
    finally:
        holder.kill()
        holder.wait()
    assert jobs.recover(store) == 1  # the holder died: its job is interrupted now
    assert jobs.get(store, theirs).state == "interrupted"


def test_a_claimed_job_records_its_owner_and_heartbeats(store, probe):
    job_id = jobs.submit(store, "probe", {})
    job = jobs.claim(store)
    assert job.owner == jobs.this_process() and job.heartbeat >= job.started
    assert jobs.claim(Store(store.home), job_id) is None  # nobody else can take it
    store.db.execute("UPDATE jobs SET heartbeat = 0 WHERE id = ?", (job_id,))
    reporting.StoreReporter(store, job_id).progress(0.3)
    assert time.time() - jobs.get(store, job_id).heartbeat < 5
    assert jobs.recover(Store(store.home)) == 0  # a second server leaves it running
    Runner(store).run_one(job)
    assert jobs.get(store, job_id).state == "succeeded" and not jobs.holds(store, job_id)
