"""ragtune: RAG or fine-tuning? Decide, then prove it on your own documents.

Run with ``make run``. This file only registers the pages; all logic lives in ``core``.
"""
import streamlit as st

st.set_page_config(page_title="ragtune", page_icon="🎯", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/corpus.py", title="Corpus", icon="📚", url_path="corpus"),
    st.Page("pages/pairs.py", title="Pairs", icon="❓", url_path="pairs"),
]

st.navigation(PAGES).run()
