"""Several processes writing one workspace at once, as a team and its jobs do: no writer starves
another, and two loads of the same thing end with it loaded once."""
import json
import os
import random
import sqlite3
import string
import subprocess
import sys
import time

import pytest

from core.documents.beir import DEMO_CORPUS, load_demo
from core.documents.corpus import Document, ingest, prepare_ingest, store_ingest
from core.training import jobs
from core.workspace.store import Store
from tests.conftest import ROOT, wait_until


def test_two_demo_loads_at_once_on_a_fresh_workspace_both_succeed(home):
    # Two `make run` at once: the second used to fail with "no chunks left".
    env = {**os.environ, "RAGTUNE_HOME": str(home)}
    loads = [subprocess.Popen([sys.executable, "-m", "core", "corpus", "demo", "--limit", "40", "--json"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in loads]
    assert [rc for rc, _, _ in results] == [0, 0], [err for _, _, err in results]
    said = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]
    assert said[0] == said[1]
    store = Store(home)
    assert [c.name for c in store.corpora()] == [DEMO_CORPUS] and len(store.pair_sets()) == 1


def text_of(megabytes: float, seed: int = 0, document_bytes: int = 100_000) -> list[Document]:
    """Documents of random sentences (no two chunks alike), ``megabytes`` in all."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9)))
                  for _ in range(5000)]
    documents = []
    for n in range(max(1, round(megabytes * 1e6 / document_bytes))):
        words = rng.choices(vocabulary, k=document_bytes // 6)
        sentences = (" ".join(words[i:i + 12]).capitalize() + "." for i in range(0, len(words), 12))
        documents.append(Document(f"d{n}.txt", "txt", " ".join(sentences)))
    return documents


def test_an_ingest_chunking_holds_no_write_lock(store, count):
    """Another writer, told to wait at most a second, writes while an ingest is half done."""
    wrote: list[str] = []

    def halfway(done: int, total: int) -> None:
        if 0.2 < done / total < 1 and not wrote:
            other = Store(store.home, busy_timeout=1.0)
            try:
                other.create_corpus("written meanwhile", {})
                wrote.append("ok")
            except sqlite3.OperationalError as error:
                wrote.append(str(error))

    report = ingest(store, "big", text_of(1.5, document_bytes=7_500), count, progress=halfway)
    assert wrote == ["ok"]
    assert report.chunks > 100 and {c.name for c in store.corpora()} == {"big", "written meanwhile"}


def test_an_ingest_rechunks_when_another_process_added_to_its_corpus_meanwhile(store, count):
    documents = text_of(0.2, document_bytes=20_000)
    ingest(store, "growing", documents[:1], count)  # the corpus as this ingest finds it
    prepared = prepare_ingest(store, "growing", documents[1:], count)
    ingest(store, "growing", documents[1:4], count)  # another process, between chunking and storing
    report = store_ingest(store, prepared)
    corpus = store.corpus("growing")
    assert report.documents == len(documents) - 1 and report.duplicates > 0  # the 3 were there
    assert corpus.stats["chunks"] == len(store.chunks(corpus.id))
    assert len({c["text"] for c in store.chunks(corpus.id)}) == len(store.chunks(corpus.id))


@pytest.mark.slow
def test_a_40_mb_ingest_beside_a_running_finetune_both_succeed(store, count):
    _, pair_set_id = load_demo(store, count, limit=60)
    finetune = subprocess.Popen(
        [sys.executable, "-m", "core", "finetune", "--pairs", str(pair_set_id), "--epochs", "2",
         "--max-pairs", "48", "--batch-size", "8", "--max-seq-length", "32", "--json"],
        cwd=ROOT, env={**os.environ, "RAGTUNE_HOME": str(store.home)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: any(e["line"].startswith("Training:") for j in jobs.all_jobs(store)
                               for e in jobs.events(store, j.id, "log")), 300, "training")
        documents = text_of(40)
        assert sum(len(d.text) for d in documents) >= 40e6
        assert jobs.all_jobs(store)[0].state == "running"
        started = time.time()
        report = ingest(store, "forty megabytes", documents, count)
        took = time.time() - started
        out, err = finetune.communicate(timeout=900)
    finally:
        finetune.kill()
    assert finetune.returncode == 0, err[-2000:]
    job = jobs.all_jobs(store)[0]
    assert job.state == "succeeded" and json.loads(out.strip().splitlines()[-1])["state"] == "succeeded"
    assert job.finished > started  # it ran beside the ingest, not before it
    assert report.chunks > 10_000 and store.corpus("forty megabytes").stats["chunks"] == report.chunks
    print(f"40 MB ingest: {took:.0f} s, {report.chunks} chunks; fine-tune {job.elapsed:.0f} s")
