"""Reading passages (``chunks`` with their ``documents``) the ways search, labelling, deletes
and evaluation need, by name. A mixin of ``Store`` (see its docstring for why); writing
chunks stays with the corpora in ``Store`` itself.
"""
from __future__ import annotations

import sqlite3


class ChunkRows:
    """Reads of ``chunks``; mixed into ``Store``."""

    def chunk_ids(self, corpus_id: int) -> list[int]:
        """A corpus's passage ids in corpus order."""
        return [r["id"] for r in self.query("SELECT id FROM chunks WHERE corpus_id = ? ORDER BY id",
                                            [corpus_id])]

    def chunk_texts(self, corpus_id: int) -> list[str]:
        """A corpus's passage texts in corpus order."""
        return [r["text"] for r in self.query("SELECT text FROM chunks WHERE corpus_id = ? ORDER BY id",
                                              [corpus_id])]

    def chunk_texts_elsewhere(self, corpus_id: int) -> list[str]:
        """Every passage text of the other corpora."""
        return [r["text"] for r in self.query("SELECT text FROM chunks WHERE corpus_id != ?",
                                              [corpus_id])]

    def chunk_count(self, corpus_id: int) -> int:
        return self.query("SELECT COUNT(*) AS n FROM chunks WHERE corpus_id = ?", [corpus_id])[0]["n"]

    def chunk_corpus(self, chunk_id: int) -> int | None:
        """The corpus a passage belongs to; None when there is no such passage."""
        row = self.db.execute("SELECT corpus_id FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        return None if row is None else row[0]

    def texts_by_id(self, chunk_ids: list[int]) -> dict[int, str]:
        """Passage id -> text, for the ids that exist."""
        if not chunk_ids:
            return {}
        return {r["id"]: r["text"] for r in self.query(
            f"SELECT id, text FROM chunks WHERE id IN ({','.join('?' * len(chunk_ids))})", chunk_ids)}

    def passage_rows(self, chunk_ids: list[int]) -> dict[int, sqlite3.Row]:
        """Passage id -> (id, text, document: its document's name), for the ids that exist."""
        if not chunk_ids:
            return {}
        return {r["id"]: r for r in self.query(
            "SELECT c.id, c.text, d.name AS document FROM chunks c JOIN documents d ON "
            f"d.id = c.document_id WHERE c.id IN ({','.join('?' * len(chunk_ids))})", chunk_ids)}

    def chunks_with_words(self, corpus_id: int, terms: list[str], limit: int) -> list[int]:
        """Ids of the corpus's passages holding the most of ``terms`` (lower case), at least
        one; ties in corpus order."""
        score = " + ".join(["(instr(lower(text), ?) > 0)"] * len(terms))
        rows = self.query(f"SELECT id FROM (SELECT id, {score} AS hits FROM chunks WHERE corpus_id = ?) "
                          "WHERE hits > 0 ORDER BY hits DESC, id LIMIT ?", [*terms, corpus_id, limit])
        return [r["id"] for r in rows]
