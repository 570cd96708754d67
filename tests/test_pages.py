"""Every page through Streamlit's AppTest, on a real workspace and the bundled model."""
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.beir import DEMO_CORPUS, load_demo
from core.store import Store
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
    at = page("pages/corpus.py")
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


def test_corpus_page_explains_a_bad_file_and_adds_nothing(home, demo):
    at = page("pages/corpus.py")
    at.file_uploader[0].set_value([("photo.txt", b"\x00\x01\x02", "text/plain"),
                                   ("ok.txt", b"Leaves are green. They hold chlorophyll.", "text/plain")]).run()
    assert not at.exception
    assert "looks like a binary file" in at.error[0].value
    add = next(b for b in at.button if b.label.startswith("Add"))
    assert add.disabled
    assert [c.name for c in Store(home).corpora()] == [DEMO_CORPUS]


def test_pairs_page_imports_generates_and_splits(home, demo):
    at = page("pages/pairs.py")
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
    at = page("pages/results.py")
    assert not at.exception
    next(b for b in at.button if b.label == "Measure baseline").click().run()
    assert not at.exception
    assert "Measured" in at.success[0].value
    table = at.dataframe[0].value
    assert table["dim"].tolist() == [384, 256, 128, 64, 32]
    assert 0 < table["ndcg@10"].iloc[0] <= 1
    # A fresh session reads the stored numbers without measuring again.
    again = page("pages/results.py")
    assert again.dataframe[0].value["ndcg@10"].tolist() == table["ndcg@10"].tolist()
