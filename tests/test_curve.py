"""The learning curve (core.training.curve) and its forecast (core.measuring.forecast): the subsets,
the law, the refusals, what the pages read; one slow test measures a tiny real curve through the CLI."""
from __future__ import annotations

import itertools
import json
import math
import os
import random
import subprocess
import sys

import pytest

from core.cli import main
from core.documents.beir import load_demo
from core.documents.corpus import normalise
from core.measuring.forecast import expect, fit, labels_to_tell
from core.measuring.significance import paired_bootstrap
from core.training import jobs, plan
from core.training.curve import (Curve, CurvePoint, check_budget, latest, measured_need,
                                 nested_subsets, overhead, train_questions)
from core.workspace.errors import WorkspaceError
from tests.conftest import ROOT


@pytest.fixture
def demo(store, count):
    return load_demo(store, count, limit=60)


def test_subsets_are_nested_and_never_hold_a_test_question(store, demo):
    _, pair_set_id = demo
    questions = train_questions(store, pair_set_id)
    sizes = plan.curve_sizes(len(questions))
    subsets = nested_subsets(list(questions), sizes, seed=42)
    assert [len(s) for s in subsets] == sizes == sorted(sizes) and sizes[-1] == len(questions)
    for small, big in itertools.pairwise(subsets):
        assert big[:len(small)] == small  # each holds the one before, and adds to it
    assert len(set(subsets[-1])) == len(subsets[-1])
    test = store.pairs(pair_set_id, "test")
    tested_ids, tested_texts = {p["query_id"] for p in test}, {normalise(p["query"]) for p in test}
    for subset in subsets:
        assert not set(subset) & tested_ids
        assert not {normalise(q) for qid in subset for q, _ in questions[qid]} & tested_texts
    # Another seed draws other questions; the same seed the same ones.
    assert nested_subsets(list(questions), sizes, seed=42) == subsets
    assert nested_subsets(list(questions), sizes, seed=7)[0] != subsets[0]


def test_the_budget_is_split_in_proportion_to_the_questions():
    sizes = [30, 60, 120]
    shares = [plan.curve_share(700, s, sizes) for s in sizes]
    assert shares == pytest.approx([100, 200, 400])
    # Re-split from what is really left: a point that ended early hands its time on.
    assert plan.curve_share(700 - 40, 60, [60, 120]) == pytest.approx(220)


def test_each_point_still_to_run_is_priced_at_what_the_points_so_far_ran_over():
    curve = synthetic(1)
    assert overhead(Curve(1, "m", [128], 40, 60, curve.points[:1], 60.0), 5.0) == 5.0
    for p, over in zip(curve.trained(), (10, 20, 30)):
        p.seconds = p.budget_seconds + over
    assert overhead(curve, 5.0) == pytest.approx(20) and overhead(curve, 25.0) == 25.0


def test_a_forecast_recovers_the_law_a_curve_was_drawn_from():
    a, b = 0.01, 0.015
    sizes = [20, 40, 80, 160, 320]
    exact = fit(sizes[:2], [a + b * math.log(n) for n in sizes[:2]], [0.0, 0.0])
    assert (exact.a, exact.b) == pytest.approx((a, b))
    assert exact.band(640) == pytest.approx((exact.gain(640),) * 2)  # no noise, no band
    noise = random.Random(0)
    gains = [a + b * math.log(n) + noise.gauss(0, 0.002) for n in sizes]
    law = fit(sizes, gains, [0.004] * len(sizes))
    assert law.a == pytest.approx(a, abs=0.01) and law.b == pytest.approx(b, abs=0.002)
    ahead = expect(law, 640)
    assert ahead.low < a + b * math.log(640) < ahead.high
    assert ahead.low < ahead.gain < ahead.high
    # Further out, the band widens: the law is extended, not known there.
    assert (lambda far: far.high - far.low)(expect(law, 5000)) > ahead.high - ahead.low
    # The labels the test set can tell are where the law reaches its resolution.
    tell = labels_to_tell(law, 0.05)
    assert law.gain(tell) >= 0.05 > law.gain(tell - 1)
    assert labels_to_tell(fit([10, 20], [0.02, 0.01], [0.01, 0.01]), 0.05) is None


def test_fewer_questions_than_two_points_need_says_how_many_more(store, count, monkeypatch, capsys):
    with pytest.raises(WorkspaceError, match="there are 13: add 7 more"):
        plan.curve_sizes(13)
    assert plan.curve_sizes(20) == [10, 20]  # the quarter is too few for a point, the half is not
    _, pair_set_id = load_demo(store, count, limit=20)
    have = len(train_questions(store, pair_set_id))
    assert have < 20
    monkeypatch.setenv("RAGTUNE_HOME", str(store.home))
    assert main(["curve", "--pair-set", str(pair_set_id)]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert f"there are {have}: add {20 - have} more" in err, err
    assert not jobs.all_jobs(store)  # refused before anything was queued


def test_a_budget_too_small_for_the_evaluations_names_the_least_that_would_do():
    check_budget(600, 20, 30, [10, 20, 40])
    with pytest.raises(WorkspaceError, match=r"give --budget-minutes 3\.6 or more"):
        check_budget(120, 20, 30, [10, 20, 40])  # 20 + 90 + 15 s × 7 = 215 s


def synthetic(pair_set_id: int) -> Curve:
    """A curve with the law 0.02 + 0.01·ln(n / 10) in every question's gain at 128 dims."""
    rng = random.Random(1)
    base = [rng.random() for _ in range(40)]
    points = [CurvePoint(0, 0, {384: 0.5, 128: 0.4})]
    for n in (15, 30, 60):
        gain = 0.02 + 0.01 * math.log(n / 10)
        tuned = [s + gain + rng.gauss(0, 0.01) for s in base]
        points.append(CurvePoint(n, n, {384: 0.5 + gain, 128: 0.4 + gain},
                                 {d: paired_bootstrap(base, tuned, samples=2000) for d in (384, 128)},
                                 60.0 * n / 105, 60.0 * n / 105, "epoch 2"))
    return Curve(pair_set_id, "all-MiniLM-L6-v2", [384, 128], 40, 60, points, 60.0, 61.0)


def test_a_curve_round_trips_through_json_and_says_what_more_questions_add(store, demo):
    curve = synthetic(demo[1])
    again = Curve.from_json(json.loads(json.dumps(curve.to_json())))
    assert [p.to_json() for p in again.points] == [p.to_json() for p in curve.points]
    assert again.outlook().doubled.gain == pytest.approx(curve.outlook().doubled.gain)
    outlook = curve.outlook()
    assert outlook.dim == 128 and outlook.doubled.questions == 120 and outlook.quadrupled.questions == 240
    assert outlook.doubled.low < 0.02 + 0.01 * math.log(12) < outlook.doubled.high
    said = outlook.sentence()
    assert said.startswith("With about 60 more training questions (120 in all), fine-tuning should gain")
    assert "at 128 dims" in said and "measured with today's 60" in said
    assert "the test set cannot tell a gain from zero" in said
    assert "(2% over it)" in curve.budget_line()
    # Fitted on the smaller points only, as the benchmark checks the forecast.
    assert curve.law(128, upto=30).sizes == [15, 30]


def test_the_cli_prints_a_row_per_point(capsys):
    from core.cli.training import print_curve
    print_curve(synthetic(1))
    out = capsys.readouterr()
    rows = out.out.strip().splitlines()
    assert rows[0] == "questions\tpairs\t384d\t128d\tgain at 128d (95% interval)\tkept"
    assert [r.split("\t")[0] for r in rows[1:]] == ["0", "15", "30", "60"]
    assert rows[1].endswith("\t–\tuntrained") and rows[-1].endswith("\tepoch 2")
    assert out.err.startswith("The curve took 1 min 01 s of its 1 min 00 s budget")


def test_the_pages_read_the_newest_curve_of_a_corpus(store, demo):
    corpus_id, pair_set_id = demo
    assert latest(store) is None and measured_need(store, corpus_id) is None
    job_id = jobs.submit(store, "curve", {"pair_set_id": pair_set_id, "budget_minutes": 1})
    assert jobs.claim(store, job_id)
    jobs.finish(store, job_id, synthetic(pair_set_id).to_json())
    assert latest(store, pair_set_id=pair_set_id).points[-1].questions == 60
    need = measured_need(store, corpus_id)
    assert need.startswith("Measured on your questions (60 training questions, 40 to test): With about 60")
    assert measured_need(store, corpus_id + 1) is None


def test_the_results_page_draws_the_measured_curve_and_its_forecast(home, demo):
    from streamlit.testing.v1 import AppTest

    from core.workspace.store import Store
    _, pair_set_id = demo
    store = Store(home)
    job_id = jobs.submit(store, "curve", {"pair_set_id": pair_set_id})
    assert jobs.claim(store, job_id)
    jobs.finish(store, job_id, synthetic(pair_set_id).to_json())
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/results.py")
    at.run()
    assert not at.exception
    assert "How many questions do we need?" in [s.value for s in at.subheader]
    assert any(m.value.startswith("**With about 60 more training questions") for m in at.markdown)
    assert any(b.label == "Measure it again" for b in at.button)
    at.switch_page("views/label.py")
    at.run()
    assert not at.exception
    # The Decide page: fine-tuned embeddings recommended, the team's own curve beside it.
    at.switch_page("views/decide.py")
    at.run()
    for question, answer in (("knowledge", "large"), ("freshness", "periodic"), ("jargon", "yes")):
        at.radio(key=f"q_{question}").set_value(answer).run()
    assert not at.exception and "RAG + fine-tuned embeddings" in at.success[0].value
    assert any(i.value.startswith("Measured on your questions") and "today's 60" in i.value
               for i in at.info), [i.value for i in at.info]


@pytest.mark.slow
def test_a_tiny_curve_runs_end_to_end_through_the_cli(tmp_path, count):
    from core.workspace.store import Store
    home = tmp_path / "ws"
    _, pair_set_id = load_demo(Store(home), count, limit=60)
    n = len(train_questions(Store(home), pair_set_id))
    budget = 2.5  # a loaded 2-core machine (load 8) took 40 s to evaluate 60 passages and refused 4 min at times; idle, 2.5 min fits
    result = subprocess.run([sys.executable, "-m", "core", "curve", "--pair-set", str(pair_set_id),
                             "--budget-minutes", str(budget), "--json"], cwd=ROOT,
                            env={**os.environ, "RAGTUNE_HOME": str(home)}, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    points = out["points"]
    assert [p["questions"] for p in points] == [0, *plan.curve_sizes(n)] == [0, round(n / 4), round(n / 2), n]
    assert all(set(p["ndcg"]) == {"384", "256", "128", "64", "32"} for p in points)
    assert all(p["differences"]["128"]["questions"] == out["test_questions"] for p in points[1:])
    shares = [p["budget_seconds"] for p in points[1:]]
    assert shares == sorted(shares)  # in proportion to the questions, re-split as it goes
    assert out["outlook"]["doubled"]["questions"] == 2 * n and out["outlook"]["sentence"]
    # One budget for the whole curve; loose here (a shared 2-core machine), ±15% in the benchmark.
    assert 0.5 * 60 * budget < out["seconds"] < 1.5 * 60 * budget, out["seconds"]
    assert not list((home / "files" / "jobs").rglob("model.safetensors"))  # the points' models went
