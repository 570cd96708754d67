"""A rotation of the embedding space fitted on a corpus's own passages, folded into the model.

Matryoshka truncation keeps a vector's first d entries. A model's first entries are not where a
given corpus varies most, so a rotation by the principal axes of the corpus's passage vectors
(Pearson, 1901; Jolliffe, "Principal Component Analysis") puts the directions that tell this
corpus's passages apart first, and the truncated vectors keep more of what ranks them. It needs
no labels and seconds of compute.

Three fits are offered:

* ``rotation`` (the default): the principal axes of the centred passage vectors, applied without
  the centring. An orthogonal map keeps every inner product and norm, so full-size rankings are
  exactly those of the model; only truncated sizes change.
* ``pca``: the same axes with the centring kept as a bias. Removing the shared mean direction
  can help small sizes but changes full-size rankings (it cost 1.1% NDCG@10 at full size on a
  public science-claims set).
* ``whitened``: ``pca`` scaled to unit variance per axis, which changes rankings at every size.

The map ends up inside the saved sentence-transformers model as a ``Dense`` module (identity
activation) followed by ``Normalize``, so ``SentenceTransformer(path, truncate_dim=d)``,
LangChain and LlamaIndex load it as any other model, and give the vectors ragtune measured.

Example::

    >>> rotation = fit(passage_vectors, "rotation")
    >>> save_rotated("all-MiniLM-L6-v2", rotation, Path("rotated"), {"corpus": "docs"})
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .store import Store, WorkspaceError

log = logging.getLogger(__name__)
KINDS = ("rotation", "pca", "whitened")
DEFAULT_KIND = "rotation"
MIN_PASSAGES = 2  # a covariance needs two vectors; axes beyond n - 1 are then arbitrary


@dataclass
class Rotation:
    """An affine map ``y = weight @ x + bias`` of the model's output vectors.

    Attributes:
        weight: (dim, dim) float32; row i is the i-th axis, by decreasing corpus variance.
        bias: (dim,) float32; zeros unless the map centres.
        kind: which fit made it, one of ``KINDS`` or "adapted" (core.adaptor).
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
    # eigh of the covariance: ascending eigenvalues, flipped to put the widest axis first.
    values, axes = np.linalg.eigh(centred.T @ centred / max(len(x) - 1, 1))
    values, axes = np.clip(values[::-1], 0, None), axes[:, ::-1]
    # An eigenvector's sign is arbitrary; fixing it makes a refit on the same data identical.
    axes *= np.where(axes[np.abs(axes).argmax(axis=0), range(axes.shape[1])] < 0, -1, 1)
    weight = axes.T
    bias = np.zeros(len(mean))
    if kind == "whitened":
        weight = weight / np.sqrt(values + values.max() * 1e-6)[:, None]
    if kind in ("pca", "whitened"):
        bias = -weight @ mean
    variance = values / max(values.sum(), 1e-12)
    return Rotation(weight.astype(np.float32), bias.astype(np.float32), kind,
                    variance.astype(np.float32))


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
    from . import models
    from .train import save_model
    model = fold(models.load_fresh(model_name, "cpu"), rotation)
    save_model(model, Path(path), {"rotation": rotation.kind, "base_model": model_name
                                   or models.DEFAULT_MODEL, **details})
    return Path(path)


# -- corpus vectors, through the workspace cache -------------------------------------------------
def passage_vectors(store: Store | None, model_name: str | None, texts: list[str]) -> np.ndarray:
    """The model's vectors for ``texts`` as passages, from the cache the evaluator fills."""
    from . import models
    from .evaluate import cache_key, encode_corpus_cached
    model = models.load(model_name)
    vectors, _ = encode_corpus_cached(store, cache_key(model_name, model), model, texts)
    return vectors


def prime_cache(store: Store, model_path: Path, rotation: Rotation, base_vectors: np.ndarray,
                texts: list[str]) -> None:
    """Store the folded model's passage vectors without encoding again: they are the base
    model's vectors mapped by the rotation (equal to the model's own output up to float
    rounding), so evaluation and search of the rotated model start at once."""
    from . import models
    from .corpus import text_hash
    from .evaluate import cache_key
    key = cache_key(str(model_path), models.load(str(model_path)))
    mapped = rotation.apply(base_vectors)
    with store.transaction() as db:
        db.executemany("INSERT OR REPLACE INTO embeddings (model_key, text_hash, vector) "
                       "VALUES (?, ?, ?)",
                       [(key, text_hash(t), v.tobytes()) for t, v in zip(texts, mapped)])


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
