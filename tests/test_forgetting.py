"""After a fine-tune: the general-set cost, the grid of merges and the α kept. The choice reads
validation and general-set scores only, never the test split."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.documents import general
from core.documents.beir import load_demo
from core.measuring.evaluate import RetrievalSet
from core.measuring.significance import paired_bootstrap
from core.training import forgetting
from core.training.config import TrainConfig
from core.training.finetune import held_out
from core.training import jobs
from core.training.forgetting import AlphaPoint, GeneralCheck, allowance, check_and_merge, choose_alpha, fewer, general_passages
from core.training.merge import merged
from core.using.runs import list_runs
from core.workspace import models
from core.workspace.store import Store
from core.training.plan import GENERAL_TOLERANCE, MERGE_SHARE
from tests.reporter import Lines


def grid(*points):
    return [AlphaPoint(a, v, {384: g}) for a, v, g in points]


def test_the_best_validation_score_within_the_general_tolerance_is_kept():
    points = grid((0.0, 0.50, 0.600), (0.25, 0.55, 0.598), (0.5, 0.58, 0.595), (0.75, 0.60, 0.580),
                  (1.0, 0.62, 0.550))
    assert choose_alpha(points, 384, tolerance=0.01) == 0.5
    assert choose_alpha(points, 384, tolerance=0.1) == 1.0
    assert choose_alpha(points, 384, tolerance=0.0) == 0.0  # the base always qualifies
    # A fine-tune that costs nothing outside its corpus is kept whole.
    assert choose_alpha(grid((0.0, 0.5, 0.6), (0.5, 0.55, 0.61), (1.0, 0.6, 0.62)), 384) == 1.0
    # On a validation tie the larger α, closer to what was trained.
    assert choose_alpha(grid((0.0, 0.5, 0.6), (0.5, 0.6, 0.6), (1.0, 0.6, 0.6)), 384) == 1.0


def test_no_merge_is_chosen_where_the_general_set_shows_no_drop_to_win_back():
    points = grid((0.0, 0.62, 0.60), (0.5, 0.61, 0.60), (1.0, 0.55, 0.60))  # α = 0 best on validation
    rng = np.random.default_rng(1)
    base = rng.uniform(size=60)
    assert choose_alpha(points, 384) == 0.0
    unchanged = paired_bootstrap(base, base + rng.normal(0, 0.02, size=60))
    assert not unchanged.significant and choose_alpha(points, 384, cost=unchanged) == 1.0
    gained = paired_bootstrap(base, base + 0.05)
    assert choose_alpha(points, 384, cost=gained) == 1.0
    dropped = paired_bootstrap(base, base - 0.07 + rng.normal(0, 0.02, size=60))
    assert dropped.significant and choose_alpha(points, 384, cost=dropped) == 0.0
    assert 0 < GENERAL_TOLERANCE < 0.05 and 0 < MERGE_SHARE <= 0.2


def test_the_step_takes_its_share_of_the_run_and_never_more_than_that_of_the_budget():
    assert allowance(600, 540) == pytest.approx(60)  # a run that filled its training share
    assert allowance(600, 90) == pytest.approx(10)  # a short run gets a short step
    assert allowance(600, 6000) == pytest.approx(MERGE_SHARE * 600)


def test_a_sized_set_keeps_its_first_queries_and_every_relevant_passage():
    everything = general.load().retrieval_set()
    small = fewer(everything, 300, seed=0)
    assert len(small.corpus) <= 300 and small.query_ids == everything.query_ids[:len(small.query_ids)]
    assert all(small.relevant[q] <= set(small.corpus_ids) for q in small.query_ids)
    assert fewer(everything, 10 ** 6, seed=0) is everything
    # What the step affords grows with its time and shrinks with a passage's price.
    assert general_passages(0.04, 60, 5370) < general_passages(0.01, 60, 5370) <= 5370
    assert general_passages(10.0, 1, 5370) == forgetting.MIN_PASSAGES


@pytest.mark.slow
def test_the_step_states_the_general_cost_and_keeps_the_best_alpha_without_the_test_split(
        store, count, tuned, tmp_path, monkeypatch):
    _, pair_set_id = load_demo(store, count, limit=60)
    data = RetrievalSet.from_pair_set(store, pair_set_id)
    pairs = [(p["query"], p["positive"]) for p in store.pairs(pair_set_id, "train")]
    config = TrainConfig(dims=[384, 64]).resolved(384, len(pairs))
    _, validation = held_out(config, pairs, data)  # as run_experiment holds them out
    model = Path(shutil.copytree(tuned, tmp_path / "run" / "model"))
    seen: list[list[str]] = []
    real = forgetting.evaluate

    def spy(model, data, *args, **kwargs):  # the real evaluation, with what it was asked noted
        seen.append(list(data.queries))
        return real(model, data, *args, **kwargs)

    monkeypatch.setattr(forgetting, "evaluate", spy)
    check = check_and_merge(config, model, validation, store, Lines(), seconds=30)
    out = check.to_json()
    assert {p["alpha"] for p in out["grid"]} >= {0.0, 1.0} and set(out["differences"]) == {"384", "64"}
    # The perturbed model is worse outside any corpus, and the headline says how much.
    assert check.point(0.0).general[384] > check.point(1.0).general[384]
    assert out["headline"].startswith(f"On the general set ({check.queries} queries) the fine-tune")
    assert check.differences[config.best_dim].significant  # a drop to win back, so a merge
    assert check.kept_alpha == choose_alpha(check.grid, config.best_dim,
                                            cost=check.differences[config.best_dim]) < 1
    # The run's model is now the merge kept, the trained weights beside it.
    card = json.loads((model / "ragtune.json").read_text())
    assert card["merge"]["alpha"] == check.kept_alpha and (model.with_name("tuned") / "modules.json").is_file()
    texts = validation.queries[:4]
    np.testing.assert_allclose(models.load_fresh(str(model), "cpu").encode(texts),
                               merged(None, model.with_name("tuned"), check.kept_alpha, "cpu").encode(texts),
                               atol=1e-5)
    # Nothing the step scored holds a test query: the choice read validation and general scores.
    assert seen and not any(set(data.queries) & set(queries) for queries in seen)


def finished_run_with_a_merge(store, pair_set_id, model_path) -> tuple[int, GeneralCheck]:
    """A fine-tuning job as one that kept the merge at α = 0.5 leaves it: scores chosen so the
    fine-tune gains on its test questions and costs 0.07 NDCG@10 on the general set."""
    grid = [AlphaPoint(0.0, 0.50, {384: 0.620, 64: 0.50}), AlphaPoint(0.5, 0.58, {384: 0.615, 64: 0.49}),
            AlphaPoint(1.0, 0.60, {384: 0.550, 64: 0.43})]
    rng = np.random.default_rng(0)
    base = rng.uniform(size=40)
    tuned = base - 0.07 + rng.normal(0, 0.02, size=40)
    check = GeneralCheck(64, "ndcg@10", {d: paired_bootstrap(base, tuned) for d in (384, 64)}, 40, 300,
                         20, grid, choose_alpha(grid, 64))
    job_id = jobs.submit(store, "train", {"pair_set_id": pair_set_id, "epochs": 1})
    jobs.claim(store, job_id)
    jobs.finish(store, job_id, {
        "baseline": {"384": {"ndcg@10": 0.70}, "64": {"ndcg@10": 0.60}},
        "finetuned": {"384": {"ndcg@10": 0.75}, "64": {"ndcg@10": 0.66}},
        "model_path": str(model_path), "kept": 1.0, "general": check.to_json(), "alpha": check.kept_alpha})
    return job_id, check


def test_the_page_heads_with_the_gain_beside_the_general_cost_and_charts_alpha(home, count, tuned):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    store = Store(home)
    _, pair_set_id = load_demo(store, count, limit=40)
    job_id, check = finished_run_with_a_merge(store, pair_set_id, tuned)
    assert check.kept_alpha == 0.5 and check.cost().significant
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/finetune.py")
    at.run()
    assert not at.exception
    headline = next(m.value for m in at.markdown if "On its own test questions" in m.value).replace("\\", "")
    assert "+0.050 NDCG@10 at 384d (0.700 → 0.750)" in headline
    assert "On the general set (40 queries) the fine-tune costs 0.0" in headline
    assert "the run keeps the merge at α = 0.5, which wins back 93% of that drop" in headline
    assert len(at.get("plotly_chart")) >= 1
    assert any(f"python -m core merge j{job_id} --alpha A" in c.value for c in at.caption)
    # The runs table and its exports carry the α and the kept model's general-set score.
    run = next(r for r in list_runs(store) if r.id == f"j{job_id}")
    assert run.alpha == 0.5 and run.general == 0.615
    assert run.row()["alpha"] == 0.5 and run.to_json()["general_ndcg@10"] == 0.615
