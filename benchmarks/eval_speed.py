"""Evaluation speed and memory, measured side by side in one run on the demo corpus.

Prints ratios (never absolute targets):
  * five dimensions vs one dimension, both encoding from scratch       (target ≤ 1.25×)
  * the reference, a SequentialEvaluator of one InformationRetrievalEvaluator per dimension,
    vs ours on the same data and model, with identical scores            (target ≥ 4×)
  * ours with a warm corpus-embedding cache vs ours cold                 (target ≥ 5× faster)
  * peak memory of scoring, for the corpus and for the corpus repeated 4×: bounded by blocks
"""
from __future__ import annotations

import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator, SequentialEvaluator

from core.documents import demo
from core.measuring.evaluate import RetrievalSet, evaluate, evaluate_named, score_all_dims
from core.workspace import models
from core.workspace.store import Store

DIMS = [384, 256, 128, 64, 32]


def torch_peak_probe():
    """tracemalloc sees numpy's allocations but not torch's; sample RSS growth for those."""
    import threading

    import psutil
    process = psutil.Process()
    base = process.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            stop.wait(0.005)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()

    def finish() -> float:
        stop.set()
        thread.join()
        return (peak[0] - base) / 2**20
    return finish


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    triples = demo.stdlib_pairs()
    data = RetrievalSet.build({i: body for i, _, body in triples},
                              {f"q{i}": s for i, s, _ in triples},
                              {f"q{i}": {i} for i, _, _ in triples})
    model = models.load()
    model.encode(data.corpus[:64])  # warm the kernels so neither side pays for first use
    print(f"data: {len(data.queries)} queries, {len(data.corpus)} passages; model "
          f"all-MiniLM-L6-v2 on {model.device}")

    t_one, _ = timed(lambda: evaluate(model, data, [384]))
    t_five, ours = timed(lambda: evaluate(model, data, DIMS))
    print(f"five dims / one dim:                {t_five / t_one:.2f}x   "
          f"({t_five:.1f} s vs {t_one:.1f} s; target <= 1.25x)")

    evaluators = [InformationRetrievalEvaluator(
        dict(zip(data.query_ids, data.queries)), dict(zip(data.corpus_ids, data.corpus)),
        data.relevant, truncate_dim=d, name=str(d), show_progress_bar=False,
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 5, 10],
        precision_recall_at_k=[1, 5, 10, 100], map_at_k=[100]) for d in DIMS]
    t_ref, reference = timed(lambda: SequentialEvaluator(evaluators)(model))
    worst = max(abs(reference[f"{d}_cosine_ndcg@10"] - ours.metrics[d]["ndcg@10"]) for d in DIMS)
    print(f"reference / ours (5 dims):          {t_ref / t_five:.2f}x faster   "
          f"({t_ref:.1f} s vs {t_five:.1f} s; max NDCG@10 difference {worst:.1e}; target >= 4x)")

    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        t_cold, _ = timed(lambda: evaluate_named(None, data, DIMS, store))
        t_warm, _ = timed(lambda: evaluate_named(None, data, DIMS, store))
    print(f"cold cache / warm cache:            {t_cold / t_warm:.2f}x faster   "
          f"({t_cold:.1f} s vs {t_warm:.2f} s; target >= 5x)")

    rng = np.random.default_rng(0)
    queries = rng.normal(size=(len(data.queries), 384)).astype(np.float32)
    peaks = []
    for repeat in (1, 4):  # both far larger than one scoring block
        corpus = rng.normal(size=(len(data.corpus) * repeat * 50, 384)).astype(np.float32)
        big = RetrievalSet(list(map(str, range(len(corpus)))), [""] * len(corpus),
                           data.query_ids, data.queries, {q: {"0"} for q in data.query_ids})
        before = torch_peak_probe()
        tracemalloc.start()
        score_all_dims(queries, corpus, big, [384])
        peaks.append((len(corpus), tracemalloc.get_traced_memory()[1] / 2**20 + before()))
        tracemalloc.stop()
    print("scoring peak memory (numpy + torch):                " + "; ".join(
        f"{n:,} passages -> {mb:.0f} MB" for n, mb in peaks)
        + f"  (ratio {peaks[1][1] / peaks[0][1]:.2f}x for 4x the corpus)")
    import resource
    print(f"process peak RSS:                   {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
