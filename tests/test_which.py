"""Which model? Every candidate on the corpus's judging test set, NDCG@10 against index bytes,
the interval between the best two and the cheapest candidate the questions cannot tell from the
best. A 768-dimension model's scores at every size equal sentence-transformers' own evaluator
with ``truncate_dim``."""
from pathlib import Path

import pytest
import torch
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from core.deciding.compare import difference
from core.deciding.which import WhichModel, bytes_per_passage, which_model
from core.documents.beir import load_demo
from core.measuring.evaluate import RetrievalSet, evaluate_named, evaluation_label, save
from core.workspace import models
from core.workspace.errors import WorkspaceError


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> Path:
    """A 768-dimension model: the bundled one with a fixed random 384→768 layer on top."""
    from sentence_transformers.sentence_transformer.modules import Dense
    torch.manual_seed(0)
    model = models.load_fresh(None, "cpu")
    model.append(Dense(384, 768, activation_function=torch.nn.Identity()))
    path = tmp_path_factory.mktemp("wide") / "wide-768"
    model.save(str(path))
    return path


@pytest.mark.slow
def test_every_size_of_a_768_model_equals_the_reference_and_the_sentence_names_the_cheapest(
        store, count, wide_model):
    corpus_id, pair_set_id = load_demo(store, count, limit=60)
    data = RetrievalSet.from_pair_set(store, pair_set_id)
    for name in (None, str(wide_model)):
        save(store, evaluate_named(name, data, store=store), pair_set_id, evaluation_label(name))
    found = which_model(store, str(corpus_id), measure=False, speed_sample=4)
    wide = next(c for c in found.candidates if c.model == str(wide_model))
    assert list(wide.ndcg) == [768, 512, 256, 128, 64, 32]
    model = models.load(str(wide_model))
    for dim, ours in wide.ndcg.items():
        reference = InformationRetrievalEvaluator(
            dict(zip(data.query_ids, data.queries)), dict(zip(data.corpus_ids, data.corpus)),
            data.relevant, ndcg_at_k=[10], truncate_dim=dim, show_progress_bar=False)(model)
        assert ours == pytest.approx(reference["cosine_ndcg@10"], abs=1e-4), dim
    base = next(c for c in found.candidates if c.model == models.DEFAULT_MODEL)
    assert base.name == models.DEFAULT_MODEL and list(base.ndcg) == [384, 256, 128, 64, 32]
    assert wide.speed.passages_per_second > 0 and wide.speed.query_ms > 0
    # The best point, and the interval between it and the other candidate's best.
    points = found.points()
    assert found.best.ndcg == max(p.ndcg for p in points)
    assert found.runner_up.candidate is not found.best.candidate
    expected = difference(found.runner_up.candidate.per_query[found.runner_up.dims],
                          found.best.candidate.per_query[found.best.dims])
    assert found.best_two.ci95 == expected.ci95
    if found.cheapest is not None and found.cheapest.bytes < found.best.bytes:
        assert not found.cheapest_vs_best.significant
        assert found.cheapest.candidate.name in found.sentence()
        for p in points:  # every smaller index than the one named is significantly worse
            if p.bytes < found.cheapest.bytes:
                d = difference(found.best.candidate.per_query[found.best.dims], p.candidate.per_query[p.dims])
                assert d.significant and d.delta < 0, p.said()
    assert found.sentence().startswith(found.best.candidate.name)
    shown = next(c for c in found.to_json()["candidates"] if c["model"] == str(wide_model))
    assert shown["bytes_per_passage"] == {"768": 3072, "512": 2048, "256": 1024, "128": 512, "64": 256, "32": 128}


def test_the_sentence_names_the_cheapest_candidate_within_the_interval():
    from core.deciding.which import Candidate, decide
    questions = [f"q{i}" for i in range(30)]
    big = Candidate("big", "e1", "base model", "big", {768: 0.81, 256: 0.70},
                    {768: {q: 0.80 + 0.01 * (i % 3) for i, q in enumerate(questions)},
                     256: dict.fromkeys(questions, 0.7)})
    small = Candidate("tuned small", "j2", "fine-tune", "/f", {384: 0.79, 128: 0.79, 32: 0.5},
                      {384: {q: 0.79 + 0.02 * (i % 2) - 0.01 for i, q in enumerate(questions)},
                       128: {q: (0.79 + 0.1 if i % 2 else 0.79 - 0.1) for i, q in enumerate(questions)},
                       32: dict.fromkeys(questions, 0.5)})
    found = decide(WhichModel("c", "'people' (30 test questions)", 30, None, [big, small]))
    assert (found.best.candidate.name, found.best.dims) == ("big", 768)
    assert (found.cheapest.candidate.name, found.cheapest.dims) == ("tuned small", 128)
    line = found.sentence()
    assert line.startswith("big at 768 dims (NDCG@10 0.810) is not significantly better than "
                           "tuned small at 128 dims (NDCG@10 0.790; difference +0.020, 95% interval ")
    assert "over 30 questions), at a sixth of the index (512 B against 3.1 kB a passage)." in line
    assert bytes_per_passage(128) == 512


def test_a_corpus_without_test_questions_is_one_line(store, count):
    from core.documents.corpus import Document, ingest
    ingest(store, "bare", [Document("a.txt", "txt", "Plain text with no questions about it.")], count)
    with pytest.raises(WorkspaceError, match="no test questions yet"):
        which_model(store, "bare", measure=False)


@pytest.mark.slow
def test_the_page_installs_a_model_saying_its_size_first_then_measures_every_model(
        home, count, tiny_model, tiny_spec, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from core.workspace.install import PARTS_ENV
    from core.workspace.store import Store
    from tests.conftest import ROOT
    from tests.installing import split_zip, wheels
    parts = wheels(tmp_path / "parts", split_zip(tiny_model, "tiny"))
    monkeypatch.setenv(PARTS_ENV, str(parts))
    load_demo(Store(home), count, limit=40)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.switch_page("views/which.py").run()
    assert not at.exception
    shown = [c.value.replace("\\", "") for c in at.caption]  # escaped Markdown, read as text
    assert f"tiny: 32 dimensions, 1M parameters; reads 3 MB of parts from {parts} (3 " \
           "packages) and takes 4 MB on disk." in shown
    next(b for b in at.button if b.label == "Install tiny (3 MB)").click().run()
    assert not at.exception and "Installed tiny in" in at.success[0].value
    assert not any(b.label.startswith("Install tiny") for b in at.button)
    next(b for b in at.button if b.label.startswith("Measure every model")).click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert sorted(table["model"]) == [models.DEFAULT_MODEL, "tiny"]
    assert table["passages/s"].notna().all() and "32 dims" in table.columns
    assert any(m.value.replace("\\", "").startswith(f"**{models.DEFAULT_MODEL} at ") for m in at.markdown)
