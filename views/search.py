import pandas as pd
import streamlit as st

from core import search
from views.common import escape, explained, pick_corpus, pick_pair_set, store

st.title("Search with two models")
st.caption("The same question against the same passages, ranked by two models at the embedding "
           "size you would store. ✓ marks the passage labelled as the answer of a test question.")
workspace = store()
corpus = pick_corpus()
pair_sets = [p for p in workspace.pair_sets(corpus.id) if search.searchable_models(workspace, p.id)]
if not pair_sets:
    st.info("No model has been measured on a pair set of this corpus yet: measure the baseline "
            "on the Results page, or fine-tune one.")
    st.page_link("views/results.py", label="Go to Results", icon=":material/monitoring:")
    st.stop()
pair_set = pick_pair_set(pair_sets)

choices = search.searchable_models(workspace, pair_set.id)
first, second = search.default_pair(choices)
c1, c2, c3 = st.columns([2, 2, 1])
model_a = c1.selectbox("Left model", choices, index=first, format_func=lambda c: c.label)
model_b = c2.selectbox("Right model", choices, index=second, format_func=lambda c: c.label)
dims = search.common_dims(model_a, model_b)
dim = c3.selectbox("Dimensions", dims, index=dims.index(128) if 128 in dims else 0)

tests = search.test_queries(workspace, pair_set.id)
source = st.radio("Question", ["A test question", "My own question"], horizontal=True)
relevant: set[int] = set()
if source == "A test question" and tests:
    picked = st.selectbox("Test question", tests, format_func=lambda t: t.query)
    query, relevant = picked.query, picked.relevant
else:
    query = st.text_input("Type a question", placeholder="e.g. How do I parse command-line options?")


def table(hits: list[search.Hit], changes: dict[int, str] | None) -> pd.DataFrame:
    rows = [{"rank": h.rank, "score": round(h.score, 4), "answer": "✓" if h.relevant else "",
             **({"change": changes[h.chunk_id]} if changes is not None else {}),
             "document": h.document, "passage": h.text[:400]} for h in hits]
    return pd.DataFrame(rows)


def colour(value: str) -> str:
    if value.startswith("↑") or value == "new":
        return "background-color: #c8e6c9"
    if value.startswith("↓"):
        return "background-color: #ffcdd2"
    return ""


if query.strip():
    with explained(), st.spinner("Searching…"):
        left_hits = search.search(workspace, pair_set.id, model_a.model, query, dim, relevant=relevant)
        right_hits = search.search(workspace, pair_set.id, model_b.model, query, dim, relevant=relevant)
        changes = search.rank_changes(left_hits, right_hits)
        left, right = st.columns(2)
        left.markdown(f"**{escape(model_a.label)}** at {dim} dims")
        left.dataframe(table(left_hits, None), hide_index=True, width="stretch")
        right.markdown(f"**{escape(model_b.label)}** at {dim} dims; change against the left")
        styled = table(right_hits, changes).style.map(colour, subset=["change"])
        right.dataframe(styled.format({"score": "{:.4f}"}), hide_index=True, width="stretch")
        if relevant:
            def where(hits: list[search.Hit]) -> str:
                return next((f"#{h.rank}" for h in hits if h.relevant), "not in the top 10")
            st.caption(f"The labelled answer: {where(left_hits)} on the left, "
                       f"{where(right_hits)} on the right.")
