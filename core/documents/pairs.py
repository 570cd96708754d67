"""Question→passage pairs: brought by the user, generated, and split without leakage.

Three sources feed a pair set:

* **Import** — a CSV/JSONL/Parquet of (query, passage) rows. Passages are matched to corpus
  chunks by normalised text; passages that match nothing become new chunks, so a pairs file is
  enough on its own.
* **Built-in pseudo-queries** — no LLM (``core.documents.pseudo``).
* **An LLM** — any OpenAI-compatible chat endpoint (``core.documents.llm``).

``split`` assigns train/test so that no passage, and no normalised-identical query, is on both
sides: pairs are grouped by connected components over shared chunks and shared queries.
"""
from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass

from core.documents.corpus import normalise, pick_column, read_table
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store
from core.workspace.text import question_text, text_hash

QUERY_COLUMNS = ("query", "question", "anchor", "queries", "questions", "q")
PASSAGE_COLUMNS = ("positive", "context", "passage", "answer", "document", "text", "pos",
                   "contexts")


GENERATED_SOURCES = ("builtin", "llm")


def chosen_by_a_person(pair_set) -> bool:
    """Whether a person made this pair set (imported, generated or labelled it), rather than a
    run making it for its own use: only those are the newest set a page shows first."""
    return not pair_set.settings.get("made_by")


def is_generated(pair_set) -> bool:
    """Whether a pair set's queries were generated rather than written by people."""
    return pair_set.source in GENERATED_SOURCES


# -- import --------------------------------------------------------------------------------
def guess_columns(columns: Iterable[str]) -> tuple[str | None, str | None]:
    columns = list(columns)
    return pick_column(columns, QUERY_COLUMNS), pick_column(columns, PASSAGE_COLUMNS)


def read_pairs_file(name: str, data: bytes, query_column: str | None = None,
                    passage_column: str | None = None) -> list[tuple[str, str]]:
    frame = read_table(name, data)
    guessed_q, guessed_p = guess_columns(frame.columns)
    query_column, passage_column = query_column or guessed_q, passage_column or guessed_p
    for role, column, names in (("query", query_column, QUERY_COLUMNS),
                                ("passage", passage_column, PASSAGE_COLUMNS)):
        if column is None or column not in frame.columns:
            raise WorkspaceError(f"{name}: no {role} column; name it {'/'.join(names[:4])} or "
                                 f"pick one of: {', '.join(frame.columns)}")
    if query_column == passage_column:
        raise WorkspaceError(f"{name}: the query and passage columns must differ")
    rows = [(str(q).strip(), str(p).strip())
            for q, p in zip(frame[query_column], frame[passage_column])]
    rows = [(q, p) for q, p in rows if q and p and q.lower() != "nan" and p.lower() != "nan"]
    if not rows:
        raise WorkspaceError(f"{name}: no rows with both a query and a passage")
    wordless = [q for q, _ in rows if question_text(q) is None]
    if wordless:  # the question rule of people's questions, for imported queries too
        raise WorkspaceError(f"{name}: {len(wordless)} of {len(rows)} queries have no letter or "
                             f"digit (e.g. {wordless[0]!r}: only emoji, punctuation or invisible "
                             "characters); remove those rows or write the questions in words")
    return rows


def file_is_generated(name: str, data: bytes) -> bool:
    """Whether a pairs file says (in a ``source`` column, as ``pairs export`` writes) that every
    one of its pairs was generated."""
    frame = read_table(name, data)
    return "source" in frame.columns and bool(len(frame)) and bool(
        frame["source"].astype(str).isin(GENERATED_SOURCES).all())


@dataclass
class ImportReport:
    pair_set_id: int
    pairs: int
    new_passages: int  # passages the corpus did not hold, added to it as chunks

    def summary(self) -> str:
        added = (f"; {self.new_passages} passages were not in the corpus and were added to it "
                 "as chunks" if self.new_passages else "")
        return f"Imported {self.pairs} pairs as pair set {self.pair_set_id}{added}"


def import_pairs(store: Store, corpus_id: int, name: str, rows: list[tuple[str, str]],
                 source: str = "imported") -> ImportReport:
    """Store (query, passage) rows as a pair set, linking each passage to its chunk; passages
    the corpus lacks become chunks of a new document, counted in the corpus stats."""
    with store.transaction():
        by_text = {text_hash(normalise(r["text"])): r["id"] for r in store.chunks(corpus_id)}
        new: dict[str, str] = {}
        for _, passage in rows:
            key = text_hash(normalise(passage))
            if key not in by_text:
                new.setdefault(key, passage)
        unique = list(new.values())
        if unique:
            document_id = store.add_document(corpus_id, f"passages of {name}", "pairs",
                                             sum(map(len, unique)))
            store.add_chunks(corpus_id, document_id,
                             [(i, None, p, len(p.split())) for i, p in enumerate(unique)])
            by_text = {text_hash(normalise(r["text"])): r["id"] for r in store.chunks(corpus_id)}
            stats = store.corpus(corpus_id).stats
            store.set_corpus_stats(corpus_id, {**stats,
                                               "documents": stats.get("documents", 0) + 1,
                                               "chunks": stats.get("chunks", 0) + len(unique)})
        pair_set_id = store.create_pair_set(corpus_id, name, source, {"new_passages": len(unique)})
        query_ids: dict[str, str] = {}
        store.add_pairs(pair_set_id, [
            (query_ids.setdefault(normalise(q), f"q{len(query_ids)}"), q,
             by_text[text_hash(normalise(p))], p) for q, p in rows])
    return ImportReport(pair_set_id, len(rows), len(unique))


def link_pairs(store: Store, corpus_id: int, name: str, source: str,
               labelled: list[tuple[str, str, str]], split: str | None = None) -> int:
    """A pair set from (query id, query, external chunk id) labels, e.g. BEIR qrels; every
    chunk cut from a labelled document counts as relevant."""
    with store.transaction():
        chunks_of: dict[str, list] = {}
        for row in store.chunks(corpus_id):
            if row["external_id"] is not None:
                chunks_of.setdefault(row["external_id"], []).append(row)
        pair_set_id = store.create_pair_set(corpus_id, name, source, {})
        rows, unknown = [], 0
        for query_id, query, external in labelled:
            found = chunks_of.get(external)
            if not found:
                unknown += 1
            rows.extend((query_id, query, c["id"], c["text"]) for c in found or [])
        if not rows:
            raise WorkspaceError(f"none of the {len(labelled)} labels names a passage in the "
                                 "corpus; check the ids in the labels")
        store.add_pairs(pair_set_id, rows)
        if split:
            store.set_splits(pair_set_id, {r["id"]: split for r in store.pairs(pair_set_id)})
        store.update_pair_set_settings(pair_set_id, {"skipped_unknown_passages": unknown})
    return pair_set_id


# -- split -----------------------------------------------------------------------------------
# The split's defaults, for the page, the CLI and the demo alike: a fifth of the pairs held out,
# as in the reference recipe's 80/20, with a fixed seed so a re-split lands the same way.
TEST_FRACTION = 0.2
SPLIT_SEED = 42


@dataclass
class SplitReport:
    train: int
    test: int
    train_queries: int
    test_queries: int
    groups: int


def connected_groups(keys: list[Iterable]) -> list[list[int]]:
    """Indices of items joined whenever two share a key (union-find), in order of first item.

    A pair keyed by its passage and its normalised query: two pairs of one group must land on
    the same side of any split, or the other side would hold an answer or question it has seen.

    Example::

        >>> connected_groups([("a", "x"), ("b", "y"), ("c", "x")])
        [[0, 2], [1]]
    """
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict = {}
    for i, item_keys in enumerate(keys):
        for key in item_keys:
            parent[find(i)] = find(first_with.setdefault(key, i))
    groups: dict[int, list[int]] = {}
    for i in range(len(keys)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def split(store: Store, pair_set_id: int, test_fraction: float = TEST_FRACTION,
          seed: int = SPLIT_SEED) -> SplitReport:
    """Assign whole connected groups (shared passage or same normalised query) to one side."""
    if not 0.0 < test_fraction < 1.0:
        raise WorkspaceError("test fraction must be between 0 and 1, e.g. 0.2")
    store.pair_set(pair_set_id)  # a missing set is named as such, not as "too few pairs"
    pairs = store.pairs(pair_set_id)
    if len(pairs) < 2:
        raise WorkspaceError("a split needs at least 2 pairs; add or generate more pairs first")
    groups = connected_groups([(("chunk", p["chunk_id"]), ("query", normalise(p["query"])))
                               for p in pairs])
    ordered = sorted(groups, key=lambda g: pairs[g[0]]["id"])
    random.Random(seed).shuffle(ordered)
    target = max(1, round(test_fraction * len(pairs)))
    assignment: dict[int, str] = {}
    test_count = 0
    for group in ordered:
        side = "test" if test_count < target else "train"
        if side == "test":
            test_count += len(group)
        for i in group:
            assignment[pairs[i]["id"]] = side
    if test_count == len(pairs) and len(ordered) > 1:
        raise WorkspaceError(f"a test fraction of {test_fraction} leaves none of the "
                             f"{len(pairs)} pairs for training; use a smaller one, e.g. 0.2")
    if test_count == len(pairs):
        raise WorkspaceError("all pairs share passages or queries, so no leakage-free split "
                             "exists; add pairs about other passages")
    store.set_splits(pair_set_id, assignment)
    settings = store.pair_set(pair_set_id).settings
    store.update_pair_set_settings(pair_set_id, {**settings, "split": {
        "test_fraction": test_fraction, "seed": seed}})
    queries = {side: len({pairs[i]["query_id"] for g in ordered for i in g
                          if assignment[pairs[i]["id"]] == side}) for side in ("train", "test")}
    return SplitReport(len(pairs) - test_count, test_count, queries["train"], queries["test"],
                       len(ordered))


def export_jsonl(store: Store, pair_set_id: int, split_name: str | None = None) -> str:
    """One JSON object per pair; ``source`` says where the pairs came from (builtin, llm,
    imported…), so training on the file plans for generated pairs without being told."""
    source = store.pair_set(pair_set_id).source  # an unknown id is an error, not an empty export
    return "".join(json.dumps({"query": r["query"], "positive": r["positive"],
                               "query_id": r["query_id"], "chunk_id": r["chunk_id"],
                               "split": r["split"], "source": source},
                              ensure_ascii=False) + "\n"
                   for r in store.pairs(pair_set_id, split_name))
