"""Every page through Streamlit's AppTest, on a real workspace and the bundled model."""
import time

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.documents.beir import DEMO_CORPUS, load_demo
from core.workspace.store import Store
from tests.conftest import PARAGRAPHS, ROOT, pdf_bytes

APP = str(ROOT / "app.py")


def page(path: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(path)
    return at.run()


@pytest.fixture
def demo(home, count):
    """The demo corpus, cut to a few docstrings to stay quick."""
    return load_demo(Store(home), count, limit=40)


def test_home_loads_the_demo_with_one_click(home):
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception
    at.button[0].click().run()
    assert not at.exception
    assert DEMO_CORPUS in at.dataframe[0].value["corpus"].tolist()
    assert "384 dimensions" in " ".join(m.value for m in at.markdown)


def test_corpus_page_previews_and_ingests_uploads(home):
    at = page("views/corpus.py")
    at.text_input[0].set_value("bio")
    at.file_uploader[0].set_value([
        ("notes.md", ("# Plants\n\n" + "\n\n".join(PARAGRAPHS)).encode(), "text/markdown"),
        ("report.pdf", pdf_bytes(PARAGRAPHS[:1]), "application/pdf")]).run()
    assert not at.exception
    assert [m.value for m in at.metric][:2] == ["2", "2"] or at.metric[0].value == "2"
    add = next(b for b in at.button if b.label.startswith("Add 2 documents"))
    add.click().run()
    assert not at.exception
    assert "Added to 'bio'" in at.success[0].value
    assert Store(home).corpus("bio").stats["documents"] == 2
    # The uploader is emptied: no second click can add the same files again.
    assert not at.file_uploader[0].value
    assert not any(b.label.startswith("Add ") for b in at.button)


def test_corpus_page_previews_a_1600_row_table_with_the_count_it_stores(home):
    from tests.test_corpus import rows
    table = pd.DataFrame({"text": [d.text for d in rows(1597, 20, 1)]}).to_csv(index=False)
    at = page("views/corpus.py")
    at.text_input[0].set_value("annual")
    at.file_uploader[0].set_value([("excerpts.csv", table.encode(), "text/csv")]).run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Chunks to add"] == "1,597"  # exact, where "≈ 1,524" was estimated for 1,598
    next(b for b in at.button if b.label.startswith("Add 1597 documents")).click().run()
    assert not at.exception and Store(home).corpus("annual").stats["chunks"] == 1597


def test_corpus_page_explains_a_bad_file_and_adds_nothing(home, demo):
    at = page("views/corpus.py")
    at.file_uploader[0].set_value([("photo.txt", b"\x00\x01\x02", "text/plain"),
                                   ("ok.txt", b"Leaves are green. They hold chlorophyll.", "text/plain")]).run()
    assert not at.exception
    assert "looks like a binary file" in at.error[0].value
    add = next(b for b in at.button if b.label.startswith("Add"))
    assert add.disabled
    assert [c.name for c in Store(home).corpora()] == [DEMO_CORPUS]


def test_pairs_page_imports_generates_and_splits(home, demo):
    at = page("views/pairs.py")
    assert not at.exception
    frame = pd.DataFrame({"Frage": ["What does it do?"], "Antwort": ["It does a thing."]})
    at.file_uploader[0].set_value([("qa.csv", frame.to_csv(index=False).encode(), "text/csv")]).run()
    assert not at.exception
    assert any("usual names" in i.value for i in at.info)  # unusual columns: user confirms
    next(b for b in at.button if b.label == "Import pairs").click().run()
    assert not at.exception and "Imported 1 pairs" in at.success[0].value
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception and "Generated" in at.success[0].value
    next(b for b in at.button if b.label == "Split train/test").click().run()
    assert not at.exception and "No passage or query is on both sides" in at.success[0].value
    assert len(at.get("download_button")) >= 3


def test_results_page_measures_the_baseline_and_shows_it_after_a_reload(home, demo):
    at = page("views/results.py")
    assert not at.exception
    next(b for b in at.button if b.label == "Measure baseline").click().run()
    assert not at.exception
    assert "Measured" in at.success[0].value
    table = at.dataframe[0].value
    assert table["dim"].tolist() == [384, 256, 128, 64, 32]
    assert 0 < table["ndcg@10"].iloc[0] <= 1
    # A fresh session reads the stored numbers without measuring again.
    again = page("views/results.py")
    assert again.dataframe[0].value["ndcg@10"].tolist() == table["ndcg@10"].tolist()


@pytest.mark.slow
def test_finetune_page_starts_a_job_and_shows_it_live(home, demo):
    from core.training import jobs
    at = page("views/finetune.py")
    assert not at.exception
    assert "Device: **cpu**" in at.caption[0].value
    # The same default plan as the CLI, shown before anything is chosen.
    assert any(m.value.startswith("**Default plan:** ") and "lr 2e-05" in m.value for m in at.markdown)
    field = {n.label: n for n in at.number_input}
    field["Epochs"].set_value(1)
    field["Batch size"].set_value(8)
    field["Max sequence length"].set_value(64)
    next(b for b in at.button if b.label == "Start fine-tuning").click().run()
    assert not at.exception
    store = Store(home)
    [job] = jobs.all_jobs(store)
    assert job.config["batch_size"] == 8 and job.config["dims"] == [384, 256, 128, 64, 32]
    assert any("torchrun --nproc_per_node 2" in c.value for c in at.code)
    # The page only submits: the shared runner of this process trains in the background.
    deadline = time.time() + 300
    while jobs.get(store, job.id).state in ("queued", "running"):
        assert time.time() < deadline
        time.sleep(0.5)
    assert jobs.get(store, job.id).state == "succeeded", jobs.get(store, job.id).error
    done = page("views/finetune.py")  # planned vs actual, in the same words as the CLI's numbers
    assert any(c.value.startswith("Training took") and " budget (" in c.value and "estimate" in c.value
               for c in done.caption)
    results = page("views/results.py")
    assert not results.exception
    assert any("compared with baseline" in s.value for s in results.subheader)
    assert any("at 384 dims" in m.value for m in results.markdown)


def test_decide_page_recommends_keeps_answers_in_the_url_and_exports(home):
    at = page("views/decide.py")
    assert not at.exception
    assert "Answer at least 3 questions for a recommendation (0 of 13 answered)" in at.info[0].value
    assert not at.success
    at.radio(key="q_knowledge").set_value("large").run()
    at.radio(key="q_freshness").set_value("periodic").run()
    at.radio(key="q_jargon").set_value("yes").run()
    assert not at.exception
    assert "RAG + fine-tuned embeddings" in at.success[0].value
    assert at.query_params["knowledge"] == "large" and at.query_params["jargon"] == "yes"
    assert any(b.label == "Report (HTML, printable)" for b in at.get("download_button"))
    # A shared link reproduces the answers in a new session.
    shared = AppTest.from_file(APP, default_timeout=120)
    shared.query_params.update({"knowledge": "large", "freshness": "periodic", "jargon": "yes", "bogus": "x"})
    shared.run()
    shared.switch_page("views/decide.py")
    shared.run()
    assert "RAG + fine-tuned embeddings" in shared.success[0].value
    assert shared.radio(key="q_knowledge").value == "large"


@pytest.mark.parametrize("answers", [
    {"knowledge": "large", "failure": "facts", "jargon": "unknown"},  # provisional, with a don't-know
    {"knowledge": "general", "freshness": "na", "failure": "form", "format": "hard", "citations": "no",
     "error_cost": "low", "examples": "under50", "latency": "no", "jargon": "na",
     "right_docs_wrong_answer": "na", "access": "no", "team": "mlops", "eval_set": "no"},  # gated
    {"knowledge": "large", "freshness": "rarely", "failure": "facts", "right_docs_wrong_answer": "yes",
     "examples": "hundreds", "eval_set": "no"},  # RAFT, a hybrid with missing prerequisites
])
def test_decide_page_shows_what_the_reports_and_cli_show(home, answers, capsys):
    from core.cli import main
    from core.deciding.decision import recommend
    from core.deciding.report import to_markdown
    from tests.test_decision import _shown_items
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(answers)
    at.run()
    at.switch_page("views/decide.py")
    at.run()
    assert not at.exception
    shown = "\n".join(e.value for kind in ("success", "markdown", "warning", "info", "caption")
                      for e in at.get(kind))
    assert main(["decide", *(f"{k}={v}" for k, v in answers.items())]) == 0
    cli_text = capsys.readouterr().out
    result = recommend(answers)
    report = to_markdown(answers, result)
    for item in _shown_items(result):
        assert item in shown and item in cli_text and item in report, item
