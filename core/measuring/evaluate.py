"""Retrieval quality at every Matryoshka dimension, from a single encoding pass.

Matryoshka models (Kusupati et al., 2022, "Matryoshka Representation Learning") pack the most
information into the first dimensions, so a 384-dim vector cut to its first 64 entries is itself a
usable embedding. Cosine similarity re-normalises, hence scores at dimension d need only the first
d entries of the full-size vectors: we encode queries and passages once, then slice and
re-normalise per dimension. Encoding is >95% of the cost, so five dimensions cost barely more
than one. Corpus vectors are cached in the workspace by (model fingerprint, sequence length,
text hash), so re-measuring a model on the same corpus encodes only the queries.

Scores are computed against corpus blocks of bounded size with a running top-k merge, so memory
is set by the block size and not by the corpus size. Metrics follow the definitions of
sentence-transformers' ``InformationRetrievalEvaluator`` exactly (ties broken by corpus id), and
a test holds us to it. Graded labels (people's "relevant" 2 / "partly relevant" 1) weigh NDCG's
gain by the grade, as trec_eval does (Järvelin and Kekäläinen, 2002, "Cumulated gain-based
evaluation of IR techniques"); every other metric counts any grade as relevant. With binary labels
both definitions are the same number.
"""
from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.workspace.errors import WorkspaceError
from core.workspace.store import EvaluationSummary, Store
from core.workspace.text import text_hash

TOP_K = 100
METRICS = ("ndcg@10", "mrr@10", "map@100", "recall@1", "recall@5", "recall@10", "recall@100",
           "accuracy@1", "accuracy@5", "accuracy@10")
Progress = Callable[[str, float], None]  # (stage, fraction done), for a bar and its caption
Counter = Callable[[int, int], None]  # (items done, items in all)


@dataclass
class RetrievalSet:
    """Queries, a corpus and which passages answer which query; ids are strings."""
    corpus_ids: list[str]
    corpus: list[str]
    query_ids: list[str]
    queries: list[str]
    relevant: dict[str, set[str]]
    skipped: dict[str, int] = field(default_factory=dict)
    # query id -> corpus id -> grade, for graded labels; a passage missing here has grade 1
    grades: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def build(cls, corpus: dict[str, str], queries: dict[str, str],
              relevant: dict[str, set[str]], grades: dict[str, dict[str, int]] | None = None
              ) -> RetrievalSet:
        """Keep what can be scored; count (rather than fail on) labels that point nowhere.

        Args:
            grades: query id -> corpus id -> grade (1 partly, 2 relevant) for graded labels.
        """
        if not corpus:
            raise WorkspaceError("the corpus is empty: there is nothing to retrieve from")
        skipped = {"labels naming unknown passages": 0, "labels naming unknown queries": 0,
                   "queries without a relevant passage": 0}
        clean: dict[str, set[str]] = {}
        for qid, docs in relevant.items():
            if qid not in queries:
                skipped["labels naming unknown queries"] += len(docs)
                continue
            known = {d for d in docs if d in corpus}
            skipped["labels naming unknown passages"] += len(docs) - len(known)
            if known:
                clean[qid] = known
            else:
                skipped["queries without a relevant passage"] += 1
        # Queries with no labels at all belong to another split (BEIR keeps them in one file).
        query_ids = [q for q in queries if q in clean]
        if not query_ids:
            raise WorkspaceError("no query has a relevant passage in the corpus; check that the "
                                 "labels use the corpus and query ids")
        return cls(list(corpus), list(corpus.values()), query_ids,
                   [queries[q] for q in query_ids], clean, {k: v for k, v in skipped.items() if v},
                   {q: g for q, g in (grades or {}).items() if q in clean})

    @classmethod
    def from_pair_set(cls, store: Store, pair_set_id: int, split: str = "test") -> RetrievalSet:
        """The test queries of a pair set against every chunk of its corpus."""
        pair_set = store.pair_set(pair_set_id)
        pairs = store.pairs(pair_set_id, split)
        if not pairs:
            raise WorkspaceError(f"pair set '{pair_set.name}' has no {split} pairs; split it "
                                 "into train and test first")
        corpus = {str(c["id"]): c["text"] for c in store.chunks(pair_set.corpus_id)}
        queries: dict[str, str] = {}
        relevant: dict[str, set[str]] = {}
        grades: dict[str, dict[str, int]] = {}
        for p in pairs:
            queries[p["query_id"]] = p["query"]
            relevant.setdefault(p["query_id"], set()).add(str(p["chunk_id"]))
            if p["relevance"] != 1:
                grades.setdefault(p["query_id"], {})[str(p["chunk_id"])] = p["relevance"]
        return cls.build(corpus, queries, relevant, grades)

    def fingerprint(self) -> str:
        """Identifies the questions, their graded answers and the passages: two evaluations of
        one model with the same fingerprint are the same measurement."""
        parts = [json.dumps([self.query_ids, self.queries,
                             {q: sorted(self.relevant[q]) for q in self.query_ids},
                             {q: dict(sorted(g.items())) for q, g in sorted(self.grades.items())},
                             self.corpus_ids], ensure_ascii=False)]
        parts += [text_hash(t) for t in self.corpus]
        return text_hash("\n".join(parts))

    def subset(self, max_passages: int, seed: int = 0) -> RetrievalSet:
        """Every relevant passage plus a seeded sample of the others, up to ``max_passages``:
        enough distractors to rank epochs against each other at a fraction of the encoding."""
        if len(self.corpus) <= max_passages:
            return self
        import random
        needed = {d for docs in self.relevant.values() for d in docs}
        others = [i for i, cid in enumerate(self.corpus_ids) if cid not in needed]
        keep = set(random.Random(seed).sample(others, max(0, min(len(others), max_passages - len(needed)))))
        rows = [i for i, cid in enumerate(self.corpus_ids) if cid in needed or i in keep]
        return RetrievalSet([self.corpus_ids[i] for i in rows], [self.corpus[i] for i in rows],
                            self.query_ids, self.queries, self.relevant, self.skipped, self.grades)


@dataclass
class EvalResult:
    model: str
    corpus: int
    queries: int
    dims: list[int]
    seconds: float
    metrics: dict[int, dict[str, float]]
    # per dim: query id -> (1-based rank of the first relevant passage or 0, top-1 corpus id)
    per_query: dict[int, dict[str, tuple[int, str]]] = field(repr=False, default_factory=dict)
    per_query_ndcg: dict[int, dict[str, float]] = field(repr=False, default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    test_set: str = ""  # RetrievalSet.fingerprint of what was measured

    def metrics_json(self) -> dict[str, dict[str, float]]:
        """Metrics keyed by the dimension as text, as JSON objects need."""
        return {str(d): m for d, m in self.metrics.items()}

    def line(self, metric: str = "ndcg@10") -> str:
        return f"{metric.upper()} " + ", ".join(f"{d}d {m[metric]:.4f}" for d, m in self.metrics.items())

    def to_json(self) -> dict:
        return {"model": self.model, "corpus": self.corpus, "queries": self.queries,
                "seconds": round(self.seconds, 3), "metrics": self.metrics_json()}


# The dimension a run keeps its best epoch at, and a page shows first, when it is offered: a
# third of MiniLM's 384 and a common size to store Matryoshka vectors at.
PREFERRED_DIM = 128


def default_dims(full: int, smallest: int = 32) -> list[int]:
    """The full size, then every power of two below it down to ``smallest``: 384 gives
    384, 256, 128, 64, 32 (halving 384 would give 192, 96, 48, sizes nobody stores)."""
    dims = [full]
    d = 2 ** int(math.log2(full))
    if d == full:
        d //= 2
    while d >= smallest:
        dims.append(d)
        d //= 2
    return dims


def check_dims(dims: list[int], full: int) -> list[int]:
    if not dims:
        raise WorkspaceError("name at least one dimension, e.g. --dims 384,128,64")
    too_big = [d for d in dims if d > full or d < 1]
    if too_big:
        raise WorkspaceError(f"dimension {too_big[0]} is outside 1..{full}, the model's size")
    return sorted(set(dims), reverse=True)


# -- encoding ------------------------------------------------------------------------------
ROLES = ("query", "document")


def counted(progress: Progress | None, stage: str, unit: str = "") -> Counter | None:
    """A Counter that reports to ``progress`` as "``stage``: 640 of 1,597 ``unit``": a wait of
    a minute reads as moving, with a count a person can check, not as a bar alone."""
    if progress is None:
        return None
    after = f" {unit}" if unit else ""
    return lambda done, total: progress(f"{stage}: {done:,} of {total:,}{after}",
                                        done / max(total, 1))


_COUNT = re.compile(r": [\d,]+ of [\d,]+( [a-z]+)?$")


def stage_name(stage: str) -> str:
    """A stage without the count ``counted`` adds, for what should change once per stage (a
    job's status line and log), not once per batch.

    >>> stage_name("encoding passages: 640 of 1,597")
    'encoding passages'
    """
    return _COUNT.sub("", stage)


def encode(model, texts: list[str], batch_size: int = 64,
           progress: Counter | None = None, role: str = "document") -> np.ndarray:
    """Full-size float32 vectors. Texts are encoded longest first across the whole list, not
    just within one call, so batches hold texts of similar length and padding is minimal; the
    list is cut in slices of one batch only to report progress (texts done, texts in all).

    ``role`` says whether the texts are questions or passages: each is encoded with the prompt
    the model's configuration gives that role (``encode_query`` / ``encode_document``: "query: "
    and "passage: " for e5-style models), and plainly when it gives none.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    run = model.encode_query if role == "query" else model.encode_document
    dim = model.get_embedding_dimension()
    out = np.empty((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    # One batch per slice: on a busy 2-core CPU 256 passages took 143 s (load average 15), too
    # long for a count to stand still; a batch is a quarter of that, and the same batch either way.
    step = batch_size
    if progress:  # at once: the stage shows while the first slice is encoded
        progress(0, len(texts))
    for start in range(0, len(texts), step):
        part = order[start:start + step]
        out[part] = run([texts[i] for i in part], batch_size=batch_size,
                  convert_to_numpy=True, show_progress_bar=False)
        if progress:
            progress(min(len(texts), start + step), len(texts))
    return out


@functools.cache
def _openmp():
    """threadpoolctl's handle on the OpenMP runtime torch loaded, found once (it scans every
    loaded library)."""
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController().select(user_api="openmp")


def encode_one(model, text: str, role: str = "query") -> np.ndarray:
    """One short text, such as a typed question, as a 1×d matrix, encoded on one CPU thread.

    A dozen tokens gain nothing from parallel kernels, and on a busy CPU (a fine-tuning job in
    the same server, or anything else) their hand-offs dominate: in two runs of
    ``benchmarks/search_latency.py --encode`` (2 cores, load average 5) one question took a
    median 35 and 485 ms on 2 threads, 15 and 10 ms on 1. The limit is OpenMP's own, which holds
    for the calling thread only: ``torch.set_num_threads`` would also change the count that every
    thread starting meanwhile adopts, so a training job or another page could be left on one.
    """
    import torch
    torch.get_num_threads()  # torch's once-per-thread set-up, which would undo the limit if later
    with _openmp().limit(limits=1):
        return encode(model, [text], role=role)


def encode_corpus_cached(store: Store | None, model_key: str | None, model, texts: list[str],
                         batch_size: int = 64, progress: Counter | None = None
                         ) -> tuple[np.ndarray, int]:
    """Corpus vectors, reusing those already in the workspace; returns (vectors, newly encoded).
    ``progress`` counts the passages not cached yet, the only ones that take time."""
    if store is None or model_key is None:
        return encode(model, texts, batch_size, progress), len(texts)
    hashes = [text_hash(t) for t in texts]
    cached = store.cached_vectors(model_key, list(dict.fromkeys(hashes)))
    missing = [i for i, h in enumerate(hashes) if h not in cached]
    dim = model.get_embedding_dimension()
    vectors = np.empty((len(texts), dim), dtype=np.float32)
    if missing:
        fresh = encode(model, [texts[i] for i in missing], batch_size, progress)
        vectors[missing] = fresh
        store.cache_vectors([(model_key, hashes[i], fresh[j].tobytes())
                             for j, i in enumerate(missing)])
    for i, h in enumerate(hashes):
        if h in cached:
            vectors[i] = np.frombuffer(cached[h], dtype=np.float32)
    return vectors, len(missing)


# -- scoring -------------------------------------------------------------------------------
def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1, so a dot product is the cosine similarity."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def top_k(queries: np.ndarray, corpus: np.ndarray, k: int, block_bytes: int = 32 << 20
          ) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k best corpus rows per query, scanning blocks of the corpus
    whose score matrix fits in ``block_bytes``; a running top-k keeps memory flat."""
    import torch
    n_q, n_c = len(queries), len(corpus)
    k = min(k, n_c)
    block = max(256, block_bytes // (4 * max(n_q, 1)))
    q = torch.from_numpy(np.ascontiguousarray(queries))
    best_val = torch.empty((n_q, 0))
    best_idx = torch.empty((n_q, 0), dtype=torch.long)
    for start in range(0, n_c, block):
        part = torch.from_numpy(unit_rows(corpus[start:start + block]))
        val, idx = torch.topk(q @ part.T, min(k, len(part)), dim=1)
        best_val = torch.cat([best_val, val], dim=1)
        best_idx = torch.cat([best_idx, idx + start], dim=1)
        if best_val.shape[1] > k:
            best_val, keep = torch.topk(best_val, k, dim=1)
            best_idx = best_idx.gather(1, keep)
    return best_idx.numpy(), best_val.numpy()


def query_metrics(hits: list[str], rel: set[str], grades: dict[str, int] | None = None
                  ) -> dict[str, float]:
    """Every metric for one query's ranked hits: the sentence-transformers definitions (IDCG
    over all relevant passages), with NDCG's gain taken from ``grades`` when labels are graded."""
    grades = grades or {}
    flags = [h in rel for h in hits]
    first = next((i for i, f in enumerate(flags) if f), None)
    out: dict[str, float] = {}
    for k in (1, 5, 10):
        out[f"accuracy@{k}"] = float(first is not None and first < k)
    for k in (1, 5, 10, 100):
        out[f"recall@{k}"] = sum(flags[:k]) / len(rel)
    out["mrr@10"] = 1.0 / (first + 1) if first is not None and first < 10 else 0.0
    dcg = sum(grades.get(h, 1) / math.log2(i + 2) for i, (h, f) in enumerate(zip(hits[:10], flags))
              if f)
    ideal = sorted((grades.get(d, 1) for d in rel), reverse=True)[:10]
    out["ndcg@10"] = dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    correct, precision_sum = 0, 0.0
    for i, f in enumerate(flags[:100]):
        if f:
            correct += 1
            precision_sum += correct / (i + 1)
    out["map@100"] = precision_sum / min(100, len(rel))
    return out


def score_all_dims(query_vectors: np.ndarray, corpus_vectors: np.ndarray, data: RetrievalSet,
                   dims: list[int], progress: Progress | None = None
                   ) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, tuple[int, str]]],
                              dict[int, dict[str, float]]]:
    """Per dimension: the mean metrics, each query's (rank of its first relevant passage, top
    hit), and each query's NDCG@10, which significance tests resample."""
    metrics, per_query, per_query_ndcg = {}, {}, {}
    for n, dim in enumerate(dims):
        idx, val = top_k(unit_rows(query_vectors[:, :dim]), corpus_vectors[:, :dim], TOP_K)
        ranked = []
        for row_idx, row_val in zip(idx, val):
            hits = sorted(zip(row_val.tolist(), (data.corpus_ids[i] for i in row_idx)),
                          key=lambda h: (-h[0], h[1]))
            ranked.append([cid for _, cid in hits])
        scores = [query_metrics(hits, data.relevant[qid], data.grades.get(qid))
                  for qid, hits in zip(data.query_ids, ranked)]
        metrics[dim] = {m: sum(s[m] for s in scores) / len(scores) for m in METRICS}
        per_query_ndcg[dim] = {qid: round(s["ndcg@10"], 6) for qid, s in zip(data.query_ids, scores)}
        per_query[dim] = {
            qid: (next((i + 1 for i, h in enumerate(hits) if h in data.relevant[qid]), 0), hits[0])
            for qid, hits in zip(data.query_ids, ranked)}
        if progress:
            progress("scoring", (n + 1) / len(dims))
    return metrics, per_query, per_query_ndcg


def ndcg_by_dim(query_vectors: np.ndarray, corpus_vectors: np.ndarray, data: RetrievalSet,
                dims: list[int]) -> dict[int, float]:
    """NDCG@10 at each size of vectors already encoded: what a candidate map is judged on."""
    metrics = score_all_dims(query_vectors, corpus_vectors, data, dims)[0]
    return {d: metrics[d]["ndcg@10"] for d in dims}


def evaluate(model, data: RetrievalSet, dims: list[int] | None = None, *, model_name: str = "",
             store: Store | None = None, cache_key: str | None = None, batch_size: int = 64,
             progress: Progress | None = None) -> EvalResult:
    """Encode once at full size, then score every dimension."""
    full = model.get_embedding_dimension()
    dims = check_dims(dims or default_dims(full), full)
    started = time.perf_counter()
    corpus_vectors, encoded = encode_corpus_cached(store, cache_key, model, data.corpus, batch_size,
                                                   counted(progress, "encoding passages"))
    after_corpus = time.perf_counter()
    query_vectors = encode(model, data.queries, batch_size, counted(progress, "encoding queries"),
                           "query")
    after_queries = time.perf_counter()
    metrics, per_query, per_query_ndcg = score_all_dims(query_vectors, corpus_vectors, data, dims,
                                                        progress)
    done = time.perf_counter()
    return EvalResult(model_name, len(data.corpus), len(data.queries), dims, done - started,
                      metrics, per_query, per_query_ndcg, data.skipped,
                      {"corpus_encoding": after_corpus - started,
                       "query_encoding": after_queries - after_corpus,
                       "scoring": done - after_queries, "passages_encoded": encoded},
                      data.fingerprint())


def evaluate_named(name: str | None, data: RetrievalSet, dims: list[int] | None = None,
                   store: Store | None = None, progress: Progress | None = None) -> EvalResult:
    """Evaluate a registered model (bundled, folder or hub ID) with the workspace cache."""
    from core.workspace import models
    model = models.load(name)
    return evaluate(model, data, dims, model_name=name or models.DEFAULT_MODEL, store=store,
                    cache_key=cache_key(name, model), progress=progress)


def cache_key(name: str | None, model) -> str:
    """Keys a model's cached passage vectors: its weights and how much of a text it reads."""
    from core.workspace import models
    return f"{models.fingerprint(models.resolve(name))}:{model.max_seq_length}"


# -- stored results ------------------------------------------------------------------------
BASELINE = "baseline"  # the base model's label, whichever page, command or job measured it


def finetuned_label(job_id: int) -> str:
    """How the model of fine-tuning job ``job_id`` is labelled in listings, whether the job
    measured it or people's questions did later: one name per model, so Results and Runs never
    show the same model under two."""
    return f"fine-tuned (job {job_id})"


def evaluation_label(model_name: str | None) -> str:
    """How a measurement is labelled in listings: "baseline" for the bundled model (named or left
    out), otherwise the model's name. The Results page and ``evaluate --pairs`` both use it."""
    from core.workspace import models
    return BASELINE if model_name in (None, "", models.DEFAULT_MODEL) else model_name


def same_measurement(store: Store, pair_set_id: int, model: str, data: RetrievalSet,
                     dims: list[int]) -> int | None:
    """The newest stored evaluation of base model ``model``, labelled as ``evaluation_label``
    labels it, on exactly these questions, answers and passages at every one of ``dims``:
    measuring it again would give the same numbers."""
    wanted, label = data.fingerprint(), evaluation_label(model)
    for e in reversed(load_evaluations(store, pair_set_id)):
        if e.label == label and e.model == model and e.details.get("test_set") == wanted \
                and set(dims) <= set(e.metrics):
            return e.id
    return None


def save(store: Store, result: EvalResult, pair_set_id: int | None, label: str,
         job_id: int | None = None) -> int:
    details = {"dims": result.dims, "corpus": result.corpus, "queries": result.queries,
               "skipped": result.skipped, "timings": result.timings, "test_set": result.test_set,
               "per_query": {str(d): v for d, v in result.per_query.items()},
               "per_query_ndcg": {str(d): v for d, v in result.per_query_ndcg.items()}}
    return store.add_evaluation(pair_set_id, result.model, label, job_id, result.seconds, details,
                                result.metrics)


@dataclass
class StoredEvaluation(EvaluationSummary):
    """An evaluation with its numbers, as the pages and the runs table show it."""
    seconds: float
    metrics: dict[int, dict[str, float]]
    details: dict

    def table(self) -> list[dict]:
        """One row per dimension, largest first; metric columns in ``METRICS`` order (@1, @5,
        @10, @100), whatever order the stored JSON holds them in."""
        return [{"dim": d, **{m: round(ms[m], 4) for m in METRICS if m in ms}}
                for d, ms in sorted(self.metrics.items(), reverse=True)]


def load_evaluations(store: Store, pair_set_id: int | None = None) -> list[StoredEvaluation]:
    return [StoredEvaluation(r["id"], r["pair_set_id"], r["model"], r["label"], r["job_id"],
                             r["created"], r["seconds"], store.evaluation_metrics(r["id"]),
                             json.loads(r["details"]))
            for r in store.evaluation_rows(pair_set_id)]


@dataclass
class Misses:
    """The test queries whose first retrieved passage is not a relevant one: the worst ``rows``
    of ``total``, out of ``queries`` measured."""
    rows: list[dict]
    total: int
    queries: int

    def summary(self) -> str:
        """How many go wrong and how many are shown, so a capped table is not read as the count."""
        shown = f"the {len(self.rows)} worst shown" if len(self.rows) < self.total else "all shown"
        return (f"{self.total} of {self.queries} test queries rank a wrong passage first "
                f"({shown})")


MISSED_RANK = f"rank of the right passage (0: not in the top {TOP_K})"


def misses(store: Store, evaluation: StoredEvaluation, dim: int, limit: int = 50) -> Misses:
    """Test queries whose first retrieved passage is not a relevant one, worst first."""
    per_query = evaluation.details["per_query"].get(str(dim), {})
    pairs = store.pairs(evaluation.pair_set_id, "test") if evaluation.pair_set_id else []
    query_text = {p["query_id"]: p["query"] for p in pairs}
    expected = {p["query_id"]: p["positive"] for p in pairs}
    wrong = [(qid, rank, top) for qid, (rank, top) in per_query.items() if rank != 1]
    wrong.sort(key=lambda w: (w[1] == 0, w[1]), reverse=True)
    chunk_ids = [int(top) for _, _, top in wrong[:limit] if top.isdigit()]
    texts = {str(i): text for i, text in store.texts_by_id(chunk_ids).items()}
    # One type per column: a column of ranks and ">100" texts is not a table pyarrow can hold,
    # and the page's table then logged a traceback on every view while Streamlit fixed it up.
    rows = [{"query": query_text.get(qid, qid), MISSED_RANK: rank,
             "ranked first": texts.get(top, top)[:300],
             "should have been": expected.get(qid, "")[:300]} for qid, rank, top in wrong[:limit]]
    return Misses(rows, len(wrong), len(per_query))
