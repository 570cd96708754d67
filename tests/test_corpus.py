"""Loading, chunking and deduplicating documents, and what users see when a file is bad."""
import io
import re

import pandas as pd
import pytest

from core.corpus import ChunkSettings, Deduper, chunk_text, ingest, load_file, split_units
from core.store import WorkspaceError
from tests.conftest import PARAGRAPHS, docx_bytes, pdf_bytes

TEXT = "\n\n".join(PARAGRAPHS)


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


@pytest.mark.parametrize("name,data", [
    ("notes.txt", TEXT.encode()),
    ("notes.md", ("# Plants\n\n" + TEXT).encode()),
    ("page.html", ("<html><head><script>var x=1;</script></head><body><h1>Plants</h1>"
                   + "".join(f"<p>{p}</p>" for p in PARAGRAPHS) + "</body></html>").encode()),
    ("report.pdf", pdf_bytes(PARAGRAPHS)),
    ("memo.docx", docx_bytes(PARAGRAPHS)),
])
def test_every_document_loader_keeps_the_words(name, data):
    [doc] = load_file(name, data)
    assert set(words(TEXT)) <= set(words(doc.text))
    assert "var" not in words(doc.text)  # scripts are not text


def test_table_loaders_make_one_document_per_row_with_its_id():
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": PARAGRAPHS})
    csv = frame.to_csv(index=False).encode()
    jsonl = frame.to_json(orient="records", lines=True).encode()
    parquet = io.BytesIO()
    frame.to_parquet(parquet)
    for name, data in (("t.csv", csv), ("t.jsonl", jsonl), ("t.parquet", parquet.getvalue())):
        docs = load_file(name, data)
        assert [d.external_id for d in docs] == ["a", "b", "c"]
        assert [d.text for d in docs] == PARAGRAPHS


@pytest.mark.parametrize("name,data,message", [
    ("empty.txt", b"   \n", "empty"),
    ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("latin1.txt", "café crème".encode("latin-1"), "UTF-8"),
    ("broken.pdf", b"%PDF-1.4\n1 0 obj<<>>\nthis is not a pdf", "PDF"),
    ("broken.docx", b"PK\x03\x04 not really a zip", "Word"),
    ("table.csv", b"title,author\nA,B\n", "no text column"),
    ("../../etc/passwd.txt", b"root", "not a plain file name"),
    ("archive.zip", b"PK", "unsupported file type"),
])
def test_bad_files_get_a_one_line_reason(name, data, message):
    with pytest.raises(WorkspaceError, match=message) as info:
        load_file(name, data)
    assert "\n" not in str(info.value)


def test_oversized_file_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr("core.corpus.MAX_FILE_BYTES", 1000)
    with pytest.raises(WorkspaceError, match="over the"):
        load_file("big.txt", b"a" * 1001)


def test_chunks_respect_size_lose_no_text_and_overlap_within_budget(count):
    text = "\n\n".join(PARAGRAPHS * 6)
    settings = ChunkSettings(size=48, overlap=12)
    chunks = chunk_text(text, settings, count)
    assert len(chunks) > 3
    for chunk, tokens in chunks:
        assert tokens <= settings.size
        assert count([chunk])[0] <= settings.size + 2  # joining adds no more than a token or two
    # Every sentence lands in some chunk, in document order.
    sentences = [u for u, _ in split_units(text)]
    position = 0
    for sentence in sentences:
        holders = [i for i, (c, _) in enumerate(chunks) if sentence in c]
        assert holders, sentence
        assert max(holders) >= position
        position = min(h for h in holders if h >= position)
    # Neighbours share at most `overlap` tokens of whole sentences.
    for (a, _), (b, _) in zip(chunks, chunks[1:]):
        shared = [s for s in split_units(b) if s[0] in a]
        assert sum(count([s for s, _ in shared])) <= settings.overlap


def test_a_sentence_longer_than_a_chunk_is_cut_at_words(count):
    long_sentence = " ".join(["antidisestablishmentarianism"] * 200) + "."
    chunks = chunk_text(long_sentence, ChunkSettings(size=64, overlap=0), count)
    assert all(n <= 64 for _, n in chunks)
    assert sum(len(c.split()) for c, _ in chunks) == 200


def test_chunk_settings_are_validated():
    with pytest.raises(WorkspaceError, match="overlap"):
        ChunkSettings(size=64, overlap=40).validate()


def test_dedup_catches_exact_and_near_exact_but_not_different_text():
    deduper = Deduper()
    base = " ".join(f"word{i}" for i in range(120))
    assert not deduper.is_duplicate(base)
    assert deduper.is_duplicate(base.upper() + "  ")            # exact after normalising
    assert deduper.is_duplicate(base.replace("word7 ", "word7x "))  # one word changed
    assert not deduper.is_duplicate(" ".join(f"term{i}" for i in range(120)))


def test_ingest_stores_chunks_and_counts_duplicates(store, count):
    docs = load_file("a.txt", TEXT.encode()) + load_file("b.txt", TEXT.encode())
    report = ingest(store, "plants", docs, count, ChunkSettings(64, 8))
    assert report.duplicates == report.chunks  # the second file repeats the first
    corpus = store.corpus("plants")
    assert corpus.stats == {"documents": 2, "chunks": report.chunks, "duplicates": report.duplicates}
    assert len(store.chunks(corpus.id)) == report.chunks


def test_failed_ingest_leaves_the_workspace_as_it_was(store, count):
    ingest(store, "plants", load_file("a.txt", TEXT.encode()), count)
    before = [tuple(r) for r in store.chunks(store.corpus("plants").id)]
    stats = store.corpus("plants").stats
    # The new document is written before its chunks turn out to be duplicates: rolled back.
    with pytest.raises(WorkspaceError, match="no chunks left"):
        ingest(store, "plants", load_file("again.md", TEXT.encode()), count)
    assert store.corpus("plants").stats == stats
    assert len(store.documents(store.corpus("plants").id)) == 1
    assert [tuple(r) for r in store.chunks(store.corpus("plants").id)] == before


def test_adding_to_a_corpus_keeps_its_chunk_settings(store, count):
    ingest(store, "plants", load_file("a.txt", TEXT.encode()), count, ChunkSettings(32, 0))
    report = ingest(store, "plants", load_file("b.txt", b"Roots take up water and minerals "
                                                       b"from the soil around them."), count,
                    ChunkSettings(512, 64))
    assert report.chunks == 1
    assert store.corpus("plants").settings["chunking"] == {"size": 32, "overlap": 0}
    assert store.corpus("plants").stats["documents"] == 2
