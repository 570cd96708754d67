"""Search a corpus with two models side by side, at one Matryoshka dimension.

Passage vectors come from the workspace cache (the same vectors the evaluation used), cut to the
chosen dimension and normalised, so a test query ranks its passages here exactly as it did when
it was measured. Up to ``EXACT_LIMIT`` passages the search is exact (one matrix product); above
it a FAISS HNSW graph answers in about a millisecond at a cost in recall. The limit comes from
``benchmarks/search_latency.py`` on two loaded CPU cores (384-d): exact search takes 0.3 ms a
query at 10k passages, 16 ms at 100k and 160-210 ms at 1M, which is still interactive for a page
that compares two models. HNSW at 1M needs a 5-7 minute build for every model and dimension shown
and then finds 0.89 of the true top 10 with efSearch 128 and 0.94 with 512, so below 1M exact
search is both faster to first answer and right; above it, the graph is the only option.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from core.measuring.evaluate import Counter, cache_key, encode_corpus_cached, encode_one
from core.using.runs import MODEL_RUNS, Run, list_runs
from core.workspace import models
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store

EXACT_LIMIT = 1_000_000
TOP = 10
SNIPPET_CHARS = 320  # about three lines of a half-width column: enough to judge a hit
HNSW_NEIGHBOURS = 32  # graph degree M: recall above 0.95 on 384-d text vectors
HNSW_EF_SEARCH = 512  # candidates per query: at 1M, recall@10 0.94 in 1 ms (128: 0.89)
_INDEXES: OrderedDict[tuple, VectorIndex] = OrderedDict()
_INDEX_CACHE_SIZE = 6
_BUILT: set[tuple] = set()  # (workspace, model name, corpus, dim) of every index built here
_lock = threading.Lock()


def unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class VectorIndex:
    """Top-k inner-product search over unit vectors."""
    kind = ""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores) of the k best rows per query, best first."""
        raise NotImplementedError


class ExactIndex(VectorIndex):
    kind = "exact"

    def __init__(self, vectors: np.ndarray):
        self.vectors = unit(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = unit(queries) @ self.vectors.T
        k = min(k, scores.shape[1])
        # argpartition finds the k best in linear time; only those k are sorted.
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)  # ties: lower row first
        idx = np.take_along_axis(part, order, axis=1)
        return idx, np.take_along_axis(scores, idx, axis=1)


class HNSWIndex(VectorIndex):
    kind = "faiss-hnsw"

    def __init__(self, vectors: np.ndarray, neighbours: int = HNSW_NEIGHBOURS,
                 ef_search: int = HNSW_EF_SEARCH):
        import faiss
        data = unit(vectors)
        self.index = faiss.IndexHNSWFlat(data.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efSearch = ef_search
        self.index.add(data)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, idx = self.index.search(unit(queries), min(k, self.index.ntotal))
        return idx, scores


def build_index(vectors: np.ndarray, exact_limit: int = EXACT_LIMIT) -> VectorIndex:
    """Exact search while it is fast enough, an HNSW graph above ``exact_limit`` rows."""
    return ExactIndex(vectors) if len(vectors) <= exact_limit else HNSWIndex(vectors)


# -- which models to compare -------------------------------------------------------------------
@dataclass
class ModelChoice:
    """A model measured on a pair set, that search can load."""
    label: str
    model: str  # a name or folder models.load accepts
    run_id: str
    kind: str
    dims: list[int]


def searchable_models(store: Store, pair_set_id: int, runs: list[Run] | None = None
                      ) -> list[ModelChoice]:
    """Every model measured on the pair set, newest run first, each model once; a run that
    kept the base model unchanged is the base model, not a model of its own."""
    choices: dict[str, ModelChoice] = {}
    for run in list_runs(store) if runs is None else runs:
        if run.pair_set_id != pair_set_id or not run.metrics or run.kept_base:
            continue
        model = run.model_path if run.kind in MODEL_RUNS else run.model
        if model and model not in choices:
            choices[model] = ModelChoice(f"{run.name} · {run.id}", model, run.id, run.kind,
                                         sorted(run.metrics, reverse=True))
    return list(choices.values())


def default_pair(choices: list[ModelChoice], base: Run | None, best: Run | None
                 ) -> tuple[int, int]:
    """Indices of the two models to compare first: the comparison that matters on this set
    (``base`` and ``best`` of core.deciding.compare.comparison), the best on the right;
    otherwise the two newest runs."""
    ids = [c.run_id for c in choices]
    base, best = (ids.index(r.id) if r is not None and r.id in ids else None
                  for r in (base, best))
    if base is None and best is None:
        return (1, 0) if len(choices) > 1 else (0, 0)

    def other(than: int) -> int:
        return next((i for i in range(len(choices)) if i != than), than)
    return (other(best), best) if base is None else (base, other(base) if best is None else best)


def common_dims(a: ModelChoice, b: ModelChoice) -> list[int]:
    dims = [d for d in a.dims if d in b.dims]
    return dims or sorted(set(a.dims) | set(b.dims), reverse=True)


@dataclass
class TestQuery:
    query_id: str
    query: str
    relevant: set[int] = field(default_factory=set)


def test_queries(store: Store, pair_set_id: int) -> list[TestQuery]:
    """The test queries of a pair set with the passages labelled as their answers."""
    queries: dict[str, TestQuery] = {}
    for p in store.pairs(pair_set_id, "test"):
        queries.setdefault(p["query_id"], TestQuery(p["query_id"], p["query"])).relevant.add(
            p["chunk_id"])
    return list(queries.values())


# -- searching ---------------------------------------------------------------------------------
@dataclass
class Hit:
    rank: int
    chunk_id: int
    score: float
    document: str
    text: str
    relevant: bool

    def snippet(self, limit: int = SNIPPET_CHARS) -> str:
        """The passage's start, cut at a word boundary, with an ellipsis when cut."""
        text = " ".join(self.text.split())
        if len(text) <= limit:
            return text
        return text[:limit].rsplit(" ", 1)[0] + " …"

    def score_text(self) -> str:
        """One format for every score on the page, so the two sides read alike."""
        return f"{self.score:.3f}"


def _index_key(store: Store, corpus_id: int, model_name: str, dim: int) -> tuple[tuple, list[int]]:
    model = models.load(model_name)
    ids = store.chunk_ids(corpus_id)
    if not ids:
        raise WorkspaceError("this corpus has no passages to search; add documents first")
    return (str(store.path), cache_key(model_name, model), corpus_id, dim, len(ids), ids[-1]), ids


def index_ready(store: Store, corpus_id: int, model_name: str, dim: int | None = None) -> bool:
    """Whether ``corpus_index`` answers at once: its index is built in this process (the
    model loaded, every passage encoded), so a page need not show that it is preparing. A model
    never indexed here is not loaded to find out (loading takes seconds itself). ``dim`` None:
    the model's full size."""
    with _lock:
        if not any(b[:3] == (str(store.path), model_name, corpus_id) and dim in (None, b[3])
                   for b in _BUILT):
            return False
    dim = dim or models.load(model_name).get_embedding_dimension()
    key, _ = _index_key(store, corpus_id, model_name, dim)
    with _lock:
        return key in _INDEXES


def corpus_index(store: Store, corpus_id: int, model_name: str, dim: int,
                 progress: Counter | None = None) -> tuple[VectorIndex, list[int]]:
    """The index of a corpus under a model at ``dim`` dimensions, and the chunk id of each row.
    Built once per process from the cached vectors; later searches reuse it. ``progress``
    counts the passages encoded, the slow part the first time a model meets the corpus (about
    a minute for 1,600 passages on a busy 2-core CPU)."""
    key, ids = _index_key(store, corpus_id, model_name, dim)
    with _lock:
        if key in _INDEXES:
            _INDEXES.move_to_end(key)
            return _INDEXES[key], ids
    vectors, _ = encode_corpus_cached(store, key[1], models.load(model_name),
                                      store.chunk_texts(corpus_id), progress=progress)
    index = build_index(vectors[:, :dim])
    with _lock:
        _INDEXES[key] = index
        _BUILT.add((str(store.path), model_name, corpus_id, dim))
        while len(_INDEXES) > _INDEX_CACHE_SIZE:
            _INDEXES.popitem(last=False)
    return index, ids


def search(store: Store, pair_set_id: int, model_name: str, query: str, dim: int,
           k: int = TOP, relevant: set[int] | None = None,
           progress: Counter | None = None) -> list[Hit]:
    """The ``k`` best passages of the pair set's corpus for ``query``.

    Args:
        model_name: a name or folder ``models.load`` accepts.
        dim: Matryoshka dimension: the first ``dim`` entries of each vector are compared.
        relevant: chunk ids labelled as the query's answer, to mark in the hits.
        progress: counts the passages encoded when the model meets the corpus the first time
            (see ``index_ready``); later searches encode only the query.
    """
    if not query.strip():
        raise WorkspaceError("type a question to search for")
    pair_set = store.pair_set(pair_set_id)
    model = models.load(model_name)
    if not 1 <= dim <= model.get_embedding_dimension():
        raise WorkspaceError(f"dimension {dim} is outside 1..{model.get_embedding_dimension()}")
    index, ids = corpus_index(store, pair_set.corpus_id, model_name, dim, progress)
    query_vector = encode_one(model, query)[:, :dim]
    rows, scores = index.search(query_vector, k)
    hit_ids = [ids[i] for i in rows[0] if i >= 0]
    texts = store.passage_rows(hit_ids)
    relevant = relevant or set()
    return [Hit(rank, cid, float(score), texts[cid]["document"], texts[cid]["text"], cid in relevant)
            for rank, (cid, score) in enumerate(zip(hit_ids, scores[0]), start=1)]


def rank_changes(before: list[Hit], after: list[Hit]) -> dict[int, str]:
    """For each passage in ``after``: ``↑n``/``↓n`` places against ``before``, ``new`` when
    ``before`` did not show it, ``=`` when unmoved."""
    was = {h.chunk_id: h.rank for h in before}
    out = {}
    for h in after:
        if h.chunk_id not in was:
            out[h.chunk_id] = "new"
        else:
            moved = was[h.chunk_id] - h.rank
            out[h.chunk_id] = f"↑{moved}" if moved > 0 else f"↓{-moved}" if moved < 0 else "="
    return out
