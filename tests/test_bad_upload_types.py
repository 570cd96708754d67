"""Ten bad uploads for every supported file type: each is refused in one line and the workspace
is left exactly as it was. The cases are built from one good file per type, so a new type in
``core.documents.corpus.SUPPORTED`` without a good example here fails the first test."""
from __future__ import annotations

import pandas as pd
import pytest

from core.documents import corpus as corpus_module
from core.documents.corpus import SUPPORTED, ingest, load_file
from core.workspace.store import WorkspaceError
from tests.conftest import PARAGRAPHS, docx_bytes, pdf_bytes
from tests.test_bad_input import one_line, parquet_bytes, unchanged, workspace  # noqa: F401 (fixtures)

TEXT = "\n\n".join(PARAGRAPHS)
# The size limit is scaled down in the test to one byte more than this marker, so that a good
# file is under it and the marker plus a good file is over it.
OVERSIZE = b"OVERSIZE" * 8192
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


def table(frame: pd.DataFrame, suffix: str) -> bytes:
    if suffix == ".csv":
        return frame.to_csv(index=False).encode()
    if suffix == ".jsonl":
        return frame.to_json(orient="records", lines=True).encode()
    return parquet_bytes(frame)


def good(suffix: str) -> bytes:
    """A small valid file of the type, with the three paragraphs in it."""
    if suffix in (".txt", ".md", ".markdown"):
        return TEXT.encode()
    if suffix in (".html", ".htm"):
        return ("<html><body>" + "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
                + "</body></html>").encode()
    if suffix == ".pdf":
        return pdf_bytes(PARAGRAPHS)
    if suffix == ".docx":
        return docx_bytes(PARAGRAPHS)
    return table(pd.DataFrame({"id": [1, 2, 3], "text": PARAGRAPHS}), suffix)


def without_text(suffix: str) -> bytes:
    """The type's own container, well formed, holding no text to index."""
    if suffix in (".txt", ".md", ".markdown"):
        return b" \n\t\n "
    if suffix in (".html", ".htm"):
        return b"<html><head><script>alert(1)</script><style>p{}</style></head></html>"
    if suffix == ".pdf":
        return pdf_bytes([])
    if suffix == ".docx":
        return docx_bytes([])
    return table(pd.DataFrame({"id": [1, 2], "score": [0.5, 0.7]}), suffix)  # no text column


def wrong_encoding(suffix: str) -> bytes:
    """Text types in Latin-1 instead of UTF-8; binary types holding plain text instead."""
    if suffix in (".pdf", ".docx", ".parquet"):
        return TEXT.encode()
    latin = "Schöne Grüße aus Köln, süß und fröhlich."
    return good(suffix).replace(b"Photosynthesis", latin.encode("latin-1"))


def other_type(suffix: str) -> bytes:
    """A real file of another type under this extension."""
    return good(".docx") if suffix == ".pdf" else good(".pdf")


def truncated(suffix: str) -> bytes:
    """Cut short: in the middle of a UTF-8 character for text, in the middle for containers."""
    data = good(suffix)
    if suffix in (".txt", ".md", ".markdown", ".html", ".htm", ".csv", ".jsonl"):
        return data[: len(data) // 2] + "é".encode()[:1]
    return data[: len(data) // 3]


def cases() -> list[tuple[str, str, bytes]]:
    out = []
    for suffix in SUPPORTED:
        out += [
            (f"{suffix} empty", f"file{suffix}", b""),
            (f"{suffix} binary", f"file{suffix}", PNG),
            (f"{suffix} truncated", f"file{suffix}", truncated(suffix)),
            (f"{suffix} wrong encoding", f"file{suffix}", wrong_encoding(suffix)),
            (f"{suffix} another type inside", f"file{suffix}", other_type(suffix)),
            (f"{suffix} no text in it", f"file{suffix}", without_text(suffix)),
            (f"{suffix} over the size limit", f"file{suffix}", OVERSIZE + good(suffix)),
            (f"{suffix} path in the name", f"../../etc/file{suffix}", good(suffix)),
            (f"{suffix} control characters in the name", f"evil\x1b[2J\nname{suffix}",
             good(suffix)),
            (f"{suffix} direction override in the name", f"invoice\u202egpj{suffix}",
             good(suffix)),
        ]
    return out


CASES = cases()


def test_every_supported_type_has_a_good_example_that_loads():
    for suffix in SUPPORTED:
        assert len(good(suffix)) < len(OVERSIZE), suffix
        docs = load_file(f"file{suffix}", good(suffix))
        assert "Calvin cycle" in " ".join(d.text for d in docs), suffix


@pytest.mark.parametrize("what,name,data", CASES, ids=[c[0] for c in CASES])
def test_a_bad_upload_of_each_type_is_one_line(unchanged, count, monkeypatch,  # noqa: F811
                                               what, name, data):
    monkeypatch.setattr(corpus_module, "MAX_FILE_BYTES", len(OVERSIZE) + 1)
    with pytest.raises(WorkspaceError) as error:
        ingest(unchanged, "new-corpus", load_file(name, data), count)
    one_line(error.value)


@pytest.mark.parametrize("name", ["Grüße aus Köln.txt", "گزارش\u200cها.txt", "📄 notes.md",
                                  "👩\u200d🔬 lab.md", "報告書.txt"])
def test_names_in_any_script_are_accepted(name):
    assert load_file(name, TEXT.encode())[0].name == name
