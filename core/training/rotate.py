"""A rotation of the embedding space fitted on a corpus's own passages, folded into the model.

Matryoshka truncation keeps a vector's first d entries. A model's first entries are not where a
given corpus varies most, so a rotation by the principal axes of the corpus's passage vectors
(Pearson, 1901; Jolliffe, "Principal Component Analysis") puts the directions that tell this
corpus's passages apart first, and the truncated vectors keep more of what ranks them. It needs
no labels and seconds of compute.

Three fits are offered:

* ``rotation`` (the default): the principal axes of the passage vectors once their shared mean
  direction is projected out, with that mean direction as the very last axis. Every passage
  sits about as far along the mean as every other (1.4-4.4% of the variance on the three
  benchmark corpora) while questions sit elsewhere along it, so kept early it adds the same
  large offset to every truncated vector and tells no passage apart; moved last, it leaves the
  truncated sizes to the directions that do. The map is orthogonal, so full-size rankings are
  exactly those of the model. Against the centred axes applied without centring (the first
  version of this fit) it gained up to +6.7 NDCG@10 points at 32 dims on people's questions
  (benchmarks/quality.py).
* ``pca``: the centred principal axes, the centring kept as a bias. Removing the shared mean
  changes full-size rankings: it cost 1.9% and 3.8% NDCG@10 at full size on two benchmark
  corpora and gained 2.8% on the third, where the mean made hubs (passages near the mean that
  crowd into every top 10; Suzuki et al., EMNLP 2013, "Centering similarity measures to reduce
  hubs"). core.training.tune only keeps it where centring measurably removes hubs.
* ``whitened``: ``pca`` scaled to unit variance per axis, which changes rankings at every size.

The map ends up inside the saved sentence-transformers model as a ``Dense`` module (identity
activation) followed by ``Normalize``, so ``SentenceTransformer(path, truncate_dim=d)``,
LangChain and LlamaIndex load it as any other model, and give the vectors ragtune measured.

Example:
    >>> vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    >>> rotation = fit(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), "rotation")
    >>> rotation.weight.shape, bool(np.allclose(rotation.weight @ rotation.weight.T, np.eye(8), atol=1e-5))
    ((8, 8), True)

    Saved inside a model folder: ``save_rotated("all-MiniLM-L6-v2", rotation, Path("rotated"), {})``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.workspace.store import Store, WorkspaceError

log = logging.getLogger(__name__)
KINDS = ("rotation", "pca", "whitened")
DEFAULT_KIND = "rotation"
MIN_PASSAGES = 2  # a covariance needs two vectors; axes beyond n - 1 are then arbitrary


@dataclass
class Rotation:
    """An affine map ``y = weight @ x + bias`` of the model's output vectors.

    Attributes:
        weight: (dim, dim) float32; row i is the i-th axis, by decreasing corpus variance
            (for ``rotation``, the corpus's mean direction comes last whatever its variance).
        bias: (dim,) float32; zeros unless the map centres.
        kind: which fit made it, one of ``KINDS`` or "adapted" (benchmarks.adaptor).
        variance: share of the corpus's variance along each axis, largest first.
    """
    weight: np.ndarray
    bias: np.ndarray
    kind: str
    variance: np.ndarray

    def __post_init__(self):
        dim = self.weight.shape[1]
        if self.weight.shape != (dim, dim) or self.bias.shape != (dim,):
            raise ValueError(f"a rotation needs a square weight and a matching bias, got "
                             f"{self.weight.shape} and {self.bias.shape}")

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """The mapped vectors, unit length, as the folded model's ``Normalize`` returns them."""
        out = vectors.astype(np.float32) @ self.weight.T + self.bias
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def summary(self) -> str:
        shares = np.cumsum(self.variance)
        parts = [f"{d} dims keep {shares[d - 1]:.0%}" for d in (32, 64, 128) if d < len(shares)]
        return f"{self.kind}: " + ", ".join(parts) + " of the corpus's variance"


def fit(vectors: np.ndarray, kind: str = DEFAULT_KIND) -> Rotation:
    """Fit a rotation on passage vectors.

    Args:
        vectors: (passages, dim) output vectors of the model for the corpus's passages.
        kind: "rotation", "pca" or "whitened" (see the module docstring).
    """
    if kind not in KINDS:
        raise WorkspaceError(f"rotation kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if len(vectors) < MIN_PASSAGES:
        raise WorkspaceError(f"a rotation needs at least {MIN_PASSAGES} passages and the corpus "
                             f"has {len(vectors)}; add documents first")
    x = vectors.astype(np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    covariance = centred.T @ centred / max(len(x) - 1, 1)
    if kind == "rotation" and np.linalg.norm(mean) > 1e-6 * np.linalg.norm(x, axis=1).mean():
        weight = _mean_last_axes(covariance, mean / np.linalg.norm(mean))
        bias = np.zeros(len(mean))
    else:
        weight = _axes(covariance)
        bias = -weight @ mean if kind in ("pca", "whitened") else np.zeros(len(mean))
    values = np.clip(np.einsum("ij,jk,ik->i", weight, covariance, weight), 0, None)
    if kind == "whitened":
        scale = 1 / np.sqrt(values + values.max() * 1e-6)
        weight, bias = weight * scale[:, None], bias * scale
    variance = values / max(values.sum(), 1e-12)
    return Rotation(weight.astype(np.float32), bias.astype(np.float32), kind,
                    variance.astype(np.float32))


def _axes(covariance: np.ndarray) -> np.ndarray:
    """The eigenvectors of a symmetric matrix as rows, largest eigenvalue first, signs fixed."""
    axes = np.linalg.eigh(covariance)[1]  # ascending; flipped to put the widest axis first
    axes = axes[:, ::-1]
    # An eigenvector's sign is arbitrary; fixing it makes a refit on the same data identical.
    axes = axes * np.where(axes[np.abs(axes).argmax(axis=0), range(axes.shape[1])] < 0, -1, 1)
    return axes.T


def _mean_last_axes(covariance: np.ndarray, mean_direction: np.ndarray) -> np.ndarray:
    """Principal axes of the spread across the mean direction, then the mean direction itself.

    Projecting the mean direction out and giving it an eigenvalue below every other one makes
    it the unique last eigenvector, so the rows stay exactly orthonormal even when fewer
    passages than dimensions leave many eigenvalues at zero.
    """
    across = np.eye(len(mean_direction)) - np.outer(mean_direction, mean_direction)
    shifted = across @ covariance @ across
    shifted -= (np.trace(covariance) + 1) * np.outer(mean_direction, mean_direction)
    return _axes(shifted)


# -- into a sentence-transformers model ------------------------------------------------------
def fold(model, rotation: Rotation):
    """Append the map to ``model`` as ``Dense`` (identity activation) then ``Normalize``.

    The map acts on whatever the model outputs (already unit length for most models), which is
    what it was fitted on. Returns the same model object, changed in place.
    """
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize
    dim = model.get_embedding_dimension()
    if rotation.weight.shape[1] != dim:
        raise WorkspaceError(f"the rotation was fitted on {rotation.weight.shape[1]}-dim vectors "
                             f"but the model gives {dim}; fit it on this model's vectors")
    dense = Dense(dim, dim, bias=True, activation_function=torch.nn.Identity(),
                  init_weight=torch.from_numpy(rotation.weight.copy()),
                  init_bias=torch.from_numpy(rotation.bias.copy()))
    model.append(dense.to(model.device))
    model.append(Normalize())
    return model


def save_rotated(model_name: str | None, rotation: Rotation, path: Path, details: dict) -> Path:
    """Save ``model_name`` with ``rotation`` folded in to ``path`` (replaced atomically)."""
    from core.training.checkpoints import save_model
    from core.workspace import models
    model = fold(models.load_fresh(model_name, "cpu"), rotation)
    save_model(model, Path(path), {"rotation": rotation.kind, "base_model": model_name
                                   or models.DEFAULT_MODEL, **details})
    return Path(path)


# -- corpus vectors, through the workspace cache -------------------------------------------------
def passage_vectors(store: Store | None, model_name: str | None, texts: list[str],
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The model's vectors for ``texts`` as passages, from the cache the evaluator fills;
    ``progress`` is told (passages encoded, passages to encode), and may raise to stop."""
    from core.measuring.evaluate import cache_key, encode_corpus_cached
    from core.workspace import models
    model = models.load(model_name)
    vectors, _ = encode_corpus_cached(store, cache_key(model_name, model), model, texts,
                                      progress=progress)
    return vectors


def prime_cache(store: Store, model_path: Path, rotation: Rotation, base_vectors: np.ndarray,
                texts: list[str]) -> None:
    """Store the folded model's passage vectors without encoding again: they are the base
    model's vectors mapped by the rotation (equal to the model's own output up to float
    rounding), so evaluation and search of the rotated model start at once."""
    from core.measuring.evaluate import cache_key
    from core.workspace import models
    from core.workspace.text import text_hash
    key = cache_key(str(model_path), models.load(str(model_path)))
    mapped = rotation.apply(base_vectors)
    store.cache_vectors([(key, text_hash(t), v.tobytes()) for t, v in zip(texts, mapped)])


@dataclass
class RotationCheck:
    """Whether the rotation was folded into a fine-tuned model, and why.

    Attributes:
        kept: folded in, because it scored higher on the run's validation queries.
        without: validation NDCG@10 per size of the model as trained.
        rotated: the same with the rotation; equal at full size by construction.
    """
    kept: bool
    without: dict[int, float]
    rotated: dict[int, float]

    def line(self) -> str:
        sizes = [d for d in self.without if d != max(self.without)]
        change = np.mean([self.rotated[d] - self.without[d] for d in sizes]) if sizes else 0.0
        return (f"rotation {'kept' if self.kept else 'not kept'}: {change:+.4f} NDCG@10 on the "
                f"validation queries, averaged over {', '.join(map(str, sizes))} dims")


def rotate_if_it_helps(model_path: Path, validation, dims: list[int],
                       store: Store | None = None) -> RotationCheck:
    """The last step of a fine-tune: fit the rotation on the trained model's own passage vectors
    and fold it into the model (in place) when it raises the validation queries' NDCG@10
    averaged over the truncated sizes. Full size cannot change: the map is orthogonal.

    Args:
        model_path: the kept model's folder.
        validation: the run's validation set (a ``core.measuring.evaluate.RetrievalSet``), never its test.
        dims: the sizes the run is measured at, full size first.
        store: the workspace whose cache holds (and then gets) the passage vectors.
    """
    import json

    from core.measuring.evaluate import encode, ndcg_by_dim
    from core.workspace import models
    model = str(model_path)
    passages = passage_vectors(store, model, validation.corpus)
    queries = encode(models.load(model), validation.queries, role="query")
    rotation = fit(passages, "rotation")

    check = RotationCheck(False, ndcg_by_dim(queries, passages, validation, dims),
                          ndcg_by_dim(rotation.apply(queries), rotation.apply(passages),
                                      validation, dims))
    truncated = [d for d in dims if d != max(dims)]
    check.kept = bool(truncated) and sum(check.rotated[d] - check.without[d] for d in truncated) > 0
    if check.kept:
        card = Path(model_path) / "ragtune.json"
        details = json.loads(card.read_text()) if card.is_file() else {}
        save_rotated(model, rotation, Path(model_path), {**details, "validation_with_rotation": {
            str(d): round(v, 4) for d, v in check.rotated.items()}})
        if store is not None:
            prime_cache(store, Path(model_path), rotation, passages, validation.corpus)
    log.info(check.line())
    return check


def rotate_corpus(store: Store, corpus_ref: int | str, model_name: str | None = None,
                  kind: str = DEFAULT_KIND, path: Path | None = None) -> tuple[Path, Rotation]:
    """Fit ``kind`` on a workspace corpus and save the rotated model (by default under the
    workspace's ``files/rotated``); returns its folder and the rotation."""
    corpus = store.corpus(corpus_ref)
    texts = [c["text"] for c in store.chunks(corpus.id)]
    base = passage_vectors(store, model_name, texts)
    rotation = fit(base, kind)
    path = Path(path) if path else store.files / "rotated" / f"corpus-{corpus.id}-{kind}"
    save_rotated(model_name, rotation, path, {"corpus": corpus.name})
    prime_cache(store, path, rotation, base, texts)
    return path, rotation
