import json
import time

import plotly.graph_objects as go
import streamlit as st

from core import jobs, models
from core.cli import distributed_commands, job_config_file
from core.evaluate import METRICS
from core.pairs import is_generated
from core.plan import budget_defaults, planned_vs_actual
from core.train import LOSSES, NO_GAIN, DeviceSetup, TrainConfig, plan_run
from views.common import escape, explained, model_info, pick_corpus, pick_pair_set, runner, store

st.title("Fine-tune the embedding model")
workspace = store()


@st.cache_resource
def device() -> DeviceSetup:
    return DeviceSetup.detect()


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s" if seconds >= 60 else f"{seconds:.0f} s"


setup = device()
st.caption(f"Device: **{setup.device}**" + (f" · {escape(setup.memory)}" if setup.memory else "")
           + (" · bf16" if setup.bf16 else "") + (" · tf32" if setup.tf32 else ""))

with st.expander("New fine-tuning job", expanded=not jobs.all_jobs(workspace)):
    corpus = pick_corpus()
    pair_sets = [p for p in workspace.pair_sets(corpus.id)
                 if {"train", "test"} <= set(workspace.split_counts(p.id))]
    if not pair_sets:
        st.info("Split a pair set of this corpus into train and test first (Pairs page).")
    else:
        pair_set = pick_pair_set(pair_sets)
        pairs = [(p["query"], p["positive"]) for p in workspace.pairs(pair_set.id, "train")]
        n_train = len(pairs)
        m1, m2 = st.columns([3, 1])
        typed_model = m1.text_input("Base model", value=models.DEFAULT_MODEL, key="ft_model",
                                    help="The bundled model, a hub ID (org/name), the folder of "
                                    "a model fine-tuned here, or a folder under "
                                    f"{models.DATA_ROOT_ENV}.")
        budget = m2.number_input("Time budget (minutes)", 1.0, 24 * 60.0, None, 1.0,
                                 placeholder="default", key="ft_budget", help="The default plan fits its epochs and "
                                 f"pairs into this much training time ({budget_defaults()}).")
        with explained():
            model_name = models.browser_model(typed_model, workspace.home)
            info = model_info(model_name)
            default, plan = plan_run(TrainConfig(model=model_name, pair_set_id=pair_set.id,
                                                 budget_minutes=budget,
                                                 generated_pairs=is_generated(pair_set)),
                                     pairs, models.load(model_name), setup)
            st.markdown(f"**Default plan:** {plan.summary()}")
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
                seed = c8.number_input("Seed", 0, 100_000, default.seed)
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
                job_id = jobs.submit(workspace, "train", json.loads(config.to_json()))
                runner().wake()
                st.session_state["job_id"] = job_id
                st.rerun()

all_jobs = jobs.all_jobs(workspace)
if not all_jobs:
    st.stop()

labels = {j.id: f"Job {j.id} · {j.state} · {j.config.get('model')} · "
                f"{time.strftime('%b %d %H:%M', time.localtime(j.created))}" for j in all_jobs}
active = next((j.id for j in all_jobs if j.state == "running"), all_jobs[0].id)
wanted = st.session_state.get("job_id", active)
job_ids = list(labels)
selected = st.selectbox("Job", job_ids, format_func=labels.get,
                        index=job_ids.index(wanted) if wanted in job_ids else 0)
st.session_state["job_id"] = selected


def series_chart(points: list[dict], prefix: str, title: str, y_title: str) -> go.Figure:
    figure = go.Figure()
    names = sorted({p["series"] for p in points if p["series"].startswith(prefix)},
                   key=lambda s: -int(s.split("/")[1]) if "/" in s else 0)
    for name in names:
        xs = [p["epoch"] if prefix != "loss" else p["step"] for p in points if p["series"] == name]
        figure.add_trace(go.Scatter(x=xs, y=[p["value"] for p in points if p["series"] == name],
                                    mode="lines+markers", name=name.replace("ndcg@10/", "") + (" dims" if "/" in name else "")))
    figure.update_layout(title=title, height=300, margin=dict(t=40, b=30),
                         xaxis_title="step" if prefix == "loss" else "epoch", yaxis_title=y_title)
    return figure


@st.fragment(run_every="2s")
def live(job_id: int, state_at_render: str) -> None:
    job = jobs.get(workspace, job_id)
    if job.state != state_at_render:  # refresh the job list and selector too
        st.rerun()
    steps = [p for p in jobs.events(workspace, job_id, "point") if p["series"] == "loss"]
    left = jobs.time_left(workspace, job)
    eta = f" · about {duration(left)} of training left" if left else ""
    epoch = f" · epoch {steps[-1]['epoch']:.2f}" if steps and steps[-1]["epoch"] else ""
    step = f" · step {steps[-1]['step']}" if steps else ""
    st.progress(min(job.progress, 1.0), text=f"**{job.state}** · {job.status}{step}{epoch} · "
                                             f"{duration(job.elapsed)}{eta}")
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
    points = jobs.events(workspace, job_id, "point")
    left, right = st.columns(2)
    if steps:
        left.plotly_chart(series_chart(points, "loss", "Training loss", "loss"), width="stretch",
                          key=f"loss{job_id}")
    if any(p["series"].startswith("ndcg") for p in points):
        right.plotly_chart(series_chart(points, "ndcg@10/", "NDCG@10 per epoch (0: before training)",
                                        "NDCG@10"), width="stretch", key=f"ndcg{job_id}")
    if job.state == "succeeded" and job.result.get("finetuned"):
        if job.result.get("kept") == "base":
            st.warning(f"Done, but {NO_GAIN}: no epoch beat the base model on the test queries, "
                       f"so {escape(job.result['model_path'])} holds the base model. Try more or "
                       "better pairs.", icon=":material/info:")
        else:
            st.success(f"Done. The fine-tuned model is in {escape(job.result['model_path'])}.")
        st.page_link("views/results.py", label="Compare baseline and fine-tuned", icon=":material/monitoring:")
    if job.result.get("plan") and job.result.get("seconds", {}).get("train"):
        st.caption(planned_vs_actual(job.result["plan"], job.result["seconds"]["train"]).capitalize() + ".")
    log = jobs.events(workspace, job_id, "log", limit=12)
    st.code("\n".join(time.strftime("%H:%M:%S ", time.localtime(e["ts"])) + e["line"] for e in log)
            or "(no log yet)", language=None)


job = next(j for j in all_jobs if j.id == selected)
live(selected, job.state)

with st.expander("Configuration, and the same run on several GPUs or machines"):
    config_json = json.dumps(job.config, indent=2)
    st.code(config_json, language="json")
    st.download_button("Download config (JSON)", config_json, job_config_file(job.id))
    st.markdown("Export the pairs (train split as JSONL) and the test set (BEIR folder), then run:")
    st.code(distributed_commands(job.id, job.config.get("pair_set_id")), language="bash")

st.subheader("All jobs")
st.dataframe([{"job": j.id, "state": j.state, "model": j.config.get("model"),
               "pair set": j.config.get("pair_set_id"), "epochs": j.config.get("epochs"),
               "progress": f"{j.progress:.0%}", "time": duration(j.elapsed),
               "message": j.error or j.status} for j in all_jobs], hide_index=True, width="stretch")
