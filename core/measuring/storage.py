"""How much index space each Matryoshka dimension and precision needs, and what it keeps.

A vector index holds N vectors of d numbers: float32 takes 4·N·d bytes, int8 N·d (scalar
quantisation, per-dimension ranges calibrated on the corpus) and binary N·d/8 (the sign of each
number, compared by Hamming distance). The scores are measured, not assumed: queries and
passages are cut to d, normalised, quantised with sentence-transformers' ``quantize_embeddings``
and ranked with the evaluator's own metric code, so the float32 rows equal the stored evaluation.
For binary vectors, ranking ±1 vectors by cosine is ranking by Hamming distance
(dot = d − 2·hamming), so the same scoring path serves all three precisions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.measuring.evaluate import (
    Progress,
    RetrievalSet,
    cache_key,
    check_dims,
    counted,
    default_dims,
    encode,
    encode_corpus_cached,
    score_all_dims,
)
from core.workspace import models
from core.workspace.disk import human_bytes
from core.workspace.store import Store
from core.workspace.wording import trimmed

PRECISIONS = ("float32", "int8", "binary")
KEEP = 0.95  # the headline option must keep at least this share of the full-size score


def vector_bytes(dim: int, precision: str) -> int:
    """Bytes one vector takes in an index, before any index overhead."""
    return {"float32": 4 * dim, "int8": dim, "binary": math.ceil(dim / 8)}[precision]


def quantised(queries: np.ndarray, corpus: np.ndarray, dim: int, precision: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """Queries and passages at ``dim`` dimensions and ``precision``, as float32 matrices whose
    cosine similarity is the similarity that precision's index computes."""
    from sentence_transformers.util.quantization import quantize_embeddings

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    q, c = unit(queries[:, :dim]), unit(corpus[:, :dim])
    if precision == "float32":
        return q, c
    if precision == "int8":  # one calibration, on the corpus, for both sides
        return (quantize_embeddings(q, "int8", calibration_embeddings=c).astype(np.float32),
                quantize_embeddings(c, "int8", calibration_embeddings=c).astype(np.float32))
    if precision == "binary":
        def signs(x: np.ndarray) -> np.ndarray:
            bits = np.unpackbits(quantize_embeddings(x, "ubinary"), axis=1)[:, :dim]
            return bits.astype(np.float32) * 2 - 1
        return signs(q), signs(c)
    raise ValueError(f"unknown precision {precision!r}")


def times(ratio: float) -> str:
    """How many times smaller, as the table and the headline both write it: "1.5×", "24×"."""
    return f"{trimmed(ratio)}×"


def percent_down(share: float) -> str:
    """A share as a percentage cut (not rounded) to one decimal, so 94.98% reads 94.9% and
    never 95% beside a "≥ 95%" rule it misses."""
    return f"{math.floor(share * 1000 + 1e-9) / 10:.1f}%"


@dataclass
class StorageOption:
    dim: int
    precision: str
    bytes: int  # for the planned number of passages
    ndcg: float
    smaller: float  # times smaller than full-size float32
    kept: float  # share of the full-size float32 NDCG@10

    def row(self, keep: float = KEEP) -> dict:
        """The option as the page shows it: every number written as text, so each column keeps
        one format (a table widget drops trailing zeros: 0.5290 would read 0.529)."""
        return {"dim": self.dim, "precision": self.precision, "index size": human_bytes(self.bytes),
                "smaller": times(self.smaller), "NDCG@10": f"{self.ndcg:.4f}",
                "of full score": percent_down(self.kept),
                f"keeps ≥ {keep:.0%}": "yes" if self.kept >= keep else "no"}


@dataclass
class StorageTable:
    model: str
    passages: int  # the number sizes are given for
    options: list[StorageOption]
    queries: int = 0  # test queries the scores were measured on
    corpus_passages: int = 0  # passages they were measured against

    def headline(self, keep: float = KEEP) -> str:
        """The smallest index keeping ``keep`` of the full-size score, in one line."""
        good = [o for o in self.options if o.kept >= keep and o.smaller > 1]
        if not good:
            return (f"No smaller index keeps {keep:.0%} of the full-size score here; store "
                    "full-size float32 vectors.")
        best = min(good, key=lambda o: (o.bytes, -o.ndcg))
        return (f"{best.dim}-d {best.precision}: {times(best.smaller)} smaller, "
                f"{percent_down(best.kept)} of the score ({human_bytes(best.bytes)} for "
                f"{self.passages:,} passages instead of {human_bytes(self.full_bytes)}).")

    def caption(self) -> str:
        """What the sizes and scores are for, truthfully."""
        return (f"Sizes are for {self.passages:,} passages (vectors only, before any index "
                f"overhead; 1 MB = 10⁶ bytes). Scores are measured on {self.queries:,} test "
                f"questions against this corpus's {self.corpus_passages:,} passages.")

    def notes(self) -> list[str]:
        """Results a reader could misread: int8 or binary scoring above float32 at the same size."""
        by = {(o.dim, o.precision): o for o in self.options}
        return [f"At {o.dim} dims {o.precision} scores {o.ndcg:.4f} against float32's "
                f"{by[o.dim, 'float32'].ndcg:.4f}: quantising rounds the scores and reorders "
                f"near-ties, and on {self.queries:,} test questions such a difference is "
                f"noise, not a gain from {o.precision}."
                for o in self.options
                if o.precision != "float32" and (o.dim, "float32") in by
                and o.ndcg > by[o.dim, "float32"].ndcg]

    @property
    def full_bytes(self) -> int:
        return max(o.bytes for o in self.options)


def storage_options(query_vectors: np.ndarray, corpus_vectors: np.ndarray, data: RetrievalSet,
                    dims: list[int], passages: int | None = None,
                    progress: Progress | None = None) -> list[StorageOption]:
    """NDCG@10 and index size for every (dimension × precision).

    Args:
        passages: N to size the index for (default: the corpus measured).
        progress: told "quantising and scoring: 3 of 18 options" after each option.
    """
    n = passages or len(corpus_vectors)
    full = max(dims)
    scores = {}
    report = counted(progress, "quantising and scoring", "options")
    for dim in dims:
        for precision in PRECISIONS:
            q, c = quantised(query_vectors, corpus_vectors, dim, precision)
            metrics = score_all_dims(q, c, data, [dim])[0]
            scores[dim, precision] = metrics[dim]["ndcg@10"]
            if report:
                report(len(scores), len(dims) * len(PRECISIONS))
    reference = scores[full, "float32"] or 1e-12
    full_bytes = n * vector_bytes(full, "float32")
    return [StorageOption(d, p, n * vector_bytes(d, p), s, full_bytes / (n * vector_bytes(d, p)),
                          s / reference) for (d, p), s in scores.items()]


def measure(store: Store, pair_set_id: int, model_name: str, dims: list[int] | None = None,
            passages: int | None = None, progress: Progress | None = None) -> StorageTable:
    """The storage table of a model on a pair set's test queries (passage vectors from the
    workspace cache; only the queries are encoded), ``progress`` told each stage with a count."""
    model = models.load(model_name)
    data = RetrievalSet.from_pair_set(store, pair_set_id)
    full = model.get_embedding_dimension()
    dims = check_dims(dims or default_dims(full), full)
    corpus, _ = encode_corpus_cached(store, cache_key(model_name, model), model, data.corpus,
                                     progress=counted(progress, "encoding passages"))
    queries = encode(model, data.queries, role="query",
                     progress=counted(progress, "encoding queries"))
    return StorageTable(model_name, passages or len(data.corpus),
                        storage_options(queries, corpus, data, dims, passages, progress),
                        len(data.queries), len(data.corpus))
