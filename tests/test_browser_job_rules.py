"""The job rules as a person meets them in the browser: a delete refused because a job uses what
it would remove, and a read-only workspace; both one readable message, screenshotted to
screenshots/job-rules/ to be looked at."""
import pytest

from core.documents.beir import load_demo
from core.training import jobs
from core.workspace.store import Store
from tests.browser import ROOT, browser_page, chromium_missing, running_app, screenshot_on_failure, wait_idle
from tests.test_job_rules import read_only

pytestmark = pytest.mark.skipif(chromium_missing(), reason="needs Debian's chromium (apt-get install chromium)")
SHOTS = ROOT / "screenshots" / "job-rules"


def test_a_delete_refused_because_a_job_trains_on_it(home, count, request):
    store = Store(home)
    _, pair_set_id = load_demo(store, count, limit=40)
    job_id = jobs.submit(store, "train", {"pair_set_id": pair_set_id, "epochs": 1, "batch_size": 8})
    jobs.claim(store, job_id)  # running, owned by this process: the server's runner leaves it
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_app(home) as url, browser_page() as page, screenshot_on_failure(request.node, page):
        page.goto(url + "/pairs")
        page.get_by_role("button", name="Delete this pair set").click()
        refusal = page.get_by_text(f"job {job_id} is running and it trains on this pair set")
        refusal.wait_for(timeout=60_000)
        wait_idle(page)
        assert page.get_by_role("button", name="Yes, delete it").count() == 0
        refusal.scroll_into_view_if_needed()
        page.screenshot(path=SHOTS / "pairs-delete-refused.png", full_page=True)
    assert store.pair_set(pair_set_id)
    jobs.interrupt(store, job_id)


def test_a_read_only_workspace_is_one_message(home, request):
    Store(home)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with read_only(home), running_app(home) as url, browser_page() as page, \
            screenshot_on_failure(request.node, page):
        for path in ("", "/corpus", "/finetune"):
            page.goto(url + path)
            page.get_by_text("is read-only").wait_for(timeout=60_000)
            wait_idle(page)
            assert page.get_by_text("Traceback").count() == 0
        page.screenshot(path=SHOTS / "read-only-workspace.png", full_page=True)
        # The sidebar still leads to every page, and the questionnaire works without a workspace.
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Decide").click()
        page.get_by_text("Does the task need knowledge the model does not have?").wait_for(
            timeout=60_000)
        assert page.get_by_text("is read-only").count() == 1
