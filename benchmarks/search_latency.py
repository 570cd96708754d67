"""Query latency of the Search page's two paths, exact and FAISS HNSW, on synthetic vectors.

The vectors are 384-d, drawn around 1,000 random centres (text embeddings cluster by topic;
uniform noise would make any graph index look worse than it is on real data). For each size it
prints the median and 95th-percentile latency of one query, the index build time and the HNSW
recall@10 against exact search. 1M vectors take ~1.5 GB and a long HNSW build on two cores, so
that size runs only with ``--million``. ``--encode`` instead times what comes before the search:
encoding one typed question with the bundled model, on torch's threads against one thread
(``core.measuring.evaluate.encode_one``), interleaved so both meet the same machine load.

    python benchmarks/search_latency.py [--million] [--queries 200] [--encode]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.using.search import EXACT_LIMIT, HNSW_EF_SEARCH, ExactIndex, HNSWIndex

DIM = 384


def synthetic(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # in slices: the noise of 1M rows at once is 3 GB
        m = min(100_000, n - start)
        out[start:start + m] = (centres[rng.integers(0, len(centres), m)]
                                + 0.6 * rng.standard_normal((m, DIM), dtype=np.float32))
    return out


def latencies(index, queries: np.ndarray) -> np.ndarray:
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q[None, :], 10)
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000


def query_encoding(rounds: int) -> None:
    """Median milliseconds to encode one short question, both ways, and their ratio."""
    from core.measuring.evaluate import encode, encode_one
    from core.workspace import models
    model = models.load(None)
    questions = ["How do I parse command-line options?", "Return the number of items in the deque.",
                 "close the socket", "What does shutil.copytree do with symlinks?"]
    ways = {"torch threads": lambda q: encode(model, [q], role="query"),
            "one thread": lambda q: encode_one(model, q)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for n in range(rounds + len(questions)):  # the first round of each question warms up
        for name in sorted(ways, reverse=n % 2 == 1):
            started = time.perf_counter()
            ways[name](questions[n % len(questions)])
            if n >= len(questions):
                times[name].append((time.perf_counter() - started) * 1000)
    many, one = (float(np.median(times[name])) for name in ways)
    import torch
    print(f"one question, median of {rounds}: {torch.get_num_threads()} torch threads {many:.1f} ms, "
          f"one thread {one:.1f} ms; one thread is {many / one:.1f}x as fast")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--million", action="store_true", help="also measure 1M vectors")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", default=str(HNSW_EF_SEARCH),
                        help="HNSW candidate counts to compare on one built graph, e.g. 128,256,512")
    parser.add_argument("--encode", action="store_true",
                        help="time encoding one question on torch's threads against one thread")
    args = parser.parse_args()
    if args.encode:
        query_encoding(args.queries)
        return
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, DIM), dtype=np.float32)
    sizes = [10_000, 100_000] + ([1_000_000] if args.million else [])
    print(f"exact search up to {EXACT_LIMIT:,} passages (core.using.search.EXACT_LIMIT), HNSW above\n")
    print(f"{'vectors':>10} {'path':>12} {'build s':>8} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>9}")
    for n in sizes:
        corpus = synthetic(n, rng, centres)
        queries = synthetic(args.queries, rng, centres)
        started = time.perf_counter()
        exact = ExactIndex(corpus)
        exact_build = time.perf_counter() - started
        exact_ms = latencies(exact, queries)
        truth, _ = exact.search(queries, 10)
        started = time.perf_counter()
        hnsw = HNSWIndex(corpus)
        hnsw_build = time.perf_counter() - started
        rows = [("exact", exact_build, exact_ms, 1.0)]
        for ef in (int(e) for e in args.ef_search.split(",")):
            hnsw.index.hnsw.efSearch = ef
            found, _ = hnsw.search(queries, 10)
            recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, found)])
            rows.append((f"hnsw ef {ef}", hnsw_build, latencies(hnsw, queries), recall))
        for path, build, ms, rec in rows:
            print(f"{n:>10,} {path:>12} {build:>8.1f} {np.median(ms):>8.2f} "
                  f"{np.percentile(ms, 95):>8.2f} {rec:>9.3f}", flush=True)
        del exact, hnsw, corpus


if __name__ == "__main__":
    main()
