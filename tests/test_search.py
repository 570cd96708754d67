"""Side-by-side search: ranks equal a direct numpy computation, the index paths agree, and the
Search page shows both models."""
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.deciding.compare import comparison
from core.measuring.evaluate import encode
from core.using import search
from core.workspace import models
from core.workspace.store import WorkspaceError
from tests.test_runs import APP, trained  # noqa: F401  (fixture)


def test_search_ranks_match_a_direct_numpy_computation(trained):  # noqa: F811
    store = trained
    [pair_set] = store.pair_sets()
    query = search.test_queries(store, pair_set.id)[0]
    hits = search.search(store, pair_set.id, models.DEFAULT_MODEL, query.query, 64,
                         relevant=query.relevant)
    chunks = store.chunks(pair_set.corpus_id)
    model = models.load()
    corpus = encode(model, [c["text"] for c in chunks])[:, :64]
    q = encode(model, [query.query])[0, :64]
    scores = (corpus / np.linalg.norm(corpus, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    order = np.argsort(-scores, kind="stable")[:10]
    assert [h.chunk_id for h in hits] == [chunks[i]["id"] for i in order]
    np.testing.assert_allclose([h.score for h in hits], scores[order], atol=1e-5)
    assert [h.rank for h in hits] == list(range(1, 11))
    assert [h.relevant for h in hits] == [chunks[i]["id"] in query.relevant for i in order]


def test_default_pair_is_the_baseline_and_the_fine_tuned_model(trained):  # noqa: F811
    [pair_set] = trained.pair_sets()
    choices = search.searchable_models(trained, pair_set.id)
    matters = comparison(trained, pair_set.corpus_id, pair_set.id)
    left, right = search.default_pair(choices, matters.base, matters.best)
    assert choices[left].kind == "evaluation" and choices[left].model == models.DEFAULT_MODEL
    assert choices[right].kind == "fine-tune" and choices[right].model.endswith("/model")
    with pytest.raises(WorkspaceError, match="type a question"):
        search.search(trained, pair_set.id, choices[left].model, "  ", 64)


def test_hnsw_finds_what_exact_search_finds():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((50, 64))
    corpus = (centres[rng.integers(0, 50, 5000)] + 0.5 * rng.standard_normal((5000, 64))).astype(np.float32)
    queries = corpus[:50] + 0.1 * rng.standard_normal((50, 64)).astype(np.float32)
    assert isinstance(search.build_index(corpus, exact_limit=5000), search.ExactIndex)
    hnsw = search.build_index(corpus, exact_limit=4999)
    assert isinstance(hnsw, search.HNSWIndex)
    exact_idx, exact_scores = search.ExactIndex(corpus).search(queries, 10)
    idx, scores = hnsw.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_idx, idx)])
    assert recall > 0.95
    np.testing.assert_allclose(scores[:, 0], exact_scores[:, 0], atol=1e-4)


def test_rank_changes_mark_moves_and_newcomers():
    def hits(ids):
        return [search.Hit(r, cid, 0.0, "", "", False) for r, cid in enumerate(ids, start=1)]
    changes = search.rank_changes(hits([1, 2, 3]), hits([3, 1, 9]))
    assert changes == {3: "↑2", 1: "↓1", 9: "new"}
    assert search.rank_changes(hits([1]), hits([1])) == {1: "="}


def test_search_page_shows_both_models_side_by_side(trained):  # noqa: F811
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/search.py")
    at.run()
    assert not at.exception
    def cards() -> list[str]:
        return [m.value for m in at.markdown if m.value.startswith("**#")]
    shown = cards()  # ten hits a side, one score format, the right side's rank changes
    assert len(shown) == 20 and all(re.search(r"score \d\.\d{3} ", c) for c in shown)
    assert all(re.search(r"[=↑↓]|new", c) for c in shown[10:])
    assert at.selectbox[2].value.kind == "evaluation" and at.selectbox[3].value.kind == "fine-tune"
    at.radio[0].set_value("My own question").run()
    at.text_input[0].set_value("How do I parse command-line arguments?").run()
    assert not at.exception
    assert len(cards()) == 20


def test_the_first_search_with_a_model_counts_the_passages_it_encodes_then_none(home, count):
    from core.documents.beir import load_demo
    from core.workspace.store import Store
    store = Store(home)
    corpus_id, pair_set_id = load_demo(store, count, limit=40)
    passages = len(store.chunks(corpus_id))
    assert not search.index_ready(store, corpus_id, models.DEFAULT_MODEL, 128)
    counts = []
    hits = search.search(store, pair_set_id, models.DEFAULT_MODEL, "parse a date", 128,
                         progress=lambda done, total: counts.append((done, total)))
    assert hits and counts == [(0, passages), (passages, passages)]
    assert search.index_ready(store, corpus_id, models.DEFAULT_MODEL, 128)
    assert not search.index_ready(store, corpus_id, models.DEFAULT_MODEL, 64)
    counts.clear()
    search.search(store, pair_set_id, models.DEFAULT_MODEL, "open a file", 64,
                  progress=lambda done, total: counts.append((done, total)))
    assert counts == []  # another size: the cached vectors, cut; nothing encoded again
