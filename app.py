"""ragtune: RAG or fine-tuning? Decide, then prove it on your own documents.

Run with ``make run``. This file only registers the pages; all logic lives in ``core``.
"""
import streamlit as st

st.set_page_config(page_title="ragtune", page_icon=":material/target:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/corpus.py", title="Corpus", icon=":material/library_books:", url_path="corpus"),
    st.Page("pages/pairs.py", title="Pairs", icon=":material/quiz:", url_path="pairs"),
    st.Page("pages/results.py", title="Results", icon=":material/monitoring:", url_path="results"),
]

st.navigation(PAGES).run()
