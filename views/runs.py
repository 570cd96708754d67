import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.deciding.compare import compare_evaluations, comparison
from core.measuring import storage
from core.measuring.evaluate import PREFERRED_DIM
from core.using import export, runs
from core.workspace import models
from core.workspace.disk import folder_bytes, human_bytes
from views.common import (
    current_corpus_id,
    dims_axis,
    escape,
    explained,
    plot,
    scores_table,
    show_flash,
    show_progress,
    store,
)

st.title("Runs")
st.caption("Every evaluation and fine-tuning run of the workspace. Sort by clicking a column; "
           "compare, export, rename or delete below.")
workspace = store()
show_flash()
all_runs = runs.list_runs(workspace)
if not all_runs:
    st.info("No runs yet: measure a baseline on the Results page or start a fine-tuning job.")
    st.page_link("views/results.py", label="Go to Results", icon=":material/monitoring:")
    st.stop()

f1, f2 = st.columns([2, 1])
needle = f1.text_input("Filter", placeholder="model, name, pair set…").strip().lower()
all_kinds = [*runs.MODEL_RUNS, "evaluation"]
kinds = f2.multiselect("Kind", all_kinds, default=all_kinds)
shown = [r for r in all_runs if r.kind in kinds
         and (not needle or needle in " ".join(map(str, r.row().values())).lower())]
table = pd.DataFrame([r.row() for r in shown])
# A fine-tune's general-set score and merge α beside its scores (core.training.forgetting).
scores_table(table, [c for c in table.columns if c.startswith("ndcg@10")] + ["general ndcg@10", "alpha"],
             lead=("id", "name"))
labels = {r.id: f"{r.id} · {r.shown_name} · {r.model} · on {r.pair_set}" for r in all_runs}
by_id = {r.id: r for r in all_runs}
measured = [r.id for r in shown if r.metrics]
matters = comparison(workspace, current_corpus_id(), runs=all_runs)
default_ids = [r.id for r in matters.runs() if r.id in measured]

# -- overlay ---------------------------------------------------------------------------------
st.subheader("NDCG@10 by embedding size")
st.markdown(escape(matters.headline()))
chosen = st.multiselect("Runs on the chart", measured, default=default_ids, format_func=labels.get)
if len({by_id[r].pair_set_id for r in chosen}) > 1:
    st.warning("These runs were measured on different test sets, so their lines are not "
               "comparable: the same model scores differently on other questions. Compare runs "
               "of one set.", icon=":material/warning:")
figure = go.Figure()
for run_id in chosen:
    scores = dict(sorted(by_id[run_id].ndcg().items()))
    figure.add_trace(go.Scatter(x=[str(d) for d in scores], y=list(scores.values()),
                                mode="lines+markers", name=labels[run_id]))
figure.update_layout(xaxis=dims_axis([d for r in chosen for d in by_id[r].metrics]),
                     yaxis=dict(title="NDCG@10", range=[0, 1.02]), height=380,
                     legend=dict(orientation="h", y=-0.3))
plot(figure, width="stretch")
selected = [by_id[r] for r in chosen] or [r for r in shown if r.metrics]
d1, d2 = st.columns(2)
d1.download_button("Results as CSV", export.results_csv(selected), "ragtune-results.csv")
d2.download_button("Results as JSON", export.results_json(selected), "ragtune-results.json")

# -- wins and losses -------------------------------------------------------------------------
if len(measured) >= 2:
    st.subheader("Per-question wins and losses")
    w1, w2, w3 = st.columns([2, 2, 1])
    pair = default_ids if len(default_ids) == 2 else measured[1::-1]
    b = by_id[w1.selectbox("Run", measured, index=measured.index(pair[1]),
                           format_func=labels.get, key="wl_b")]
    a = by_id[w2.selectbox("compared with", measured, index=measured.index(pair[0]),
                           format_func=labels.get, key="wl_a")]
    common = [d for d in sorted(a.metrics, reverse=True) if d in b.metrics]
    if common:
        dim = w3.selectbox("At dimension", common, key="wl_dim")
        with explained():
            changes = runs.wins_and_losses(workspace, a, b, dim)
            st.markdown(escape(runs.outcome_sentence(changes, f"{a.id} ({a.name})",
                                                     f"{b.id} ({b.name})")))
            tested = compare_evaluations(runs.evaluation_of(workspace, a),
                                         runs.evaluation_of(workspace, b)).get(dim)
            if tested:
                st.markdown(f"NDCG@10 of {b.id} minus {a.id} at {dim} dims: {escape(tested.summary())} "
                            "(paired bootstrap over the questions).")
            st.caption("Rank of the right passage under each run; 0 = not in the top 100. "
                       "Biggest moves first.")
            st.dataframe(pd.DataFrame([{"question": c.query, f"rank in {a.id}": c.rank_a,
                                        f"rank in {b.id}": c.rank_b,
                                        f"{b.id} is": {"win": "better", "loss": "worse",
                                                       "tie": "same"}[c.outcome]}
                                       for c in changes]),
                         hide_index=True, width="stretch", height=300)

# -- storage ---------------------------------------------------------------------------------
st.subheader("How small can the index be?")
st.caption("Index size at each dimension and precision for the number of passages you plan "
           "for, next to the NDCG@10 the quantised vectors really score on the test questions.")
with_model = [r.id for r in all_runs if r.metrics and r.pair_set_id and (r.kind == "evaluation" or r.model_path)]
if with_model:
    s1, s2 = st.columns([3, 1])
    first = matters.best.id if matters.best and matters.best.id in with_model else with_model[0]
    target = by_id[s1.selectbox("Model of run", with_model, format_func=labels.get, key="storage_run",
                                index=with_model.index(first))]
    n = s2.number_input("Passages to plan for", 1, 10_000_000_000, 1_000_000, step=100_000)
    key = f"storage:{target.id}"
    if st.button("Measure storage options"):
        with explained():
            st.session_state[key] = show_progress(lambda progress: storage.measure(
                workspace, target.pair_set_id, target.model_path or target.model,
                sorted(target.metrics, reverse=True), passages=int(n), progress=progress),
                "Loading the model…")
    if key in st.session_state:
        table = st.session_state[key]
        st.success(table.headline())
        st.dataframe(pd.DataFrame([o.row() for o in table.options]), hide_index=True, width="stretch")
        st.caption(table.caption())
        for note in table.notes():
            st.caption(note)

# -- export ----------------------------------------------------------------------------------
st.subheader("Take the model with you")
finished = [r.id for r in all_runs if r.kind in runs.MODEL_RUNS and r.model_path]
if not finished:
    st.info("Export needs a finished fine-tuning run.")
else:
    e1, e2 = st.columns([3, 1])
    best = matters.best_model_run(all_runs)
    finished.sort(key=lambda r: by_id[r].kept_base)  # "= base" last: it is the base model
    run = by_id[e1.selectbox("Fine-tuned model", finished, format_func=labels.get, key="export_run",
                             index=finished.index(best.id) if best and best.id in finished else 0)]
    dims = sorted(run.metrics, reverse=True) or [384]
    dim = e2.selectbox("Dimensions to use", dims, key="export_dim",
                       index=dims.index(PREFERRED_DIM) if PREFERRED_DIM in dims else 0)
    if st.button("Prepare the model zip"):
        with explained(), st.spinner(f"Zipping the model "
                                     f"({human_bytes(folder_bytes(Path(run.model_path)))})…"):
            st.session_state["model_zip"] = export.model_zip_bytes(workspace, run.id)
    if st.session_state.get("model_zip", ("",))[0] == f"{export.zip_name(run)}.zip":
        name, data = st.session_state["model_zip"]
        st.download_button(f"Download {name} ({human_bytes(len(data))})", data, name,
                           mime="application/zip")
    st.caption("Unzip it and point the code below at the folder (here: where it lives now).")
    with explained():  # a model folder that lost its weights: one line instead of the code
        with st.spinner(f"Loading the model of run {escape(run.id)} for its prompts…"):
            loaded = models.load(run.model_path)  # seconds the first time, then cached
        for snippet in export.snippets(run.model_path, dim, models.role_prompt(loaded, "query"),
                                       models.role_prompt(loaded, "document")):
            st.markdown(f"**{snippet.library}** · `{snippet.install}`")
            st.code(snippet.code, language="python")
    with st.expander("Push to the Hugging Face Hub"):
        repo = st.text_input("Repository", placeholder="your-name/my-finetuned-embeddings")
        token = st.text_input("Write token (used for this upload only, never stored)", type="password")
        private = st.checkbox("Private repository", value=True)
        if st.button("Push", disabled=not (repo and token)):
            with explained(), st.spinner("Uploading…"):
                url = export.push_to_hub(workspace, run.id, repo, token, private)
                st.success(f"Pushed to {escape(url)}")

# -- manage ----------------------------------------------------------------------------------
st.subheader("Rename or delete")
kind = st.radio("What", ["Run", "Pair set", "Corpus"], horizontal=True)
if kind == "Run":
    options = {r.id: labels[r.id] for r in all_runs}
elif kind == "Pair set":
    options = {p.id: f"{p.name} (id {p.id})" for p in workspace.pair_sets()}
else:
    options = {c.id: f"{c.name} (id {c.id})" for c in workspace.corpora()}
if options:
    item = st.selectbox("Which", list(options), format_func=options.get, key=f"manage_{kind}")
    m1, m2 = st.columns(2)
    with m1:
        new_name = st.text_input("New name", key=f"rename_{kind}_{item}")
        if st.button("Rename", disabled=not new_name.strip()):
            with explained():
                runs.rename(workspace, kind.lower(), item, new_name)
                st.session_state["flash"] = f"Renamed to {escape(new_name.strip())}."
                st.rerun()
    with m2, explained():
        plan = runs.plan_delete(workspace, kind.lower(), item)
        refused = runs.why_not_delete(workspace, kind.lower(), item)
        if refused:
            st.error(f"Cannot be deleted now: {escape(refused)}.", icon=":material/block:")
        else:
            st.markdown(f"Deleting removes: {escape(plan.summary())}.")
        sure = st.checkbox("Yes, delete it for good", key=f"sure_{kind}_{item}",
                           disabled=bool(refused))
        if st.button("Delete", type="primary", disabled=not sure or bool(refused)):
            done = runs.delete(workspace, kind.lower(), item)
            st.session_state["flash"] = f"Deleted {escape(done.summary())} at {time.strftime('%H:%M')}."
            st.rerun()
