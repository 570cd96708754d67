"""The user flow of a first visit, in a real browser: demo corpus, upload, pairs, split."""
import pytest

from tests.browser import ROOT, browser_page, chromium_missing, running_app, screenshot_on_failure, wait_idle
from tests.conftest import PARAGRAPHS, pdf_bytes

pytestmark = pytest.mark.skipif(chromium_missing(), reason="needs Debian's chromium (apt-get install chromium)")
SHOTS = ROOT / "screenshots"


def test_first_visit_demo_upload_pairs_split(home, tmp_path, request):
    SHOTS.mkdir(exist_ok=True)
    md = tmp_path / "plants.md"
    md.write_text("# Plants\n\n" + "\n\n".join(PARAGRAPHS))
    pdf = tmp_path / "roots.pdf"
    pdf.write_bytes(pdf_bytes(["Roots anchor the plant and take up water and minerals. "
                               "Root hairs widen the surface for absorption."]))
    with running_app(home) as url, browser_page() as page, \
            screenshot_on_failure(request.node, page):
        page.goto(url)
        page.get_by_role("button", name="Load the demo corpus").click()
        page.get_by_text("Loaded the demo corpus").wait_for(timeout=60_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "home.png", full_page=True)

        page.goto(url + "/corpus")
        page.get_by_label("Name of the new corpus").fill("plants")
        page.get_by_label("Name of the new corpus").press("Enter")
        wait_idle(page)
        page.locator("input[type=file]").first.set_input_files([str(md), str(pdf)])
        page.get_by_text("Preview").wait_for(timeout=60_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "corpus-preview.png", full_page=True)
        page.get_by_role("button", name="Add 2 documents to 'plants'").click()
        page.get_by_text("Added to 'plants'").wait_for(timeout=60_000)

        page.goto(url + "/pairs")
        page.get_by_role("tab", name="Built-in (no LLM)").click()
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("Generated").wait_for(timeout=60_000)
        page.get_by_role("button", name="Split train/test").click()
        page.get_by_text("No passage or query is on both sides").wait_for(timeout=60_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "pairs.png", full_page=True)
        assert page.get_by_role("button", name="Train (JSONL)").is_visible()

        page.goto(url + "/results")
        page.get_by_label("Corpus").first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Measure baseline").click()
        page.get_by_text("Measured").wait_for(timeout=120_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "results.png", full_page=True)

        bad = tmp_path / "photo.txt"
        bad.write_bytes(b"\x00\x01\x02binary")
        page.goto(url + "/corpus")
        page.locator("input[type=file]").first.set_input_files([str(bad)])
        page.get_by_text("looks like a binary file").wait_for(timeout=60_000)
        page.screenshot(path=SHOTS / "corpus-bad-file.png", full_page=True)


def set_number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Tab")


def test_finetune_refresh_cancel_finish_and_compare(home, count, request):
    from core.documents.beir import load_demo
    from core.workspace.store import Store
    SHOTS.mkdir(exist_ok=True)
    load_demo(Store(home), count)
    with running_app(home) as url, browser_page() as page, \
            screenshot_on_failure(request.node, page):
        page.goto(url + "/finetune")  # a deep link as the server's very first request
        page.get_by_text("Device:").wait_for(timeout=60_000)
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Fine-tune" in nav and "common" not in nav
        set_number(page, "Epochs", 1)
        set_number(page, "Max sequence length", 64)
        set_number(page, "Use at most N pairs", 320)
        page.get_by_role("button", name="Start fine-tuning").click()
        page.get_by_text("running ·").first.wait_for(timeout=120_000)
        page.get_by_text("step ").first.wait_for(timeout=120_000)
        page.reload()  # the job lives in the workspace, not in the browser session
        page.get_by_text("running ·").first.wait_for(timeout=60_000)
        page.screenshot(path=SHOTS / "finetune-running.png", full_page=True)
        page.get_by_role("button", name="Cancel").click()
        page.get_by_text("canceled ·").first.wait_for(timeout=120_000)

        page.get_by_text("New fine-tuning job").click()
        set_number(page, "Epochs", 2)
        set_number(page, "Max sequence length", 64)
        set_number(page, "Use at most N pairs", 96)
        page.get_by_role("button", name="Start fine-tuning").click()
        page.get_by_text("succeeded ·").first.wait_for(timeout=600_000)
        wait_idle(page)
        page.get_by_text("Training took").wait_for(timeout=30_000)  # planned vs actual
        page.screenshot(path=SHOTS / "finetune-done.png", full_page=True)
        page.get_by_role("link", name="Compare baseline and fine-tuned").click()
        page.get_by_text("compared with baseline").wait_for(timeout=60_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "results-compare.png", full_page=True)


def test_decide_walkthrough_share_link_and_report(home, tmp_path, request):
    SHOTS.mkdir(exist_ok=True)
    answers = {"1. Does the task need knowledge the model does not have?": "Yes, a large or private collection of documents",
               "2. How often does that knowledge change?": "Weekly or monthly",
               "9. Does retrieval miss documents because of domain terms or jargon?": "Yes, we have seen it on an evaluation set"}
    with running_app(home) as url, browser_page() as page, \
            screenshot_on_failure(request.node, page):
        page.goto(url + "/decide")
        page.get_by_text("Answer at least 3 questions for a recommendation").wait_for(timeout=60_000)
        for question, answer in answers.items():
            page.get_by_role("radiogroup", name=question).get_by_text(answer, exact=True).click()
            wait_idle(page)
        page.get_by_text("RAG + fine-tuned embeddings").first.wait_for(timeout=30_000)
        assert "knowledge=large" in page.url and "jargon=yes" in page.url
        page.screenshot(path=SHOTS / "decide.png", full_page=True)
        with page.expect_download() as download:
            page.get_by_role("button", name="Report (HTML, printable)").click()
        report = tmp_path / "report.html"
        download.value.save_as(report)
        shared = page.url
        page.goto("about:blank")
        page.goto(shared)  # a new visit through the shared link
        page.get_by_text("RAG + fine-tuned embeddings").first.wait_for(timeout=60_000)
        page.get_by_role("link", name="Measure it on your documents").click()
        page.get_by_text("Add documents to").wait_for(timeout=60_000)
        page.goto(report.as_uri())
        assert "RAG + fine-tuned embeddings" in page.content()
        page.screenshot(path=SHOTS / "decide-report.png", full_page=True)
