"""Evaluations with their metrics, and the passage-vector cache (``evaluations``, ``metrics``,
``embeddings``): every statement of measuring, runs and their deletes on them, by name.

A mixin of ``Store`` (see its docstring for why): each method runs on the calling thread's
connection, so a delete of ``core.using.runs`` stays one transaction of the caller's.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator

PART = 900  # SQLite caps bound parameters: longer lists of keys go in parts


def _parts(keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), PART):
        yield keys[start:start + PART]


def _marks(keys: list) -> str:
    return ",".join("?" * len(keys))


class EvaluationRows:
    """Rows of ``evaluations``, ``metrics`` and ``embeddings``; mixed into ``Store``."""

    # -- evaluations -----------------------------------------------------------------------
    def add_evaluation(self, pair_set_id: int | None, model: str, label: str, job_id: int | None,
                       seconds: float, details: dict,
                       metrics: dict[int, dict[str, float]]) -> int:
        """An evaluation and its metrics (dimension -> name -> value), whole or not at all."""
        with self.transaction() as db:
            cur = db.execute("INSERT INTO evaluations (pair_set_id, model, label, job_id, created, "
                             "seconds, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (pair_set_id, model, label, job_id, time.time(), seconds,
                              json.dumps(details)))
            evaluation_id = int(cur.lastrowid)
            db.executemany("INSERT INTO metrics (evaluation_id, dim, name, value) VALUES (?, ?, ?, ?)",
                           [(evaluation_id, d, m, v) for d, ms in metrics.items()
                            for m, v in ms.items()])
        return evaluation_id

    def evaluation_rows(self, pair_set_id: int | None = None) -> list[sqlite3.Row]:
        """Every evaluation, or those of one pair set, oldest first."""
        if pair_set_id is not None:
            return self.query("SELECT * FROM evaluations WHERE pair_set_id = ? ORDER BY id", [pair_set_id])
        return self.query("SELECT * FROM evaluations ORDER BY id")

    def evaluation_metrics(self, evaluation_id: int) -> dict[int, dict[str, float]]:
        """Dimension -> metric name -> value."""
        metrics: dict[int, dict[str, float]] = {}
        for m in self.query("SELECT dim, name, value FROM metrics WHERE evaluation_id = ?",
                            [evaluation_id]):
            metrics.setdefault(m["dim"], {})[m["name"]] = m["value"]
        return metrics

    def set_evaluation_label(self, evaluation_id: int, label: str) -> None:
        self.db.execute("UPDATE evaluations SET label = ? WHERE id = ?", (label, evaluation_id))

    def delete_evaluation(self, evaluation_id: int) -> None:
        self.db.execute("DELETE FROM evaluations WHERE id = ?", (evaluation_id,))

    # -- the passage-vector cache ------------------------------------------------------------
    def cached_vectors(self, model_key: str, hashes: list[str]) -> dict[str, bytes]:
        """Text hash -> vector bytes of the passages the cache holds for a model."""
        cached: dict[str, bytes] = {}
        for part in _parts(hashes):
            rows = self.query(f"SELECT text_hash, vector FROM embeddings WHERE model_key = ? AND "
                              f"text_hash IN ({_marks(part)})", [model_key, *part])
            cached.update((r["text_hash"], r["vector"]) for r in rows)
        return cached

    def cache_vectors(self, rows: Iterable[tuple[str, str, bytes]]) -> None:
        """Rows of (model key, text hash, vector bytes), replacing any the cache holds."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO embeddings (model_key, text_hash, vector) "
                           "VALUES (?, ?, ?)", rows)

    def model_vector_bytes(self, key_prefix: str) -> int:
        """Bytes of the cached vectors of the models whose key starts with ``key_prefix``."""
        rows = self.query("SELECT COALESCE(SUM(LENGTH(vector)), 0) AS n FROM embeddings WHERE "
                          "model_key LIKE ?", [key_prefix + "%"])
        return int(rows[0]["n"])

    def text_vector_bytes(self, hashes: list[str]) -> int:
        """Bytes of the cached vectors, of any model, of the texts with these hashes."""
        return sum(int(self.query(f"SELECT COALESCE(SUM(LENGTH(vector)), 0) AS n FROM embeddings "
                                  f"WHERE text_hash IN ({_marks(part)})", part)[0]["n"])
                   for part in _parts(hashes))

    def forget_model_vectors(self, key_prefix: str) -> None:
        """Drop the cached vectors of the models whose key starts with ``key_prefix``."""
        self.db.execute("DELETE FROM embeddings WHERE model_key LIKE ?", (key_prefix + "%",))

    def forget_text_vectors(self, hashes: list[str]) -> None:
        """Drop the cached vectors, of every model, of the texts with these hashes."""
        for part in _parts(hashes):
            self.db.execute(f"DELETE FROM embeddings WHERE text_hash IN ({_marks(part)})", part)

    def vector_table_bytes(self) -> int:
        """Bytes of the cache table's pages and of its key index, overflow pages included
        (SQLite's dbstat); where SQLite is built without dbstat, the bytes of its rows."""
        try:
            rows = self.query("SELECT COALESCE(SUM(pgsize), 0) AS n FROM dbstat('main', 1) WHERE "
                              "name IN (SELECT name FROM sqlite_master WHERE tbl_name = 'embeddings')")
        except sqlite3.OperationalError:  # no such table: dbstat
            rows = self.query("SELECT COALESCE(SUM(LENGTH(model_key) + LENGTH(text_hash) + "
                              "LENGTH(vector)), 0) AS n FROM embeddings")
        return int(rows[0]["n"])
