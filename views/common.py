"""What every page shares: the workspace handle, model facts, and the one-line error display."""
from __future__ import annotations

import re
from contextlib import contextmanager

import streamlit as st

from core import jobs, models, runs
from core.errors import WorkspaceError
from core.store import Store, default_home


@st.cache_resource
def _store(home: str) -> Store:
    return Store(home)


def store() -> Store:
    """The workspace named by RAGTUNE_HOME, opened once per server process."""
    return _store(str(default_home()))


@st.cache_resource
def _runner(home: str) -> jobs.Runner:
    return jobs.Runner(_store(home)).start()


def runner() -> jobs.Runner:
    """The one job runner of this server process, shared by every browser session; its thread
    is started again should it ever have died, so queued jobs never wait forever."""
    return _runner(str(default_home())).start()


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape(text: object) -> str:
    """User text (names, queries, passages) made safe for st.markdown, st.caption and labels:
    every Markdown and HTML character is shown as itself, so ``![i](http://host/x)`` is text,
    not an image the browser fetches."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


@st.cache_resource(show_spinner="Loading the model…")
def model_info(name: str | None = None) -> models.ModelInfo:
    return models.info(name)


@st.cache_resource
def token_counter(name: str | None = None):
    return models.token_counter(name)


@contextmanager
def explained():
    """Show a user's mistake as one line instead of a traceback."""
    try:
        yield
    except WorkspaceError as e:
        st.error(escape(str(e)), icon=":material/error:")


def pick_corpus(label: str = "Corpus", key: str = "corpus"):
    """A corpus selector remembered across pages for this browser session."""
    corpora = store().corpora()
    if not corpora:
        st.info("The workspace has no corpus yet. Load the demo on the Home page or upload "
                "files on the Corpus page.")
        st.page_link("views/corpus.py", label="Go to Corpus", icon=":material/library_books:")
        st.stop()
    names = [c.name for c in corpora]
    current = st.session_state.get("corpus_name")
    index = names.index(current) if current in names else len(names) - 1
    name = st.selectbox(label, names, index=index, key=key)
    st.session_state["corpus_name"] = name
    return next(c for c in corpora if c.name == name)


def show_flash() -> None:
    """The success message a page left for itself before its last ``st.rerun()``."""
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))


def pick_pair_set(pair_sets: list, preferred: int | None = None):
    """A pair-set selector remembered across pages for this browser session; first shown on
    ``preferred`` when given, else on the newest."""
    ids = [p.id for p in pair_sets]
    remembered = st.session_state.get("pair_set_id")
    first = remembered if remembered in ids else preferred if preferred in ids else ids[-1]
    pair_set = st.selectbox("Pair set", pair_sets, format_func=lambda p: pair_set_label(store(), p),
                            index=ids.index(first))
    st.session_state["pair_set_id"] = pair_set.id
    return pair_set


def pair_set_label(store_: Store, pair_set) -> str:
    counts = store_.split_counts(pair_set.id)
    parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return f"{pair_set.name} ({pair_set.source}; {parts})"


def dims_axis(dims, title: str = "embedding dimensions") -> dict:
    """A plotly x-axis with one evenly spaced category per dimension, smallest first: on a
    numeric axis 32, 64 and 128 bunch up at the left of 384."""
    return dict(title=title, type="category", categoryorder="array",
                categoryarray=[str(d) for d in sorted(set(dims))])


DELETES = {"corpus": (runs.plan_delete_corpus, runs.delete_corpus),
           "pair set": (runs.plan_delete_pair_set, runs.delete_pair_set)}


def confirm_delete(workspace: Store, kind: str, ref: int, name: str, pending: str) -> None:
    """The second step of a delete that a button began by setting ``st.session_state[pending]``:
    core's refusal while a job needs it (runs.why_not_delete), else what goes and a confirm
    button; a delete that went ahead is flashed on the next run."""
    refused = runs.why_not_delete(workspace, kind, ref)
    if refused:
        st.error(f"{kind.capitalize()} '{escape(name)}' cannot be deleted now: {escape(refused)}.",
                 icon=":material/block:")
        return
    plan, delete = DELETES[kind]
    st.warning(f"Delete {escape(plan(workspace, ref).summary())}? This cannot be undone.")
    if st.button("Yes, delete it", key=f"yes_{pending}"):
        with explained():
            report = delete(workspace, ref)
            st.session_state.pop(pending)
            st.session_state["flash"] = f"Deleted {escape(report.summary())}."
            st.rerun()
