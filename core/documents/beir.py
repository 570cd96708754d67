"""Labelled retrieval sets in the BEIR layout (Thakur et al., 2021), in and out of the workspace.

A BEIR folder holds ``corpus.jsonl`` (``_id``, optional ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (query-id, corpus-id, score with a header) or a
single ``qrels.tsv``. It is the common format of public retrieval benchmarks, so supporting it
lets users measure ragtune on standard sets and bring their own labelled data the same way.

The files reach one parser, ``parse_beir``, as a mapping from their name inside the folder
(``corpus.jsonl``, ``qrels/test.tsv``…) to their bytes: ``folder_files`` reads a folder on the
server (the command line, whose user owns the server) and ``upload_files`` takes what a browser
sent, a zip of the folder or its files, read in memory. Uploaded names are only matched against
those few names, never used as paths.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.documents import corpus as corpus_module
from core.documents import demo
from core.documents.corpus import (
    ChunkSettings,
    Document,
    IngestReport,
    TokenCounter,
    ingest,
    prepare_ingest,
    store_ingest,
)
from core.documents.pairs import link_pairs, split
from core.measuring.evaluate import RetrievalSet
from core.workspace.disk import human_bytes
from core.workspace.errors import WorkspaceError
from core.workspace.outputs import output_folder
from core.workspace.store import PairSet, Store
from core.workspace.text import question_text

DEMO_CORPUS = "python-stdlib-docs"
CORPUS, QUERIES, QRELS = "corpus.jsonl", "queries.jsonl", "qrels.tsv"
MAX_ZIP_ENTRIES = 10_000
_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass
class BeirFolder:
    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, list[str]]]  # split -> query id -> relevant doc ids

    def summary(self) -> str:
        labels = ", ".join(f"{sum(map(len, q.values())):,} in {name}"
                           for name, q in sorted(self.qrels.items()))
        return (f"passages: {len(self.documents):,} · queries: {len(self.queries):,} · "
                f"relevance labels: {labels}")


def folder_files(folder: Path) -> dict[str, bytes]:
    """The BEIR files of a folder on the server, by their name inside it."""
    folder = Path(folder)
    paths = [folder / CORPUS, folder / QUERIES, folder / QRELS, *sorted((folder / "qrels").glob("*.tsv"))]
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in paths if path.is_file()}


def upload_files(uploads: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """The BEIR files a browser sent: one zip of the folder, or the files themselves
    (corpus.jsonl, queries.jsonl and qrels.tsv or one <split>.tsv per split).

    Args:
        uploads: (file name as the browser gave it, content) pairs; names are matched, never
            used as paths.
    """
    if not uploads:
        raise WorkspaceError("nothing uploaded; add a .zip of the BEIR folder or its files")
    zips = [u for u in uploads if u[0].lower().endswith(".zip")]
    if zips:
        if len(uploads) > 1:
            raise WorkspaceError("upload either one .zip of the BEIR folder or its loose files, "
                                 "not both")
        return zip_files(*zips[0])
    files: dict[str, bytes] = {}
    for name, data in uploads:
        key = _loose_name(name)
        if key in files:
            raise WorkspaceError(f"{name!r} is uploaded twice; keep one copy")
        files[key] = data
    _check_total(sum(len(d) for d in files.values()), "the upload")
    return files


def _loose_name(name: str) -> str:
    if name in (CORPUS, QUERIES, QRELS):
        return name
    stem, dot, suffix = name.rpartition(".")
    if dot and suffix == "tsv" and _SPLIT_NAME.fullmatch(stem):
        return f"qrels/{name}"
    raise WorkspaceError(f"{name[:80]!r} is not a BEIR file; upload corpus.jsonl, queries.jsonl "
                         "and qrels.tsv or <split>.tsv files, or a .zip of the folder")


def _check_total(size: int, source: str) -> None:
    limit = corpus_module.MAX_FILE_BYTES
    if size > limit:
        raise WorkspaceError(f"{source} unpacks to over {human_bytes(limit)}, the limit for "
                             "one import; import a smaller set")


def zip_files(name: str, data: bytes) -> dict[str, bytes]:
    """The BEIR files in a zip, read in memory: at its top or inside one folder, as zipping a
    folder makes them. Refuses encrypted, unsafe and oversized entries in one line."""
    label = name[:80]
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError):
        raise WorkspaceError(f"{label!r} is not a readable .zip file; zip the BEIR folder "
                             "again") from None
    with archive:
        entries = [e for e in archive.infolist() if not e.is_dir()]
        if len(entries) > MAX_ZIP_ENTRIES:
            raise WorkspaceError(f"{label!r} holds {len(entries):,} files; a BEIR folder needs "
                                 "three or four, zip only that folder")
        wanted = _beir_entries(label, entries)
        for entry in wanted.values():
            if entry.flag_bits & 0x1:
                raise WorkspaceError(f"{label!r} is password-protected; zip the folder without "
                                     "a password")
        _check_total(sum(e.file_size for e in wanted.values()), repr(label))
        files: dict[str, bytes] = {}
        left = corpus_module.MAX_FILE_BYTES
        for key, entry in wanted.items():  # the declared sizes may lie: count what is read
            try:
                with archive.open(entry) as member:
                    files[key] = member.read(left + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError,
                    RuntimeError, ValueError):  # what zipfile raises for damaged data
                raise WorkspaceError(f"{label!r} is damaged: {key} cannot be unpacked; zip the "
                                     "BEIR folder again") from None
            left -= len(files[key])
            _check_total(corpus_module.MAX_FILE_BYTES - left, repr(label))
    return files


def _beir_entries(label: str, entries: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """The zip entries of the BEIR files, by their name inside the folder that holds corpus.jsonl."""
    names = {}
    for entry in entries:
        parts = [p for p in entry.filename.replace("\\", "/").split("/") if p not in ("", ".")]
        if entry.filename.startswith(("/", "\\")) or ".." in parts or ":" in "".join(parts[:1]):
            raise WorkspaceError(f"{label!r} holds an entry named {entry.filename[:80]!r} that "
                                 "points outside the folder; zip the BEIR folder again")
        if parts and parts[0] != "__MACOSX" and not any(p.startswith(".") for p in parts):
            names[entry.filename] = PurePosixPath(*parts)
    corpora = [path for path in names.values() if path.name == CORPUS]
    if len(corpora) > 1:
        raise WorkspaceError(f"{label!r} holds {len(corpora)} corpus.jsonl files; zip one BEIR "
                             "folder at a time")
    root = corpora[0].parent if corpora else PurePosixPath()
    if len(root.parts) > 1:
        raise WorkspaceError(f"{label!r} keeps corpus.jsonl in {root}; zip the BEIR folder "
                             "itself so the file sits at the top or one folder down")
    wanted = {}
    for entry in entries:
        path = names.get(entry.filename)
        if path is None or path.parent not in (root, root / "qrels"):
            continue
        key = path.relative_to(root).as_posix()
        if key in (CORPUS, QUERIES, QRELS) or (key.startswith("qrels/") and key.endswith(".tsv")
                                               and _SPLIT_NAME.fullmatch(path.stem)):
            wanted[key] = entry
    return wanted


def parse_beir(files: Mapping[str, bytes], source: str) -> BeirFolder:
    """Parse BEIR files given by their name inside the folder (``corpus.jsonl``,
    ``queries.jsonl``, ``qrels/<split>.tsv`` or ``qrels.tsv``).

    Args:
        files: name inside the folder → content.
        source: what to call the set in messages (a folder path or an upload's name).
    """
    for name in (CORPUS, QUERIES):
        if name not in files:
            raise WorkspaceError(f"{source} is not a BEIR folder: {name} is missing")
    docs = [Document(f"{CORPUS}#{r['_id']}", "row",
                     (f"{r['title']}\n\n" if r.get("title") else "") + str(r.get("text") or ""),
                     str(r["_id"])) for r in _jsonl(CORPUS, files[CORPUS], ("_id",))]
    queries: dict[str, str] = {}
    for r in _jsonl(QUERIES, files[QUERIES], ("_id", "text")):
        if str(r["_id"]) in queries:
            raise WorkspaceError(f"queries.jsonl repeats the _id {r['_id']!r}; ids must be unique")
        queries[str(r["_id"])] = str(r["text"])
    qrel_files = {PurePosixPath(name).stem: name for name in sorted(files)
                  if name.startswith("qrels/") and name.endswith(".tsv")}
    if QRELS in files:
        qrel_files.setdefault("test", QRELS)
    if not qrel_files:
        raise WorkspaceError(f"{source} has no qrels: add qrels/test.tsv (query-id, corpus-id, score)")
    qrels = {split: _qrels(PurePosixPath(name).name, files[name]) for split, name in qrel_files.items()}
    return BeirFolder(docs, queries, qrels)


def load_beir(folder: Path) -> BeirFolder:
    """A BEIR-layout folder on the server: corpus.jsonl, queries.jsonl and
    qrels/{train,dev,test}.tsv or qrels.tsv."""
    return parse_beir(folder_files(folder), str(folder))


def read_beir_raw(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, list[str]]]]:
    """Corpus and queries by id, and qrels by split, refusing duplicate ids."""
    data = load_beir(folder)
    corpus: dict[str, str] = {}
    for doc in data.documents:
        if doc.external_id in corpus:
            raise WorkspaceError(f"corpus.jsonl repeats the _id {doc.external_id!r}; ids must be unique")
        corpus[doc.external_id] = doc.text
    return corpus, data.queries, data.qrels


def retrieval_set(folder: Path, split: str = "test") -> RetrievalSet:
    """One qrels split of a BEIR folder, ready for the evaluator (what ``evaluate DATA_DIR`` and
    ``train --eval`` measure on)."""
    corpus, queries, qrels = read_beir_raw(Path(folder))
    if split not in qrels:
        raise WorkspaceError(f"{folder} has no qrels for split {split!r} "
                             f"(found: {', '.join(sorted(qrels))})")
    return RetrievalSet.build(corpus, queries, {q: set(d) for q, d in qrels[split].items()})


def _lines(name: str, data: bytes) -> list[str]:
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise WorkspaceError(f"{name}: not valid UTF-8 (byte {e.start}); re-save it as "
                             "UTF-8") from None


def _jsonl(name: str, data: bytes, required: tuple[str, ...]) -> list[dict]:
    rows = []
    for number, line in enumerate(_lines(name, data), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise WorkspaceError(f"{name} line {number}: not valid JSON") from None
        if not isinstance(row, dict):
            raise WorkspaceError(f"{name} line {number}: expected a JSON object")
        missing = [k for k in required if k not in row]
        if missing:
            raise WorkspaceError(f"{name} line {number}: missing {', '.join(missing)}")
        wrong = [k for k in ("_id", "title", "text") if k in row
                 and not isinstance(row[k], (str, int)) and row[k] is not None]
        if wrong:
            raise WorkspaceError(f"{name} line {number}: {', '.join(wrong)} must be text")
        rows.append(row)
    return rows


def _qrels(name: str, data: bytes) -> dict[str, list[str]]:
    qrels: dict[str, list[str]] = {}
    for number, line in enumerate(_lines(name, data), 1):
        parts = line.split("\t")
        if number == 1 and not (parts[-1].strip().lstrip("-").isdigit()):
            continue  # header
        if not line.strip():
            continue
        if len(parts) < 3:
            raise WorkspaceError(f"{name} line {number}: expected query-id, corpus-id, "
                                 "score separated by tabs")
        try:
            score = int(parts[-1])
        except ValueError:
            raise WorkspaceError(f"{name} line {number}: the score {parts[-1][:20]!r} is "
                                 "not a whole number; use 1 for relevant, 0 for not") from None
        if score > 0:
            qrels.setdefault(parts[0], []).append(parts[1])
    return qrels


@dataclass
class BeirImport(IngestReport):
    """An ingest report plus the labels that could not be linked, so none is lost silently."""
    labels: int = 0
    unknown_queries: list[str] | None = None  # query ids of dropped labels (one per label)
    unknown_passages: list[str] | None = None  # corpus ids of dropped labels (one per label)
    wordless_queries: list[str] | None = None  # ids of queries the question rule refuses

    def _reasons(self) -> tuple[tuple[str, list[str] | None], ...]:
        return (("name unknown passages", self.unknown_passages),
                ("name unknown queries", self.unknown_queries),
                ("ask a query with no letter or digit", self.wordless_queries))

    @property
    def dropped(self) -> int:
        return sum(len(ids or []) for _, ids in self._reasons())

    def summary(self) -> str:
        text = super().summary()
        if self.dropped:
            parts = [f"{len(ids)} {why} ({_first(ids)})" for why, ids in self._reasons() if ids]
            text += f"; {self.dropped} of {self.labels} labels dropped: " + ", ".join(parts)
        return text

    def label_counts(self) -> dict[str, int]:
        """What ``summary`` says of the labels, as numbers (for ``--json``)."""
        return {"labels": self.labels, "dropped_labels": self.dropped,
                "unknown_passages": len(self.unknown_passages or []),
                "unknown_queries": len(self.unknown_queries or []),
                "wordless_queries": len(self.wordless_queries or [])}


def _first(ids: list[str], shown: int = 3) -> str:
    unique = list(dict.fromkeys(ids))
    return ", ".join(unique[:shown]) + (", …" if len(unique) > shown else "")


def import_beir(store: Store, source: BeirFolder | Path, corpus_name: str,
                count_tokens: TokenCounter, settings: ChunkSettings | None = None,
                progress: Callable[[int, int], None] | None = None) -> tuple[BeirImport, list[int]]:
    """The corpus plus one pair set per qrels split (named after the split, already assigned).

    A label naming a query or passage the files do not hold is dropped and counted in the
    report; when every label is dropped nothing is imported.

    Args:
        source: parsed BEIR files, or a folder on the server to read them from.
        progress: told (passages chunked, passages in all) as ``ingest`` goes.
    """
    data = source if isinstance(source, BeirFolder) else load_beir(source)
    prepared = prepare_ingest(store, corpus_name, data.documents, count_tokens, settings,
                              progress)
    with store.transaction():  # chunked above: the lock is held for the inserts only
        ingested = store_ingest(store, prepared)
        report = BeirImport(**ingested.__dict__, unknown_queries=[], unknown_passages=[],
                            wordless_queries=[])
        stored = {r["external_id"] for r in store.chunks(report.corpus_id)}
        linked = {}
        for split_name, qrels in sorted(data.qrels.items()):
            labels = []
            for qid, docs in qrels.items():
                for doc in docs:
                    report.labels += 1
                    if qid not in data.queries:
                        report.unknown_queries.append(qid)
                    elif doc not in stored:
                        report.unknown_passages.append(doc)
                    elif question_text(data.queries[qid]) is None:  # the one question rule
                        report.wordless_queries.append(qid)
                    else:
                        labels.append((qid, data.queries[qid], doc))
            if labels:
                linked[split_name] = labels
        if not linked:
            raise WorkspaceError(f"none of the {report.labels} labels could be linked: "
                                 f"{report.summary().split('; ', 1)[-1]}; check the ids in the "
                                 "qrels files; nothing was imported")
        pair_sets = [link_pairs(store, report.corpus_id, f"qrels {split_name}", "beir", labels,
                                "train" if split_name == "train" else "test")
                     for split_name, labels in linked.items()]
    return report, pair_sets


def load_demo(store: Store, count_tokens: TokenCounter, limit: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
    """The standard-library docstring corpus with its summary→body pairs, split 80/20; the
    one already there if another process loaded it first. ``progress`` counts the documents
    chunked (about 3 s for 609 on a busy 2-core CPU)."""
    loaded = store.corpus_and_first_pair_set(DEMO_CORPUS)  # (corpus, pair set) ids
    if loaded:
        return loaded
    documents, labels = demo.documents(limit)
    with store.transaction():
        # Asked again under the write lock: two `make run` at once both saw no demo above, and
        # the second then ingested it over the first's ("no chunks left").
        loaded = store.corpus_and_first_pair_set(DEMO_CORPUS)
        if loaded:
            return loaded
        report = ingest(store, DEMO_CORPUS, documents, count_tokens, ChunkSettings(), progress)
        pair_set_id = link_pairs(store, report.corpus_id, "docstring summaries", "demo", labels)
        split(store, pair_set_id)
    return report.corpus_id, pair_set_id


def export_beir(store: Store, pair_set_id: int, folder: Path) -> dict[str, int]:
    """Write the corpus of a pair set and its queries and labels, one qrels file per split."""
    pair_set = store.pair_set(pair_set_id)
    with output_folder(folder, "beir-export") as partial:  # whole or not at all
        return _write_beir(store, pair_set, partial)


def _write_beir(store: Store, pair_set: PairSet, folder: Path) -> dict[str, int]:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    chunks = store.chunks(pair_set.corpus_id)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps({"_id": str(c["id"]), "title": "", "text": c["text"]},
                               ensure_ascii=False) + "\n")
    pairs = store.pairs(pair_set.id)
    queries = {p["query_id"]: p["query"] for p in pairs}
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    by_split: dict[str, list] = {}
    for p in pairs:
        by_split.setdefault(p["split"] or "test", []).append(p)
    for split_name, rows in by_split.items():
        with (folder / "qrels" / f"{split_name}.tsv").open("w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for p in rows:
                f.write(f"{p['query_id']}\t{p['chunk_id']}\t1\n")
    return {"corpus": len(chunks), "queries": len(queries), "qrels": len(pairs)}
