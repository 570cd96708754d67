import streamlit as st

from core.beir import DEMO_CORPUS, load_demo
from views.common import explained, model_info, store, token_counter

st.title("ragtune")
st.markdown(
    "**RAG or fine-tuning?** Answer a few questions about your use case, then measure what "
    "fine-tuning the embedding model does for retrieval on *your* documents.\n\n"
    "0. **Decide** — a short questionnaire recommends prompting, RAG, fine-tuning or a hybrid.\n"
    "1. **Corpus** — upload documents (txt, md, pdf, html, docx, csv/jsonl/parquet) and chunk them.\n"
    "2. **Pairs** — bring question→passage pairs, or generate them, and split train/test.\n"
    "3. **Fine-tune** — train the embedding model in the background and watch it live.\n"
    "4. **Results** — baseline and fine-tuned retrieval at every embedding size.")

workspace = store()
if "flash" in st.session_state:
    st.success(st.session_state.pop("flash"))
corpora = workspace.corpora()
left, right = st.columns([2, 1])
with left:
    st.subheader("Workspace")
    if corpora:
        rows = []
        for c in corpora:
            sets = workspace.pair_sets(c.id)
            rows.append({"corpus": c.name, "documents": c.stats.get("documents", 0),
                         "chunks": c.stats.get("chunks", 0),
                         "duplicates removed": c.stats.get("duplicates", 0),
                         "pair sets": len(sets)})
        st.dataframe(rows, hide_index=True, width="stretch")
    else:
        st.info("Empty so far. Start with the demo corpus, or upload your own documents.")
    if DEMO_CORPUS not in {c.name for c in corpora}:
        st.markdown("The **demo corpus** is the Python standard library's docstrings: each "
                    "function's one-line summary is a real, human-written query for the "
                    "text that follows it. No download needed.")
        if st.button("Load the demo corpus", type="primary"):
            with explained(), st.spinner("Chunking the standard library's docstrings…"):
                _, pair_set_id = load_demo(workspace, token_counter())
                counts = workspace.split_counts(pair_set_id)
                st.session_state["corpus_name"] = DEMO_CORPUS
                st.session_state["flash"] = (f"Loaded the demo corpus: {counts.get('train', 0)} "
                                             f"training and {counts.get('test', 0)} test pairs.")
                st.rerun()
    st.page_link("views/corpus.py", label="Upload your documents", icon=":material/library_books:")
with right:
    st.subheader("Embedding model")
    with explained():
        info = model_info()
        st.markdown(f"**{info.name}**  \n{info.dimension} dimensions · max {info.max_seq_length} "
                    f"tokens · {info.parameters / 1e6:.1f}M parameters · device `{info.device}`")
