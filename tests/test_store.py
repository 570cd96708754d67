"""The workspace database: migrations, locks held by other processes, and failures users meet."""
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.training import jobs
from core.workspace.store import MIGRATIONS, Store, WorkspaceError, explain_db_error
from tests.conftest import ROOT


def columns(store: Store, table: str) -> set[str]:
    return {r["name"] for r in store.query(f"PRAGMA table_info({table})")}


def test_a_blank_workspace_gets_every_migration(home):
    store = Store(home)
    assert store.query("PRAGMA user_version")[0][0] == len(MIGRATIONS)
    assert {"owner", "heartbeat", "resume"} <= columns(store, "jobs")


def workspace_at_version(home: Path, version: int) -> sqlite3.Connection:
    """A workspace database as an older ragtune left it: the first ``version`` migrations."""
    home.mkdir(parents=True)
    db = sqlite3.connect(home / "ragtune.db")
    for sql in MIGRATIONS[:version]:
        db.executescript(sql)
    db.execute(f"PRAGMA user_version = {version}")
    return db


def test_a_workspace_at_the_previous_version_is_migrated_and_keeps_its_jobs(home):
    db = workspace_at_version(home, 3)
    config = {"pair_set_id": 1, "epochs": 1}
    db.execute("INSERT INTO jobs (kind, state, config, created) VALUES ('train', 'queued', ?, 1)",
               (json.dumps({**config, "resume": True}),))
    db.execute("INSERT INTO jobs (kind, state, config, created) VALUES ('train', 'failed', ?, 2)",
               (json.dumps(config),))
    db.commit()
    db.close()
    store = Store(home)
    assert store.query("PRAGMA user_version")[0][0] == len(MIGRATIONS)
    resumed, fresh = sorted(jobs.all_jobs(store), key=lambda j: j.id)
    # The flag smuggled into the config moved to its own column; the config is a clean one.
    assert resumed.resume and resumed.config == config
    assert not fresh.resume and fresh.config == config
    assert resumed.owner is None and resumed.heartbeat is None


def test_the_vector_cache_moves_to_a_rowid_table_with_every_vector_kept(home):
    import numpy as np

    from core.workspace.disk import workspace_size
    db = workspace_at_version(home, 4)
    rng = np.random.default_rng(0)
    vectors = {f"h{i}": rng.standard_normal(384).astype(np.float32).tobytes() for i in range(2000)}
    db.executemany("INSERT INTO embeddings VALUES ('m@1', ?, ?)", vectors.items())
    db.commit()
    db.close()
    store = Store(home)
    kept = {r["text_hash"]: r["vector"] for r in store.query("SELECT * FROM embeddings")}
    assert kept == vectors
    table = store.query("SELECT sql FROM sqlite_master WHERE name = 'embeddings'")[0][0]
    assert "WITHOUT ROWID" not in table
    with pytest.raises(sqlite3.IntegrityError):  # still one vector per model and text
        store.db.execute("INSERT INTO embeddings VALUES ('m@1', 'h1', x'00')")
    with store.transaction() as db:  # written again, as evaluate's cache writes it
        db.execute("DELETE FROM embeddings")
        db.executemany("INSERT OR REPLACE INTO embeddings VALUES ('m@2', ?, ?)", vectors.items())
    vector_bytes = 2000 * 384 * 4
    assert workspace_size(store).cached_vectors < 1.6 * vector_bytes  # 3.05x in the old layout


def test_a_newer_workspace_is_refused_in_one_line(home):
    Store(home).db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(WorkspaceError, match="newer ragtune"):
        Store(home)


def test_reading_commands_work_while_another_process_holds_the_write_lock(home):
    store = Store(home)
    store.create_corpus("kept", {})
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.time()
        reader = Store(home, busy_timeout=0.2)  # would fail at once if opening took the lock
        assert [c.name for c in reader.corpora()] == ["kept"]
        env = {**os.environ, "RAGTUNE_HOME": str(home)}
        result = subprocess.run([sys.executable, "-m", "core", "corpus", "list"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert "kept" in result.stdout and time.time() - started < 25  # not the 30 s lock wait
    finally:
        other.execute("COMMIT")


def test_a_failed_transaction_reraises_its_own_error_not_a_rollback_one(store):
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as db:
        db.execute("INSERT INTO corpora (name, created) VALUES ('a', 1)")
        db.execute("ROLLBACK")  # as SQLite does by itself on "disk is full"
        db.execute("INSERT INTO corpora (name, created) VALUES (NULL, 1)")
    assert store.corpora() == [] and not store.db.in_transaction


@pytest.mark.parametrize("message,hint", [
    ("database is locked", "another ragtune process"),
    ("database or disk is full", "free some disk space"),
    ("disk I/O error", "check the disk"),
    ("attempt to write a readonly database", "writable"),
    ("file is not a database", "not a ragtune workspace"),
    ("something new", "retry"),
])
def test_database_errors_become_one_line_with_what_to_do(message, hint):
    line = explain_db_error(sqlite3.OperationalError(message), "/ws/ragtune.db")
    assert message in line and hint in line and "\n" not in line


@pytest.mark.parametrize("make_bad", [
    lambda home: (home / "ragtune.db").write_bytes(b"this is no database" * 100),
    lambda home: (home / "ragtune.db").mkdir(),
])
def test_the_cli_reports_a_broken_database_in_one_line(tmp_path, make_bad):
    home = tmp_path / "ws"
    home.mkdir()
    make_bad(home)
    env = {**os.environ, "RAGTUNE_HOME": str(home)}
    result = subprocess.run([sys.executable, "-m", "core", "list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("error: workspace database") and result.stderr.count("\n") == 1, \
        result.stderr


def test_two_processes_creating_the_same_corpus_name_cannot_both_win(home):
    first, second = Store(home), Store(home)
    first.create_corpus("docs", {})
    with pytest.raises(WorkspaceError, match="already exists"):
        second.create_corpus("docs", {})
