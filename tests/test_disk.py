"""The workspace's size on disk, split into database, models, cached vectors and other."""
import json
import os
import subprocess
import sys

from core.measuring.evaluate import encode_corpus_cached
from core.training.jobs import job_dir
from core.workspace import models
from core.workspace.disk import folder_bytes, human_bytes, workspace_size
from tests.conftest import PARAGRAPHS, ROOT


def test_each_part_grows_with_what_it_holds(store):
    empty = workspace_size(store)
    assert empty.models == 0 and empty.database > 0
    assert empty.cached_vectors <= 2 * 4096  # one page for the table, one for its key index
    assert empty.total == folder_bytes(store.home)

    model = job_dir(store, 1) / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"\0" * 50_000)
    (store.files / "notes.txt").write_bytes(b"x" * 3_000)
    (store.files / "link").symlink_to("/etc/passwd")  # not followed, not counted
    encode_corpus_cached(store, "bundled", models.load(), PARAGRAPHS)

    size = workspace_size(store)
    assert size.models == 50_000
    assert size.cached_vectors >= len(PARAGRAPHS) * 384 * 4  # pages, overflow included
    assert size.other >= 3_000 and size.other < 3_000 + 4_096  # a folder entry or two at most
    assert size.total == folder_bytes(store.home)
    assert size.summary().startswith(f"{human_bytes(size.total)} (database ")
    assert "models 50 kB" in size.summary()  # SI: 50,000 bytes


def test_list_shows_the_size_in_text_and_json(store):
    env = {**os.environ, "RAGTUNE_HOME": str(store.home)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "core", "list", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=True).stdout
    assert f"workspace {store.home}\t" in run() and ", cached vectors " in run()
    size = json.loads(run("--json").splitlines()[-1])["size"]
    assert set(size) == {"total", "database", "models", "cached_vectors", "other"}
    assert size["total"] == sum(v for k, v in size.items() if k != "total") > 0
