import streamlit as st

from core.deciding import workflow
from core.documents.beir import DEMO_CORPUS, load_demo
from core.measuring.evaluate import counted
from core.workspace.disk import workspace_size
from views.common import (
    CURRENT_CORPUS,
    current_corpus_id,
    escape,
    explained,
    model_info,
    show_flash,
    show_progress,
    store,
    token_counter,
)

st.title("ragtune")
st.markdown("**RAG or fine-tuning?** Answer a few questions about your use case, then measure what "
            "fine-tuning the embedding model does for retrieval on *your* documents.")

workspace = store()
show_flash()
status = workflow.status(workspace, current_corpus_id())
st.caption(status.summary())
if status.comparison:
    st.markdown(f"**What the numbers say:** {escape(status.comparison)}")
for column, step in zip(st.columns(len(status.steps)), status.steps):
    mark = ":material/check_circle:" if step.done else (
        ":material/arrow_forward:" if step is status.next else ":material/radio_button_unchecked:")
    column.markdown(f"{mark} **{step.title}**  \n{step.state}")
    # Eight steps share the width: the step's name is already above the link, and a longer
    # label would be cut off.
    column.page_link(step.page, label="Open", help=f"Open {step.title}")


def load_the_demo() -> None:
    with explained():
        _, pair_set_id = show_progress(lambda progress: load_demo(
            workspace, token_counter(),
            progress=counted(progress, "chunking the standard library's docstrings", "documents")))
        counts = workspace.split_counts(pair_set_id)
        st.session_state[CURRENT_CORPUS] = DEMO_CORPUS
        st.session_state["flash"] = (f"Loaded the demo corpus: {counts.get('train', 0)} "
                                     f"training and {counts.get('test', 0)} test pairs.")
        st.rerun()


if st.button(f"Next: {status.action}", type="primary"):
    if status.next.key == "corpus":
        load_the_demo()
    else:
        st.switch_page(status.next.page)

corpora = workspace.corpora()
left, right = st.columns([2, 1])
with left:
    st.subheader("Workspace")
    if corpora:
        st.dataframe([{"corpus": c.name, "documents": c.stats.get("documents", 0),
                       "chunks": c.stats.get("chunks", 0),
                       "duplicates removed": c.stats.get("duplicates", 0),
                       "pair sets": len(workspace.pair_sets(c.id))} for c in corpora],
                     hide_index=True, width="stretch")
    else:
        st.info("Empty so far. The next step above loads the demo corpus: the Python standard "
                "library's docstrings, where each function's one-line summary is a real, "
                "human-written query for the text that follows it. No download needed.")
    if corpora and DEMO_CORPUS not in {c.name for c in corpora} and st.button("Load the demo corpus"):
        load_the_demo()
    st.page_link("views/corpus.py", label="Upload your documents", icon=":material/library_books:")
    size = workspace_size(workspace)
    st.caption(f"On disk: {size.summary()}", help=f"In {escape(workspace.home)}. Cached vectors spare "
               "re-encoding passages; deleting a run, pair set or corpus on the Runs page "
               "removes its files and vectors too.")
with right:
    st.subheader("Embedding model")
    with explained():
        info = model_info()
        st.markdown(f"**{escape(info.name)}**  \n{info.dimension} dimensions · max "
                    f"{info.max_seq_length} tokens · {info.parameters / 1e6:.1f}M parameters · "
                    f"device `{info.device}`")
