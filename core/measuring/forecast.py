"""What more labelled questions should add: a stated law fitted to a measured learning curve.

The law is **gain = a + b·ln(n)**: the NDCG@10 gain over the base model of a fine-tune on n
training questions, fitted per embedding size by least squares to the curve's trained points.
Why this one:

* A curve has two to four points, so the law may have two parameters at most; a saturating power
  law (gain = g∞ − c·n^−α) has three, and with three points it would pass through all of them
  and say nothing about its own error.
* Gains measured on a few dozen questions are often zero or below, so laws fitted on log(gain)
  (gain = c·n^α) cannot take them.
* Learning curves of fine-tuned retrievers flatten: every doubling adds about the same, which a
  logarithm says and a straight line in n does not (Hestness et al., 2017, "Deep learning scaling
  is predictable, empirically", find the early part of such curves close to a power law with a
  small exponent, which a logarithm follows over the range a team can label).

The untrained model (n = 0) is the reference every gain is measured against, not a fitted point:
ln(0) has no value. The law keeps growing without bound, so it is trusted for a doubling or two
beyond the measured points, which is what it is asked for (2× and 4× the labels).

**The band** is the fit's 95% interval: each point's gain is uncertain by its paired-bootstrap
interval against the base (``core.measuring.significance``), and the prediction is a weighted sum
of the points' gains, so its half-width is the points' half-widths combined with those weights
(as if the points were independent: they share the test questions, which correlates them
positively, and the extrapolating weights have opposite signs, so the band is if anything wide);
with more points than parameters, the scatter about the line is added.

**The labels the test set can tell**: the test set's own resolution is the bootstrap half-width
of a gain measured on it; below the n where the law's gain reaches it, a run's gain cannot be told
from zero by these test questions.

Example::

    >>> law = fit([25, 50, 100], [0.02, 0.034, 0.048], [0.01, 0.01, 0.01])
    >>> round(law.b, 4), round(law.gain(200), 3)
    (0.0202, 0.062)
    >>> labels_to_tell(law, 0.03)
    42
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.workspace.errors import WorkspaceError

Z95 = 1.959964  # a two-sided 95% interval of a normal estimate


@dataclass
class LogLaw:
    """gain = a + b·ln(n), with what its band needs.

    Attributes:
        a, b: the fitted law.
        sizes: the training questions of the points it was fitted to.
        half_widths: each point's 95% half-width (bootstrap).
        scatter: the residual standard deviation (0 with two points, which it passes through).
    """
    a: float
    b: float
    sizes: list[int]
    half_widths: list[float]
    scatter: float = 0.0

    def gain(self, n: float) -> float:
        return self.a + self.b * math.log(n)

    def band(self, n: float) -> tuple[float, float]:
        """The 95% interval of the law's gain at ``n`` questions."""
        weights = _weights(self.sizes, n)
        spread = sum((w * h) ** 2 for w, h in zip(weights, self.half_widths))
        spread += (Z95 * self.scatter) ** 2 * sum(w * w for w in weights)
        half = math.sqrt(spread)
        return self.gain(n) - half, self.gain(n) + half

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "sizes": self.sizes, "half_widths": self.half_widths,
                "scatter": self.scatter}


def _design(sizes: list[int]) -> np.ndarray:
    return np.column_stack([np.ones(len(sizes)), np.log(np.asarray(sizes, dtype=float))])


def _weights(sizes: list[int], n: float) -> np.ndarray:
    """The least-squares prediction at ``n`` as weights on the points' gains: a + b·ln(n) =
    Σ wᵢ·gainᵢ."""
    x = _design(sizes)
    return x @ np.linalg.solve(x.T @ x, np.array([1.0, math.log(n)]))


def fit(sizes: list[int], gains: list[float], half_widths: list[float]) -> LogLaw:
    """The law through a curve's trained points.

    Args:
        sizes: training questions of each point (n > 0, at least two different).
        gains: each point's NDCG@10 gain over the base model, at one embedding size.
        half_widths: each gain's 95% bootstrap half-width.

    Raises:
        WorkspaceError: fewer than two different sizes: no slope to extend.
    """
    if len(set(sizes)) < 2 or min(sizes) <= 0:
        raise WorkspaceError(f"a forecast needs trained points at two different numbers of "
                             f"questions; this curve has {sorted(set(sizes))}")
    x, y = _design(sizes), np.asarray(gains, dtype=float)
    (a, b), *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(sizes) - 2
    scatter = math.sqrt(float(((x @ [a, b] - y) ** 2).sum()) / dof) if dof else 0.0
    return LogLaw(float(a), float(b), list(sizes), [float(h) for h in half_widths], scatter)


def labels_to_tell(law: LogLaw, half_width: float) -> int | None:
    """The fewest training questions at which the law's gain reaches ``half_width``, the
    resolution of the test set (its bootstrap half-width): below it, the test questions cannot
    tell a gain from zero. None when the law does not grow (b ≤ 0)."""
    if law.b <= 0:
        return None
    return math.ceil(math.exp((half_width - law.a) / law.b))


@dataclass
class Expected:
    """The law's gain at ``questions`` training questions, with its band, in NDCG@10."""
    questions: int
    gain: float
    low: float
    high: float

    def to_json(self) -> dict:
        return {"questions": self.questions, "gain": self.gain, "low": self.low, "high": self.high}


def expect(law: LogLaw, questions: int) -> Expected:
    low, high = law.band(questions)
    return Expected(questions, law.gain(questions), low, high)
