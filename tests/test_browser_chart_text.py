"""A run named with HTML, in a real browser: plotly draws its name in the legend as the text it
is, at the legend's own size, never as a 60-px span."""
import pytest

from core.documents.beir import load_demo
from core.measuring.evaluate import RetrievalSet, evaluate_named, save
from core.workspace import models
from core.workspace.store import Store
from tests.browser import ROOT, browser_page, chromium_missing, running_app, wait_idle

pytestmark = pytest.mark.skipif(chromium_missing(), reason="needs Debian's chromium (apt-get install chromium)")
SHOTS = ROOT / "screenshots"
EVIL = '<span style="font-size:60px">big'

# Every legend entry's text and the largest font any part of it is drawn in, in CSS pixels.
LEGEND = """() => Array.from(document.querySelectorAll('.js-plotly-plot .legendtext')).map(t => ({
    text: t.textContent,
    px: Math.max(...[t, ...t.querySelectorAll('tspan')].map(e => parseFloat(getComputedStyle(e).fontSize))),
    height: t.getBBox().height}))"""


def test_a_run_named_with_html_is_drawn_as_text_in_the_legend(home):
    store = Store(home)
    _, pair_set_id = load_demo(store, models.token_counter(), limit=40)
    data = RetrievalSet.from_pair_set(store, pair_set_id)
    # Two lines, as plotly draws no legend for one: the Runs chart starts on the base model
    # against the best other run (core.deciding.compare.comparison).
    for name in (EVIL, "baseline"):
        save(store, evaluate_named(None, data, [384, 32], store=store), pair_set_id, name)
    with running_app(home) as url, browser_page() as page:
        page.goto(url + "/runs")
        page.wait_for_selector(".js-plotly-plot .legendtext", timeout=120_000)
        wait_idle(page)
        legend = page.evaluate(LEGEND)
        page.locator(".js-plotly-plot").first.screenshot(path=SHOTS / "chart-html-name.png")
    [entry] = [e for e in legend if "baseline" not in e["text"]]
    assert EVIL in entry["text"]  # shown as the characters it is
    assert entry["px"] < 20 and entry["height"] < 30, entry
