"""ragtune: RAG or fine-tuning? Decide, then prove it on your own documents.

Run with ``make run``. This file only registers the pages; all logic lives in ``core``.
The pages live in ``views/``, not ``pages/``: Streamlit treats a ``pages/`` folder as a legacy
multipage app, and a first visit straight to a deep link would then skip this file entirely.
"""
import streamlit as st

from core.deciding.workflow import active_jobs
from core.training import jobs
from views.common import FAULTS, runner, show_fault, store

st.set_page_config(page_title="ragtune", page_icon=":material/target:", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/decide.py", title="Decide", icon=":material/help:", url_path="decide"),
    st.Page("views/corpus.py", title="Corpus", icon=":material/library_books:", url_path="corpus"),
    st.Page("views/pairs.py", title="Pairs", icon=":material/quiz:", url_path="pairs"),
    st.Page("views/label.py", title="Label", icon=":material/checklist:", url_path="label"),
    st.Page("views/finetune.py", title="Fine-tune", icon=":material/model_training:", url_path="finetune"),
    st.Page("views/results.py", title="Results", icon=":material/monitoring:", url_path="results"),
    st.Page("views/which.py", title="Which model?", icon=":material/compare_arrows:", url_path="which"),
    st.Page("views/runs.py", title="Runs", icon=":material/table_view:", url_path="runs"),
    st.Page("views/search.py", title="Search", icon=":material/search:", url_path="search"),
]


@st.fragment(run_every="5s")
def job_status() -> None:
    """Running and queued jobs, on every page, refreshed while they last."""
    places = jobs.queue_positions(store())
    for job in active_jobs(store()):
        text = (f"Job {job.id} {job.state} · {job.progress:.0%}" if job.state == "running"
                else f"Job {job.id} queued · number {places.get(job.id)} in line")
        st.page_link("views/finetune.py", label=text, icon=":material/model_training:")


# The questionnaire reads and writes nothing in the workspace, so it works without one.
NEEDS_NO_WORKSPACE = {"decide"}

page = st.navigation(PAGES)  # first, so the sidebar leads everywhere even when the rest fails
try:
    runner()  # started once per server process; jobs go on while pages come and go
except FAULTS as error:  # a read-only RAGTUNE_HOME, a corrupt database: one line on every page
    show_fault(error)
    if page.url_path not in NEEDS_NO_WORKSPACE:
        st.stop()
else:
    with st.sidebar:
        job_status()
try:
    page.run()
except FAULTS as error:  # what a page did not explain itself is still one line, never a traceback
    show_fault(error)
