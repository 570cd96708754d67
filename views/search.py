import streamlit as st

from core.deciding.compare import comparison
from core.measuring.evaluate import PREFERRED_DIM, counted
from core.using import runs, search
from views.common import escape, explained, pick_corpus, pick_pair_set, show_progress, store

st.title("Search with two models")
st.caption("The same question against the same passages, ranked by two models at the embedding "
           "size you would store. ✓ marks the passage labelled as the answer of a test question.")
workspace = store()
corpus = pick_corpus()
all_runs = runs.list_runs(workspace)
pair_sets = [p for p in workspace.pair_sets(corpus.id)
             if search.searchable_models(workspace, p.id, all_runs)]
if not pair_sets:
    st.info("No model has been measured on a pair set of this corpus yet: measure the baseline "
            "on the Results page, or fine-tune one.")
    st.page_link("views/results.py", label="Go to Results", icon=":material/monitoring:")
    st.stop()
pair_set = pick_pair_set(pair_sets, comparison(workspace, corpus.id, runs=all_runs).pair_set_id)

choices = search.searchable_models(workspace, pair_set.id, all_runs)
matters = comparison(workspace, corpus.id, pair_set.id, all_runs)
first, second = search.default_pair(choices, matters.base, matters.best)
c1, c2, c3 = st.columns([2, 2, 1])
model_a = c1.selectbox("Left model", choices, index=first, format_func=lambda c: c.label)
model_b = c2.selectbox("Right model", choices, index=second, format_func=lambda c: c.label)
dims = search.common_dims(model_a, model_b)
dim = c3.selectbox("Dimensions", dims, index=dims.index(PREFERRED_DIM) if PREFERRED_DIM in dims else 0)

tests = search.test_queries(workspace, pair_set.id)
source = st.radio("Question", ["A test question", "My own question"], horizontal=True)
relevant: set[int] = set()
if source == "A test question" and tests:
    picked = st.selectbox("Test question", tests, format_func=lambda t: t.query)
    query, relevant = picked.query, picked.relevant
else:
    query = st.text_input("Type a question", placeholder="e.g. How do I parse command-line options?")


CHANGE_COLOURS = {"↑": "green", "↓": "red", "n": "green"}


def show(column, hits: list[search.Hit], changes: dict[int, str] | None) -> None:
    """Each hit as a card: rank, score, answer mark and rank change, then a readable snippet;
    the whole passage one click away."""
    for h in hits:
        card = column.container(border=True)
        change = changes[h.chunk_id] if changes is not None else ""
        colour = CHANGE_COLOURS.get(change[:1])
        moved = f" · :{colour}[{change}]" if colour else (f" · {change}" if change else "")
        answer = " · :green[**✓ answer**]" if h.relevant else ""
        card.markdown(f"**#{h.rank}** · score {h.score_text()}{answer}{moved} · "
                      f"{escape(h.document)}")
        snippet = h.snippet()
        card.markdown(escape(snippet))
        if snippet != " ".join(h.text.split()):
            with card.expander("Whole passage"):
                st.text(h.text)


def ranked(choice: search.ModelChoice) -> list[search.Hit]:
    """The hits of one model; the first search with a model encodes the corpus (a minute for
    1,600 passages on a busy CPU unless a run cached its vectors), said with a count."""
    def run(counter=None):
        return search.search(workspace, pair_set.id, choice.model, query, dim, relevant=relevant,
                             progress=counter)
    if search.index_ready(workspace, corpus.id, choice.model, dim):
        return run()
    return show_progress(lambda report: run(counted(
        report, f"encoding passages with {choice.label}")), f"Loading {choice.label}…")


if query.strip():
    with explained():
        left_hits, right_hits = ranked(model_a), ranked(model_b)
        changes = search.rank_changes(left_hits, right_hits)
        if relevant:
            def where(hits: list[search.Hit]) -> str:
                return next((f"#{h.rank}" for h in hits if h.relevant), "not in the top 10")
            st.caption(f"The labelled answer: {where(left_hits)} on the left, "
                       f"{where(right_hits)} on the right.")
        left, right = st.columns(2)
        left.markdown(f"**{escape(model_a.label)}** at {dim} dims")
        show(left, left_hits, None)
        right.markdown(f"**{escape(model_b.label)}** at {dim} dims; rank change against the left")
        show(right, right_hits, changes)
