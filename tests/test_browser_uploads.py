"""One good and one bad upload of every supported file type, and of a BEIR zip, through the
Corpus page in a real browser. Good: the preview appears and the documents are added. Bad: one
line of error, no traceback, nothing added. One app and one browser serve the whole module."""
import re

import pytest

from core.documents.corpus import SUPPORTED, TABLE_KINDS
from core.workspace.store import Store
from core.workspace.wording import plural
from tests.browser import ROOT, browser_page, chromium_missing, running_app, screenshot_on_failure, wait_idle
from tests.test_bad_input import beir, zipped
from tests.test_bad_upload_types import PNG, good, other_type, truncated, without_text, wrong_encoding

pytestmark = pytest.mark.skipif(chromium_missing(), reason="needs Debian's chromium (apt-get install chromium)")
SHOTS = ROOT / "screenshots"
# one bad file per type, each broken in a different way (the generators of the bad-upload table)
BAD = {".txt": lambda s: PNG, ".md": wrong_encoding, ".markdown": without_text, ".pdf": truncated,
       ".html": without_text, ".htm": truncated, ".docx": other_type, ".csv": without_text,
       ".jsonl": truncated, ".parquet": truncated}


def documents(suffix: str) -> int:
    """How many documents the good file of a type holds: one, or a row each for tables."""
    return 3 if suffix in TABLE_KINDS else 1


def test_every_supported_type_is_covered():
    assert sorted(BAD) == SUPPORTED


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("uploads") / "ws"
    with running_app(home) as url, browser_page() as page:
        yield url, page, home


@pytest.fixture
def page(app, request):
    url, page, _ = app
    with screenshot_on_failure(request.node, page):
        page.goto(url + "/corpus")
        page.get_by_text("Add documents to").wait_for(timeout=60_000)
        yield page


def corpora(home) -> dict[str, int]:
    return {c.name: c.stats.get("documents", 0) for c in Store(home).corpora()}


def upload(page, tmp_path, name: str, data: bytes, which: int = 0) -> None:
    (tmp_path / name).write_bytes(data)
    page.locator("input[type=file]").nth(which).set_input_files(str(tmp_path / name))


def assert_one_line_error(page, *fragments: str) -> str:
    error = page.locator('[data-testid="stAlertContentError"] [data-testid="stMarkdownContainer"]').first
    error.wait_for(timeout=60_000)
    wait_idle(page)
    text = error.inner_text().strip()
    assert text and "\n" not in text, text
    assert all(f in text for f in fragments), text
    assert page.locator('[data-testid="stException"]').count() == 0
    return text


@pytest.mark.parametrize("suffix", SUPPORTED)
def test_a_good_upload_is_previewed_and_added(app, page, tmp_path, suffix):
    name = "good" + suffix.lstrip(".")
    page.get_by_label("Name of the new corpus").fill(name)
    page.get_by_label("Name of the new corpus").press("Enter")
    wait_idle(page)
    upload(page, tmp_path, "plants" + suffix, good(suffix))
    page.get_by_text("Preview").wait_for(timeout=60_000)
    wait_idle(page)
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    page.get_by_role("button", name=f"Add {plural(documents(suffix), 'document')} to '{name}'").click()
    page.get_by_text(f"Added to '{name}'").wait_for(timeout=60_000)
    assert corpora(app[2])[name] == documents(suffix)


@pytest.mark.parametrize("suffix", SUPPORTED)
def test_a_bad_upload_is_one_line_and_adds_nothing(app, page, tmp_path, suffix):
    before = corpora(app[2])
    upload(page, tmp_path, "broken" + suffix, BAD[suffix](suffix))
    assert_one_line_error(page, "broken" + suffix)
    assert page.get_by_text("Preview").count() == 0
    assert page.get_by_role("button", name=re.compile(r"^Add \d+ documents")).count() == 0
    assert corpora(app[2]) == before


def beir_zip(**replace: str) -> bytes:
    """A BEIR folder zipped as file managers do: everything inside one top folder."""
    return zipped({"scifact-mini/" + name: content for name, content in beir(**replace).items()})


def open_beir(page) -> None:
    page.get_by_text("Import a labelled set in BEIR format").click()
    page.get_by_text("The BEIR folder zipped").wait_for(timeout=30_000)


def test_a_good_beir_zip_becomes_a_corpus_with_labelled_pairs(app, page, tmp_path):
    open_beir(page)
    upload(page, tmp_path, "scifact-mini.zip", beir_zip(), which=1)
    page.get_by_text("passages: 3 · queries: 1 · relevance labels: 1 in test").wait_for(timeout=60_000)
    wait_idle(page)
    page.screenshot(path=SHOTS / "corpus-beir-upload.png", full_page=True)
    page.get_by_role("button", name="Import 3 passages as 'scifact-mini'").click()
    page.get_by_text("Imported 'scifact-mini'").wait_for(timeout=60_000)
    store = Store(app[2])
    [pair_set] = store.pair_sets(store.corpus("scifact-mini").id)
    assert pair_set.name == "qrels test" and store.split_counts(pair_set.id) == {"test": 1}


@pytest.mark.parametrize("what,data,message", [
    ("entry climbing out", zipped({"../../corpus.jsonl": '{"_id": "x", "text": "x"}\n'}),
     "points outside the folder"),
    ("bad score", beir_zip(**{"qrels/test.tsv": "q\tc\ts\nq1\td2\thigh\n"}), "test.tsv line 2"),
])
def test_a_bad_beir_zip_is_one_line_and_adds_nothing(app, page, tmp_path, what, data, message):
    before = corpora(app[2])
    open_beir(page)
    upload(page, tmp_path, "bad.zip", data, which=1)
    assert_one_line_error(page, message)
    page.screenshot(path=SHOTS / f"corpus-beir-{what.replace(' ', '-')}.png", full_page=True)
    assert page.get_by_role("button", name=re.compile(r"^Import \d+ passages")).count() == 0
    assert corpora(app[2]) == before
