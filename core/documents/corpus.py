"""Turn users' files into a deduplicated corpus of token-bounded chunks.

Loaders read bytes into plain text (one ``Document`` per file, or per row for tabular files and
BEIR folders); ``chunk_text`` packs sentences into chunks of at most ``size`` tokens of the chosen
model, preferring paragraph breaks and carrying up to ``overlap`` tokens of whole sentences into
the next chunk so no fact is cut off from its context; ``Deduper`` drops exact and near-exact
repeats (MinHash over word shingles, Broder 1997), which otherwise become false negatives in
contrastive training batches.
"""
from __future__ import annotations

import codecs
import io
import os
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.workspace.errors import WorkspaceError
from core.workspace.store import Store
from core.workspace.text import check_label, text_hash, unprintable
from core.workspace.wording import plural

MAX_FILE_BYTES = 200 * 1024 * 1024
CHARS_PER_TOKEN = 6  # generous: English runs at about 4-5 characters per token
TOKENIZE_BATCH = 256  # texts per tokenizer call, so memory follows the batch, not the file
# Chunking and dedup run at about 0.5 M characters a second on a busy 2-core CPU (1.57 M in
# 3.0 s): up to 3 M characters (some 1,500 pages) an upload is previewed whole, once, with a
# count of documents done; beyond, the chunk count is estimated and says so.
PREVIEW_CHARS, PREVIEW_DOCUMENTS = 3_000_000, 10_000
TEXT_KINDS = {".txt": "text", ".md": "markdown", ".markdown": "markdown"}
TABLE_KINDS = {".csv", ".jsonl", ".parquet"}
SUPPORTED = sorted([*TEXT_KINDS, ".pdf", ".html", ".htm", ".docx", *TABLE_KINDS])
TEXT_COLUMNS = ("text", "content", "body", "passage", "document", "chunk", "context")
ID_COLUMNS = ("_id", "id", "doc_id", "docid", "corpus_id")


@dataclass
class Document:
    name: str
    kind: str
    text: str
    external_id: str | None = None  # a row id that labelled pairs may refer to


@dataclass
class ChunkSettings:
    size: int = 256
    overlap: int = 32

    def validate(self) -> None:
        if not 16 <= self.size <= 8192:
            raise WorkspaceError(f"chunk size {self.size} is out of range; use 16 to 8192 tokens")
        if not 0 <= self.overlap < self.size // 2:
            raise WorkspaceError(f"overlap {self.overlap} must be at least 0 and under half "
                                 f"the chunk size ({self.size // 2})")


@dataclass
class IngestReport:
    corpus_id: int
    documents: int = 0
    chunks: int = 0
    duplicates: int = 0

    def summary(self) -> str:
        return (f"{plural(self.documents, 'document')}, {plural(self.chunks, 'chunk')}, "
                f"{plural(self.duplicates, 'duplicate chunk')} removed")


# -- loaders ----------------------------------------------------------------------------
def check_name(name: str) -> str:
    """Uploaded names are stored as given: the ``check_label`` rule, and anything that looks
    like a path is refused too."""
    if (not name or "/" in name or "\\" in name or name.startswith(".") or unprintable(name)):
        raise WorkspaceError(f"file name {name!r} is not a plain file name; rename it to "
                             "something like report.pdf and upload again")
    return name


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def check_upload(name: str, data: bytes, supported: Iterable[str]) -> str:
    """The checks every uploaded file passes first; returns its lower-case suffix."""
    check_name(name)
    suffix = Path(name).suffix.lower()
    if suffix not in supported:
        raise WorkspaceError(f"{name}: unsupported file type {suffix or '(none)'}; use one of "
                             + ", ".join(supported))
    if len(data) > MAX_FILE_BYTES:
        raise WorkspaceError(f"{name}: {len(data) / 2**20:.1f} MiB is over the "
                             f"{MAX_FILE_BYTES / 2**20:.0f} MiB limit; split it into smaller files")
    if not data.strip():
        raise WorkspaceError(f"{name}: the file is empty; pick a file with some text in it")
    return suffix


def decode_text(name: str, data: bytes) -> str:
    # Notepad and Excel save "Unicode text" as UTF-16 with a byte-order mark; its zero bytes
    # would otherwise look binary.
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                raise WorkspaceError(f"{name}: starts like {encoding.upper()} text but does not "
                                     "decode; re-save it as UTF-8 text") from None
    if b"\x00" in data[:8192]:
        raise WorkspaceError(f"{name}: looks like a binary file, not text; upload the original "
                             "document (pdf, docx, ...) or a UTF-8 text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise WorkspaceError(f"{name}: not valid UTF-8 (byte {e.start}); re-save it as UTF-8 "
                             "text") from None
    return text


def load_file(name: str, data: bytes) -> list[Document]:
    """Read one uploaded file into documents; raises WorkspaceError with a one-line reason."""
    suffix = check_upload(name, data, SUPPORTED)
    if suffix in TEXT_KINDS:
        docs = [Document(name, TEXT_KINDS[suffix], decode_text(name, data))]
    elif suffix == ".pdf":
        docs = [Document(name, "pdf", _pdf_text(name, data))]
    elif suffix in (".html", ".htm"):
        docs = [Document(name, "html", _html_text(decode_text(name, data)))]
    elif suffix == ".docx":
        docs = [Document(name, "docx", _docx_text(name, data))]
    else:
        docs = _table_documents(name, read_table(name, data))
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise WorkspaceError(f"{name}: no text found in it (a scanned PDF needs OCR first)")
    return docs


def folder_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """The supported files under ``folder``, and the ones skipped: hidden files and folders,
    and symlinks that lead outside the folder (a link must not pull /etc/passwd into a corpus).

    Linked folders are not followed, so a link cycle cannot make the walk endless.
    """
    root = Path(folder).resolve()
    files, skipped = [], []
    for parent, folders, names in os.walk(folder):
        folders[:] = sorted(d for d in folders if not d.startswith("."))
        for name in sorted(names):
            path = Path(parent) / name
            if path.suffix.lower() not in SUPPORTED:
                continue
            if name.startswith(".") or (path.is_symlink()
                                        and not path.resolve().is_relative_to(root)):
                skipped.append(path)
            elif path.is_file():
                files.append(path)
    return files, skipped


def _pdf_text(name: str, data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise WorkspaceError(f"{name}: the PDF is encrypted; save an unprotected copy")
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        raise WorkspaceError(f"{name}: could not read the PDF ({type(e).__name__}); "
                             "is it a complete, valid PDF file?") from None


def _html_text(html: str) -> str:
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "svg"]):
        tag.decompose()
    blocks = [b.get_text(" ", strip=True) for b in
              soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "td", "th"])]
    text = "\n\n".join(b for b in blocks if b)
    return text or soup.get_text("\n", strip=True)


def _docx_text(name: str, data: bytes) -> str:
    import zipfile

    import docx
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise WorkspaceError(f"{name}: could not read the Word file ({type(e).__name__}); "
                             "save it again as .docx") from None
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(p for p in parts if p.strip())


def read_table(name: str, data: bytes):
    """CSV, JSON Lines or Parquet into a DataFrame of strings."""
    import pandas as pd
    suffix = check_upload(name, data, sorted(TABLE_KINDS))
    if suffix != ".parquet":
        text = io.StringIO(_table_text(name, data, suffix))
    try:
        if suffix == ".csv":
            frame = pd.read_csv(text, dtype=str, keep_default_na=False)
        elif suffix == ".jsonl":
            frame = pd.read_json(text, lines=True, dtype=False)
        else:
            frame = pd.read_parquet(io.BytesIO(data))
    except Exception as e:  # pandas raises many types for malformed input
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise WorkspaceError(f"{name}: could not read it as {suffix[1:].upper()} ({reason})") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame


# What a table file that is no text often is: a workbook or document renamed, or exported wrong.
_NOT_TEXT = ((b"PK\x03\x04", "a zip archive, such as an Excel workbook"),
             (b"\xd0\xcf\x11\xe0", "an old Excel or Word file"), (b"%PDF", "a PDF"))


def _table_text(name: str, data: bytes, suffix: str) -> str:
    """A CSV or JSON Lines upload as text, else one line on what it is and how to fix it."""
    how = ("save it from the spreadsheet as CSV UTF-8 (comma-separated) and upload that"
           if suffix == ".csv" else "save it as UTF-8 text, one JSON object per line")
    what = next((w for magic, w in _NOT_TEXT if data.startswith(magic)), None)
    if what is None and b"\x00" in data[:8192] and not data.startswith(tuple(b for b, _ in _BOMS)):
        what = "binary data"
    if what is None:
        try:
            return decode_text(name, data)
        except WorkspaceError:
            what = "text, but not UTF-8"
    raise WorkspaceError(f"{name}: not a {suffix[1:].upper()} text file ({what}); {how}")


def pick_column(columns: Iterable[str], candidates: Iterable[str]) -> str | None:
    lowered = {c.lower().strip(): c for c in columns}
    return next((lowered[c] for c in candidates if c in lowered), None)


def _table_documents(name: str, frame, text_column: str | None = None) -> list[Document]:
    text_column = text_column or pick_column(frame.columns, TEXT_COLUMNS)
    if text_column is None:
        raise WorkspaceError(f"{name}: no text column; name one of the columns "
                             f"{'/'.join(TEXT_COLUMNS)} (found: {', '.join(frame.columns)})")
    id_column = pick_column(frame.columns, ID_COLUMNS)
    title_column = pick_column(frame.columns, ("title",))
    docs = []
    for i, row in enumerate(frame.to_dict("records")):
        text = _cell(row[text_column])
        if title_column and _cell(row[title_column]):
            text = f"{_cell(row[title_column])}\n\n{text}"
        ext = _cell(row[id_column]) if id_column else str(i)
        docs.append(Document(f"{name}#{ext}", "row", text, ext))
    return docs


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


# -- chunking ---------------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[\"'(\[A-Z0-9*#-])|\n")


def split_units(text: str, max_chars: int | None = None) -> list[tuple[str, bool]]:
    """Sentences with a flag saying whether each starts a new paragraph.

    Args:
        text: the document text.
        max_chars: cut longer "sentences" (text with no sentence breaks) into pieces of at
            most this many characters, at whitespace where there is some.
    """
    units: list[tuple[str, bool]] = []
    for paragraph in re.split(r"\n\s*\n", text):
        sentences = [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]
        for i, sentence in enumerate(sentences):
            pieces = cut_long(sentence, max_chars) if max_chars else [sentence]
            units.extend((piece, i == 0 and j == 0) for j, piece in enumerate(pieces))
    return units


def cut_long(text: str, max_chars: int) -> list[str]:
    """Pieces of at most ``max_chars`` characters, cut at the last space before the limit, or
    at the limit itself when a run has none.

    One pass with a moving start: the text is never copied whole, so the time grows with its
    length, not with its square (slicing off the rest at every cut made 40 MB take a minute).
    """
    pieces, start, end = [], 0, len(text)
    while end - start > max_chars:
        cut = text.rfind(" ", start + max_chars // 2, start + max_chars + 1)
        cut = cut if cut > start else start + max_chars
        pieces.append(text[start:cut].strip())
        start = cut
        while start < end and text[start].isspace():
            start += 1
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


TokenCounter = Callable[[list[str]], list[int]]


def count_in_batches(count_tokens: TokenCounter, texts: list[str]) -> list[int]:
    """Tokens per text, never fewer than one per ``CHARS_PER_TOKEN`` characters: a tokenizer
    maps an unbroken run of letters to one unknown token, which would let a megabyte pass as
    a single token and a 256-token chunk hold 1.5 MB."""
    return [max(n, -(-len(text) // CHARS_PER_TOKEN)) for i in range(0, len(texts), TOKENIZE_BATCH)
            for text, n in zip(texts[i:i + TOKENIZE_BATCH], count_tokens(texts[i:i + TOKENIZE_BATCH]))]


def chunk_text(text: str, settings: ChunkSettings, count_tokens: TokenCounter) -> list[tuple[str, int]]:
    """Pack sentences into chunks of at most ``settings.size`` tokens, returning (text, tokens).

    A chunk closes early at a paragraph break once it is half full, so chunks follow the
    author's structure; sentences longer than a chunk are cut at word boundaries.
    """
    # Tokenisers need memory in proportion to their input, so text without sentence breaks
    # (a log, a minified file) is cut by characters before any of it is tokenised.
    units = split_units(unicodedata.normalize("NFC", text),
                        max_chars=4 * settings.size * CHARS_PER_TOKEN)
    if not units:
        return []
    counts = count_in_batches(count_tokens, [u for u, _ in units])
    pieces: list[tuple[str, bool, int]] = []
    for (unit, starts_paragraph), n in zip(units, counts):
        for j, (part, m) in enumerate(_fit(unit, n, settings.size, count_tokens)):
            pieces.append((part, starts_paragraph and j == 0, m))
    chunks: list[tuple[str, int]] = []
    current: list[tuple[str, bool, int]] = []
    fresh = 0  # pieces in `current` that no earlier chunk holds

    def total(items):
        return sum(n for *_, n in items)

    def close():
        nonlocal current, fresh
        chunks.append((_join(current), total(current)))
        carried: list[tuple[str, bool, int]] = []
        for piece in reversed(current):
            if total(carried) + piece[2] > settings.overlap:
                break
            carried.insert(0, piece)
        current, fresh = (carried if len(carried) < len(current) else []), 0

    for piece in pieces:
        size = total(current)
        if current and fresh and (size + piece[2] > settings.size
                                  or (piece[1] and size >= settings.size // 2)):
            close()
            while current and total(current) + piece[2] > settings.size:
                current.pop(0)  # the overlap must never push a chunk over its size
        current.append(piece)
        fresh += 1
    if fresh:
        chunks.append((_join(current), total(current)))
    return chunks


@dataclass
class Preview:
    """How documents would be chunked, worked out exactly as ``ingest`` will (repeats within the
    upload dropped), on at most ``PREVIEW_CHARS`` characters so a huge upload still shows its
    preview within seconds; beyond that the chunk count is extrapolated and says so."""
    documents: int
    chunks: list[tuple[str, int]]  # the previewed chunks that would be stored
    complete: bool  # False: only the first PREVIEW_DOCUMENTS documents / PREVIEW_CHARS characters
    duplicates: int = 0  # previewed chunks dropped as repeats of others in the upload
    chars_previewed: int = 0
    chars_total: int = 0
    unread: list[int] = field(default_factory=list)  # characters of each document not previewed
    unread_part: int = 0  # characters left of the document the preview stopped in

    @property
    def estimated_chunks(self) -> int:
        """The chunk count for the whole upload: exact when complete; else the previewed chunks
        plus the rest at the previewed chunks per character, each unread document at least one
        chunk, less the previewed share of repeats. Scaling by characters alone undercounted an
        upload of short rows (one chunk each, however short): 1,524 for 1,598 stored."""
        if self.complete or not self.chars_previewed:
            return len(self.chunks)
        made = len(self.chunks) + self.duplicates
        per_char = made / self.chars_previewed
        rest = sum(max(1.0, n * per_char) for n in self.unread) + self.unread_part * per_char
        return len(self.chunks) + round(rest * len(self.chunks) / max(made, 1))


def preview(documents: list[Document], settings: ChunkSettings, count_tokens: TokenCounter,
            max_chars: int = PREVIEW_CHARS, max_documents: int = PREVIEW_DOCUMENTS,
            progress: Callable[[int, int], None] | None = None) -> Preview:
    """``progress`` is told (documents done, documents to preview) every 50 documents."""
    chunks: list[tuple[str, int]] = []
    deduper, duplicates = Deduper(), 0
    budget, read, part = max_chars, 0, 0
    previewed = documents[:max_documents]
    for read, doc in enumerate(previewed, start=1):
        for text, tokens in chunk_text(doc.text[:budget], settings, count_tokens):
            if deduper.is_duplicate(text):
                duplicates += 1
            else:
                chunks.append((text, tokens))
        part = max(0, len(doc.text) - budget)
        budget -= len(doc.text)
        if progress and (read % 50 == 0 or read == len(previewed)):
            progress(read, len(previewed))
        if budget <= 0:
            break
    unread = [len(d.text) for d in documents[read:]]
    return Preview(len(documents), chunks, not unread and not part, duplicates,
                   sum(len(d.text) for d in documents[:read]) - part,
                   sum(len(d.text) for d in documents), unread, part)


def _fit(unit: str, tokens: int, size: int, count_tokens: TokenCounter) -> list[tuple[str, int]]:
    """A sentence longer than a chunk, cut at words into parts of at most ``size`` tokens;
    words vary in tokens, so a part still too long is cut again."""
    words = unit.split()
    if tokens <= size:
        return [(unit, tokens)]
    if len(words) < 2:  # one unbroken run: cut by characters, which bound its count
        parts = cut_long(unit, size * CHARS_PER_TOKEN)
        return list(zip(parts, count_in_batches(count_tokens, parts)))
    step = max(1, int(len(words) * size / tokens * 0.9))
    parts = [" ".join(words[i:i + step]) for i in range(0, len(words), step)]
    return [fitted for part, n in zip(parts, count_in_batches(count_tokens, parts))
            for fitted in _fit(part, n, size, count_tokens)]


def _join(pieces: list[tuple[str, bool, int]]) -> str:
    out = ""
    for text, starts_paragraph, _ in pieces:
        out += ("\n\n" if starts_paragraph else " ") + text if out else text
    return out


# -- dedup --------------------------------------------------------------------------------
def normalise(text: str) -> str:
    return " ".join(re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower()))


class Deduper:
    """Exact repeats by hash of the normalised text; near repeats by MinHash with LSH banding,
    confirmed by the true Jaccard similarity of 3-word shingles (threshold 0.9)."""

    PERMUTATIONS, BANDS = 64, 16
    THRESHOLD = 0.9
    _PRIME = (1 << 61) - 1

    def __init__(self, seed: int = 7):
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, self._PRIME, self.PERMUTATIONS, dtype=np.uint64)
        self._b = rng.integers(0, self._PRIME, self.PERMUTATIONS, dtype=np.uint64)
        self._exact: set[str] = set()
        self._buckets: dict[tuple, list[int]] = {}
        self._shingles: list[set[str]] = []

    def _signature(self, shingles: set[str]) -> np.ndarray:
        hashes = np.array([int(text_hash(s)[:15], 16) for s in shingles], dtype=np.uint64)
        # Universal hashing mod 2^64 is enough to spread values; exactness is checked afterwards.
        return (np.outer(hashes, self._a) + self._b).min(axis=0)

    def is_duplicate(self, text: str) -> bool:
        """True if ``text`` repeats one already seen; otherwise remember it and return False."""
        norm = normalise(text)
        key = text_hash(norm)
        if key in self._exact:
            return True
        words = norm.split()
        shingles = {" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))}
        signature = self._signature(shingles)
        rows = self.PERMUTATIONS // self.BANDS
        bands = [(b, signature[b * rows:(b + 1) * rows].tobytes()) for b in range(self.BANDS)]
        candidates = {i for band in bands for i in self._buckets.get(band, [])}
        for i in candidates:
            other = self._shingles[i]
            if len(shingles & other) / len(shingles | other) >= self.THRESHOLD:
                return True
        self._exact.add(key)
        index = len(self._shingles)
        self._shingles.append(shingles)
        for band in bands:
            self._buckets.setdefault(band, []).append(index)
        return False


# -- ingest -------------------------------------------------------------------------------
def ingest(store: Store, corpus_name: str, documents: list[Document], count_tokens: TokenCounter,
           settings: ChunkSettings | None = None, progress: Callable[[int, int], None] | None = None
           ) -> IngestReport:
    """Chunk, dedup and store documents: all of them or none; ``progress`` is told
    (documents chunked, documents in all) every 50 documents.

    An existing corpus of that name is extended with its own chunk settings, and new chunks
    are deduplicated against the ones it already holds. The chunking runs before the write
    lock is taken (``prepare_ingest``) and only the inserts hold it (``store_ingest``): a
    40 MB ingest chunked for ~90 s under the lock, and a training job on another corpus got
    "database is locked" and died.
    """
    return store_ingest(store, prepare_ingest(store, corpus_name, documents, count_tokens,
                                              settings, progress))


@dataclass
class PreparedIngest:
    """Documents chunked and deduplicated against a corpus as it stood, not yet stored.

    Attributes:
        seen: the corpus's (id, stats) when it was read; None when there was no such corpus.
        rows: per document, the chunks kept as (ord, external_id, text, tokens).
    """
    corpus_name: str
    documents: list[Document]
    count_tokens: TokenCounter
    settings: ChunkSettings
    seen: tuple[int, dict] | None
    rows: list[list[tuple[int, str | None, str, int]]]
    duplicates: int


def _corpus_state(store: Store, name: str) -> tuple[int, dict] | None:
    found = [c for c in store.corpora() if c.name == name]
    return (found[0].id, found[0].stats) if found else None


def prepare_ingest(store: Store, corpus_name: str, documents: list[Document],
                   count_tokens: TokenCounter, settings: ChunkSettings | None = None,
                   progress: Callable[[int, int], None] | None = None) -> PreparedIngest:
    """The chunking and dedup of ``ingest``, reading the workspace but writing nothing."""
    check_label(corpus_name, "corpus name")
    if not documents:
        raise WorkspaceError("nothing to ingest: add at least one file with text")
    seen = _corpus_state(store, corpus_name)
    if seen:
        settings = ChunkSettings(**store.corpus(seen[0]).settings["chunking"])
    settings = settings or ChunkSettings()
    settings.validate()
    deduper = Deduper()
    for row in store.chunks(seen[0]) if seen else []:
        deduper.is_duplicate(row["text"])
    rows, duplicates = [], 0
    for i, doc in enumerate(documents):
        kept: list[tuple[int, str | None, str, int]] = []
        for text, tokens in chunk_text(doc.text, settings, count_tokens):
            if deduper.is_duplicate(text):
                duplicates += 1
            else:
                kept.append((len(kept), doc.external_id, text, tokens))
        rows.append(kept)
        if progress and (i % 50 == 0 or i == len(documents) - 1):
            progress(i + 1, len(documents))
    if not any(rows):
        raise WorkspaceError(f"no chunks left: all {duplicates} repeat text already in "
                             f"'{corpus_name}' or in each other; nothing was added")
    return PreparedIngest(corpus_name, documents, count_tokens, settings, seen, rows, duplicates)


def store_ingest(store: Store, prepared: PreparedIngest) -> IngestReport:
    """Store what ``prepare_ingest`` chunked, in one transaction. Should another process have
    added to the corpus meanwhile, the documents are chunked again against what it holds now,
    under the lock: rare, and never a duplicate or a lost chunk. A new corpus that another
    process created meanwhile is theirs: this ingest is refused, as two racing for a name
    always were."""
    with store.transaction():
        now = _corpus_state(store, prepared.corpus_name)
        if now and not prepared.seen:
            raise WorkspaceError(f"a corpus named {prepared.corpus_name!r} already exists: "
                                 "another ingest created it while this one was chunking; pick "
                                 "another name, or add to that corpus")
        if now != prepared.seen:
            prepared = prepare_ingest(store, prepared.corpus_name, prepared.documents,
                                      prepared.count_tokens, prepared.settings)
        if prepared.seen:
            corpus_id, stats = prepared.seen
        else:
            corpus_id = store.create_corpus(prepared.corpus_name,
                                            {"chunking": prepared.settings.__dict__})
            stats = {}
        report = IngestReport(corpus_id, len(prepared.documents), sum(map(len, prepared.rows)),
                              prepared.duplicates)
        for doc, kept in zip(prepared.documents, prepared.rows):
            document_id = store.add_document(corpus_id, doc.name, doc.kind, len(doc.text))
            store.add_chunks(corpus_id, document_id, kept)
        store.set_corpus_stats(corpus_id, {
            "documents": stats.get("documents", 0) + report.documents,
            "chunks": stats.get("chunks", 0) + report.chunks,
            "duplicates": stats.get("duplicates", 0) + report.duplicates})
    return report
