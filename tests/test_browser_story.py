"""Issue 26's path, replayed: a corpus with 40 labelled people's questions, a documents-only
run, a fine-tune that does not help and one that does; then, page by page, every headline's two
numbers come from one test set, the fine-tune that kept the base never shows as a model of its
own, and Search and Export start on the best model. Screenshots of each page go to
``$RAGTUNE_SHOTS`` (default: screenshots/story/)."""
import json
import os
import re
import time
from pathlib import Path

import pytest

from core.cli import main
from core.deciding.compare import comparison
from core.documents import demo
from core.documents.corpus import ChunkSettings, ingest
from core.documents.pairs import split
from core.documents.pseudo import generate_builtin
from core.measuring.evaluate import BASELINE, load_evaluations
from core.training import jobs
from core.training.runner import Runner
from core.using import label
from core.using.runs import SAME_AS_BASE, list_runs
from core.workspace.store import Store
from tests.browser import ROOT, browser_page, chromium_missing, running_app, screenshot_on_failure, wait_idle

pytestmark = [pytest.mark.slow, pytest.mark.skipif(chromium_missing(), reason="needs Debian's "
                                                   "chromium (apt-get install chromium)")]
SHOTS = Path(os.environ.get("RAGTUNE_SHOTS", ROOT / "screenshots" / "story"))
CORPUS = "docstrings"
DOCUMENTS = 80
PEOPLE = 40
# Small runs, so the whole path takes a few minutes of CPU: the demo's passages are short.
TINY = {"epochs": 1, "max_pairs": 32, "batch_size": 16, "max_seq_length": 64,
        "generated_pairs": True}


def label_people(store: Store, corpus_id: int) -> int:
    """40 of the docstring summaries, imported and labelled through core.using.label as a person
    would on the Label page: the passage of its own docstring is the answer."""
    answer = {summary: ident for ident, summary, _ in demo.stdlib_pairs(DOCUMENTS)}
    label.add_questions(store, corpus_id, list(answer)[:PEOPLE])
    while (question := label.current(store, corpus_id)) is not None:
        chunk = store.query("SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
                            "WHERE d.name = ? AND c.corpus_id = ? LIMIT 1",
                            [answer[question.text], corpus_id])[0]["id"]
        label.set_label(store, question.id, chunk, label.RELEVANT)
        label.decide(store, question.id, "labelled")
    return label.people_pair_set(store, corpus_id).id


def fine_tune(store: Store, pair_set_id: int, **settings) -> dict:
    """A fine-tuning job, queued as the page queues it and run here to its end."""
    job_id, _ = jobs.request(store, "train", {"pair_set_id": pair_set_id, **TINY, **settings})
    jobs.claim(store, job_id)
    Runner(store, give_up_seconds=10).run_one(jobs.get(store, job_id))
    job = jobs.get(store, job_id)
    assert job.state == "succeeded", job.error
    return {"id": f"j{job_id}", **job.result}


@pytest.fixture(scope="module")
def story(tmp_path_factory, count) -> tuple[Path, dict]:
    """The workspace after the path, built through core (the browser only reads it)."""
    home = tmp_path_factory.mktemp("story") / "ws"
    before = os.environ.get("RAGTUNE_HOME")
    os.environ["RAGTUNE_HOME"] = str(home)
    store = Store(home)
    try:
        timings = {}
        started = time.perf_counter()
        documents, _ = demo.documents(DOCUMENTS)
        corpus_id = ingest(store, CORPUS, documents, count, ChunkSettings()).corpus_id
        people = label_people(store, corpus_id)
        generated = generate_builtin(store, corpus_id, "generated questions")
        split(store, generated)
        timings["setup"] = time.perf_counter() - started
        # Documents only from the CLI, which judges on the people's questions unasked.
        assert main(["tune", "--corpus", CORPUS, "--budget-minutes", "0.2", "--json"]) == 0
        timings["documents only"] = time.perf_counter() - started - sum(timings.values())
        no_help = fine_tune(store, generated, learning_rate=1e-2)  # wrecks it: the base is kept
        helps = fine_tune(store, generated, learning_rate=2e-4, epochs=2)
        timings["fine-tunes"] = time.perf_counter() - started - sum(timings.values())
        print("story timings", json.dumps({k: round(v, 1) for k, v in timings.items()}))
        return home, {"corpus_id": corpus_id, "people": people, "generated": generated,
                      "no_help": no_help, "helps": helps}
    finally:
        if before is None:
            os.environ.pop("RAGTUNE_HOME", None)
        else:
            os.environ["RAGTUNE_HOME"] = before


def shot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main section, so the window is made as
    tall as that section's content first."""
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('section, div')]"
                           ".map(e => e.scrollHeight))")
    page.set_viewport_size({"width": 1400, "height": min(max(height, 1000), 6000)})
    wait_idle(page)
    page.screenshot(path=SHOTS / name, full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def numbers(text: str) -> list[str]:
    return re.findall(r"\d\.\d{3}", text)


def widget(page, kind: str, label_text: str):
    return page.get_by_test_id(kind).filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label_text, exact=True)).first


def selected(page, label_text: str) -> str:
    """The value a selectbox shows."""
    return widget(page, "stSelectbox", label_text).get_by_role("combobox").input_value()


def options(page, label_text: str) -> list[str]:
    """Every option a selectbox offers (its list opened, read, closed)."""
    box = widget(page, "stSelectbox", label_text)
    for attempt in range(3):  # a rerun of the page may close a list that just opened
        wait_idle(page)
        box.get_by_role("button", name="Open").click()
        try:
            page.get_by_role("option").first.wait_for(timeout=10_000)
            break
        except Exception:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    found = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return found


def chips(page, label_text: str) -> list[str]:
    """The options a multiselect shows as chosen, in order."""
    tags = widget(page, "stMultiSelect", label_text).locator("span[data-tag] > span[title]")
    tags.first.wait_for()
    return [t.get_attribute("title") for t in tags.all()]


def test_every_page_tells_the_comparison_that_matters(story, request, capsys, monkeypatch):
    home, made = story
    store = Store(home)
    assert made["no_help"]["kept"] == "base" and made["helps"]["kept"] != "base", made["helps"]
    tune_job = next(j for j in jobs.all_jobs(store) if j.kind == "tune")
    assert tune_job.result["judged_by"] == f"people's questions ({PEOPLE})"
    # The documents-only run measured the base on people's questions; nothing measured it twice.
    people_evaluations = load_evaluations(store, made["people"])
    assert [e.label for e in people_evaluations].count(BASELINE) == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(home) as url, browser_page() as page, \
            screenshot_on_failure(request.node, page):
        # -- Fine-tune: documents only starts on the people's questions ------------------------
        page.goto(url + "/finetune")
        page.get_by_text("Documents only: no questions needed").click(timeout=240_000)
        wait_idle(page)
        assert f"people's questions ({PEOPLE} test questions)" in selected(page, "Judge on people's questions")

        # -- Results: measure every model on the people's questions ----------------------------
        page.goto(url + "/results")
        wait_idle(page, 240_000)
        assert "people's questions" in selected(page, "Pair set")
        page.get_by_role("button", name=re.compile("Measure the base model and every")).click()
        page.get_by_text(re.compile(r"Measured \d+ model|already measured")).first.wait_for(
            timeout=300_000)
        wait_idle(page, 240_000)
        runs = list_runs(store)
        matters = comparison(store, made["corpus_id"], runs=runs)
        assert matters.pair_set_id == made["people"] and matters.base and matters.best
        kept_base = next(r for r in runs if r.id == made["no_help"]["id"])
        assert kept_base.kept_base and matters.best.id != kept_base.id
        # The folder holding the unchanged base was not measured again on people's questions.
        assert not any(e.model == kept_base.model_path for e in load_evaluations(store, made["people"]))
        best, base = matters.best, matters.base
        chosen = chips(page, "Evaluations to show")
        assert len(chosen) == 2 and f"#{base.evaluation_id} " in chosen[0] \
            and f"#{best.evaluation_id} " in chosen[1], chosen
        body = page.locator("body").inner_text()
        assert f"{best.name} compared with {BASELINE}" in body
        assert f"{kept_base.name} kept the base model unchanged" in body
        shot(page, "results.png")

        # -- Runs: the headline, the default chart and the wins-and-losses pair -----------------
        page.goto(url + "/runs")
        wait_idle(page, 240_000)
        body = page.locator("body").inner_text()
        headline = matters.headline()
        assert headline in body
        a, b = base.ndcg(), best.ndcg()
        full, small = max(a), min(a)
        assert numbers(headline) == [f"{a[full]:.3f}", f"{b[full]:.3f}", f"{a[small]:.3f}",
                                     f"{b[small]:.3f}"]
        overlay = chips(page, "Runs on the chart")
        assert len(overlay) == 2 and all("on people's questions" in c for c in overlay), overlay
        assert "different test sets" not in body
        assert selected(page, "compared with").startswith(base.id)
        assert selected(page, "Run").startswith(best.id)
        shot(page, "runs.png")
        # -- Export (on the Runs page): the best model, never the unchanged base
        export_default = matters.best_model_run(runs)
        shown = selected(page, "Fine-tuned model")
        assert export_default and shown.startswith(export_default.id), shown
        assert not shown.startswith(kept_base.id)
        listed = options(page, "Fine-tuned model")
        assert any(o.startswith(f"{kept_base.id} · {kept_base.name} {SAME_AS_BASE}")
                   for o in listed), listed
        page.get_by_text("Take the model with you").scroll_into_view_if_needed()
        page.screenshot(path=SHOTS / "export.png")

        # -- Search: the base on the left, the best on the right -------------------------------
        page.goto(url + "/search")
        wait_idle(page, 240_000)
        assert "people's questions" in selected(page, "Pair set")
        assert selected(page, "Left model").startswith(base.name)
        assert best.id in selected(page, "Right model")
        listed = options(page, "Right model")
        assert best.id in " ".join(listed) and not any(kept_base.id in o for o in listed), listed
        wait_idle(page, 240_000)
        shot(page, "search.png")

        # -- Home: the same headline ------------------------------------------------------------
        page.goto(url)
        wait_idle(page, 240_000)
        body = page.locator("body").inner_text()
        assert f"What the numbers say: {headline}" in body
        shot(page, "home.png")
    # The CLI tells the same comparison.
    capsys.readouterr()
    monkeypatch.setenv("RAGTUNE_HOME", str(home))
    assert main(["compare", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["a"], out["b"]) == (base.id, best.id)
    assert out["comparison"]["headline"] == headline
