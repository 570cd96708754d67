"""Evaluation at every dimension equals sentence-transformers' own evaluator, run per dimension."""

import numpy as np
import pytest
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from core.documents import demo
from core.measuring.evaluate import (
    METRICS,
    MISSED_RANK,
    RetrievalSet,
    default_dims,
    encode,
    encode_one,
    evaluate,
    evaluate_named,
    load_evaluations,
    misses,
    save,
    top_k,
)
from core.workspace import models
from core.workspace.store import WorkspaceError


@pytest.fixture(scope="module")
def docstrings() -> RetrievalSet:
    """Real text: 150 stdlib docstring bodies, with 60 of their summaries as queries."""
    triples = demo.stdlib_pairs(150)
    corpus = {ident: body for ident, _, body in triples}
    queries = {f"q-{ident}": summary for ident, summary, _ in triples[::2][:60]}
    relevant = {f"q-{ident}": {ident} for ident, _, _ in triples[::2][:60]}
    relevant["q-" + triples[0][0]].add(triples[1][0])  # one query with two relevant passages
    return RetrievalSet.build(corpus, queries, relevant)


@pytest.mark.slow
def test_scores_equal_the_reference_evaluator_at_every_dimension(docstrings):
    model = models.load()
    ours = evaluate(model, docstrings, [384, 256, 128, 64, 32])
    for dim in ours.dims:
        reference = InformationRetrievalEvaluator(
            dict(zip(docstrings.query_ids, docstrings.queries)),
            dict(zip(docstrings.corpus_ids, docstrings.corpus)), docstrings.relevant,
            mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 5, 10],
            precision_recall_at_k=[1, 5, 10, 100], map_at_k=[100], truncate_dim=dim,
            show_progress_bar=False)(model)
        for metric in METRICS:
            assert ours.metrics[dim][metric] == pytest.approx(reference[f"cosine_{metric}"], abs=1e-4), (dim, metric)
    # The numbers mean something: most summaries find their body, and small dims lose some.
    assert ours.metrics[384]["ndcg@10"] > 0.5
    assert ours.metrics[32]["ndcg@10"] < ours.metrics[384]["ndcg@10"]


def test_blocked_top_k_equals_a_full_sort():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(7, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    c = rng.normal(size=(5000, 16)).astype(np.float32)
    _, val = top_k(q, c, 20, block_bytes=4 * 7 * 300)  # forces many blocks
    full = q @ (c / np.linalg.norm(c, axis=1, keepdims=True)).T
    expected = np.sort(full, axis=1)[:, ::-1][:, :20]
    assert np.allclose(np.sort(val, axis=1)[:, ::-1], expected, atol=1e-6)


def test_default_dims_halve_from_the_largest_power_of_two():
    assert default_dims(384) == [384, 256, 128, 64, 32]
    assert default_dims(768) == [768, 512, 256, 128, 64, 32]


@pytest.mark.slow
def test_second_run_encodes_only_the_queries(store, docstrings):
    first = evaluate_named(None, docstrings, [384, 64], store=store)
    second = evaluate_named(None, docstrings, [384, 64], store=store)
    assert first.timings["passages_encoded"] == len(docstrings.corpus)
    assert second.timings["passages_encoded"] == 0
    for dim in (384, 64):
        assert second.metrics[dim] == pytest.approx(first.metrics[dim], abs=1e-6)


@pytest.mark.slow
def test_results_are_stored_and_misses_explained(store, count):
    from core.documents.beir import load_demo
    _, pair_set_id = load_demo(store, count, limit=60)
    data = RetrievalSet.from_pair_set(store, pair_set_id)
    result = evaluate_named(None, data, [384, 32], store=store)
    save(store, result, pair_set_id, "baseline")
    [stored] = load_evaluations(store, pair_set_id)
    assert stored.metrics[32]["ndcg@10"] == pytest.approx(result.metrics[32]["ndcg@10"])
    wrong = misses(store, stored, 32)
    assert all(w[MISSED_RANK] != 1 for w in wrong.rows)
    assert len(wrong.rows) == wrong.total == sum(1 for r, _ in result.per_query[32].values() if r != 1)
    assert wrong.summary() == f"{wrong.total} of {result.queries} test queries rank a wrong passage first (all shown)"
    capped = misses(store, stored, 32, limit=2)
    assert len(capped.rows) == 2 and capped.total == wrong.total  # the table is cut, not the count
    assert capped.summary().endswith("(the 2 worst shown)")


def test_bad_labels_are_counted_or_refused():
    data = RetrievalSet.build({"d1": "a", "d2": "b"}, {"q1": "x", "q2": "y", "q3": "z"},
                              {"q1": {"d1", "ghost"}, "q2": {"ghost"}, "q9": {"d2"}})
    assert data.query_ids == ["q1"]  # q3 has no labels: it belongs to another split
    assert data.skipped == {"labels naming unknown passages": 2, "labels naming unknown queries": 1,
                            "queries without a relevant passage": 1}
    with pytest.raises(WorkspaceError, match="corpus is empty"):
        RetrievalSet.build({}, {"q": "x"}, {"q": {"d"}})
    with pytest.raises(WorkspaceError, match="no query has a relevant passage"):
        RetrievalSet.build({"d": "a"}, {"q": "x"}, {"q": {"other"}})
    with pytest.raises(WorkspaceError, match=r"outside 1\.\.384"):
        evaluate(models.load(), data, [512])


def test_a_validation_subset_keeps_every_relevant_passage_and_is_repeatable():
    corpus = {f"d{i}": f"passage {i}" for i in range(50)}
    data = RetrievalSet.build(corpus, {"q1": "one", "q2": "two"}, {"q1": {"d3"}, "q2": {"d40", "d41"}})
    small = data.subset(10, seed=1)
    assert len(small.corpus) == 10 and {"d3", "d40", "d41"} <= set(small.corpus_ids)
    assert small.corpus_ids == data.subset(10, seed=1).corpus_ids
    assert data.subset(50) is data


def test_one_query_on_one_thread_leaves_every_other_thread_its_count():
    """encode_one limits only the thread that calls it: threads starting meanwhile (a page's
    next run, a job) keep the process's count. torch.set_num_threads(1) around the encode, as
    labelling once did, handed 1 to every thread that started inside that window."""
    import threading

    import torch
    model = models.load(None)
    default = torch.get_num_threads()
    assert np.allclose(encode_one(model, "close the socket"), encode(model, ["close the socket"],
                                                                      role="query"), atol=1e-6)
    stop, seen = threading.Event(), []

    def searching():
        while not stop.is_set():
            encode_one(model, "How do I parse command-line options?")

    def born():
        seen.append(torch.get_num_threads())
    searcher = threading.Thread(target=searching)
    searcher.start()
    try:
        for _ in range(200):
            newcomer = threading.Thread(target=born)
            newcomer.start()
            newcomer.join()
    finally:
        stop.set()
        searcher.join()
    assert set(seen) == {default} and torch.get_num_threads() == default


def test_a_counted_stage_sets_a_jobs_status_once_and_moves_only_its_bar():
    from core.measuring.evaluate import counted, stage_name
    from core.training.config import stage_progress

    class Reporter:
        statuses, fractions = [], []

        def status(self, text):
            self.statuses.append(text)

        def progress(self, fraction):
            self.fractions.append(fraction)

    reporter = Reporter()
    report = counted(stage_progress(reporter, "Measuring the baseline"), "encoding passages")
    for done in (0, 64, 128, 130):
        report(done, 130)
    assert reporter.statuses == ["Measuring the baseline: encoding passages"]  # not once a batch
    assert reporter.fractions == [0, 64 / 130, 128 / 130, 1.0]
    assert stage_name("encoding passages with the base model (x): 1,024 of 1,597") == \
        "encoding passages with the base model (x)"
    assert stage_name("quantising and scoring: 7 of 18 options") == "quantising and scoring"
