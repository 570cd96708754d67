"""The general reference set: what a fine-tune costs outside the team's own documents.

A model tuned on one corpus can get worse on everything else, and a search box often serves
more than that corpus. ragtune ships one fixed set of queries over passages on general subjects
(Wikipedia articles on countries, people, history, film, science) to measure that cost: the
base and the fine-tuned model are scored on it after every fine-tune, and the merge with the
base (``core.training.merge``) is chosen so as not to lose much on it.

The set is ``data/general_set.json.gz`` beside this file, built by
``scripts/build_general_set.py`` from the Wikipedia excerpt in gensim 4.3.3's test data (CC BY-SA
3.0; ``data/GENERAL_SET_LICENSE.md`` says where from and how to attribute it). Its queries are
article titles with a section heading ("Alchemy: Etymology"), written by Wikipedia's editors,
and the relevant passages are the paragraphs of that section: the design of TREC Complex Answer
Retrieval (Dietz et al., TREC 2017). Loading checks the file's SHA256, so every machine scores
the same bytes and scores compare across machines.

Example::

    >>> general = load()
    >>> len(general.queries), len(general.passages)
    (400, 5370)
    >>> data = general.retrieval_set()
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

from core.measuring.evaluate import RetrievalSet
from core.workspace.errors import WorkspaceError

DATA = Path(__file__).resolve().parent / "data" / "general_set.json.gz"
LICENSE = DATA.with_name("GENERAL_SET_LICENSE.md")
# Of the JSON inside, not of the file: another zlib may pack the same JSON into other bytes.
SHA256 = "00510a75e27fcaf8ba0a6f723b4479362e3f882cc30f341cfe516930ff2135e7"
NAME = "general set (Wikipedia)"


@dataclass(frozen=True)
class GeneralSet:
    """The set as shipped: passage id -> text, query id -> text, query id -> relevant ids, and
    page id -> article title (a passage id is ``<page id>-<n>``), for attribution."""
    passages: dict[str, str]
    queries: dict[str, str]
    relevant: dict[str, list[str]]
    articles: dict[str, str]
    source: str
    sha256: str

    def retrieval_set(self, max_queries: int | None = None, max_passages: int | None = None,
                      seed: int = 0) -> RetrievalSet:
        """The whole set, or the first ``max_queries`` queries (the file's order is already a
        seeded shuffle) against their relevant passages and a seeded sample of the others, up
        to ``max_passages``: a cheaper ranking for comparing several models."""
        ids = list(self.queries)[:max_queries] if max_queries else list(self.queries)
        data = RetrievalSet.build(self.passages, {q: self.queries[q] for q in ids},
                                  {q: set(self.relevant[q]) for q in ids})
        return data.subset(max_passages, seed) if max_passages else data


@functools.lru_cache(maxsize=2)
def load(path: Path = DATA) -> GeneralSet:
    """The general set, checked against its SHA256; one line if it is missing or changed."""
    try:
        raw = gzip.decompress(Path(path).read_bytes())
    except OSError as e:
        if isinstance(e, gzip.BadGzipFile):
            raw = b""
        else:
            raise WorkspaceError(f"the general reference set {path} cannot be read "
                                 f"({e.strerror or e}); reinstall ragtune") from None
    except (EOFError, zlib.error):  # cut short or corrupted: not the set, whatever it was
        raw = b""
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise WorkspaceError(f"the general reference set {path} is not the one ragtune ships "
                             f"(SHA256 {digest[:12]}…, expected {SHA256[:12]}…), so its scores "
                             "would not compare with other machines'; reinstall ragtune or "
                             "rebuild it with scripts/build_general_set.py")
    data = json.loads(raw)
    return GeneralSet(data["passages"], data["queries"], data["relevant"], data["articles"],
                      data["source"], digest)
