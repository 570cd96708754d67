import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import models
from core.compare import capped_metrics, ceiling_note, gains, headlines, trust_note
from core.evaluate import METRICS, RetrievalSet, default_dims, evaluate_named, load_evaluations, misses, save
from views.common import (dims_axis, escape, explained, model_info, pick_corpus, pick_pair_set,
                          show_flash, store)

st.title("Retrieval results")
st.caption("How well the embedding model finds the right passage for each test question, at "
           "every embedding size you might store.")
workspace = store()
corpus = pick_corpus()
pair_sets = [p for p in workspace.pair_sets(corpus.id) if workspace.split_counts(p.id).get("test")]
if not pair_sets:
    st.info("No pair set of this corpus has a test split yet: split one on the Pairs page.")
    st.page_link("views/pairs.py", label="Go to Pairs", icon=":material/quiz:")
    st.stop()
pair_set = pick_pair_set(pair_sets)
if trust_note(pair_set):
    st.warning(trust_note(pair_set), icon=":material/warning:")
    st.page_link("views/pairs.py", label="Import real test questions (Pairs page → Import your pairs)",
                 icon=":material/upload:")

with st.expander("Measure a model", expanded=not load_evaluations(workspace, pair_set.id)):
    typed_model = st.text_input("Model", value=models.DEFAULT_MODEL,
                                help="The bundled model, a hub ID (org/name, where the hub is "
                                "reachable), the folder of a model fine-tuned here, or a folder "
                                f"under {models.DATA_ROOT_ENV}.")
    with explained():
        model_name = models.browser_model(typed_model, workspace.home)
        info = model_info(model_name)
        dims = st.multiselect("Dimensions", sorted({*default_dims(info.dimension), 16}, reverse=True),
                              default=default_dims(info.dimension))
        if st.button("Measure baseline", type="primary", disabled=not dims):
            data = RetrievalSet.from_pair_set(workspace, pair_set.id)
            bar = st.progress(0.0, text="Starting…")
            result = evaluate_named(model_name, data, dims, workspace,
                                    lambda stage, f: bar.progress(min(f, 1.0), text=f"{stage.capitalize()}…"))
            label = "baseline" if model_name == models.DEFAULT_MODEL else model_name
            save(workspace, result, pair_set.id, label)
            note = "; ".join(f"skipped {n} {why}" for why, n in result.skipped.items())
            st.session_state["flash"] = (f"Measured {result.queries} queries over {result.corpus} "
                                         f"passages in {result.seconds:.1f} s. {note}")
            st.rerun()

show_flash()

evaluations = load_evaluations(workspace, pair_set.id)
if not evaluations:
    st.stop()

names = {e.id: f"#{e.id} {e.label} · {e.model} · {time.strftime('%b %d %H:%M', time.localtime(e.created))}"
         for e in evaluations}
chosen_ids = st.multiselect("Evaluations to show", list(names), format_func=names.get,
                            default=[e.id for e in evaluations][-2:])
chosen = [e for e in evaluations if e.id in chosen_ids]
metric = st.selectbox("Metric", METRICS, index=0)

figure = go.Figure()
for e in chosen:
    dims_sorted = sorted(e.metrics)
    figure.add_trace(go.Scatter(x=[str(d) for d in dims_sorted],
                                y=[e.metrics[d][metric] for d in dims_sorted],
                                mode="lines+markers", name=names[e.id]))
figure.update_layout(xaxis=dims_axis([d for e in chosen for d in e.metrics]),
                     yaxis=dict(title=metric.upper(), range=[0, 1.02]), height=420, legend=dict(orientation="h", y=-0.25))
st.plotly_chart(figure, width="stretch")

if len(chosen) >= 2:
    reference, other = chosen[0], chosen[-1]
    st.subheader(f"{escape(other.label)} compared with {escape(reference.label)}")
    for line in headlines(reference.metrics, other.metrics, metric, (reference.label, other.label)):
        st.markdown(f"- {escape(line)}")
    for e in (reference, other):
        if metric in capped_metrics(pair_set, e.metrics):
            st.markdown(f"- {escape(e.label.capitalize())}: {escape(ceiling_note(pair_set, e.metrics))}")
    rows = gains(reference.metrics, other.metrics, metric)
    bars = go.Figure(go.Bar(x=[str(r["dim"]) for r in rows], y=[100 * r["relative"] for r in rows],
                            text=[f"{r['relative']:+.1%}" for r in rows], textposition="outside",
                            marker_color=["#2e7d32" if r["change"] >= 0 else "#c62828" for r in rows]))
    bars.update_layout(height=300, xaxis=dims_axis([r["dim"] for r in rows]),
                       yaxis_title="relative change (%)", margin=dict(t=20))
    st.plotly_chart(bars, width="stretch")

for e in chosen:
    st.markdown(f"**{escape(names[e.id])}** — {e.details.get('queries')} queries, {e.details.get('corpus')} "
                f"passages, {e.seconds:.1f} s")
    table = pd.DataFrame(e.table())
    st.dataframe(table, hide_index=True, width="stretch")
    if ceiling := ceiling_note(pair_set, e.metrics):
        st.caption(escape(ceiling))
    st.download_button("Download as CSV", table.to_csv(index=False), f"evaluation-{e.id}.csv",
                       key=f"csv{e.id}")

st.page_link("views/decide.py", label="Back to the RAG-or-fine-tuning assessment: does this gain "
             "answer 'would fine-tuned embeddings help us?'", icon=":material/help:")

st.subheader("Where the model goes wrong")
target = chosen[-1] if chosen else evaluations[-1]
dim = st.selectbox("At dimension", sorted(target.metrics, reverse=True), key="miss_dim")
wrong = misses(workspace, target, dim)
st.caption(f"{len(wrong)} test queries shown whose first result is not a right passage "
           f"({escape(names[target.id])}).")
st.dataframe(wrong, hide_index=True, width="stretch", height=320)
