"""Faults and concurrency on real servers, in a real browser: a server killed mid-training whose
job resumes from the page, two sessions starting jobs at once, and a second server and the CLI
on the same workspace, none of which marks another's live job interrupted or runs it twice."""
import json
import os
import subprocess
import sys

import pytest

from core.documents.beir import load_demo
from core.training import jobs
from core.workspace.store import Store
from tests.browser import (
    ROOT,
    app_server,
    browser_page,
    chromium_missing,
    running_app,
    screenshot_on_failure,
    wait_idle,
)
from tests.conftest import wait_until
from tests.test_browser import set_number

pytestmark = pytest.mark.skipif(chromium_missing(), reason="needs Debian's chromium (apt-get install chromium)")




def start_job(page, url: str, epochs: int, max_pairs: int) -> None:
    """Fill the Fine-tune page's form with a tiny run, leaving the click to the caller."""
    page.goto(url + "/finetune")
    first_field = page.get_by_label("Epochs", exact=True)
    first_field.wait_for(state="attached", timeout=60_000)
    wait_idle(page)
    if not first_field.is_visible():  # the form is folded away once there are jobs
        page.get_by_text("New fine-tuning job").click()
    set_number(page, "Epochs", epochs)
    set_number(page, "Batch size", 8)
    set_number(page, "Max sequence length", 32)
    set_number(page, "Use at most N pairs", max_pairs)
    wait_idle(page)


def states(store: Store) -> list[str]:
    return sorted(j.state for j in jobs.all_jobs(store))


def log_lines(store: Store, job_id: int, prefix: str) -> list[str]:
    return [e["line"] for e in jobs.events(store, job_id, "log") if e["line"].startswith(prefix)]


@pytest.fixture
def demo_home(home, count):
    load_demo(Store(home), count, limit=60)
    return home


@pytest.fixture
def page():
    with browser_page() as page:
        yield page


def test_a_killed_server_leaves_an_interrupted_job_that_resumes_from_its_checkpoint(demo_home, page,
                                                                                   request):
    store = Store(demo_home)
    checkpoints = jobs.job_dir(store, 1) / "checkpoints"
    with app_server(demo_home) as (server, url), screenshot_on_failure(request.node, page):
        start_job(page, url, epochs=2, max_pairs=48)
        page.get_by_role("button", name="Start fine-tuning").click()
        wait_until(lambda: any(checkpoints.glob("checkpoint-*/trainer_state.json")), 300,
                   "the first epoch's checkpoint")
        server.kill()  # SIGKILL: no shutdown code runs
        server.wait(10)
    assert jobs.get(store, 1).state == "running"  # as the dead server left it
    assert len(log_lines(store, 1, "epoch ")) == 1
    with running_app(demo_home) as url, screenshot_on_failure(request.node, page):
        page.goto(url + "/finetune")
        page.get_by_text("interrupted ·").first.wait_for(timeout=60_000)
        page.get_by_text("Resume continues from its last saved checkpoint").wait_for()
        page.get_by_role("button", name="Resume").click()
        page.get_by_text("succeeded ·").first.wait_for(timeout=300_000)
        page.get_by_role("link", name="Compare baseline and fine-tuned").wait_for()
        wait_idle(page)
    job = jobs.get(store, 1)
    assert job.state == "succeeded" and job.resume
    # Epoch 1 was trained once, before the kill; the resumed run trained epoch 2 only.
    assert [line.split(":")[0] for line in log_lines(store, 1, "epoch ")] == ["epoch 1.00", "epoch 2.00"]
    assert len(log_lines(store, 1, "Training:")) == 2  # one start per process
    kept = json.loads((jobs.job_dir(store, 1) / "model" / "ragtune.json").read_text())
    assert [h["epoch"] for h in kept["history"]] == [1.0, 2.0]  # the earlier epoch is not forgotten
    assert job.result["finetuned"] and not any(checkpoints.glob("checkpoint-*"))


def test_two_sessions_a_second_server_and_the_cli_share_one_workspace(demo_home, page, request):
    store = Store(demo_home)
    env = {**os.environ, "RAGTUNE_HOME": str(demo_home)}
    first = page
    with app_server(demo_home) as (server, url), screenshot_on_failure(request.node, first):
        second = first.context.browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        start_job(first, url, epochs=1, max_pairs=24)
        start_job(second, url, epochs=1, max_pairs=20)  # the same settings would be one job
        first.get_by_role("button", name="Start fine-tuning").click()
        second.get_by_role("button", name="Start fine-tuning").click()
        wait_until(lambda: len(jobs.all_jobs(store)) == 2, 60, "both jobs")
        wait_until(lambda: "running" in states(store), 60, "a job to start")
        assert states(store) == ["queued", "running"]  # one runs, the other waits its turn

        # The CLI runs a job of its own meanwhile, and a second server starts on the workspace:
        # its first page checks for interrupted jobs while the other two processes train.
        cli = subprocess.Popen([sys.executable, "-m", "core", "finetune", "--pairs", "1",
                                "--epochs", "1", "--max-pairs", "16", "--batch-size", "8",
                                "--max-seq-length", "32", "--json"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with running_app(demo_home) as other:
            wait_until(lambda: len(jobs.all_jobs(store)) == 3 and jobs.get(store, 3).state == "running",
                       120, "the CLI's job")
            running = {j.id for j in jobs.all_jobs(store) if j.state == "running"}
            first.goto(other + "/finetune")
            first.get_by_text("Device:").wait_for(timeout=60_000)
            now = [jobs.get(store, i).state for i in running]
            assert "running" in now and "interrupted" not in now, now
            out, err = cli.communicate(timeout=300)
            assert cli.returncode == 0, err[-2000:]
            assert json.loads(out.strip().splitlines()[-1])["state"] == "succeeded"
            done = wait_until(lambda: all(j.state in jobs.FINISHED for j in jobs.all_jobs(store))
                              and jobs.all_jobs(store), 300, "every job to finish")
        assert [j.state for j in done] == ["succeeded"] * 3, [(j.id, j.error) for j in done]
        for job in done:  # each ran once, in one process
            assert len(log_lines(store, job.id, "Training:")) == 1, job.id
        assert server.poll() is None
