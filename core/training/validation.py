"""The validation set: training pairs held out to pick the best epoch, never the test queries.

Choosing the epoch (and whether to keep the untrained model) on the queries a run is then
reported on makes the reported gain optimistic by construction: the choice has already seen the
answers. So every run, from the Fine-tune page or ``python -m core train``/``finetune``, holds
out a share of its *training* pairs (``plan.validation_size``: a tenth, capped for generated
sets) and validates on those. Whole leakage groups (pairs sharing a passage or a normalised
query, as in ``pairs.split``) go to one side, so a validation query's passage is never trained
on; a training pair whose query is also a test query is never used for validation.

This is the usual train/validation/test protocol (e.g. Schmid, "Fine-tune Embedding models for
RAG", 2024, evaluates per epoch; we only move that evaluation off the test split).

Example::

    >>> held = hold_out([("q1", "p1"), ("q2", "p2"), ("q3", "p3")], generated=False, seed=0)
    >>> len(held.train), len(held.validation)
    (2, 1)
"""
from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.documents.corpus import normalise
from core.documents.pairs import connected_groups
from core.measuring.evaluate import RetrievalSet
from core.training.plan import validation_size
from core.workspace.store import Store, WorkspaceError

Pair = tuple[str, str]
VALIDATION_FILE = "validation.jsonl"  # in a run's folder: which pairs picked its epoch


@dataclass
class HeldOut:
    train: list[Pair]
    validation: list[Pair]

    def retrieval_set(self, corpus: list[str]) -> RetrievalSet:
        """The validation queries against ``corpus`` (their own passages added if missing)."""
        texts = list(dict.fromkeys([*corpus, *(p for _, p in self.validation)]))
        ids = {text: str(i) for i, text in enumerate(texts)}
        query_ids: dict[str, str] = {}
        queries: dict[str, str] = {}
        relevant: dict[str, set[str]] = {}
        for query, passage in self.validation:
            qid = query_ids.setdefault(normalise(query), f"v{len(query_ids)}")
            queries.setdefault(qid, query)
            relevant.setdefault(qid, set()).add(ids[passage])
        return RetrievalSet.build({ids[t]: t for t in texts}, queries, relevant)

    def save(self, path: Path) -> None:
        """The held-out pairs as JSONL, so a run's epoch choice can be checked afterwards."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"query": q, "positive": p}, ensure_ascii=False) + "\n"
                                for q, p in self.validation), encoding="utf-8")

    def summary(self) -> str:
        return (f"validation: {len(self.validation)} of the training pairs held out to pick the "
                f"best epoch (never the test queries); {len(self.train)} left to train on")


def hold_out(pairs: list[Pair], generated: bool, seed: int = 42,
             test_queries: Iterable[str] = ()) -> HeldOut:
    """Split training pairs into what is trained on and what picks the best epoch.

    Args:
        pairs: the training side's (query, passage) pairs.
        generated: the pairs were generated (their share is capped, see ``plan.validation_size``).
        seed: which groups are held out; the same seed holds out the same pairs on every rank.
        test_queries: queries the run is reported on; a group holding one is never held out.

    Raises:
        WorkspaceError: fewer than two leakage groups, so nothing can be held out and trained on.
    """
    unique = list(dict.fromkeys(pairs))
    tested = {normalise(q) for q in test_queries}
    groups = connected_groups([(("passage", p), ("query", normalise(q))) for q, p in unique])
    eligible = [g for g in groups if not any(normalise(unique[i][0]) in tested for i in g)]
    if len(groups) < 2 or not eligible:  # nothing to hold out and still train on
        raise WorkspaceError(f"the {len(unique)} training pairs cannot spare a validation "
                             "query (they share passages or are test queries); add pairs "
                             "about other passages")
    random.Random(seed).shuffle(eligible)
    target = validation_size(len(unique), generated)
    held: set[int] = set()
    for group in eligible:
        if len(held) >= target:
            break
        if len(held) + len(group) < len(unique):  # something must be left to train on
            held.update(group)
    return HeldOut([p for i, p in enumerate(unique) if i not in held],
                   [p for i, p in enumerate(unique) if i in held])


def for_pair_set(store: Store, pair_set_id: int, generated: bool, seed: int = 42) -> HeldOut:
    """``hold_out`` over a stored pair set's train side, kept clear of its test queries."""
    pair_set = store.pair_set(pair_set_id)
    train = [(p["query"], p["positive"]) for p in store.pairs(pair_set_id, "train")]
    test_queries = [p["query"] for p in store.pairs(pair_set_id, "test")]
    if not train or not test_queries:
        raise WorkspaceError(f"pair set '{pair_set.name}' needs a train/test split first "
                             "(Pairs page, or python -m core pairs split)")
    return hold_out(train, generated, seed, test_queries)
