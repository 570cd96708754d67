import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.deciding.compare import (
    capped_metrics,
    ceiling_note,
    compare_evaluations,
    comparison,
    gains,
    headlines,
    per_query_ndcg,
    trust_note,
)
from core.measuring.evaluate import (
    METRICS,
    RetrievalSet,
    default_dims,
    evaluate_named,
    evaluation_label,
    load_evaluations,
    misses,
    save,
)
from core.training import curve as curves
from core.training import jobs, plan
from core.training.device import DeviceSetup
from core.using import label, runs
from core.workspace import models
from core.workspace.wording import plural, sentence
from views.common import (
    dims_axis,
    escape,
    explained,
    install_offers,
    model_info,
    pick_corpus,
    pick_pair_set,
    plot,
    scores_table,
    show_flash,
    runner,
    show_progress,
    store,
)

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
people = label.people_pair_set(workspace, corpus.id)
people_ready = label.ready_people_set(workspace, corpus.id) is not None
all_runs = runs.list_runs(workspace)
best_set = comparison(workspace, corpus.id, runs=all_runs).pair_set_id
# People's questions judge first, measured or not: unmeasured, the page offers to measure on them.
pair_set = pick_pair_set(pair_sets, people.id if people_ready else best_set)
matters = comparison(workspace, corpus.id, pair_set.id, all_runs)
if trust_note(pair_set):
    st.warning(escape(trust_note(pair_set)), icon=":material/warning:")
    if people_ready:
        st.info(f"This corpus has {label.test_questions(workspace, people.id)} labelled people's "
                f"questions: choose the pair set '{escape(people.name)}' to judge on them.")
    else:
        st.page_link("views/label.py", label=f"Label {plan.PEOPLE_TEST_MIN} or more people's "
                     "questions (Label page)",
                     icon=":material/checklist:")
if people is not None and pair_set.id == people.id:
    with explained():
        if st.button("Measure the base model and every fine-tuned model of this corpus on "
                     "these questions"):
            new = show_progress(lambda progress: label.judge_models(workspace, people.id, progress))
            st.session_state["flash"] = (f"Measured {plural(len(new), 'model')} on people's questions."
                                         if new else "Every model is already measured on them.")
            st.rerun()

with st.expander("Measure a model", expanded=not load_evaluations(workspace, pair_set.id)):
    typed_model = st.text_input("Model", value=models.DEFAULT_MODEL,
                                help="The bundled model, an installed one (all-mpnet-base-v2), a hub "
                                "ID (org/name, where the hub is reachable), the folder of a model "
                                f"fine-tuned here, or a folder under {models.DATA_ROOT_ENV}.")
    install_offers()
    with explained():
        model_name = models.browser_model(typed_model, workspace.home)
        info = model_info(model_name)
        dims = st.multiselect("Dimensions", sorted({*default_dims(info.dimension), 16}, reverse=True),
                              default=default_dims(info.dimension))
        if st.button("Measure baseline", type="primary", disabled=not dims):
            data = RetrievalSet.from_pair_set(workspace, pair_set.id)
            result = show_progress(lambda progress: evaluate_named(model_name, data, dims, workspace,
                                                                   progress))
            save(workspace, result, pair_set.id, evaluation_label(model_name))
            note = "; ".join(f"skipped {n} {why}" for why, n in result.skipped.items())
            st.session_state["flash"] = (f"Measured {result.queries} queries over {result.corpus} "
                                         f"passages in {result.seconds:.1f} s. {note}")
            st.rerun()


def questions_needed() -> None:
    """How many questions do we need? The learning curve of this pair set (core.training.curve):
    started here as a background job, drawn with its forecast once measured."""
    st.subheader("How many questions do we need?")
    st.caption("Fine-tunes a quarter, a half and all of this pair set's training questions under one "
               "time budget, scores each on the same test questions, and forecasts what more "
               "questions should add (gain = a + b·ln n, fitted per size).")
    measured = curves.latest(workspace, pair_set_id=pair_set.id)
    active = curves.running_job(workspace, pair_set.id)
    if active is not None:
        progress_of(active)
    else:
        why = curves.why_not(workspace, pair_set.id)
        if why:
            st.info(escape(sentence(why)) + ".", icon=":material/info:")
        else:
            left, right = st.columns([1, 2])
            budget = left.number_input("Budget for the whole curve (minutes)", min_value=1.0,
                                       max_value=600.0, step=1.0, value=plan.curve_budget_minutes(
                                           DeviceSetup.detect().device))
            right.write("")
            if right.button("Measure the learning curve" if measured is None else
                            "Measure it again", type="primary" if measured is None else "secondary"):
                with explained():
                    jobs.request(workspace, curves.KIND, {"pair_set_id": pair_set.id,
                                                          "budget_minutes": float(budget)})
                    runner().wake()
                    st.rerun()
    if measured is None:
        return
    outlook = measured.outlook()
    sizes = sorted(measured.dims, reverse=True)
    dim = st.selectbox("At size", sizes, index=sizes.index(outlook.dim), key="curve_dim",
                       format_func=lambda d: f"{d} dims")
    outlook = measured.outlook(dim)
    st.markdown(f"**{escape(outlook.sentence())}.**")
    base = measured.points[0].ndcg[dim]
    line = measured.forecast_line(dim)
    figure = go.Figure([
        go.Scatter(x=[e.questions for e in line] + [e.questions for e in reversed(line)],
                   y=[base + e.high for e in line] + [base + e.low for e in reversed(line)],
                   fill="toself", fillcolor="rgba(25,118,210,0.15)", line=dict(width=0),
                   name="forecast band (95%)", hoverinfo="skip"),
        go.Scatter(x=[e.questions for e in line], y=[base + e.gain for e in line], mode="lines",
                   line=dict(dash="dash", color="#1976d2"), name="forecast"),
        go.Scatter(x=[p.questions for p in measured.points], y=[p.ndcg[dim] for p in measured.points],
                   mode="markers+lines", marker=dict(size=9, color="#2e7d32"), name="measured",
                   error_y=dict(type="data", symmetric=False,
                                array=[p.differences[dim].ci95[1] - p.differences[dim].delta
                                       if p.questions else 0 for p in measured.points],
                                arrayminus=[p.differences[dim].delta - p.differences[dim].ci95[0]
                                            if p.questions else 0 for p in measured.points]))])
    figure.update_layout(height=360, margin=dict(t=20), legend=dict(orientation="h", y=-0.25),
                         xaxis_title="training questions", yaxis_title=f"NDCG@10 at {dim} dims")
    plot(figure, width="stretch", key="curve_chart")
    st.caption(escape(sentence(measured.budget_line())) + f"; {measured.test_questions} test "
               "questions; the bars are each point's 95% interval against the untrained model.")


@st.fragment(run_every="3s")
def progress_of(job_id: int) -> None:
    job = jobs.get(workspace, job_id)
    if job.state not in jobs.ACTIVE:
        st.rerun()
    st.progress(min(job.progress, 1.0), text=f"Learning curve, job {job_id}: **{job.state}** · "
                                             f"{escape(job.status)}")
    st.page_link("views/finetune.py", label="Follow or cancel it on the Fine-tune page",
                 icon=":material/model_training:")


show_flash()

evaluations = load_evaluations(workspace, pair_set.id)
if not evaluations:
    questions_needed()
    st.stop()

same_as_base = {r.evaluation_id for r in all_runs if r.kept_base}
names = {e.id: f"#{e.id} {e.label}{' ' + runs.SAME_AS_BASE if e.id in same_as_base else ''} · "
               f"{e.model} · {time.strftime('%b %d %H:%M', time.localtime(e.created))}"
         for e in evaluations}
by_id = {e.id: e for e in evaluations}
# The comparison that matters (core.deciding.compare.comparison): the base against the best other model
# measured on this very set, base first; a fine-tune that kept the base is never the default.
chosen_ids = st.multiselect("Evaluations to show", list(names), format_func=names.get,
                            default=[r.evaluation_id for r in matters.runs()])
chosen = [by_id[i] for i in chosen_ids]
if matters.same_as_base:
    st.caption(escape(", ".join(r.name for r in matters.same_as_base)) + " kept the base model "
               f"unchanged {escape(runs.SAME_AS_BASE)}: fine-tuning did not help there, so it is "
               "not compared as a model of its own.")
metric = st.selectbox("Metric", METRICS, index=0)

figure = go.Figure()
for e in chosen:
    dims_sorted = sorted(e.metrics)
    figure.add_trace(go.Scatter(x=[str(d) for d in dims_sorted],
                                y=[e.metrics[d][metric] for d in dims_sorted],
                                mode="lines+markers", name=names[e.id]))
figure.update_layout(xaxis=dims_axis([d for e in chosen for d in e.metrics]),
                     yaxis=dict(title=metric.upper(), range=[0, 1.02]), height=420, legend=dict(orientation="h", y=-0.25))
plot(figure, width="stretch")

GAIN, LOSS, NOISE = "#2e7d32", "#c62828", "#757575"


def colour(change: float, tested=None) -> str:
    """Green or red only for a change these questions can tell from noise: where a paired
    bootstrap was run (NDCG@10) and its interval holds zero, grey, as the verdict reads."""
    if tested is not None and not tested.significant:
        return NOISE
    return GAIN if change >= 0 else LOSS


if len(chosen) >= 2:
    reference, other = chosen[0], chosen[-1]
    tests = {}
    st.subheader(f"{escape(other.label)} compared with {escape(reference.label)}")
    for line in headlines(reference.metrics, other.metrics, metric, (reference.label, other.label),
                          (per_query_ndcg(reference), per_query_ndcg(other))):
        st.markdown(f"- {escape(line)}")
    for e in (reference, other):
        if metric in capped_metrics(pair_set, e.metrics):
            st.markdown(f"- {escape(sentence(e.label))}: {escape(ceiling_note(pair_set, e.metrics))}")
    with explained():
        tests = compare_evaluations(reference, other)
        st.markdown(f"**Is the NDCG@10 difference real?** Paired bootstrap over the "
                    f"{max(d.questions for d in tests.values())} test questions both measured: "
                    "the 95% interval of the difference; where it holds zero, these questions "
                    "cannot tell the two models apart.")
        spread = go.Figure(go.Scatter(
            x=[d.delta for d in tests.values()], y=[f"{dim} dims" for dim in tests],
            mode="markers", marker=dict(size=10, color=[colour(d.delta, d) for d in tests.values()]),
            error_x=dict(type="data", symmetric=False,
                         array=[d.ci95[1] - d.delta for d in tests.values()],
                         arrayminus=[d.delta - d.ci95[0] for d in tests.values()])))
        spread.add_vline(x=0, line_dash="dash", line_color="#9e9e9e")
        spread.update_layout(height=80 + 45 * len(tests), margin=dict(t=10, b=40),
                             xaxis_title=f"NDCG@10 of {other.label} minus {reference.label}",
                             yaxis=dict(autorange="reversed"))
        plot(spread, width="stretch")
        st.dataframe(pd.DataFrame([{
            "dims": dim, "difference": d.change(), "95% interval": d.interval(),
            "verdict": d.verdict(),
            "better on": d.wins, "worse on": d.losses, "tied on": d.ties}
            for dim, d in tests.items()]), hide_index=True, width="stretch")
    rows = gains(reference.metrics, other.metrics, metric)
    bars = go.Figure(go.Bar(x=[str(r["dim"]) for r in rows], y=[100 * r["relative"] for r in rows],
                            text=[f"{r['relative']:+.1%}" for r in rows], textposition="outside",
                            marker_color=[colour(r["change"], tests.get(r["dim"]) if metric == "ndcg@10"
                                                 else None) for r in rows]))
    bars.update_layout(height=300, xaxis=dims_axis([r["dim"] for r in rows]),
                       yaxis_title="relative change (%)", margin=dict(t=20))
    plot(bars, width="stretch")

for e in chosen:
    st.markdown(f"**{escape(names[e.id])}** — {e.details.get('queries')} queries, {e.details.get('corpus')} "
                f"passages, {e.seconds:.1f} s")
    table = pd.DataFrame(e.table())
    scores_table(table, METRICS)
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
st.caption(f"{escape(names[target.id])}: {wrong.summary()}.")
st.dataframe(wrong.rows, hide_index=True, width="stretch", height=320)

questions_needed()
