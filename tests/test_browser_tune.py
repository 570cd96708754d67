"""The documents-only run from the Fine-tune page, in a real browser, to its run in the list."""
import pytest

from tests.browser import ROOT, browser_page, chromium_missing, running_app, screenshot_on_failure, wait_idle

pytestmark = pytest.mark.skipif(chromium_missing(), reason="needs Debian's chromium (apt-get install chromium)")
SHOTS = ROOT / "screenshots"


def test_documents_only_run_from_the_page(home, count, request):
    from core.documents.beir import load_demo
    from core.workspace.store import Store
    SHOTS.mkdir(exist_ok=True)
    store = Store(home)
    load_demo(store, count, 80)
    with running_app(home) as url, browser_page() as page, \
            screenshot_on_failure(request.node, page):
        page.goto(url + "/finetune")
        page.get_by_text("Documents only: no questions needed").click(timeout=240_000)
        page.get_by_text("or more people's questions").first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Run documents only").click()
        page.get_by_text("succeeded ·").first.wait_for(timeout=600_000)
        wait_idle(page)
        page.get_by_text("Done: kept").wait_for(timeout=60_000)
        page.screenshot(path=SHOTS / "tune-done.png", full_page=True)
        body = page.locator("body").inner_text()
        assert "judged by neighbour agreement" in body and "generated questions cannot judge" in body
        assert "Hubness" in body and "with centring: passages" in body
        page.get_by_text("Hubness").scroll_into_view_if_needed()
        page.screenshot(path=SHOTS / "tune-candidates.png")
        page.goto(url + "/runs")
        page.get_by_text("rotated for").first.wait_for(timeout=60_000)
        wait_idle(page)
        page.screenshot(path=SHOTS / "tune-runs.png", full_page=True)
