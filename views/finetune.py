import json
import time

import plotly.graph_objects as go
import streamlit as st

from core.documents.pairs import is_generated
from core.measuring.evaluate import METRICS
from core.training import forgetting, jobs, tune
from core.training.config import LOSSES, TrainConfig
from core.training.curve import Curve
from core.training.device import DeviceSetup, precision
from core.training.plan import budget_defaults, planned_vs_actual
from core.training.rerun import config_file_name, distributed_commands
from core.training.train import NO_GAIN, plan_run
from core.training.validation import for_pair_set
from core.using import label, runs
from core.workspace import models, ranges
from core.workspace.wording import duration, sentence
from views.common import (escape, explained, install_offers, model_info, pick_corpus, pick_pair_set, plot, runner,
                          show_flash, store)

st.title("Fine-tune the embedding model")
show_flash()
workspace = store()


@st.cache_resource
def device() -> DeviceSetup:
    return DeviceSetup.detect()


setup = device()
st.caption(f"Device: **{setup.device}**" + (f" · {escape(setup.memory)}" if setup.memory else "")
           + f" · training in {precision(setup)}" + (" · tf32" if setup.tf32 else ""))

with st.expander("Documents only: no questions needed"):
    st.info(tune.DOCUMENTS_ONLY_NOTE, icon=":material/info:")
    st.markdown("Fits a rotation on the corpus's own passage vectors so the first dimensions keep more of what tells its passages apart, then keeps "
                "the candidate that best preserves the full-size rankings at smaller sizes. "
                f"With {tune.MIN_QUESTIONS}+ people's questions it also fine-tunes on generated "
                "pairs and lets those questions judge every candidate.")
    tune_corpus = pick_corpus(key="tune_corpus")
    people = [p for p in workspace.pair_sets(tune_corpus.id) if not is_generated(p)
              and workspace.split_counts(p.id).get("test", 0) >= tune.MIN_QUESTIONS]
    # Where people's questions can judge, they do by default (label.ready_people_set).
    ready = label.ready_people_set(workspace, tune_corpus.id)
    options = [None, *people]
    judge = st.selectbox("Judge on people's questions", options, key=f"tune_people_{tune_corpus.id}",
                         index=next((i for i, p in enumerate(options) if p and ready
                                     and p.id == ready.id), 0),
                         format_func=lambda p: "none: documents only" if p is None else
                         f"{p.name} ({workspace.test_question_count(p.id)} test questions)")
    if st.button("Run documents only", type="primary", key="tune_start"):
        with explained():
            config = {"corpus_id": tune_corpus.id, **({"questions": judge.id} if judge else {})}
            st.session_state["job_id"] = jobs.submit(workspace, "tune", config)
            runner().wake()
            st.rerun()

with st.expander("New fine-tuning job", expanded=not jobs.all_jobs(workspace)):
    corpus = pick_corpus()
    pair_sets = [p for p in workspace.pair_sets(corpus.id)
                 if {"train", "test"} <= set(workspace.split_counts(p.id))]
    if not pair_sets:
        st.info("Split a pair set of this corpus into train and test first (Pairs page).")
    else:
        pair_set = pick_pair_set(pair_sets)
        m1, m2 = st.columns([3, 1])
        typed_model = m1.text_input("Base model", value=models.DEFAULT_MODEL, key="ft_model",
                                    help="The bundled model, an installed one (all-mpnet-base-v2), a hub "
                                    "ID (org/name), the folder of a model fine-tuned here, or a folder under "
                                    f"{models.DATA_ROOT_ENV}.")
        budget = m2.number_input("Time budget (minutes)", 1.0, ranges.MAX_MINUTES, None, 1.0,
                                 placeholder="default", key="ft_budget", help="The default plan fits its epochs and "
                                 f"pairs into this much training time ({budget_defaults()}).")
        install_offers()
        with explained():  # a pair set that cannot spare validation pairs stops here, in one line
            held = for_pair_set(workspace, pair_set.id, is_generated(pair_set), TrainConfig().seed)
            pairs, n_train = held.train, len(held.train)
            st.caption(f"Validation: {len(held.validation):,} of the pair set's training pairs are "
                       "held out to pick the best epoch; the test queries are kept for Results.")
            model_name = models.browser_model(typed_model, workspace.home)
            info = model_info(model_name)
            default, plan = plan_run(TrainConfig(model=model_name, pair_set_id=pair_set.id,
                                                 budget_minutes=budget,
                                                 generated_pairs=is_generated(pair_set)),
                                     pairs, models.load(model_name), setup)
            st.markdown(f"**Default plan:** {plan.summary()}")
            st.caption(escape(sentence(plan.arithmetic())) + ". The run re-plans from the speed "
                       "it measures, so as to end within 15% of the budget.")
            with st.form("config"):
                c1, c2, c3, c4 = st.columns(4)
                epochs = c1.number_input("Epochs", 1, 50, default.epochs)
                batch = c2.number_input("Batch size", 2, 4096, default.batch_size)
                lr = c3.number_input("Learning rate", 1e-7, 1e-2, default.learning_rate, format="%.1e")
                warmup = c4.number_input("Warmup share", 0.0, 0.9, default.warmup, 0.05)
                c5, c6, c7, c8 = st.columns(4)
                seq = c5.number_input("Max sequence length", 16, info.max_seq_length,
                                      default.max_seq_length,
                                      help="Default: long enough for 95% of the training passages.")
                loss = c6.selectbox("Loss", LOSSES, LOSSES.index(default.loss),
                                    help="cached_mnrl: large batches in little memory (GradCache).")
                negatives = c7.number_input("Hard negatives per pair", 0, 5, default.hard_negatives)
                seed = c8.number_input("Seed", 0, ranges.MAX_SEED, default.seed)
                dims = st.multiselect("Matryoshka dimensions", sorted({*default.dims, 16}, reverse=True),
                                      default=default.dims)
                c9, c10, c11 = st.columns(3)
                best_metric = c9.selectbox("Keep the best epoch by", METRICS, METRICS.index(default.best_metric))
                dims_sorted = sorted(dims, reverse=True) or default.dims
                # The default run's choice where it was trained, else the smallest of these.
                best_dim = c10.selectbox("at dimension", dims_sorted,
                                         index=dims_sorted.index(default.best_dim)
                                         if default.best_dim in dims_sorted else len(dims_sorted) - 1)
                max_pairs = c11.number_input("Use at most N pairs", 2, max(2, n_train), default.max_pairs)
                start = st.form_submit_button("Start fine-tuning", type="primary")
            # Epochs and pairs left at the plan's values stay open, so the run re-plans them
            # from its measured speed to keep its time budget, as the CLI's default run does.
            config = TrainConfig(model=model_name, pair_set_id=pair_set.id, dims=dims_sorted,
                                 epochs=None if epochs == default.epochs else int(epochs),
                                 batch_size=int(batch), learning_rate=float(lr),
                                 warmup=float(warmup), max_seq_length=int(seq), seed=int(seed),
                                 loss=loss, hard_negatives=int(negatives),
                                 max_pairs=None if max_pairs == default.max_pairs else int(max_pairs),
                                 best_metric=best_metric,
                                 best_dim=int(best_dim), budget_minutes=budget,
                                 generated_pairs=is_generated(pair_set))
            _, chosen = plan_run(config, pairs, models.load(model_name), setup)
            st.caption(f"Your run: {chosen.summary()} of training (of {n_train:,} pairs) on "
                       f"{setup.device}, plus evaluation.")
            if start:
                job_id, new = jobs.request(workspace, "train", json.loads(config.to_json()))
                runner().wake()
                st.session_state["job_id"] = job_id
                if not new:  # a second click: show the job already asked for, not a twin
                    st.session_state["twin"] = job_id
                st.rerun()

if st.session_state.get("twin"):
    st.info(f"Job {st.session_state.pop('twin')} with these settings is already queued or "
            "running; it is shown below.", icon=":material/info:")

all_jobs = jobs.all_jobs(workspace)
if not all_jobs:
    st.stop()

JOB_KINDS = {"tune": "documents only", "curve": "learning curve"}  # named by kind, not by model
labels = {j.id: f"Job {j.id} · {j.state} · "
                f"{JOB_KINDS.get(j.kind) or j.config.get('model')} · "
                f"{time.strftime('%b %d %H:%M', time.localtime(j.created))}" for j in all_jobs}
active = next((j.id for j in all_jobs if j.state == "running"), all_jobs[0].id)
wanted = st.session_state.get("job_id", active)
job_ids = list(labels)
selected = st.selectbox("Job", job_ids, format_func=labels.get,
                        index=job_ids.index(wanted) if wanted in job_ids else 0)
st.session_state["job_id"] = selected


def smoothed(values: list[float], weight: float = 0.9) -> list[float]:
    """TensorBoard's debiased exponential moving average: each logged loss is one batch's, far
    noisier than the trend a person reads the chart for."""
    out, average = [], 0.0
    for n, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight ** n))
    return out


def counted_axis(title: str, last: float) -> dict:
    """An x-axis of steps or epochs: from 0, ticks on whole numbers only (about eight of them),
    since plotly's own ticks put a lone epoch-0 point between "-1" and "0.5"."""
    step = next((s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if last / s <= 8), 1000)
    return dict(title=title, range=[-0.05 * max(last, 1), max(last, 1) * 1.05], tick0=0, dtick=step)


def loss_chart(points: list[dict]) -> go.Figure:
    steps = [p for p in points if p["series"] == "loss"]
    xs, ys = [p["step"] for p in steps], [p["value"] for p in steps]
    # Markers while the points are few: a line through one point draws nothing (the chart was
    # axes only for a run cut to three steps).
    mode = "lines+markers" if len(xs) < 30 else "lines"
    figure = go.Figure([
        go.Scatter(x=xs, y=ys, mode=mode, name="each logged step", opacity=0.3,
                   line=dict(color="#1f77b4", width=1)),
        go.Scatter(x=xs, y=smoothed(ys), mode=mode, name="smoothed (EMA 0.9)",
                   line=dict(color="#1f77b4", width=3))])
    figure.update_layout(title="Training loss", height=300, margin=dict(t=40, b=30),
                         xaxis=counted_axis("step", max(xs, default=1)), yaxis_title="loss",
                         legend=dict(orientation="h", y=-0.3))
    return figure


def ndcg_chart(points: list[dict]) -> go.Figure:
    figure = go.Figure()
    names = sorted({p["series"] for p in points if p["series"].startswith("ndcg@10/")},
                   key=lambda s: -int(s.split("/")[1]))
    for name in names:
        mine = [p for p in points if p["series"] == name]
        figure.add_trace(go.Scatter(x=[p["epoch"] for p in mine], y=[p["value"] for p in mine],
                                    mode="lines+markers", name=name.split("/")[1] + " dims"))
    epochs = [p["epoch"] for p in points if p["series"].startswith("ndcg@10/")]
    figure.update_layout(title="NDCG@10 on the validation pairs (epoch 0: before training)",
                         height=300, margin=dict(t=40, b=30),
                         xaxis=counted_axis("epoch", max(epochs, default=1)),
                         yaxis_title="NDCG@10", legend=dict(orientation="h", y=-0.3))
    return figure


def alpha_chart(check: dict) -> go.Figure:
    """Validation and general-set scores of the merges with the base, against α."""
    series = forgetting.grid_series(check)
    figure = go.Figure([
        go.Scatter(x=series["alpha"], y=series["validation"], mode="lines+markers",
                   name=f"validation queries ({check['metric'].upper()})"),
        go.Scatter(x=series["alpha"], y=series["general"], mode="lines+markers",
                   name="general set (NDCG@10)")])
    figure.add_vline(x=check["kept_alpha"], line_dash="dot", annotation_text=f"kept α = {check['kept_alpha']:g}")
    figure.update_layout(title=f"Merged with the base: θ(α) = (1 − α)·base + α·fine-tuned, at {check['dim']} dims",
                         height=300, margin=dict(t=40, b=30),
                         xaxis=dict(title="α (0: the base model, 1: the fine-tuned one)", range=[-0.05, 1.05]),
                         yaxis_title="score", legend=dict(orientation="h", y=-0.3))
    return figure


@st.fragment(run_every="2s")
def live(job_id: int, state_at_render: str) -> None:
    job = jobs.get(workspace, job_id)
    if job.state != state_at_render:  # refresh the job list and selector too
        st.rerun()
    points = jobs.events(workspace, job_id, "point")
    steps = [p for p in points if p["series"] == "loss"]
    planned = [p["value"] for p in points if p["series"] == "steps_planned"]
    left = jobs.time_left(workspace, job)
    eta = f" · about {duration(left)} of training left" if left else ""
    epoch = f" · epoch {steps[-1]['epoch']:.2f}" if steps and steps[-1]["epoch"] else ""
    step = (f" · step {steps[-1]['step']}" + (f" of {planned[-1]:.0f}" if planned else "")
            if steps else "")
    place = jobs.queue_positions(workspace).get(job_id)
    where = f" · number {place} in the queue" if place else ""
    st.progress(min(job.progress, 1.0), text=f"**{job.state}**{where} · {escape(job.status)}"
                                             f"{step}{epoch} · {duration(job.elapsed)}"
                                             f"{' so far' * (job.state == 'running')}{eta}")
    if job.error:
        st.error(escape(job.error), icon=":material/error:")
    if job.state == "interrupted":
        st.warning("The server restarted while this job ran. Resume continues from its last "
                   "saved checkpoint.")
    b1, b2, _ = st.columns([1, 1, 3])
    if job.state in ("queued", "running") and b1.button("Cancel", key=f"cancel{job_id}",
                                                         disabled=job.cancel_requested):
        jobs.cancel(workspace, job_id)
        st.rerun(scope="fragment")
    if job.state in ("interrupted", "failed", "canceled") and b2.button("Resume", key=f"resume{job_id}"):
        with explained():
            jobs.resume(workspace, job_id)
            runner().wake()
            st.rerun(scope="fragment")
    left, right = st.columns(2)
    if steps:
        plot(loss_chart(points), left, width="stretch", key=f"loss{job_id}")
    if any(p["series"].startswith("ndcg") for p in points):
        plot(ndcg_chart(points), right, width="stretch", key=f"ndcg{job_id}")
    if job.state == "succeeded" and job.kind == "tune":
        result = job.result
        st.success(f"Done: kept **{escape(result['kept'])}** (judged by "
                   f"{escape(result['judged_by'])}). Model in {escape(result['model_path'])}.")
        st.table([{"candidate": c["name"],
                   **{f"{d}d": f"{c['scores'][str(d)]:.3f}" if str(d) in c["scores"] else "–"
                      for d in result["dims"]},
                   "kept": "✓" if c["name"] == result["kept"] else "",
                   "note": c["reason"] or "eligible"} for c in result["candidates"]])
        st.caption(" ".join(filter(None, [tune.score_note(result["judged_by"]),
                                          tune.hubness_line(result.get("hubness", {})),
                                          tune.DOCUMENTS_ONLY_NOTE])))
        st.page_link("views/runs.py", label="See it among the runs", icon=":material/monitoring:")
    if job.state == "succeeded" and job.result.get("finetuned"):
        if job.result.get("kept") == "base":
            st.warning(f"Done, but {NO_GAIN}: no epoch beat the base model on the validation pairs, "
                       f"so {escape(job.result['model_path'])} holds the base model. Try more or "
                       "better pairs.", icon=":material/info:")
        else:
            st.success(f"Done. The fine-tuned model is in {escape(job.result['model_path'])}.")
            headline = forgetting.outcome(job.result)
            if headline:
                st.markdown(f"**{escape(headline)}**")
            if job.result.get("rotation"):
                st.caption(escape(sentence(job.result["rotation"]["line"])) + " (the full size "
                           "is the same either way).")
            if job.result.get("general"):
                plot(alpha_chart(job.result["general"]), width="stretch", key=f"alpha{job_id}")
                st.caption(escape(" ".join(sentence(n) + "." for n in job.result["general"]["notes"]))
                           + f" Another α: `python -m core merge j{job_id} --alpha A`.")
        st.page_link("views/results.py", label="Compare baseline and fine-tuned", icon=":material/monitoring:")
    if job.result.get("plan") and job.result.get("seconds", {}).get("train"):
        st.caption(sentence(planned_vs_actual(job.result["plan"], job.result["seconds"]["train"])) + ".")
    log = jobs.events(workspace, job_id, "log", limit=12)
    st.code("\n".join(time.strftime("%H:%M:%S ", time.localtime(e["ts"])) + e["line"] for e in log)
            or "(no log yet)", language=None, wrap_lines=True)


job = next(j for j in all_jobs if j.id == selected)
live(selected, job.state)

if job.kind == "curve":
    if job.state == "succeeded":
        st.success(escape(Curve.from_json(job.result).outlook().sentence()) + ".")
    st.page_link("views/results.py", label="Its chart: Results, How many questions do we need?",
                 icon=":material/monitoring:")
    st.caption(f"The same curve from a shell: `python -m core curve --pair-set "
               f"{job.config['pair_set_id']}`")
    st.stop()

if job.kind == "tune":
    st.caption("The same run from a shell: "
               f"`python -m core tune --corpus {job.config['corpus_id']}"
               + (f" --questions {job.config['questions']}`" if job.config.get("questions") else "`"))
    st.stop()

with st.expander("Configuration, and the same run on several GPUs or machines"):
    config_json = json.dumps(job.config, indent=2)
    st.code(config_json, language="json")
    st.download_button("Download config (JSON)", config_json, config_file_name(job.id))
    st.markdown("Export the pairs (train split as JSONL) and the test set (BEIR folder), then run:")
    st.code(distributed_commands(job.id, job.config.get("pair_set_id")), language="bash")


@st.fragment(run_every="3s")
def jobs_table() -> None:
    """Every job as it stands now: read afresh each time, not from the page's first render (it
    showed "running · 0% · Starting" while the job was at step 3)."""
    st.dataframe([{"job": j.id, "state": j.state, "model": j.config.get("model"),
                   "pair set": j.config.get("pair_set_id"),
                   "settings": runs.job_settings(j),
                   "progress": f"{j.progress:.0%}", "time": duration(j.elapsed),
                   "message": j.error or j.status} for j in jobs.all_jobs(workspace)],
                 hide_index=True, width="stretch")


st.subheader("All jobs")
jobs_table()
