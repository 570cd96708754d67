"""Is a difference between two models real, or the luck of which questions were asked?

With 20 to 300 test questions, NDCG@10 moves by a few points between two samples of questions
from the same model, so a gain of that size proves nothing on its own. The paired bootstrap
(Efron and Tibshirani, 1993; for retrieval, Sakai 2006, "Evaluating evaluation metrics based on
the bootstrap", and Smucker, Allan and Carterette, CIKM 2007) resamples the questions with
replacement, keeping each question's pair of scores together, and reads the 95% interval of the
mean difference from the resampled means. When that interval holds zero, the two models are not
told apart by these questions.

Example::

    >>> r = paired_bootstrap([0.5, 0.2, 1.0, 0.0], [0.6, 0.2, 1.0, 0.3], samples=2000, seed=0)
    >>> r.wins, r.losses, r.ties
    (2, 0, 2)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .store import WorkspaceError

SAMPLES = 10_000
SEED = 0
CONFIDENCE = 0.95
TIE = 1e-9  # per-question scores closer than this are the same score


@dataclass
class Difference:
    """How model B compares with model A over the same questions.

    Attributes:
        questions: how many questions both were scored on.
        mean_a, mean_b: the mean scores.
        delta: mean_b - mean_a.
        ci95: the bootstrap interval of ``delta`` (``CONFIDENCE``, by default 95%).
        wins, losses, ties: questions where B scored higher, lower, the same.
    """
    questions: int
    mean_a: float
    mean_b: float
    delta: float
    ci95: tuple[float, float]
    wins: int
    losses: int
    ties: int

    @property
    def significant(self) -> bool:
        """Whether the interval leaves zero out: B is really better (or really worse)."""
        low, high = self.ci95
        return low > 0 or high < 0

    def verdict(self) -> str:
        """A few words a reader can quote: "better", "worse" or "not significant"."""
        if not self.significant:
            return "not significant"
        return "significantly better" if self.delta > 0 else "significantly worse"

    def change(self) -> str:
        """The difference as every page and command writes it: signed, three decimals (a
        bootstrap interval over a few hundred questions is no finer)."""
        return f"{self.delta:+.3f}"

    def interval(self) -> str:
        """The 95% interval, in the same digits as ``change``."""
        low, high = self.ci95
        return f"{low:+.3f} to {high:+.3f}"

    def summary(self) -> str:
        return (f"{self.change()} (95% interval {self.interval()}), {self.verdict()}; "
                f"better on {self.wins}, worse on {self.losses}, tied on {self.ties} of "
                f"{self.questions} questions")

    def to_json(self) -> dict:
        return {**asdict(self), "ci95": [round(v, 6) for v in self.ci95],
                "significant": self.significant}


def paired_bootstrap(a, b, samples: int = SAMPLES, seed: int = SEED,
                     confidence: float = CONFIDENCE) -> Difference:
    """The paired bootstrap interval of mean(b - a) and the per-question wins and losses.

    Args:
        a, b: per-question scores of two models, in the same question order.
        samples: bootstrap resamples; 10,000 puts the interval's ends within about 0.001.
        seed: the resampling is seeded, so the same scores always give the same interval.
        confidence: the interval's coverage.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise WorkspaceError("a paired comparison needs one score per question from each model")
    if len(a) < 2:
        raise WorkspaceError(f"a comparison needs at least 2 questions scored by both models, "
                             f"not {len(a)}")
    diff = b - a
    rng = np.random.default_rng(seed)
    # Resamples in blocks of whole rows, so memory stays near 80 MB however many questions.
    rows = max(1, 10_000_000 // len(diff))
    means = np.concatenate([
        diff[rng.integers(0, len(diff), size=(min(rows, samples - start), len(diff)))].mean(axis=1)
        for start in range(0, samples, rows)])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return Difference(len(diff), float(a.mean()), float(b.mean()), float(diff.mean()),
                      (float(low), float(high)), int((diff > TIE).sum()),
                      int((diff < -TIE).sum()), int((np.abs(diff) <= TIE).sum()))
