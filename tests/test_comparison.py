"""The comparison that matters (core.deciding.compare.comparison), decided one way for every page and the
CLI: the base model against the best other model measured on the corpus's best test set, never
two test sets in one headline, and a fine-tune that kept the base model never a model of its own.
The runs are stored evaluations with chosen numbers, so each rule is checked without training."""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from core.cli import main
from core.deciding import workflow
from core.deciding.compare import comparison, headlines
from core.documents.beir import load_demo
from core.documents.pairs import chosen_by_a_person, split
from core.measuring.evaluate import (
    BASELINE,
    EvalResult,
    RetrievalSet,
    evaluation_label,
    same_measurement,
    save,
)
from core.training import jobs, plan
from core.training.tune import hubness_line, not_tried
from core.using import label, search
from core.using.runs import SAME_AS_BASE, list_runs
from core.workspace.store import Store

DIMS = [384, 64]


@pytest.fixture(scope="module")
def template(tmp_path_factory, count) -> Path:
    home = tmp_path_factory.mktemp("comparison") / "ws"
    load_demo(Store(home), count, limit=60)
    return home


@pytest.fixture
def demo(template, home) -> tuple[Store, int, int]:
    shutil.copytree(template, home)
    store = Store(home)
    corpus_id = store.corpus("python-stdlib-docs").id
    return store, corpus_id, store.pair_sets(corpus_id)[0].id


def measured(store: Store, pair_set_id: int, name: str, score: float, model: str = "",
             job_id: int | None = None) -> int:
    """An evaluation scoring ``score`` at 384 dims and ``score - 0.1`` at 64 on every test
    question of the pair set."""
    questions = sorted({p["query_id"] for p in store.pairs(pair_set_id, "test")})
    scores = {384: score, 64: score - 0.1}
    result = EvalResult(model or name, 100, len(questions), DIMS, 1.0,
                        {d: {"ndcg@10": v} for d, v in scores.items()},
                        {d: dict.fromkeys(questions, (1, "x")) for d in DIMS},
                        {d: dict.fromkeys(questions, v) for d, v in scores.items()})
    return save(store, result, pair_set_id, name, job_id)


def people_set(store: Store, corpus_id: int, n: int) -> int:
    """A people's pair set of ``n`` labelled test questions, made through core.using.label."""
    done = len(label.questions(store, corpus_id))
    label.add_questions(store, corpus_id, [f"question number {done + i}?" for i in range(n)])
    chunks = [c["id"] for c in store.chunks(corpus_id)]
    for i in range(done, done + n):
        question = label.current(store, corpus_id)
        label.set_label(store, question.id, chunks[i], label.RELEVANT)
        label.decide(store, question.id, "labelled")
    return label.people_pair_set(store, corpus_id).id


def generated_set(store: Store, corpus_id: int) -> int:
    pair_set_id = store.create_pair_set(corpus_id, "generated", "builtin", {})
    store.add_pairs(pair_set_id, [(f"g{c['id']}", f"words of {c['id']}", c["id"], c["text"])
                                  for c in store.chunks(corpus_id)[:30]])
    split(store, pair_set_id)
    return pair_set_id


def fine_tune_job(store: Store, pair_set_id: int, kept, evaluation_id: int) -> int:
    """A finished fine-tuning job that kept ``kept`` ("base" or an epoch), its model saved."""
    job_id, _ = jobs.request(store, "train", {"pair_set_id": pair_set_id, "epochs": 1,
                                              "seed": evaluation_id})
    jobs.claim(store, job_id)
    folder = jobs.job_dir(store, job_id) / "model"
    folder.mkdir(parents=True)
    jobs.finish(store, job_id, {"kept": kept, "model_path": str(folder),
                                "finetuned_evaluation": evaluation_id})
    return job_id


def test_the_base_against_the_best_other_model_on_the_best_set(demo):
    store, corpus_id, demo_set = demo
    generated = generated_set(store, corpus_id)
    # On generated questions the fine-tune looks far better: they flatter it.
    measured(store, generated, BASELINE, 0.90, "all-MiniLM-L6-v2")
    tuned = fine_tune_job(store, generated, 1, measured(store, generated, "fine-tuned (job 1)", 0.97))
    measured(store, demo_set, BASELINE, 0.50, "all-MiniLM-L6-v2")
    measured(store, demo_set, "other model", 0.55)
    matters = comparison(store, corpus_id)
    # No people's questions yet: the questions people wrote (the imported demo set) beat
    # generated ones, though the fine-tune was measured only on those.
    assert matters.pair_set_id == demo_set and not matters.people
    assert (matters.base.name, matters.best.name) == (BASELINE, "other model")
    assert matters.headline() == ("On 'docstring summaries' (13 test questions): other model "
                                  "against baseline, NDCG@10 0.500 → 0.550 at 384 dims and "
                                  "0.400 → 0.450 at 64 dims.")
    # Too few people's questions do not judge yet; enough of them do, first.
    people = people_set(store, corpus_id, plan.PEOPLE_TEST_MIN - 1)
    measured(store, people, BASELINE, 0.40, "all-MiniLM-L6-v2")
    assert comparison(store, corpus_id).pair_set_id == demo_set
    people = people_set(store, corpus_id, 1)
    rotated = measured(store, people, "rotated for docs", 0.45)
    measured(store, people, "a worse model", 0.30)
    matters = comparison(store, corpus_id)
    assert matters.pair_set_id == people and matters.people
    assert (matters.base.name, matters.best.evaluation_id) == (BASELINE, rotated)
    assert f"({plan.PEOPLE_TEST_MIN} test questions)" in matters.test_set
    assert "0.400 → 0.450 at 384 dims" in matters.headline()
    # A set a person picks is compared on its own, never mixed with another.
    on_generated = comparison(store, corpus_id, generated)
    assert on_generated.best.id == f"j{tuned}" and on_generated.base.ndcg()[384] == 0.90
    assert all(r.pair_set_id == generated for r in on_generated.runs())
    assert comparison(store, None).pair_set_id == people  # the corpus of the newest run


def test_a_fine_tune_that_kept_the_base_is_never_the_best_nor_searched(demo):
    store, corpus_id, demo_set = demo
    base = measured(store, demo_set, BASELINE, 0.50, "all-MiniLM-L6-v2")
    # Its stored numbers beat the base here only so the test can fail: it is the base model.
    kept = fine_tune_job(store, demo_set, "base", measured(store, demo_set, "fine-tuned (job 1)", 0.60))
    good = fine_tune_job(store, demo_set, 2, measured(store, demo_set, "fine-tuned (job 2)", 0.55))
    runs = {r.id: r for r in list_runs(store)}
    assert runs[f"j{kept}"].kept_base and not runs[f"j{good}"].kept_base
    assert runs[f"j{kept}"].row()["name"] == f"fine-tuned (job 1) {SAME_AS_BASE}"
    matters = comparison(store, corpus_id)
    assert (matters.base.evaluation_id, matters.best.id) == (base, f"j{good}")
    assert [r.id for r in matters.same_as_base] == [f"j{kept}"]
    assert matters.best_model_run(list(runs.values())).id == f"j{good}"  # Export's default
    choices = search.searchable_models(store, demo_set)
    assert f"j{kept}" not in {c.run_id for c in choices}
    left, right = search.default_pair(choices, matters.base, matters.best)
    assert (choices[left].run_id, choices[right].run_id) == (f"e{base}", f"j{good}")
    # Its folder measured on people's questions later is the base too, and never re-encoded.
    people = people_set(store, corpus_id, plan.PEOPLE_TEST_MIN)
    measured(store, people, BASELINE, 0.40, "all-MiniLM-L6-v2")
    measured(store, people, "fine-tuned (job 1)", 0.40, runs[f"j{kept}"].model_path)
    on_people = comparison(store, corpus_id)
    assert on_people.pair_set_id == people and on_people.best is None
    assert [r.name for r in on_people.same_as_base] == ["fine-tuned (job 1)"]  # one per model
    assert "no other model is measured on this set yet" in on_people.headline()


def test_the_cli_prints_the_same_comparison(demo, capsys):
    store, _corpus_id, demo_set = demo
    base = measured(store, demo_set, BASELINE, 0.50, "all-MiniLM-L6-v2")
    other = measured(store, demo_set, "other model", 0.55)
    assert main(["compare", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["a"], out["b"]) == (f"e{base}", f"e{other}")
    assert out["comparison"]["test_set"] == "'docstring summaries' (13 test questions)"
    assert main(["runs", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert listed["comparison"]["best"] == f"e{other}"
    assert "0.500 → 0.550" in workflow.status(store).comparison  # the Home page's line


def test_two_identical_models_are_not_sent_to_label_more_questions():
    per_question = {384: {f"q{i}": 0.5 + i / 100 for i in range(30)}}
    scores = {384: {"ndcg@10": 0.645}}
    lines = headlines(scores, scores, "ndcg@10", ("baseline", "fine-tuned (job 1)"),
                      (per_question, per_question))
    assert not any("label more questions" in line for line in lines)
    assert any("same at every size" in line for line in lines)
    shifted = {384: {q: v + (0.01 if i % 2 else -0.01) for i, (q, v) in
                     enumerate(per_question[384].items())}}
    lines = headlines(scores, scores, "ndcg@10", ("baseline", "other"), (per_question, shifted))
    assert any("label more questions" in line for line in lines)


def test_the_hubness_line_names_the_rule_and_sees_no_hubs_where_there_are_none():
    one_short = hubness_line({"passages": (2.42, 1.49), "generated questions": (1.0, 0.9)})
    assert "for both passages and generated questions" in one_short
    assert "it does not for generated questions" in one_short and "full size is kept" in one_short
    none = hubness_line({"passages": (0.0, 0.0), "generated questions": (0.0, 0.0)})
    assert "no hubs here to remove" in none and "may change full size" not in none
    both = hubness_line({"passages": (2.0, 1.0), "generated questions": (2.0, 1.4)})
    assert "may change full size" in both


def test_documents_only_advice_reads_the_workspace_counts(demo):
    store, corpus_id, demo_set = demo
    generated = generated_set(store, corpus_id)
    store.db.execute("DELETE FROM pairs WHERE pair_set_id = ?", (demo_set,))  # no people's set
    assert not_tried(store, corpus_id).endswith(f"label {plan.PEOPLE_TEST_MIN} more people's "
                                                f"questions to make a test set of "
                                                f"{plan.PEOPLE_TEST_MIN}")
    people_set(store, corpus_id, 5)
    assert not_tried(store, corpus_id).endswith(f"label {plan.PEOPLE_TEST_MIN - 5} more people's "
                                                f"questions to make a test set of "
                                                f"{plan.PEOPLE_TEST_MIN} ('people's questions' has 5)")
    people = people_set(store, corpus_id, 35)
    assert "label" not in not_tried(store, corpus_id)
    assert "'people's questions' (40 test questions)" in not_tried(store, corpus_id)
    assert label.ready_people_set(store, corpus_id).id == people
    # The documents-only run's own generated set is never the set a page shows first.
    made = store.create_pair_set(corpus_id, "for the run", "builtin", {"made_by": "documents-only run"})
    sets = store.pair_sets(corpus_id)
    assert not chosen_by_a_person(store.pair_set(made))
    assert workflow.preferred_pair_set(sets) == people
    assert workflow.preferred_pair_set(sets, generated) == generated


def test_the_same_baseline_is_found_rather_than_measured_again(demo):
    store, _corpus_id, demo_set = demo
    data = RetrievalSet.from_pair_set(store, demo_set)
    questions = data.query_ids
    result = EvalResult("all-MiniLM-L6-v2", len(data.corpus), len(questions), DIMS, 1.0,
                        {d: {"ndcg@10": 0.5} for d in DIMS}, {}, {}, test_set=data.fingerprint())
    first = save(store, result, demo_set, BASELINE)
    assert same_measurement(store, demo_set, "all-MiniLM-L6-v2", data, DIMS) == first
    assert same_measurement(store, demo_set, "all-MiniLM-L6-v2", data, [384, 64, 32]) is None
    assert same_measurement(store, demo_set, "other-model", data, DIMS) is None
    # Another base is labelled by its name, by the Results page and by every job alike
    mpnet = replace(result, model="all-mpnet-base-v2")
    assert evaluation_label(mpnet.model) == "all-mpnet-base-v2"
    named = save(store, mpnet, demo_set, evaluation_label(mpnet.model))
    assert same_measurement(store, demo_set, "all-mpnet-base-v2", data, DIMS) == named
    assert same_measurement(store, demo_set, "all-MiniLM-L6-v2", data, DIMS) == first
    one = store.pairs(demo_set, "test")[0]
    store.db.execute("UPDATE pairs SET relevance = 2 WHERE id = ?", (one["id"],))
    assert same_measurement(store, demo_set, "all-MiniLM-L6-v2",
                            RetrievalSet.from_pair_set(store, demo_set), DIMS) is None
