"""Plotly renders a subset of HTML in titles, legends, tick labels and hover text: a model folder
named ``<span style="font-size:60px">`` drew its legend 60 px high. Every chart a page draws goes
through views.common.plot, which shows every string of the figure as itself."""
import html
import json

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from core.documents.beir import load_demo
from core.measuring.evaluate import RetrievalSet, evaluate_named, save
from tests.conftest import ROOT
from views.common import _CODE_KEYS, plain_text

APP = str(ROOT / "app.py")
EVIL = '<span style="font-size:60px">big</span> & <b>bold'


def strings(value, key: str = ""):
    """Every string in a figure's JSON that plotly draws as text (the templates are code's)."""
    if key.endswith(_CODE_KEYS):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def test_every_page_draws_its_charts_through_the_one_helper():
    pages = [p for p in (ROOT / "views").glob("*.py") if p.name != "common.py"]
    assert len(pages) >= 9
    assert not [p.name for p in pages if "plotly_chart(" in p.read_text(encoding="utf-8")]


def test_plain_text_escapes_every_drawn_string_and_keeps_the_code_templates():
    figure = go.Figure(go.Bar(x=[EVIL, "b"], y=[1, 2], name=EVIL, text=[EVIL, "t"],
                              hovertemplate="%{x}<br>%{y}<extra></extra>"))
    figure.update_layout(title=EVIL, xaxis_title=EVIL, legend_title_text=EVIL)
    figure.add_annotation(text=EVIL, x=0, y=0)
    spec = plain_text(figure.to_plotly_json())
    drawn = list(strings(spec))
    assert drawn.count(html.escape(EVIL, quote=False)) == 7 and not [s for s in drawn if "<" in s]
    assert spec["data"][0]["hovertemplate"] == "%{x}<br>%{y}<extra></extra>"
    go.Figure(spec)  # still a valid figure


@pytest.fixture
def evil_names(store, count):
    """Two evaluations whose model and label are HTML, as a model folder's name can be."""
    _, pair_set_id = load_demo(store, count, limit=40)
    data = RetrievalSet.from_pair_set(store, pair_set_id)
    for _ in range(2):
        save(store, evaluate_named(None, data, [384, 32], store=store), pair_set_id, EVIL)
    store.db.execute("UPDATE evaluations SET model = ?", (EVIL,))
    return store


@pytest.mark.parametrize("path", ["views/results.py", "views/runs.py"])
def test_pages_draw_names_in_charts_as_text(evil_names, path):
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    drawn = [s for spec in specs for s in strings(spec)]
    assert any(html.escape(EVIL, quote=False) in s for s in drawn)  # the names are in the charts
    assert not [s for s in drawn if "<span" in s or "<b>" in s]
