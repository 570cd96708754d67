import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.deciding.which import BYTES_PER_VALUE, PRECISION, bytes_per_passage, which_model
from core.workspace.disk import human_bytes
from core.workspace.wording import duration
from views.common import (escape, explained, install_offers, pick_corpus, plot, scores_table, show_flash,
                          show_progress, store)

st.title("Which model?")
st.caption("Take a bigger model, tune the small one, or both? Every model this workspace has, "
           "measured on the corpus's test questions, against what its index costs.")
workspace = store()
corpus = pick_corpus()
show_flash()
install_offers()
measure = st.button("Measure every model not yet measured on these questions, and time each "
                    "on this machine", type="primary")
with explained(stop=True):
    found = (show_progress(lambda progress: which_model(workspace, corpus.name, True, progress=progress))
             if measure else which_model(workspace, corpus.name, measure=False, speed_sample=0))
    if measure:
        st.session_state[f"which_{corpus.id}"] = found
    timed = st.session_state.get(f"which_{corpus.id}")
    if timed is not None and not measure:  # speeds come from the last timing of this session
        speeds = {c.model: c.speed for c in timed.candidates}
        for c in found.candidates:
            c.speed = speeds.get(c.model)

st.markdown(f"**{escape(found.sentence())}**")
if found.candidates:  # with none, the sentence above already names the test set
    st.caption(f"Judged on {escape(found.test_set)} of {escape(found.corpus)}.")
if found.caution:
    st.warning(escape(found.caution), icon=":material/warning:")
if not found.candidates:
    st.stop()

figure = go.Figure()
for c in found.candidates:
    dims = sorted(c.ndcg)
    figure.add_trace(go.Scatter(
        x=[bytes_per_passage(d) for d in dims], y=[c.ndcg[d] for d in dims], name=c.name,
        mode="lines+markers", customdata=dims,
        hovertemplate="%{customdata} dims: NDCG@10 %{y:.3f}, %{x} bytes a passage<extra></extra>"))
sizes = sorted({d for c in found.candidates for d in c.ndcg})
figure.update_layout(xaxis=dict(title=f"index bytes per passage (dimensions × {BYTES_PER_VALUE}, {PRECISION}), log scale",
                                type="log", tickvals=[bytes_per_passage(d) for d in sizes],
                                ticktext=[f"{human_bytes(bytes_per_passage(d))} ({d} d)" for d in sizes]),
                     yaxis=dict(title="NDCG@10"), height=440, legend=dict(orientation="h", y=-0.3))
plot(figure, width="stretch")

dims = sorted({d for c in found.candidates for d in c.ndcg}, reverse=True)
table = pd.DataFrame([{
    "model": c.name,
    "passages/s": f"{c.speed.passages_per_second:.1f}" if c.speed else "–",
    "one query (ms)": f"{c.speed.query_ms:.1f}" if c.speed else "–",
    "training time": duration(c.training_seconds) if c.training_seconds else "",
    # A size the model does not have reads "–", not "None" (MiniLM has no 768 dims); four
    # decimals as text sort as the numbers do.
    **{f"{d} dims": f"{c.ndcg[d]:.4f}" if d in c.ndcg else "–" for d in dims}, "run": c.run_id}
    for c in found.candidates])
scores_table(table, [], lead=("model", "passages/s", "one query (ms)", "training time"))
st.caption("NDCG@10 at each size (–: the model has no such size). Index size per passage: "
           + ", ".join(f"{d} dims {human_bytes(bytes_per_passage(d))}" for d in dims)
           + ". Speeds are timed on this machine as it is loaded now"
           + ("" if any(c.speed for c in found.candidates) else ": press the button to time them") + ".")
if found.best_two is not None:
    d = found.best_two
    st.markdown(f"**The best two:** {escape(found.best.said())} against "
                f"{escape(found.runner_up.said())}: difference {d.change()}, 95% interval "
                f"{d.interval()} over {d.questions} questions ({d.verdict()}).")
