"""The paired bootstrap: equal to a plain numpy computation, silent on noise, sure of a real gain."""
import numpy as np
import pytest

from core.deciding.compare import differences, headlines
from core.measuring.significance import MIN_QUESTIONS, TOO_FEW, paired_bootstrap
from core.workspace.store import WorkspaceError


def reference_interval(a, b, samples, seed):
    """The textbook paired bootstrap, written out: resample question indices with replacement,
    average the per-question differences, take the 2.5th and 97.5th percentiles."""
    rng = np.random.default_rng(seed)
    diff = np.asarray(b) - np.asarray(a)
    means = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(samples)]
    return np.percentile(means, 2.5), np.percentile(means, 97.5)


def test_interval_equals_the_reference_computation_with_a_fixed_seed():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, 30)
    b = np.clip(a + rng.normal(0.03, 0.1, 30), 0, 1)
    ours = paired_bootstrap(a, b, samples=2000, seed=11)
    low, high = reference_interval(a, b, 2000, 11)
    assert ours.ci95 == pytest.approx((low, high), abs=1e-12)
    assert ours.delta == pytest.approx(float(np.mean(b - a)))
    assert ours.wins + ours.losses + ours.ties == 30
    assert paired_bootstrap(a, b, samples=2000, seed=11) == ours  # seeded: the same every time


def test_a_model_compared_with_itself_is_not_significant():
    scores = np.random.default_rng(0).uniform(0, 1, 40)
    same = paired_bootstrap(scores, scores)
    assert same.ci95 == (0.0, 0.0) and not same.significant
    assert same.verdict() == "not significant" and (same.wins, same.losses, same.ties) == (0, 0, 40)
    assert same.to_json()["significant"] is False


def test_a_small_noisy_gain_is_not_significant_and_a_large_consistent_one_is():
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 20)
    noisy = np.clip(a + rng.normal(0.01, 0.2, 20), 0, 1)
    assert not paired_bootstrap(a, noisy).significant
    better = np.clip(a + 0.15, 0, 1) + 0.001
    result = paired_bootstrap(a, better)
    assert result.significant and result.ci95[0] > 0 and result.verdict() == "significantly better"


def test_too_few_questions_is_one_line():
    with pytest.raises(WorkspaceError, match="at least 2 questions"):
        paired_bootstrap([0.5], [0.7])


def test_headlines_do_not_claim_a_gain_that_is_not_significant():
    rng = np.random.default_rng(2)
    qids = [f"q{i}" for i in range(25)]
    base = {384: dict(zip(qids, rng.uniform(0, 1, 25))), 64: dict(zip(qids, rng.uniform(0, 1, 25)))}
    # The same scores shuffled across questions: a different mean by chance, nothing real.
    other = {d: dict(zip(qids, rng.permutation(list(s.values())) + 0.02)) for d, s in base.items()}
    metrics = {d: {"ndcg@10": float(np.mean(list(s.values())))} for d, s in base.items()}
    tuned = {d: {"ndcg@10": float(np.mean(list(s.values())))} for d, s in other.items()}
    assert not any(d.significant for d in differences(base, other).values())
    lines = headlines(metrics, tuned, "ndcg@10", per_query=(base, other))
    assert "not significant" in lines[0]
    assert any(line.startswith("At no size do these 25 questions tell") for line in lines)
    assert not any("beats the baseline" in line for line in lines)


def test_too_few_questions_get_no_verdict_however_clear_the_gain_looks():
    """2-3 questions all better read "significantly better" before: every resample's mean was
    above zero. Below MIN_QUESTIONS there is no verdict; from it, a clear gain is still one."""
    for n in (2, 3, MIN_QUESTIONS - 1):
        few = paired_bootstrap([0.2] * n, np.linspace(0.6, 0.9, n))
        assert few.ci95[0] > 0  # the interval alone would call it a gain
        assert not few.significant and few.verdict() == TOO_FEW == "too few questions to tell"
        assert TOO_FEW in few.summary() and few.to_json()["verdict"] == TOO_FEW
    enough = paired_bootstrap([0.2] * MIN_QUESTIONS, np.linspace(0.6, 0.9, MIN_QUESTIONS))
    assert enough.significant and enough.verdict() == "significantly better"
    assert MIN_QUESTIONS >= 6  # a sign test needs 6 paired questions to reach p < 0.05 at all
    assert 2 * 0.5 ** 5 > 0.05 > 2 * 0.5 ** 6
