"""The SQLite workspace: the one source of truth for corpora, pairs, evaluations and jobs.

Every pipeline step writes its result here and every page reads from here, so a browser refresh
or a server restart loses nothing. One database file (WAL mode, so readers never block the
writer) plus a ``files/`` folder, both under ``RAGTUNE_HOME`` (default ``./workspace``).

Schema changes are numbered migrations applied at start-up and tracked in ``PRAGMA user_version``.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Iterator

from core.workspace import ranges
# Re-exported: code written before core.workspace.errors existed imports these from here.
from core.workspace.errors import WorkspaceError, explain_db_error, explain_out_of_room, is_out_of_room  # noqa: F401
from core.workspace.store.chunks import ChunkRows
from core.workspace.store.evaluations import EvaluationRows
from core.workspace.store.jobs import JobRows
from core.workspace.store.labels import LabelRows
from core.workspace.text import check_label

MIGRATIONS: list[str] = [
    # 1: corpora, documents, chunks, pair sets, pairs
    """
    CREATE TABLE corpora (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created REAL NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        stats TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        chars INTEGER NOT NULL
    );
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY,
        corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
        document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        external_id TEXT,
        text TEXT NOT NULL,
        tokens INTEGER NOT NULL
    );
    CREATE INDEX chunks_corpus ON chunks(corpus_id, id);
    CREATE INDEX chunks_external ON chunks(corpus_id, external_id);
    CREATE TABLE pair_sets (
        id INTEGER PRIMARY KEY,
        corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        source TEXT NOT NULL,
        created REAL NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        UNIQUE(corpus_id, name)
    );
    CREATE TABLE pairs (
        id INTEGER PRIMARY KEY,
        pair_set_id INTEGER NOT NULL REFERENCES pair_sets(id) ON DELETE CASCADE,
        query_id TEXT NOT NULL,
        query TEXT NOT NULL,
        chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
        positive TEXT NOT NULL,
        split TEXT CHECK (split IN ('train', 'test'))
    );
    CREATE INDEX pairs_set ON pairs(pair_set_id, split);
    """,
    # 2: evaluations with per-dimension metrics, and the corpus-embedding cache
    """
    CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        pair_set_id INTEGER REFERENCES pair_sets(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        label TEXT NOT NULL,
        job_id INTEGER,
        created REAL NOT NULL,
        seconds REAL NOT NULL,
        details TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE metrics (
        evaluation_id INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
        dim INTEGER NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (evaluation_id, dim, name)
    );
    CREATE TABLE embeddings (
        model_key TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (model_key, text_hash)
    ) WITHOUT ROWID;
    """,
    # 3: background jobs and what they report while running
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'running', 'succeeded', 'failed', 'canceled', 'interrupted')),
        config TEXT NOT NULL,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        progress REAL NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT '',
        error TEXT,
        result TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE job_events (
        id INTEGER PRIMARY KEY,
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX job_events_job ON job_events(job_id, kind, id);
    """,
    # 4: which process runs a job and when it last showed life, so another server or the CLI on
    # the same workspace never marks a live job interrupted; the resume flag leaves the config
    # (where it used to be smuggled) so a job's config is always a valid training config.
    """
    ALTER TABLE jobs ADD COLUMN owner TEXT;
    ALTER TABLE jobs ADD COLUMN heartbeat REAL;
    ALTER TABLE jobs ADD COLUMN resume INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET resume = 1, config = json_remove(config, '$.resume')
        WHERE json_extract(config, '$.resume') IS NOT NULL;
    """,
    # 5: the vector cache as a rowid table. WITHOUT ROWID keeps rows in an index b-tree, whose
    # pages hold at most ~1 KB of a row locally, so every 1.5 KB 384-d vector spilled onto an
    # overflow page: 3.05 bytes on disk per byte of vector. A rowid table stores it in place
    # (1.40) and writes it about 5 times faster; the unique index keeps lookups by key.
    """
    CREATE TABLE embeddings_by_row (
        model_key TEXT NOT NULL,
        text_hash TEXT NOT NULL,
        vector BLOB NOT NULL,
        UNIQUE (model_key, text_hash)
    );
    INSERT INTO embeddings_by_row (model_key, text_hash, vector)
        SELECT model_key, text_hash, vector FROM embeddings;
    DROP TABLE embeddings;
    ALTER TABLE embeddings_by_row RENAME TO embeddings;
    """,
    # people's questions: asked without answers, then labelled against the corpus. A label
    # grades one passage (2 relevant, 1 partly); every change is logged, grouped by the user
    # action that made it, so an action can be undone whole.
    # Pairs carry the grade too, so NDCG can weigh a partly relevant passage below a relevant one.
    """
    CREATE TABLE questions (
        id INTEGER PRIMARY KEY,
        corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
        text TEXT NOT NULL,
        normalised TEXT NOT NULL,
        created REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'labelled', 'none', 'skipped')),
        decided REAL,
        UNIQUE (corpus_id, normalised)
    );
    CREATE TABLE labels (
        question_id INTEGER NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
        chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
        relevance INTEGER NOT NULL CHECK (relevance IN (1, 2)),
        PRIMARY KEY (question_id, chunk_id)
    );
    CREATE TABLE label_events (
        id INTEGER PRIMARY KEY,
        corpus_id INTEGER NOT NULL REFERENCES corpora(id) ON DELETE CASCADE,
        action INTEGER NOT NULL,
        question_id INTEGER NOT NULL REFERENCES questions(id) ON DELETE CASCADE,
        chunk_id INTEGER,
        before TEXT,
        after TEXT,
        ts REAL NOT NULL
    );
    CREATE INDEX label_events_corpus ON label_events(corpus_id, action);
    ALTER TABLE pairs ADD COLUMN relevance INTEGER NOT NULL DEFAULT 1;
    """,
    # 7: when the job's current stage (its status) began, so its progress bar and time left
    # describe that stage: a baseline, a validation pass and training each run from 0 to 100%.
    """
    ALTER TABLE jobs ADD COLUMN stage_started REAL;
    """,
]

@dataclass
class Corpus:
    id: int
    name: str
    created: float
    settings: dict
    stats: dict


@dataclass
class PairSet:
    id: int
    corpus_id: int
    name: str
    source: str
    created: float
    settings: dict


@dataclass
class PairSetSummary:
    """A pair set as listings show it: where it belongs and how it is split."""
    id: int
    corpus: str
    name: str
    source: str
    pairs: int
    split: dict[str, int]


@dataclass
class EvaluationSummary:
    id: int
    pair_set_id: int | None
    model: str
    label: str
    job_id: int | None
    created: float


def default_home() -> Path:
    return Path(os.environ.get("RAGTUNE_HOME", "workspace")).resolve()


class Store(ChunkRows, EvaluationRows, JobRows, LabelRows):
    """A thread-safe handle on one workspace.

    Each thread gets its own sqlite3 connection (sqlite3 connections must not be shared across
    threads); ``transaction()`` groups writes so that a failed step leaves nothing behind.

    Every SQL statement of ragtune is a named method of this class: this module holds the
    corpora and pair sets, and one module of this package per table family holds the rest as
    a mixin (``chunks.ChunkRows``,
    ``evaluations.EvaluationRows``, ``jobs.JobRows``, ``labels.LabelRows``). Mixins rather than repository objects (``store.jobs.claim``)
    so a caller keeps the one handle it has, and every method runs on the thread's connection:
    called inside ``transaction()`` it is part of that transaction, as the statement it
    replaced was.
    """

    def __init__(self, home: Path | str | None = None, busy_timeout: float = 30.0):
        """Args:
            home: the workspace folder (default: RAGTUNE_HOME, else ./workspace).
            busy_timeout: seconds a statement waits for another process's write lock before
                failing with "database is locked".
        """
        self.home = Path(home).resolve() if home else default_home()
        self.files = self.home / "files"
        self.path = self.home / "ragtune.db"
        try:
            self.files.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WorkspaceError(f"cannot create the workspace {self.home} ({error.strerror}); "
                                 "point RAGTUNE_HOME at a folder you can write to") from None
        # Every step writes (even a read takes SQLite's shared-memory lock), so a workspace
        # that cannot be written is refused here, in one line, rather than at its first write.
        unwritable = [p for p in (self.home, self.files, self.path, *self._wal_files())
                      if p.exists() and not os.access(p, os.W_OK)]
        if unwritable:
            which = "" if unwritable[0] == self.home else f" ({unwritable[0].name} cannot be written)"
            raise WorkspaceError(f"the workspace {self.home} is read-only{which}; make it "
                                 "writable, or point RAGTUNE_HOME at a folder you can write to")
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._migrate()

    def _wal_files(self) -> list[Path]:
        return [self.path.with_name(self.path.name + suffix) for suffix in ("-wal", "-shm")]

    # -- connections -------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: an exception inside rolls every write back."""
        db = self.db
        if db.in_transaction:  # nested: the outer transaction decides
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            # SQLite may already have rolled back on its own (disk full, I/O error); a second
            # ROLLBACK would then hide the real error behind "no transaction is active".
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _version(self, db: sqlite3.Connection) -> int:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise WorkspaceError(
                f"workspace {self.home} was written by a newer ragtune (schema {version}); "
                "upgrade ragtune or point RAGTUNE_HOME elsewhere")
        return version

    def _migrate(self) -> None:
        # Reading the version takes no lock, so a read-only command works while another
        # process writes; the write lock is taken only when there is something to migrate.
        if self._version(self.db) == len(MIGRATIONS):
            return
        with self.transaction() as db:
            version = self._version(db)  # another process may have migrated meanwhile
            for number, sql in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in sql.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, tuple(params)).fetchall()

    # -- corpora -----------------------------------------------------------------------
    def corpora(self) -> list[Corpus]:
        return [_corpus(r) for r in self.query("SELECT * FROM corpora ORDER BY id")]

    def corpus(self, ref: int | str) -> Corpus:
        column = "id" if isinstance(ref, int) else "name"
        rows = self.query(f"SELECT * FROM corpora WHERE {column} = ?", [ref])
        if not rows:
            raise WorkspaceError(f"no corpus {ref!r} in the workspace; ingest files first "
                                 "(python -m core corpus ingest FILE...)")
        return _corpus(rows[0])

    def find_corpus(self, ref: str) -> Corpus:
        """The corpus a person means by ``ref``, typed as its name or its id: the one resolver
        every command's ``--corpus`` goes through. A name wins over an id (a corpus may be
        named "2018"); only ASCII digits are an id ("²" is a digit to Python but no id)."""
        named = self.query("SELECT * FROM corpora WHERE name = ?", [ref])
        if named:
            return _corpus(named[0])
        number = ref.strip().isascii() and ref.strip().isdigit()
        if number:
            rows = self.query("SELECT * FROM corpora WHERE id = ?", [ranges.row_id(ref, "corpus id")])
            if rows:
                return _corpus(rows[0])
        names = ", ".join(repr(c.name) for c in self.corpora()[:5]) or "none yet"
        shown = ref.strip() if number else repr(ref)
        raise WorkspaceError(f"no corpus {shown} in the workspace, by name or id (corpora: "
                             f"{names}); python -m core corpus list shows them all")

    def create_corpus(self, name: str, settings: dict) -> int:
        check_label(name, "corpus name")  # here, so no way of creating a corpus skips the rule
        try:  # the UNIQUE constraint decides, so two processes racing for a name cannot both win
            cur = self.db.execute("INSERT INTO corpora (name, created, settings) VALUES (?, ?, ?)",
                                  (name, time.time(), json.dumps(settings)))
        except sqlite3.IntegrityError:
            raise WorkspaceError(f"a corpus named {name!r} already exists; pick another name "
                                 "or delete it first") from None
        return int(cur.lastrowid)

    def corpus_name_taken(self, name: str, other_than: int) -> bool:
        """Whether a corpus other than ``other_than`` is named ``name``."""
        return bool(self.query("SELECT 1 FROM corpora WHERE name = ? AND id != ?", [name, other_than]))

    def set_corpus_name(self, corpus_id: int, name: str) -> None:
        self.db.execute("UPDATE corpora SET name = ? WHERE id = ?", (name, corpus_id))

    def delete_corpus_row(self, corpus_id: int) -> None:
        """The corpus and, by cascade, its passages, questions, labels and pair sets."""
        self.db.execute("DELETE FROM corpora WHERE id = ?", (corpus_id,))

    def corpus_and_first_pair_set(self, name: str) -> tuple[int, int] | None:
        """(id, its first pair set's id) of the corpus named ``name``, if it has a pair set."""
        rows = self.query("SELECT c.id, MIN(p.id) AS pair_set_id FROM corpora c JOIN pair_sets p "
                          "ON p.corpus_id = c.id WHERE c.name = ? GROUP BY c.id", [name])
        return (rows[0]["id"], rows[0]["pair_set_id"]) if rows else None

    def set_corpus_stats(self, corpus_id: int, stats: dict) -> None:
        self.db.execute("UPDATE corpora SET stats = ? WHERE id = ?", (json.dumps(stats), corpus_id))

    def add_document(self, corpus_id: int, name: str, kind: str, chars: int) -> int:
        cur = self.db.execute(
            "INSERT INTO documents (corpus_id, name, kind, chars) VALUES (?, ?, ?, ?)",
            (corpus_id, name, kind, chars))
        return int(cur.lastrowid)

    def add_chunks(self, corpus_id: int, document_id: int,
                   chunks: Iterable[tuple[int, str | None, str, int]]) -> None:
        """Rows of (ord, external_id, text, tokens)."""
        self.db.executemany(
            "INSERT INTO chunks (corpus_id, document_id, ord, external_id, text, tokens) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(corpus_id, document_id, o, e, t, n) for o, e, t, n in chunks])

    def chunks(self, corpus_id: int, limit: int | None = None) -> list[sqlite3.Row]:
        sql = ("SELECT c.id, c.ord, c.external_id, c.text, c.tokens, d.name AS document "
               "FROM chunks c JOIN documents d ON d.id = c.document_id "
               "WHERE c.corpus_id = ? ORDER BY c.id")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.query(sql, [corpus_id])

    def documents(self, corpus_id: int) -> list[sqlite3.Row]:
        return self.query(
            "SELECT d.*, (SELECT COUNT(*) FROM chunks c WHERE c.document_id = d.id) AS chunks "
            "FROM documents d WHERE corpus_id = ? ORDER BY id", [corpus_id])

    # -- pair sets ---------------------------------------------------------------------
    def pair_sets(self, corpus_id: int | None = None) -> list[PairSet]:
        if corpus_id is None:
            rows = self.query("SELECT * FROM pair_sets ORDER BY id")
        else:
            rows = self.query("SELECT * FROM pair_sets WHERE corpus_id = ? ORDER BY id", [corpus_id])
        return [_pair_set(r) for r in rows]

    def pair_set(self, pair_set_id: int) -> PairSet:
        rows = self.query("SELECT * FROM pair_sets WHERE id = ?", [pair_set_id])
        if not rows:
            raise WorkspaceError(f"no pair set {pair_set_id}; list them with "
                                 "python -m core pairs list")
        return _pair_set(rows[0])

    def create_pair_set(self, corpus_id: int, name: str, source: str, settings: dict) -> int:
        check_label(name, "pair set name")  # the rule a rename applies
        if self.query("SELECT 1 FROM pair_sets WHERE corpus_id = ? AND name = ?", [corpus_id, name]):
            raise WorkspaceError(f"this corpus already has a pair set named {name!r}; "
                                 "pick another name")
        cur = self.db.execute(
            "INSERT INTO pair_sets (corpus_id, name, source, created, settings) "
            "VALUES (?, ?, ?, ?, ?)", (corpus_id, name, source, time.time(), json.dumps(settings)))
        return int(cur.lastrowid)

    def has_pair_set(self, pair_set_id: int | None) -> bool:
        return bool(self.query("SELECT 1 FROM pair_sets WHERE id = ?", [pair_set_id]))

    def has_corpus(self, corpus_id: int | None) -> bool:
        return bool(self.query("SELECT 1 FROM corpora WHERE id = ?", [corpus_id]))

    def corpus_of_pair_set(self, pair_set_id: int | None) -> int | None:
        """The corpus a pair set belongs to; None when there is no such pair set."""
        rows = self.query("SELECT corpus_id FROM pair_sets WHERE id = ?", [pair_set_id])
        return rows[0]["corpus_id"] if rows else None

    def pair_set_ids(self, corpus_id: int | None) -> list[int]:
        """The ids of a corpus's pair sets (none for no corpus)."""
        return [r["id"] for r in self.query("SELECT id FROM pair_sets WHERE corpus_id = ?", [corpus_id])]

    def pair_set_names(self) -> dict[int, tuple[str, str]]:
        """Pair set id -> (its name, its corpus's name)."""
        return {r["id"]: (r["name"], r["corpus"]) for r in self.query(
            "SELECT p.id, p.name, c.name AS corpus FROM pair_sets p JOIN corpora c ON c.id = p.corpus_id")}

    def set_pair_set_name(self, pair_set_id: int, name: str) -> None:
        self.db.execute("UPDATE pair_sets SET name = ? WHERE id = ?", (name, pair_set_id))

    def delete_pair_set_row(self, pair_set_id: int) -> None:
        """The pair set and, by cascade, its pairs and evaluations."""
        self.db.execute("DELETE FROM pair_sets WHERE id = ?", (pair_set_id,))

    def update_pair_set_settings(self, pair_set_id: int, settings: dict) -> None:
        self.db.execute("UPDATE pair_sets SET settings = ? WHERE id = ?",
                        (json.dumps(settings), pair_set_id))

    def add_pairs(self, pair_set_id: int, rows: Iterable[tuple[str, str, int, str]]) -> None:
        """Rows of (query_id, query, chunk_id, positive)."""
        self.db.executemany(
            "INSERT INTO pairs (pair_set_id, query_id, query, chunk_id, positive) "
            "VALUES (?, ?, ?, ?, ?)", [(pair_set_id, *r) for r in rows])

    def pairs(self, pair_set_id: int, split: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM pairs WHERE pair_set_id = ?"
        params: list[Any] = [pair_set_id]
        if split:
            sql += " AND split = ?"
            params.append(split)
        return self.query(sql + " ORDER BY id", params)

    def replace_pairs(self, pair_set_id: int,
                      rows: Iterable[tuple[str, str, int, str, str, int]]) -> None:
        """A pair set's pairs become ``rows`` of (query_id, query, chunk_id, positive, split,
        relevance): its pairs rewritten whole, inside the caller's transaction."""
        self.db.execute("DELETE FROM pairs WHERE pair_set_id = ?", (pair_set_id,))
        self.db.executemany(
            "INSERT INTO pairs (pair_set_id, query_id, query, chunk_id, positive, split, relevance) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", [(pair_set_id, *r) for r in rows])

    def set_splits(self, pair_set_id: int, assignment: dict[int, str]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE pairs SET split = NULL WHERE pair_set_id = ?", (pair_set_id,))
            db.executemany("UPDATE pairs SET split = ? WHERE id = ?",
                           [(s, pid) for pid, s in assignment.items()])

    def question_counts(self, corpus_id: int) -> tuple[int, int]:
        """People's questions of a corpus and their labels (graded passages), as a delete
        of the corpus would remove them."""
        row = self.query("SELECT COUNT(*) AS questions, (SELECT COUNT(*) FROM labels l JOIN "
                         "questions q ON q.id = l.question_id WHERE q.corpus_id = ?) AS labels "
                         "FROM questions WHERE corpus_id = ?", [corpus_id, corpus_id])[0]
        return row["questions"], row["labels"]

    def test_question_count(self, pair_set_id: int) -> int:
        """Distinct test questions of a pair set (a question with two answers counts once)."""
        return self.query("SELECT COUNT(DISTINCT query_id) AS n FROM pairs WHERE pair_set_id = ? "
                          "AND split = 'test'", [pair_set_id])[0]["n"]

    def split_counts(self, pair_set_id: int) -> dict[str, int]:
        rows = self.query("SELECT COALESCE(split, 'unsplit') AS s, COUNT(*) AS n FROM pairs "
                          "WHERE pair_set_id = ? GROUP BY s", [pair_set_id])
        return {r["s"]: r["n"] for r in rows}

    def pair_set_summaries(self, corpus_id: int | None = None) -> list[PairSetSummary]:
        """Every pair set (or those of one corpus) with its corpus name and split counts."""
        sql = ("SELECT s.id, c.name AS corpus, s.name, s.source FROM pair_sets s "
               "JOIN corpora c ON c.id = s.corpus_id")
        rows = self.query(sql + (" WHERE s.corpus_id = ?" if corpus_id is not None else "")
                          + " ORDER BY s.id", [] if corpus_id is None else [corpus_id])
        out = []
        for r in rows:
            split = self.split_counts(r["id"])
            out.append(PairSetSummary(r["id"], r["corpus"], r["name"], r["source"],
                                      sum(split.values()), split))
        return out

    # -- evaluations -------------------------------------------------------------------
    def evaluation_summaries(self) -> list[EvaluationSummary]:
        return [EvaluationSummary(r["id"], r["pair_set_id"], r["model"], r["label"], r["job_id"],
                                  r["created"])
                for r in self.query("SELECT id, pair_set_id, model, label, job_id, created "
                                    "FROM evaluations ORDER BY id")]


def _corpus(row: sqlite3.Row) -> Corpus:
    return Corpus(row["id"], row["name"], row["created"], json.loads(row["settings"]),
                  json.loads(row["stats"]))


def _pair_set(row: sqlite3.Row) -> PairSet:
    return PairSet(row["id"], row["corpus_id"], row["name"], row["source"], row["created"],
                   json.loads(row["settings"]))
