"""An unsupervised Matryoshka adaptor: a learned rotation that keeps full-size similarities
in the truncated vectors, trained on a corpus's passage vectors alone.

Yoon, Sinha, Arik and Pfister ("Matryoshka-Adaptor", EMNLP 2024) train a small map on corpus
embeddings so that, at each truncated size d, the cosine similarities of the first d entries
match those of the full-size embeddings: a *pairwise* loss over random pairs and a *top-k* loss
over each passage's nearest neighbours. Here the map is kept orthogonal (the Cayley transform
``Q = (I - S)⁻¹(I + S)`` of a skew-symmetric ``S``, started at the corpus-fitted rotation of ``core.training.rotate``): an orthogonal map keeps every
full-size inner product, so the full size cannot lose, the result is still one linear layer,
and only the truncated sizes are learned. Seconds on a CPU for thousands of passages.

Example::

    >>> adapted = adapt(vectors, fit(vectors), dims=[256, 128, 64, 32])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.training.rotate import Rotation


@dataclass
class AdaptorConfig:
    """Args:
        steps: optimiser steps (each one batch of anchors).
        batch: anchors per step.
        neighbours: the top-k of the top-k loss.
        learning_rate: Adam's step size on the skew-symmetric generator.
        seed: for the anchor sampling.
    """
    steps: int = 60
    batch: int = 256
    neighbours: int = 10
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch < 2 or self.neighbours < 1 or not self.learning_rate > 0:
            raise ValueError("steps, batch, neighbours and learning_rate must be positive")


def _cos(x, y):
    import torch.nn.functional as F
    return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T


def _cayley(free):
    """An orthogonal matrix from any square matrix, the identity at zero; a linear solve is far
    cheaper to differentiate than a matrix exponential."""
    import torch
    skew = free - free.T
    eye = torch.eye(len(free))
    return torch.linalg.solve(eye - skew, eye + skew)


def adapt(vectors: np.ndarray, start: Rotation, dims: list[int],
          config: AdaptorConfig | None = None) -> Rotation:
    """Learn an orthogonal refinement of ``start`` whose truncations keep full-size similarities.

    Args:
        vectors: (passages, dim) model output vectors of the corpus.
        start: the rotation to refine (its bias, if any, is rotated along).
        dims: the truncated sizes to train for (the full size is kept exactly anyway).
    """
    import torch
    config = config or AdaptorConfig()
    sizes = [d for d in dims if d < vectors.shape[1]]
    if not sizes or len(vectors) < 3:
        return start
    generator = torch.Generator().manual_seed(config.seed)
    x = torch.from_numpy(vectors.astype(np.float32))
    base = torch.nn.functional.normalize(x, dim=1)
    mapped = torch.from_numpy(start.apply(vectors))  # the start's vectors; Q rotates them further
    k = min(config.neighbours, len(x) - 1)
    with torch.no_grad():  # each passage's k nearest neighbours at full size, itself excluded
        neighbours = torch.cat([(base[i:i + 1024] @ base.T).topk(k + 1, dim=1).indices[:, 1:]
                                for i in range(0, len(base), 1024)])
    generator_matrix = torch.zeros(x.shape[1], x.shape[1], requires_grad=True)
    optimiser = torch.optim.Adam([generator_matrix], lr=config.learning_rate)
    batch = min(config.batch, len(x))
    for _ in range(config.steps):
        anchors = torch.randperm(len(x), generator=generator)[:batch]
        others = torch.randperm(len(x), generator=generator)[:batch]
        q = _cayley(generator_matrix)
        y_anchor, y_other = mapped[anchors] @ q.T, mapped[others] @ q.T
        y_near = mapped[neighbours[anchors]] @ q.T  # (batch, k, dim)
        target_pairs = base[anchors] @ base[others].T
        target_near = (base[anchors, None, :] * base[neighbours[anchors]]).sum(-1)
        loss = 0.0
        for d in sizes:
            loss = loss + (_cos(y_anchor[:, :d], y_other[:, :d]) - target_pairs).abs().mean()
            near = (torch.nn.functional.normalize(y_anchor[:, None, :d], dim=-1)
                    * torch.nn.functional.normalize(y_near[..., :d], dim=-1)).sum(-1)
            loss = loss + (near - target_near).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        q = _cayley(generator_matrix).numpy().astype(np.float64)
    weight = (q @ start.weight.astype(np.float64)).astype(np.float32)
    bias = (q @ start.bias.astype(np.float64)).astype(np.float32)
    return Rotation(weight, bias, "adapted", start.variance)
