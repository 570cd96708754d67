"""What every page shares: the workspace handle, model facts, and the one-line error display."""
from __future__ import annotations

import html
import re
import sqlite3
from contextlib import contextmanager

import plotly.graph_objects as go
import streamlit as st

from core.deciding import workflow
from core.training.runner import Runner
from core.using import runs
from core.workspace import install, models
from core.workspace.disk import human_bytes
from core.workspace.errors import WorkspaceError, explain_db_error
from core.workspace.store import Store, default_home
from core.workspace.wording import sentence


@st.cache_resource
def _store(home: str) -> Store:
    return Store(home)


def store() -> Store:
    """The workspace named by RAGTUNE_HOME, opened once per server process."""
    return _store(str(default_home()))


@st.cache_resource
def _runner(home: str) -> Runner:
    return Runner(_store(home)).start()


def runner() -> Runner:
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


def show_progress(work, start: str = "Starting…"):
    """Run ``work(report)`` under a progress bar that ``report(stage, fraction)`` moves, its
    caption the stage with its count ("Encoding passages with …: 640 of 1,597"); the bar goes
    when the work ends, and ``work``'s result is returned."""
    bar = st.progress(0.0, text=start)
    try:
        return work(lambda stage, fraction: bar.progress(min(max(fraction, 0.0), 1.0),
                                                         text=sentence(stage)))
    finally:
        bar.empty()


# What a page shows as one line rather than a traceback: a user's mistake, and a database the
# user must fix (corrupt, locked, read-only, a full disk), which sqlite3 raises as its own errors.
FAULTS = (WorkspaceError, sqlite3.Error)


def show_fault(error: Exception) -> None:
    """``error`` (one of ``FAULTS``) as one line that says what is wrong and how to fix it."""
    line = (explain_db_error(error, default_home() / "ragtune.db")
            if isinstance(error, sqlite3.Error) else str(error))
    st.error(escape(line), icon=":material/error:")


@contextmanager
def explained(stop: bool = False):
    """Show a user's mistake as one line instead of a traceback; with ``stop``, the page ends
    there, for a block whose results the rest of the page needs."""
    try:
        yield
    except FAULTS as e:
        show_fault(e)
        if stop:
            st.stop()


# The session's current corpus (by name) and pair set (by id): one value each, shown and set by
# every selector of it on every page, and set by whatever creates a corpus or pair set.
CURRENT_CORPUS = "corpus_name"
CURRENT_PAIR_SET = "pair_set_id"


def _current_selectbox(label: str, options: list, shared: str, key: str, preferred=None,
                       format_func=str):
    """A selectbox that shows the session's ``st.session_state[shared]`` and sets it when changed.

    Each selector keeps its own widget state, which Streamlit would otherwise show on its next
    run whatever another selector chose since; so the shared value is written into it before
    every render, and a change is copied back in a callback, which runs before the rerun draws
    any selector, so a second selector higher on the same page follows at once too. A default
    shown is not remembered: only a person's choice (or a new corpus or pair set) is.
    """
    st.session_state[key] = workflow.current_choice(options, st.session_state.get(shared), preferred)

    def chosen() -> None:
        st.session_state[shared] = st.session_state[key]
    return st.selectbox(label, options, key=key, format_func=format_func, on_change=chosen)


def pick_corpus(label: str = "Corpus", key: str = "corpus"):
    """The session's current corpus, as a selector any page may show (each with its own ``key``)."""
    corpora = store().corpora()
    if not corpora:
        st.info("The workspace has no corpus yet. Load the demo on the Home page or upload "
                "files on the Corpus page.")
        st.page_link("views/corpus.py", label="Go to Corpus", icon=":material/library_books:")
        st.stop()
    name = _current_selectbox(label, [c.name for c in corpora], CURRENT_CORPUS, key)
    return next(c for c in corpora if c.name == name)


def current_corpus_id() -> int | None:
    """The session's current corpus, for pages without a corpus selector (Runs, Home); None
    when none was chosen, and core then takes the corpus of the newest measured run."""
    name = st.session_state.get(CURRENT_CORPUS)
    return next((c.id for c in store().corpora() if c.name == name), None)


def show_flash() -> None:
    """The success message a page left for itself before its last ``st.rerun()``."""
    if "flash" in st.session_state:
        st.success(st.session_state.pop("flash"))


def pick_pair_set(pair_sets: list, preferred: int | None = None):
    """The session's current pair set among ``pair_sets``, as a selector; first shown on
    ``preferred`` when nothing was chosen yet, else on the newest a person made."""
    by_id = {p.id: p for p in pair_sets}
    chosen = _current_selectbox("Pair set", list(by_id), CURRENT_PAIR_SET, "pair_set",
                                workflow.preferred_pair_set(pair_sets, preferred),
                                lambda i: pair_set_label(store(), by_id[i]))
    return by_id[chosen]


def pair_set_label(store_: Store, pair_set) -> str:
    counts = store_.split_counts(pair_set.id)
    parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return f"{pair_set.name} ({pair_set.source}; {parts})"


SCORE = st.column_config.NumberColumn(format="%.4f")


def scores_table(rows, scores, lead: tuple[str, ...] = ()) -> None:
    """A table whose ``scores`` columns all show four decimals: the table widget otherwise drops
    trailing zeros, so accuracy 0.4000 read "0.4" under 0.4333. The numbers stay numbers, so
    the columns still sort as numbers. With ``lead`` (a DataFrame's naming columns), those come
    first and stay pinned, then the scores, then the rest: on a wide table the scores are in
    view, not scrolled off to the right behind settings and paths."""
    config = dict.fromkeys(scores, SCORE)
    order = None
    if lead:
        config |= {c: st.column_config.Column(pinned=True) for c in lead}
        firsts = [*lead, *scores]
        order = [c for c in firsts if c in rows.columns] + [c for c in rows.columns
                                                            if c not in firsts]
    st.dataframe(rows, column_config=config, column_order=order, hide_index=True, width="stretch")


def dims_axis(dims, title: str = "embedding dimensions") -> dict:
    """A plotly x-axis with one evenly spaced category per dimension, smallest first: on a
    numeric axis 32, 64 and 128 bunch up at the left of 384."""
    return dict(title=title, type="category", categoryorder="array",
                categoryarray=[str(d) for d in sorted(set(dims))])


# Keys whose strings are written by code, not data: plotly's %{x} templates (their markup, such
# as <br>, is meant) and the theme. Data they substitute is escaped where it is stored.
_CODE_KEYS = ("hovertemplate", "texttemplate", "template")


def plain_text(value, key: str = ""):
    """A plotly figure's JSON with every string shown as itself: plotly renders a subset of HTML
    in titles, legends, tick labels and hover text, so a model folder named
    ``<span style="font-size:60px">`` drew its legend 60 px high. ``&``, ``<`` and ``>`` become
    entities, which plotly turns back into the characters."""
    if key.endswith(_CODE_KEYS):
        return value
    if isinstance(value, str):
        return html.escape(value, quote=False)
    if isinstance(value, dict):
        return {k: plain_text(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_text(v) for v in value]
    return value


def plot(figure: go.Figure, where=st, **kwargs) -> None:
    """The one way a page draws a chart (``where``: ``st`` or a column), its text escaped by
    ``plain_text``; ``kwargs`` go to ``st.plotly_chart``."""
    where.plotly_chart(go.Figure(plain_text(figure.to_plotly_json())), **kwargs)


def confirm_delete(workspace: Store, kind: str, ref: int, name: str, pending: str) -> None:
    """The second step of a delete that a button began by setting ``st.session_state[pending]``:
    core's refusal while a job needs it (runs.why_not_delete), else what goes and a confirm
    button; a delete that went ahead is flashed on the next run."""
    refused = runs.why_not_delete(workspace, kind, ref)
    if refused:
        st.error(f"{sentence(kind)} '{escape(name)}' cannot be deleted now: {escape(refused)}.",
                 icon=":material/block:")
        return
    st.warning(f"Delete {escape(runs.plan_delete(workspace, kind, ref).summary())}? This cannot be undone.")
    if st.button("Yes, delete it", key=f"yes_{pending}"):
        with explained():
            report = runs.delete(workspace, kind, ref)
            st.session_state.pop(pending)
            st.session_state["flash"] = f"Deleted {escape(report.summary())}."
            st.rerun()


def install_offers() -> None:
    """Each model ragtune installs on demand that this workspace lacks: what it costs first,
    then a button that installs it under a progress bar (``core.workspace.install``)."""
    for spec in models.CATALOGUE.values():
        if models.is_installed(spec.name, store().home):
            continue
        st.caption(escape(install.size_line(spec)) + ".")
        if st.button(f"Install {spec.name} ({human_bytes(spec.download_bytes)})",
                     key=f"install_{spec.name}", icon=":material/download:"):
            with explained():
                done = show_progress(lambda progress, name=spec.name: install.install(
                    name, store().home, progress=progress), start=f"Installing {spec.name}…")
                st.session_state["flash"] = sentence(done.summary()) + "."
                st.rerun()
