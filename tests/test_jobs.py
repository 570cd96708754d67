"""The job runner with real (tiny) training runs: queue, cancel, failure, restart and resume."""
import time
from pathlib import Path

import pytest

from core import jobs
from core.beir import load_demo
from core.evaluate import load_evaluations
from core.store import Store, WorkspaceError

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


def test_a_job_trains_evaluates_and_stores_both_results(store, pair_set_id):
    job_id = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id})
    runner = jobs.Runner(store)
    runner.run_one(runner._claim())
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


def test_jobs_queue_one_at_a_time_and_a_queued_job_cancels_at_once(store, pair_set_id):
    runner = jobs.Runner(store, poll_seconds=0.1).start()
    try:
        first = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, "max_pairs": 48,
                                             "epochs": 2})
        second = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id})
        third = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id})
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
                            ({"epochs": 0}, "epochs must be at least 1"),
                            ({"max_pairs": 1}, "at least 2 pairs"),
                            ({"learning_rate_typo": 1}, "unknown setting")):
        with pytest.raises(WorkspaceError, match=message):
            jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, **change})
    assert jobs.all_jobs(store) == []


def test_a_pair_set_deleted_under_a_queued_job_fails_it_clearly(store, pair_set_id):
    runner = jobs.Runner(store)
    orphan = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id})
    store.delete_pair_set(pair_set_id)
    runner.run_one(runner._claim())
    job = jobs.get(store, orphan)
    assert job.state == "failed" and "was deleted" in job.error
    assert runner._claim() is None  # nothing else was affected


def test_a_restart_marks_running_jobs_interrupted_and_resume_continues(store, pair_set_id):
    job_id = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, "epochs": 2})
    runner = jobs.Runner(store)
    job = runner._claim()
    runner.run_one(job)  # completes, leaving per-epoch checkpoints behind
    checkpoints = sorted((jobs.job_dir(store, job_id) / "checkpoints").glob("checkpoint-*"))
    assert checkpoints
    # Simulate a server that died mid-run: the row still says running.
    store.db.execute("UPDATE jobs SET state = 'running' WHERE id = ?", (job_id,))
    restarted = jobs.Runner(Store(store.home))
    assert jobs.recover(restarted.store) == 1
    interrupted = jobs.get(store, job_id)
    assert interrupted.state == "interrupted"
    last_event = max(e["ts"] for e in jobs.events(store, job_id, "log"))
    assert interrupted.finished == last_event  # the downtime is not counted as run time
    jobs.resume(store, job_id)
    assert jobs.get(store, job_id).config["resume"] is True
    restarted.run_one(restarted._claim())
    job = jobs.get(store, job_id)
    assert job.state == "succeeded", job.error
    assert any("Training" in e["line"] for e in jobs.events(store, job_id, "log"))


def test_cached_loss_with_mined_hard_negatives_trains(store, pair_set_id):
    job_id = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id, "loss": "cached_mnrl",
                                          "mini_batch_size": 4, "hard_negatives": 1})
    runner = jobs.Runner(store)
    runner.run_one(runner._claim())
    job = jobs.get(store, job_id)
    assert job.state == "succeeded", job.error
    assert any("hard negatives" in e["line"] for e in jobs.events(store, job_id, "log"))
    card = (Path(job.result["model_path"]) / "README.md").read_text()
    assert "CachedMultipleNegativesRankingLoss" in card


def test_out_of_memory_is_explained_with_what_to_change():
    message = jobs.explain_failure(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   {"batch_size": 64})
    assert message.startswith("ran out of memory at batch size 64: try batch size 32")
    assert "cached_mnrl" in message
    assert jobs.explain_failure(ValueError("bad\nthing"), {}) == "ValueError: bad"
