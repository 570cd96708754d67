"""Labelled retrieval sets in the BEIR layout (Thakur et al., 2021), in and out of the workspace.

A BEIR folder holds ``corpus.jsonl`` (``_id``, optional ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``) and ``qrels/<split>.tsv`` (query-id, corpus-id, score with a header) or a
single ``qrels.tsv``. It is the common format of public retrieval benchmarks, so supporting it
lets users measure ragtune on standard sets and bring their own labelled data the same way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import demo
from .corpus import ChunkSettings, Document, IngestReport, TokenCounter, ingest
from .pairs import link_pairs, split
from .store import Store, WorkspaceError

DEMO_CORPUS = "python-stdlib-docs"


@dataclass
class BeirFolder:
    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, list[str]]]  # split -> query id -> relevant doc ids


def load_beir(folder: Path) -> BeirFolder:
    """A BEIR-layout folder: corpus.jsonl, queries.jsonl and qrels/{train,dev,test}.tsv or qrels.tsv."""
    folder = Path(folder)
    corpus_file, queries_file = folder / "corpus.jsonl", folder / "queries.jsonl"
    for f in (corpus_file, queries_file):
        if not f.is_file():
            raise WorkspaceError(f"{folder} is not a BEIR folder: {f.name} is missing")
    docs = [Document(f"{corpus_file.name}#{r['_id']}", "row",
                     (f"{r['title']}\n\n" if r.get("title") else "") + str(r.get("text") or ""),
                     str(r["_id"])) for r in _jsonl(corpus_file, ("_id",))]
    queries: dict[str, str] = {}
    for r in _jsonl(queries_file, ("_id", "text")):
        if str(r["_id"]) in queries:
            raise WorkspaceError(f"queries.jsonl repeats the _id {r['_id']!r}; ids must be unique")
        queries[str(r["_id"])] = str(r["text"])
    qrel_files = {p.stem: p for p in sorted((folder / "qrels").glob("*.tsv"))}
    if (folder / "qrels.tsv").is_file():
        qrel_files.setdefault("test", folder / "qrels.tsv")
    if not qrel_files:
        raise WorkspaceError(f"{folder} has no qrels: add qrels/test.tsv (query-id, corpus-id, score)")
    qrels = {split: _qrels(path) for split, path in qrel_files.items()}
    return BeirFolder(docs, queries, qrels)


def read_beir_raw(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, list[str]]]]:
    """Corpus and queries by id, and qrels by split, refusing duplicate ids."""
    data = load_beir(folder)
    corpus: dict[str, str] = {}
    for doc in data.documents:
        if doc.external_id in corpus:
            raise WorkspaceError(f"corpus.jsonl repeats the _id {doc.external_id!r}; ids must be unique")
        corpus[doc.external_id] = doc.text
    return corpus, data.queries, data.qrels


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise WorkspaceError(f"{path.name}: not valid UTF-8 (byte {e.start}); re-save it as "
                             "UTF-8") from None


def _jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    rows = []
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise WorkspaceError(f"{path.name} line {number}: not valid JSON") from None
        if not isinstance(row, dict):
            raise WorkspaceError(f"{path.name} line {number}: expected a JSON object")
        missing = [k for k in required if k not in row]
        if missing:
            raise WorkspaceError(f"{path.name} line {number}: missing {', '.join(missing)}")
        wrong = [k for k in ("_id", "title", "text") if k in row
                 and not isinstance(row[k], (str, int)) and row[k] is not None]
        if wrong:
            raise WorkspaceError(f"{path.name} line {number}: {', '.join(wrong)} must be text")
        rows.append(row)
    return rows


def _qrels(path: Path) -> dict[str, list[str]]:
    qrels: dict[str, list[str]] = {}
    for number, line in enumerate(_lines(path), 1):
        parts = line.split("\t")
        if number == 1 and not (parts[-1].strip().lstrip("-").isdigit()):
            continue  # header
        if not line.strip():
            continue
        if len(parts) < 3:
            raise WorkspaceError(f"{path.name} line {number}: expected query-id, corpus-id, "
                                 "score separated by tabs")
        try:
            score = int(parts[-1])
        except ValueError:
            raise WorkspaceError(f"{path.name} line {number}: the score {parts[-1][:20]!r} is "
                                 "not a whole number; use 1 for relevant, 0 for not") from None
        if score > 0:
            qrels.setdefault(parts[0], []).append(parts[1])
    return qrels


def import_beir(store: Store, folder: Path, corpus_name: str, count_tokens: TokenCounter,
                settings: ChunkSettings | None = None) -> tuple[IngestReport, list[int]]:
    """The corpus plus one pair set per qrels split (named after the split, already assigned)."""
    data = load_beir(folder)
    with store.transaction():
        report = ingest(store, corpus_name, data.documents, count_tokens, settings)
        pair_sets = []
        for split_name, qrels in sorted(data.qrels.items()):
            labels = [(qid, data.queries[qid], doc) for qid, docs in qrels.items()
                      if qid in data.queries for doc in docs]
            side = "train" if split_name == "train" else "test"
            pair_sets.append(link_pairs(store, report.corpus_id, f"qrels {split_name}", "beir",
                                        labels, side))
    return report, pair_sets


def load_demo(store: Store, count_tokens: TokenCounter, limit: int | None = None) -> tuple[int, int]:
    """The standard-library docstring corpus with its summary→body pairs, split 80/20."""
    if DEMO_CORPUS in {c.name for c in store.corpora()}:
        corpus = store.corpus(DEMO_CORPUS)
        return corpus.id, store.pair_sets(corpus.id)[0].id
    documents, labels = demo.documents(limit)
    with store.transaction():
        report = ingest(store, DEMO_CORPUS, documents, count_tokens, ChunkSettings(256, 32))
        pair_set_id = link_pairs(store, report.corpus_id, "docstring summaries", "demo", labels)
        split(store, pair_set_id, 0.2, seed=42)
    return report.corpus_id, pair_set_id


def export_beir(store: Store, pair_set_id: int, folder: Path) -> dict[str, int]:
    """Write the corpus of a pair set and its queries and labels, one qrels file per split."""
    pair_set = store.pair_set(pair_set_id)
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    chunks = store.chunks(pair_set.corpus_id)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps({"_id": str(c["id"]), "title": "", "text": c["text"]},
                               ensure_ascii=False) + "\n")
    pairs = store.pairs(pair_set_id)
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
