"""Is a difference between two models real, or the luck of which questions were asked?

With 20 to 300 test questions, NDCG@10 moves by a few points between two samples of questions
from the same model, so a gain of that size proves nothing on its own. The paired bootstrap
(Efron and Tibshirani, 1993; for retrieval, Sakai 2006, "Evaluating evaluation metrics based on
the bootstrap", and Smucker, Allan and Carterette, CIKM 2007) resamples the questions with
replacement, keeping each question's pair of scores together, and reads the 95% interval of the
mean difference from the resampled means. When that interval holds zero, the two models are not
told apart by these questions.

Below ``MIN_QUESTIONS`` (10) questions scored by both, no verdict is given at all: "too few
questions to tell". Two rules set that line. A sign test over n paired questions cannot reach
p < 0.05 (two-sided) with fewer than 6 of them however they fall, since its smallest p-value is
2 * 0.5**n (0.0625 at 5; 0.002 at 10). And the percentile interval is too narrow for small n: its
half-width is about z * s / sqrt(n) * sqrt((n - 1) / n) where the mean's true 95% interval is
t(n-1) * s / sqrt(n) (Hesterberg 2015, "What teachers should know about the bootstrap", The
American Statistician 69(4), on the percentile interval's narrowness bias), so for normal
per-question differences the "95%" interval covers the true difference 60% of the time at 2
questions, 75% at 3, 87% at 6, and 90% only from 10 questions on (93% at 20). With 2-3 questions
all better the bootstrap would otherwise read "significantly better".

Example::

    >>> r = paired_bootstrap([0.5, 0.2, 1.0, 0.0], [0.6, 0.2, 1.0, 0.3], samples=2000, seed=0)
    >>> r.wins, r.losses, r.ties
    (2, 0, 2)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from core.workspace.store import WorkspaceError

SAMPLES = 10_000
SEED = 0
CONFIDENCE = 0.95
TIE = 1e-9  # per-question scores closer than this are the same score
MIN_QUESTIONS = 10  # fewer questions give no verdict; see the module docstring for why 10
TOO_FEW = "too few questions to tell"


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
    def enough(self) -> bool:
        """Whether there are questions enough (``MIN_QUESTIONS``) for the interval to mean anything."""
        return self.questions >= MIN_QUESTIONS

    @property
    def significant(self) -> bool:
        """Whether the interval leaves zero out, over enough questions: B is really better (or
        really worse)."""
        low, high = self.ci95
        return self.enough and (low > 0 or high < 0)

    def verdict(self) -> str:
        """A few words a reader can quote: "significantly better", "significantly worse", "not
        significant", or, below ``MIN_QUESTIONS`` questions, "too few questions to tell"."""
        if not self.enough:
            return TOO_FEW
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
                "significant": self.significant, "verdict": self.verdict()}


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
