"""The demo path page by page in a real browser, with every number a person reads on the way
checked against the workspace: run and evaluation counts, chunk counts (also after a second
upload), the comparison's headline ratios, the metric columns' order and the storage sizes."""
import re

import pytest

from core.deciding import compare
from core.documents.beir import load_demo
from core.measuring import storage
from core.measuring.evaluate import RetrievalSet, evaluate, evaluate_named, load_evaluations, save
from core.using import runs
from core.workspace import models
from core.workspace.store import Store
from tests.browser import ROOT, browser_page, chromium_missing, running_app, screenshot_on_failure, wait_idle

pytestmark = pytest.mark.skipif(chromium_missing(), reason="needs Debian's chromium (apt-get install chromium)")
SHOTS = ROOT / "screenshots"
# Two rendered man pages as a person saves them (`man -P cat`): justified text, a running
# header and footer, and a word broken across a line with U+2010.
MAN_PAGE = """MV(1)                            User Commands                           MV(1)

NAME
       mv - move (rename) files

DESCRIPTION
       Rename SOURCE to DEST, or move SOURCE(s) to DIRECTORY.  Moving a file be\u2010
       tween file systems copies it and removes the original.

       Mandatory  arguments  to  long  options are mandatory for short options too.

       -f, --force
              do not prompt before overwriting

       -n, --no-clobber
              do not overwrite an existing file

GNU coreutils 9.1               September 2022                           MV(1)
"""
TOUCH_PAGE = """TOUCH(1)                         User Commands                        TOUCH(1)

NAME
       touch - change file timestamps

DESCRIPTION
       Update  the  access  and modification times of each FILE to the current time.
       A FILE argument that does not exist is created empty, unless -c or -h is supplied.

       -a     change only the access time

       -d, --date=STRING
              parse STRING and use it instead of current time

GNU coreutils 9.1               September 2022                        TOUCH(1)
"""


def body(page) -> str:
    return page.locator("body").inner_text()


def metric(page, label: str) -> str:
    """The value of the st.metric labelled ``label``."""
    box = page.locator('[data-testid="stMetric"]').filter(
        has=page.get_by_text(label, exact=True)).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


@pytest.fixture
def measured(home, count):
    """The demo corpus with its baseline and a second, really measured model (passages cut to
    32 tokens), so Results has a comparison whose ratios can be checked."""
    store = Store(home)
    _corpus_id, pair_set_id = load_demo(store, count, limit=60)
    data = RetrievalSet.from_pair_set(store, pair_set_id)
    save(store, evaluate_named(None, data, [384, 128, 64, 32], store), pair_set_id, "baseline")
    short = models.load_fresh(models.DEFAULT_MODEL, "cpu")
    short.max_seq_length = 32
    save(store, evaluate(short, data, [384, 128, 64, 32], model_name=models.DEFAULT_MODEL),
         pair_set_id, "32-token passages")
    return store, pair_set_id


def test_demo_path_numbers_match_the_workspace(measured, tmp_path, request):
    store, pair_set_id = measured
    SHOTS.mkdir(exist_ok=True)
    files = []
    for name, text in (("mv.txt", MAN_PAGE), ("touch.txt", TOUCH_PAGE)):
        files.append(tmp_path / name)
        files[-1].write_text(text)
    with running_app(store.home) as url, browser_page() as page, \
            screenshot_on_failure(request.node, page):
        # Home: the counts of the workflow come from the store.
        page.goto(url)
        page.get_by_text("Workspace").first.wait_for(timeout=60_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "numbers-home.png", full_page=True)
        all_runs = runs.list_runs(store)
        assert f"{len(all_runs)} runs" in body(page) and "2 evaluations" in body(page)

        # Corpus: the demo's chunk count, then a second upload previewed and stored alike.
        page.goto(url + "/corpus")
        page.get_by_text("In the workspace").wait_for(timeout=60_000)
        wait_idle(page)
        demo = store.corpora()[0]
        assert metric(page, "Chunks") == str(demo.stats["chunks"])
        page.get_by_label("Name of the new corpus").fill("man-pages")
        page.get_by_label("Name of the new corpus").press("Enter")
        wait_idle(page)
        page.locator("input[type=file]").first.set_input_files([str(f) for f in files])
        page.get_by_text("Chunks to add").wait_for(timeout=60_000)
        wait_idle(page)
        previewed = int(metric(page, "Chunks to add").replace(",", ""))
        assert "first part only" not in body(page)
        page.screenshot(path=SHOTS / "numbers-corpus-preview.png", full_page=True)
        page.get_by_role("button", name="Add 2 documents to 'man-pages'").click()
        page.get_by_text("Added to 'man-pages'").wait_for(timeout=60_000)
        wait_idle(page)
        stored = store.corpus("man-pages").stats["chunks"]
        assert previewed == stored
        # "In the workspace" now shows the corpus just added, not the one before.
        assert metric(page, "Chunks") == str(stored) and metric(page, "Documents") == "2"
        page.screenshot(path=SHOTS / "numbers-corpus-added.png", full_page=True)

        # Results: the two measured models, their headline ratios and the table's columns.
        page.goto(url + "/results")
        page.get_by_label("Corpus").first.wait_for(timeout=60_000)
        page.get_by_label("Corpus").first.click()
        page.get_by_role("option", name="python-stdlib").click()
        page.get_by_text("compared with baseline").wait_for(timeout=60_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "numbers-results.png", full_page=True)
        base, short = load_evaluations(store, pair_set_id)
        text = body(page)
        for line in compare.headlines(base.metrics, short.metrics, "ndcg@10",
                                      (base.label, short.label),
                                      (compare.per_query_ndcg(base), compare.per_query_ndcg(short))):
            assert line in text
        header = page.locator('[data-testid="stDataFrame"]').first.inner_text()
        columns = re.findall(r"(?:recall|accuracy)@\d+", header)
        assert columns == ["recall@1", "recall@5", "recall@10", "recall@100",
                           "accuracy@1", "accuracy@5", "accuracy@10"][:len(columns)]

        # Runs: the run count, and the storage advice's sizes for a million passages.
        page.goto(url + "/runs")
        page.get_by_text("How small can the index be?").wait_for(timeout=60_000)
        wait_idle(page)
        page.get_by_role("button", name="Measure storage options").click()
        page.get_by_text("Sizes are for 1,000,000 passages").wait_for(timeout=120_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "numbers-runs-storage.png", full_page=True)
        chosen = next(r for r in runs.list_runs(store) if r.id == f"e{short.id}")
        table = storage.measure(store, pair_set_id, chosen.model_path or chosen.model,
                                sorted(chosen.metrics, reverse=True), passages=1_000_000)
        assert table.headline() in body(page)
        assert "1.5 GB" in body(page)  # 1,000,000 × 384 × 4 bytes, in SI units

        # Search: readable passages and one score format on both sides.
        page.goto(url + "/search")
        page.get_by_label("Corpus").first.wait_for(timeout=60_000)
        if "python-stdlib" not in page.get_by_label("Corpus").first.inner_text():
            page.get_by_label("Corpus").first.click()
            page.get_by_role("option", name="python-stdlib").click()
        page.get_by_text("Test question").first.wait_for(timeout=60_000)
        page.get_by_text("The labelled answer:").wait_for(timeout=120_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "numbers-search.png", full_page=True)
        scores = re.findall(r"score (\d+\.\d+)", body(page))
        assert len(scores) == 20 and {len(s.split(".")[1]) for s in scores} == {3}
