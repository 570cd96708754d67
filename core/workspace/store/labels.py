"""People's questions and their labels (``questions``, ``labels``, ``label_events``): every
statement ``core.using.label`` runs, by name.

A mixin of ``Store`` (see its docstring for why): each method runs on the calling thread's
connection, so the compare-and-set of ``label.set_label``, ``decide`` and ``undo`` stays one
transaction of the caller's. The rules (which grades, who may overwrite what) stay in
``core.using.label``.
"""
from __future__ import annotations

import sqlite3
import time


class LabelRows:
    """Rows of ``questions``, ``labels`` and ``label_events``; mixed into ``Store``."""

    # -- questions -----------------------------------------------------------------------
    def count_questions(self, corpus_id: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM questions WHERE corpus_id = ?",
                               (corpus_id,)).fetchone()[0]

    def add_question_rows(self, corpus_id: int, rows: list[tuple[str, str]], created: float) -> None:
        """Rows of (text, normalised); one whose normalised text the corpus has is left out."""
        self.db.executemany("INSERT OR IGNORE INTO questions (corpus_id, text, normalised, created) "
                            "VALUES (?, ?, ?, ?)", [(corpus_id, t, n, created) for t, n in rows])

    def question_rows(self, corpus_id: int) -> list[sqlite3.Row]:
        """(id, text, state) of the corpus's questions, in the order they were added."""
        return self.query("SELECT id, text, state FROM questions WHERE corpus_id = ? ORDER BY id",
                          [corpus_id])

    def first_open_question(self, corpus_id: int) -> sqlite3.Row | None:
        rows = self.query("SELECT id, text, state FROM questions WHERE corpus_id = ? AND "
                          "state = 'open' ORDER BY id LIMIT 1", [corpus_id])
        return rows[0] if rows else None

    def question_row(self, question_id: int) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM questions WHERE id = ?", [question_id])
        return rows[0] if rows else None

    def question_state_counts(self, corpus_id: int) -> dict[str, int]:
        return {r["state"]: r["n"] for r in self.query(
            "SELECT state, COUNT(*) AS n FROM questions WHERE corpus_id = ? GROUP BY state", [corpus_id])}

    def decision_times(self, corpus_id: int, limit: int) -> list[float]:
        """When the corpus's latest ``limit`` decisions were made, newest first."""
        return [r["decided"] for r in self.query(
            "SELECT decided FROM questions WHERE corpus_id = ? AND decided IS NOT NULL "
            "ORDER BY decided DESC LIMIT ?", [corpus_id, limit])]

    def set_question_state(self, question_id: int, state: str, decided: float | None) -> None:
        self.db.execute("UPDATE questions SET state = ?, decided = ? WHERE id = ?",
                        (state, decided, question_id))

    def reopen_skipped_questions(self, corpus_id: int) -> int:
        """Skipped questions of the corpus back to open; how many."""
        return self.db.execute("UPDATE questions SET state = 'open' WHERE corpus_id = ? AND "
                               "state = 'skipped'", (corpus_id,)).rowcount

    # -- labels --------------------------------------------------------------------------
    def question_labels(self, question_id: int) -> dict[int, int]:
        """Chunk id -> grade of one question's labels."""
        return {r["chunk_id"]: r["relevance"] for r in self.query(
            "SELECT chunk_id, relevance FROM labels WHERE question_id = ?", [question_id])}

    def write_label(self, question_id: int, chunk_id: int, grade: int | None) -> None:
        """Grade a passage for a question; None removes its label."""
        if grade is None:
            self.db.execute("DELETE FROM labels WHERE question_id = ? AND chunk_id = ?",
                            (question_id, chunk_id))
        else:
            self.db.execute("INSERT OR REPLACE INTO labels (question_id, chunk_id, relevance) "
                            "VALUES (?, ?, ?)", (question_id, chunk_id, grade))

    def labelled_rows(self, corpus_id: int) -> list[sqlite3.Row]:
        """Every label of the corpus's labelled questions: the question's id and text, the
        passage's chunk id, text (``passage``) and grade (``relevance``), by question then
        passage."""
        return self.query(
            "SELECT q.id, q.text, l.chunk_id, l.relevance, c.text AS passage FROM questions q "
            "JOIN labels l ON l.question_id = q.id JOIN chunks c ON c.id = l.chunk_id "
            "WHERE q.corpus_id = ? AND q.state = 'labelled' ORDER BY q.id, l.chunk_id", [corpus_id])

    # -- the log of changes, for undo ----------------------------------------------------
    def log_label_change(self, corpus_id: int, action: int, question_id: int,
                         chunk_id: int | None, before, after) -> None:
        """One change of an action: a passage's grade (``chunk_id``) or the question's state
        (no chunk id), from ``before`` to ``after`` (None: unmarked)."""
        self.db.execute("INSERT INTO label_events (action, corpus_id, question_id, chunk_id, before, "
                        "after, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (action, corpus_id, question_id, chunk_id,
                         None if before is None else str(before), None if after is None else str(after),
                         time.time()))

    def next_label_action(self, corpus_id: int) -> int:
        return self.db.execute("SELECT COALESCE(MAX(action), 0) + 1 FROM label_events WHERE "
                               "corpus_id = ?", (corpus_id,)).fetchone()[0]

    def last_label_action(self, corpus_id: int) -> int | None:
        return self.query("SELECT MAX(action) AS a FROM label_events WHERE corpus_id = ?",
                          [corpus_id])[0]["a"]

    def label_action_changes(self, corpus_id: int, action: int) -> list[sqlite3.Row]:
        """The changes one action made, last first (the order to revert them in)."""
        return self.db.execute("SELECT * FROM label_events WHERE corpus_id = ? AND action = ? "
                               "ORDER BY id DESC", (corpus_id, action)).fetchall()

    def reopen_question(self, question_id: int, state: str) -> None:
        """A question's state put back as ``state``, undecided."""
        self.db.execute("UPDATE questions SET state = ?, decided = NULL WHERE id = ?",
                        (state, question_id))

    def forget_label_action(self, corpus_id: int, action: int) -> None:
        self.db.execute("DELETE FROM label_events WHERE corpus_id = ? AND action = ?",
                        (corpus_id, action))
