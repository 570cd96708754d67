"""Faults in real processes: a disk that fills up while ingesting or while a fine-tune writes
its checkpoints or model, and the checkpoints a run keeps on disk.

A full disk is simulated without root and without mocks: the command runs in a subprocess
whose file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes every write past the limit fail
with EFBIG, as a full disk fails them with ENOSPC.
"""
import errno
import hashlib
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.documents.beir import export_beir, load_demo
from core.documents.pairs import export_jsonl
from core.measuring.evaluate import RetrievalSet
from core.training import jobs, reporting
from core.training.runner import Runner
from core.training.checkpoints import drop_incomplete_checkpoints
from core.training.config import TrainConfig
from core.training.train import train
from core.workspace.store import Store
from tests.conftest import ROOT
from tests.test_bad_input import snapshot

MB = 1_000_000
MODEL_FILE_LIMIT = 30 * MB  # the database fits; MiniLM's ~90 MB model.safetensors does not
TINY = ["--epochs", "1", "--max-pairs", "16", "--batch-size", "8", "--max-seq-length", "32"]


def file_size_limit(limit: int):
    def apply() -> None:  # runs in the child before it executes Python
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def cli(home: Path, *args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAGTUNE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600,
                          preexec_fn=file_size_limit(limit) if limit else None)


def fails_in_one_line(result: subprocess.CompletedProcess, *words: str) -> str:
    """The command failed with one ``error:`` line last on stderr, and no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr[-3000:]
    for word in words:
        assert word in last, last
    return last


def integrity(store: Store) -> str:
    return store.query("PRAGMA integrity_check")[0][0]


def tables(store: Store, skip: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of every table but ``skip``, for before/after comparisons."""
    names = [r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {n: [tuple(r) for r in store.query(f"SELECT * FROM {n} ORDER BY rowid")]
            for n in names if n not in skip and n != "embeddings"}


def folder_hash(folder: Path, skip: tuple[str, ...] = ()) -> str:
    """A hash of the names and contents under ``folder``, but for the paths in ``skip`` (and
    what is under them)."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if any(name == s or name.startswith(s + "/") for s in skip):
            continue
        h.update(name.encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def demo(store, count) -> int:
    return load_demo(store, count, limit=60)[1]


@pytest.mark.slow
def test_an_ingest_that_fills_the_disk_fails_in_one_line_and_changes_nothing(store, demo, tmp_path):
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(5000)]
    big = tmp_path / "big.txt"  # ~3 MB of text the database cannot take in 0.5 MB more
    big.write_text("\n\n".join(" ".join(rng.choice(words) for _ in range(60)) + "."
                               for _ in range(8_000)))
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = snapshot(store)
    limit = sum(p.stat().st_size for p in store.home.glob("ragtune.db*")) + MB // 2
    result = cli(store.home, "corpus", "ingest", str(big), "--corpus", "big", limit=limit)
    fails_in_one_line(result, "disk may be full", "free some disk space")
    after = Store(store.home)
    assert integrity(after) == "ok"
    assert snapshot(after) == before
    assert cli(store.home, "corpus", "list").returncode == 0  # later commands work


@pytest.mark.slow
def test_a_finetune_that_cannot_write_its_checkpoint_fails_clean_and_resumes(store, demo):
    result = cli(store.home, "finetune", "--pairs", str(demo), *TINY, limit=MODEL_FILE_LIMIT)
    fails_in_one_line(result, "job 1 failed", "could not write a training checkpoint",
                      "free some disk space")
    job = jobs.get(store, 1)
    assert job.state == "failed" and job.result == {}
    assert not any(jobs.job_dir(store, 1).rglob("checkpoint-*")), "a half checkpoint was kept"
    assert not (jobs.job_dir(store, 1) / "model").exists()
    assert integrity(store) == "ok"

    jobs.resume(store, 1)  # with room again, the same job runs to its end
    runner = Runner(store)
    runner.run_one(jobs.claim(store))
    assert jobs.get(store, 1).state == "succeeded", jobs.get(store, 1).error
    rows_before, files_before = tables(store), folder_hash(store.files)

    result = cli(store.home, "finetune", "--pairs", str(demo), *TINY, limit=MODEL_FILE_LIMIT)
    fails_in_one_line(result, "job 2 failed", "could not write")
    failed = jobs.get(store, 2)
    assert failed.state == "failed" and failed.result == {}
    assert not (jobs.job_dir(store, 2) / "model").exists()
    assert not any(jobs.job_dir(store, 2).rglob("checkpoint-*"))
    assert integrity(store) == "ok"
    rows_after = tables(store)  # job 1 and everything stored before it are as they were
    rows_after["jobs"] = [r for r in rows_after["jobs"] if r[0] != 2]
    rows_after["job_events"] = [r for r in rows_after["job_events"] if r[1] != 2]
    assert rows_after == rows_before
    # Job 2's own files: its folder, and the lock it was run under (kept outside that folder).
    assert folder_hash(store.files, skip=("jobs/2", "locks/job-2.lock")) == files_before


@pytest.mark.slow
def test_a_finetune_whose_database_fills_up_fails_in_one_line_and_is_never_done(store, demo):
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows_before = tables(store)
    limit = store.path.stat().st_size + 50_000  # the job's first few log lines fill it
    result = cli(store.home, "finetune", "--pairs", str(demo), *TINY, limit=limit)
    fails_in_one_line(result, "disk may be full", "free some disk space")
    assert integrity(store) == "ok"
    # Recorded as failed, or, when even that could not be written, left to be found interrupted.
    jobs.recover(store)
    job = jobs.get(store, 1)
    assert job.state in ("failed", "interrupted") and job.result == {}
    assert not (jobs.job_dir(store, 1) / "model").exists()
    rows_after = tables(store, skip=("jobs", "job_events"))
    assert rows_after == {n: rows for n, rows in rows_before.items() if n in rows_after}


@pytest.mark.slow
def test_the_train_command_on_a_full_disk_fails_in_one_line(store, demo, tmp_path):
    pairs = tmp_path / "train.jsonl"
    pairs.write_text(export_jsonl(store, demo, "train"))
    export_beir(store, demo, tmp_path / "beir")
    result = cli(tmp_path / "other", "train", "--pairs-file", str(pairs), "--eval", str(tmp_path / "beir"),
                 *TINY, "--output", str(tmp_path / "out"), limit=MODEL_FILE_LIMIT)
    fails_in_one_line(result, "could not write", "free some disk space")
    assert not (tmp_path / "out" / "model").exists()


@pytest.mark.parametrize("command", [["pairs", "export", "{set}", "--output", "{out}/pairs.jsonl"],
                                     ["pairs", "export", "{set}", "--beir", "{out}/beir"]],
                         ids=["export pairs", "export beir"])
def test_an_export_to_a_full_disk_says_so_and_what_to_do(store, demo, tmp_path, command):
    before = snapshot(store)
    args = [a.format(set=demo, out=tmp_path) for a in command]
    fails_in_one_line(cli(store.home, *args, limit=20_000), "the disk is full",
                      "free some disk space")
    assert snapshot(store) == before


@pytest.mark.slow
def test_a_model_save_that_fails_keeps_the_model_saved_before(tmp_path):
    """The final save writes beside the model folder and moves into place only when complete."""
    script = """
import sys
from pathlib import Path
from core.workspace import models
from core.workspace.store import WorkspaceError
from core.training.checkpoints import save_model
path = Path(sys.argv[1])
try:
    save_model(models.load_fresh("all-MiniLM-L6-v2", "cpu"), path, {"kept": 2})
except WorkspaceError as error:
    print(error)
"""
    path = tmp_path / "model"
    path.mkdir()
    (path / "ragtune.json").write_text('{"kept": 1}')
    before = folder_hash(path)
    result = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, text=True,
                            capture_output=True, timeout=300,
                            preexec_fn=file_size_limit(MODEL_FILE_LIMIT))
    assert "could not write the fine-tuned model" in result.stdout, result.stderr[-3000:]
    assert folder_hash(path) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no half-written folder left


class Watcher:
    """A reporter that lists the checkpoint folders at every training step."""

    def __init__(self, checkpoints: Path):
        self.checkpoints, self.seen = checkpoints, []

    def progress(self, fraction: float) -> None:
        self.seen.append({p.name: sorted(f.name for f in p.iterdir())
                          for p in drop_incomplete_checkpoints(self.checkpoints)})

    def status(self, text: str) -> None: ...
    def log(self, line: str) -> None: ...
    def point(self, series, step, value, epoch=None) -> None: ...
    def should_stop(self) -> bool:
        return False


@pytest.mark.slow
def test_a_run_keeps_only_the_last_checkpoint_whole_and_the_best_weights(store, demo, tmp_path):
    pairs = [(p["query"], p["positive"]) for p in store.pairs(demo, "train")]
    config = TrainConfig(pair_set_id=demo, epochs=4, batch_size=8, max_pairs=16,
                         max_seq_length=32, dims=[384, 64])
    watcher = Watcher(tmp_path / "checkpoints")
    result = train(config, pairs, RetrievalSet.from_pair_set(store, demo), tmp_path, watcher)
    assert max(len(seen) for seen in watcher.seen) == 2  # never more than the last and the best
    for seen in watcher.seen:
        steps = sorted(seen, key=lambda name: int(name.split("-")[1]))
        for name in steps:  # only the newest, the one a resume starts from, has the optimizer
            assert ("optimizer.pt" in seen[name]) == (name == steps[-1]), seen
            assert "model.safetensors" in seen[name]
    assert Path(result.model_path, "model.safetensors").is_file()
    assert not (tmp_path / "checkpoints").exists()  # a finished run keeps none


def test_a_checkpoint_cut_short_is_dropped_before_a_resume(tmp_path):
    for step, files in ((5, ["model.safetensors", "trainer_state.json"]), (10, ["config.json"])):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name in files:
            (folder / name).write_text("{}")
    assert [p.name for p in drop_incomplete_checkpoints(tmp_path)] == ["checkpoint-5"]
    assert not (tmp_path / "checkpoint-10").exists()


def test_a_job_failing_on_a_full_disk_or_database_is_told_in_one_line(tmp_path):
    full = reporting.explain_failure(OSError(errno.ENOSPC, "No space left on device"), {}, tmp_path,
                                tmp_path / "ragtune.db")
    assert full.startswith("could not write the job's files") and "free some disk space" in full
    broken = reporting.explain_failure(sqlite3.OperationalError("disk I/O error"), {}, tmp_path,
                                  tmp_path / "ragtune.db")
    assert "ragtune.db: disk I/O error" in broken and "disk may be full" in broken
