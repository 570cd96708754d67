import hashlib

import plotly.express as px
import streamlit as st

from core.documents.beir import import_beir, parse_beir, upload_files
from core.documents.corpus import SUPPORTED, ChunkSettings, Preview, ingest, load_file, preview
from core.measuring.evaluate import counted
from core.workspace.errors import WorkspaceError
from core.workspace.wording import plural
from views.common import (
    CURRENT_CORPUS,
    confirm_delete,
    escape,
    explained,
    pick_corpus,
    plot,
    show_flash,
    show_progress,
    store,
    token_counter,
)

st.title("Corpus")
workspace = store()
corpora = {c.name: c for c in workspace.corpora()}


@st.cache_data(max_entries=64, show_spinner=False)
def read_upload(name: str, digest: str, data: bytes):
    """Parse once per file content; returns (documents, error)."""
    try:
        return load_file(name, data), None
    except WorkspaceError as e:
        return [], str(e)


@st.cache_data(max_entries=4, show_spinner="Reading the BEIR files…")
def read_beir(upload_ids: tuple[str, ...], _files: list[tuple[str, bytes]]):
    """Parse once per upload (named by Streamlit's file ids); returns (BeirFolder, error)."""
    try:
        return parse_beir(upload_files(_files), "the upload"), None
    except WorkspaceError as e:
        return None, str(e)


NEW = "New corpus…"
remembered = st.session_state.get(CURRENT_CORPUS)
options = [NEW, *corpora]
choice = st.selectbox("Add documents to", options,
                      index=options.index(remembered) if remembered in corpora else 0)
if choice == NEW:
    name = st.text_input("Name of the new corpus", value="my-documents").strip()
    c1, c2 = st.columns(2)
    size = c1.slider("Chunk size (tokens of the model)", 32, 512, ChunkSettings.size, 16)
    overlap = c2.slider("Overlap (tokens)", 0, size // 2 - 1, min(ChunkSettings.overlap, size // 2 - 1), 8)
    settings = ChunkSettings(size, overlap)
else:
    name = choice
    settings = ChunkSettings(**corpora[choice].settings["chunking"])
    st.caption(f"This corpus chunks at {settings.size} tokens with {settings.overlap} of overlap.")

# A new key after each Add empties the uploader, so a second click cannot add the files again.
uploads = st.file_uploader("Documents", type=[s.lstrip(".") for s in SUPPORTED],
                           accept_multiple_files=True,
                           key=f"documents{st.session_state.get('documents_added', 0)}",
                           help="Several at once. Tables need a text column (text, content, body…).")
documents, errors, digests = [], [], []
for upload in uploads or []:
    data = upload.getvalue()
    digests.append(hashlib.sha1(data).hexdigest())
    docs, error = read_upload(upload.name, digests[-1], data)
    documents += docs
    if error:
        errors.append(error)
for error in errors:
    st.error(escape(error), icon=":material/error:")


def previewed(count) -> Preview:
    """The upload's preview, worked out once per upload and chunk settings (seconds for a large
    one, said with a count) and kept while the page reruns for other widgets."""
    key = f"{'|'.join(digests)}:{settings.size}:{settings.overlap}"
    kept = st.session_state.get("corpus_preview")
    if kept is None or kept[0] != key:
        kept = key, show_progress(lambda report: preview(
            documents, settings, count, progress=counted(report, "chunking the upload", "documents")))
        st.session_state["corpus_preview"] = kept
    return kept[1]


if documents:
    count = token_counter()
    first = previewed(count)
    chunks = first.chunks
    st.subheader("Preview")
    m1, m2, m3 = st.columns(3)
    m1.metric("Documents", len(documents))
    if first.complete:
        m2.metric("Chunks to add", f"{len(chunks):,}")
    else:
        m2.metric("Chunks to add (estimate)", f"≈ {first.estimated_chunks:,}")
    m3.metric("Median tokens", sorted(n for _, n in chunks)[len(chunks) // 2] if chunks else 0)
    notes = []
    if first.duplicates:
        notes.append(f"{first.duplicates:,} chunks repeat others in the upload and are left out.")
    if not first.complete:
        notes.append(f"Estimated from the first {first.chars_previewed:,} of "
                     f"{first.chars_total:,} characters, to keep this preview quick; adding "
                     "counts them exactly.")
    if choice != NEW:
        notes.append(f"Chunks that repeat ones already in '{escape(name)}' are also left out "
                     "when adding.")
    if notes:
        st.caption(" ".join(notes))
    if chunks:
        plot(px.histogram(x=[n for _, n in chunks], nbins=30, labels={"x": "tokens per chunk"},
                          height=250), width="stretch")
        for text, n in chunks[:3]:
            with st.expander(f"{n} tokens: {escape(text[:80])}…"):
                st.text(text)
    blocked = bool(errors) or not name
    if errors:
        st.warning("Remove or fix the files above first; nothing has been added.")
    if st.button(f"Add {plural(len(documents), 'document')} to '{escape(name)}'", type="primary",
                 disabled=blocked):
        with explained():
            report = show_progress(lambda progress: ingest(
                workspace, name, documents, count, settings,
                counted(progress, "chunking, removing repeats and storing", "documents")))
            st.session_state[CURRENT_CORPUS] = name
            st.session_state["documents_added"] = st.session_state.get("documents_added", 0) + 1
            st.session_state["flash"] = f"Added to '{escape(name)}': {report.summary()}."
            st.rerun()

with st.expander("Import a labelled set in BEIR format: upload a .zip of the folder or its files"):
    st.markdown("A BEIR set is **corpus.jsonl** (`_id`, `title`, `text`), **queries.jsonl** "
                "(`_id`, `text`) and **qrels/test.tsv** (query-id, corpus-id, score), as public "
                "benchmarks such as SciFact ship it. It becomes a corpus plus one labelled pair "
                "set per qrels file; `train.tsv` gives training pairs.")
    beir_uploads = st.file_uploader("The BEIR folder zipped, or its files selected together",
                                    type=["zip", "jsonl", "tsv"], accept_multiple_files=True,
                                    key="beir_files")
    if beir_uploads:
        beir_data, beir_error = read_beir(tuple(u.file_id for u in beir_uploads),
                                          [(u.name, u.getvalue()) for u in beir_uploads])
        if beir_error:
            st.error(escape(beir_error), icon=":material/error:")
        else:
            st.caption(escape(beir_data.summary()))
            zips = [u.name for u in beir_uploads if u.name.lower().endswith(".zip")]
            beir_name = st.text_input("Corpus name",  # follows the upload's name
                                      value=zips[0].rsplit(".", 1)[0] if zips else "beir").strip()
            if st.button(f"Import {len(beir_data.documents):,} passages as '{escape(beir_name)}'",
                         type="primary", disabled=not beir_name):
                with explained():
                    report, sets = show_progress(lambda progress: import_beir(
                        workspace, beir_data, beir_name, token_counter(),
                        progress=counted(progress, "chunking", "passages")))
                    st.session_state[CURRENT_CORPUS] = beir_name
                    message = (f"Imported '{escape(beir_name)}': {escape(report.summary())}, "
                               f"{len(sets)} labelled pair sets.")
                    # Labels were dropped: said in amber, not green, so nobody misses it.
                    st.session_state["flash_warning" if report.dropped else "flash"] = message
                    st.rerun()

show_flash()
if "flash_warning" in st.session_state:
    st.warning(st.session_state.pop("flash_warning"), icon=":material/warning:")

if corpora:
    st.divider()
    st.subheader("In the workspace")
    corpus = pick_corpus()
    s1, s2, s3 = st.columns(3)
    s1.metric("Documents", corpus.stats.get("documents", 0))
    s2.metric("Chunks", corpus.stats.get("chunks", 0))
    s3.metric("Duplicates removed", corpus.stats.get("duplicates", 0))
    docs = workspace.documents(corpus.id)
    st.dataframe([{"document": d["name"], "type": d["kind"], "characters": d["chars"],
                   "chunks": d["chunks"]} for d in docs[:1000]], hide_index=True, height=220,
                 width="stretch")
    sample = workspace.chunks(corpus.id, limit=20)
    with st.expander("First chunks"):
        for row in sample:
            st.markdown(f"**{escape(row['document'])}** · chunk {row['ord']} · {row['tokens']} tokens")
            st.text(row["text"][:600])
    st.page_link("views/pairs.py", label="Next: question→passage pairs", icon=":material/quiz:")
    if st.button(f"Delete corpus '{escape(corpus.name)}'", key="delete"):
        st.session_state["confirm_delete"] = corpus.name
    if st.session_state.get("confirm_delete") == corpus.name:
        confirm_delete(workspace, "corpus", corpus.id, corpus.name, "confirm_delete")
