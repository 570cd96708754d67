"""People's questions, labelled against the corpus: the test set a team can trust.

Teams rarely have question→passage pairs, but they have questions: tickets, search logs, a list
an expert writes in ten minutes. Questions are imported without answers; the Label page (and
``python -m core label start``) shows one at a time with the corpus's best passages, and the
person grades each relevant one (2 relevant, 1 partly relevant), says none answers it, or skips.

The passages shown are pooled as TREC pools runs (Voorhees and Harman, 2005, "TREC: Experiment
and Evaluation in Information Retrieval"): the base model's and, when the corpus has one, the
fine-tuned model's top passages are interleaved without duplicates and shown in an order seeded
by the question, so nothing on the screen says which model found a passage and neither model's
answers are favoured. A keyword search finds what both missed.

Every click is a committed write: a closed tab, a restart or a killed server loses nothing.
Each change is logged with the action that made it, so ``undo`` reverts a whole action. After
every change the labelled questions are copied into the corpus's pair set "people's questions"
(source "people", graded): its first ``plan.PEOPLE_TEST_MAX`` questions are the test split, the
rest train, and once the test split holds ``plan.PEOPLE_TEST_MIN`` questions it is the test set
runs are judged on (``people_test_set``).
"""
from __future__ import annotations

import itertools
import logging
import random
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from core.documents.corpus import TABLE_KINDS, decode_text, normalise, pick_column, read_table
from core.documents.pairs import QUERY_COLUMNS
from core.measuring.evaluate import Progress as StageProgress
from core.measuring.evaluate import RetrievalSet
from core.training import plan
from core.workspace import models
from core.workspace.store import PairSet, Store, WorkspaceError
from core.workspace.text import question_text
from core.workspace.wording import plural

log = logging.getLogger(__name__)
PEOPLE_SET = "people's questions"
SOURCE = "people"
RELEVANT, PARTLY = 2, 1
GRADE_NAMES = {RELEVANT: "relevant", PARTLY: "partly relevant"}
MAX_QUESTIONS = 10_000  # per import: more than a team labels, and a sign of the wrong file
MAX_QUESTION_CHARS = 1_000  # longer is a pasted passage or a log line, not a question
POOL_DEPTH = 9  # passages shown, one key (1-9) each
SECONDS_PER_QUESTION = 12  # "fifty questions in ten minutes", until the person's own pace is known
PAUSE = 300  # a gap longer than this between two decisions is a break, not labelling


# -- questions -----------------------------------------------------------------------------------
@dataclass
class Question:
    id: int
    text: str
    state: str  # open, labelled, none (no passage answers it), skipped


@dataclass
class AddReport:
    """What an import did: new questions, ones already there, lines left out and why."""
    added: int
    already: int
    too_long: int = 0
    no_words: int = 0  # lines of only emoji, punctuation or invisible characters

    def summary(self) -> str:
        text = f"added {self.added} question{'s' * (self.added != 1)}, {self.already} already there"
        if self.too_long:
            text += (f"; left out {self.too_long} line{'s' * (self.too_long != 1)} longer than "
                     f"{MAX_QUESTION_CHARS:,} characters (a question is a sentence or two)")
        if self.no_words:
            text += f"; left out {_no_words(self.no_words)}"
        return text


def _no_words(n: int) -> str:
    return (f"{n} line{'s' * (n != 1)} with no letter or digit (only emoji, punctuation or "
            "invisible characters: nothing a passage could answer)")


def read_questions(name: str, data: bytes) -> list[str]:
    """Questions from an upload: a .txt with one per line, or a CSV/JSONL/Parquet table whose
    question column is named like a query column (query, question, …)."""
    suffix = Path(name).suffix.lower()
    if suffix in TABLE_KINDS:
        frame = read_table(name, data)
        column = pick_column(frame.columns, QUERY_COLUMNS)
        if column is None:
            raise WorkspaceError(f"{name}: no question column; name it question or query "
                                 f"(columns found: {', '.join(frame.columns)})")
        lines = [str(v) for v in frame[column] if v is not None]
    elif suffix in ("", ".txt", ".text", ".md"):
        lines = decode_text(name, data).splitlines()
    else:
        raise WorkspaceError(f"{name}: questions come as .txt (one per line), .csv, .jsonl or "
                             ".parquet with a question column")
    return _questions_in(name, lines)


def parse_pasted(text: str) -> list[str]:
    """Questions pasted into a box, one per line."""
    return _questions_in("the pasted text", text.splitlines())


def _questions_in(where: str, lines: list[str]) -> list[str]:
    questions = [q for q in (" ".join(line.split()) for line in lines)
                 if q and q.lower() not in ("nan", "none")]
    if not questions:
        raise WorkspaceError(f"{where} holds no questions; put one question per line")
    if len(questions) > MAX_QUESTIONS:
        raise WorkspaceError(f"{where} holds {len(questions):,} questions, more than the "
                             f"{MAX_QUESTIONS:,} one import takes; import a sample of them "
                             "(50 to a few hundred is plenty to judge models on)")
    return questions


def add_questions(store: Store, corpus_id: int, texts: list[str]) -> AddReport:
    """Store questions for a corpus; repeats (also within ``texts``) are counted, not added,
    and so are lines the question rule (``text.question_text``) refuses."""
    store.corpus(corpus_id)
    cleaned = [question_text(t) for t in texts]
    no_words = sum(c is None for c in cleaned)
    if texts and no_words == len(texts):
        raise WorkspaceError(f"nothing added: {_no_words(no_words)}; ask in words, e.g. "
                             "How do I reset my password?")
    worded = [c for c in cleaned if c is not None]
    keep = [t for t in worded if len(t) <= MAX_QUESTION_CHARS]
    now = time.time()
    with store.transaction():
        before = store.count_questions(corpus_id)
        store.add_question_rows(corpus_id, [(t, normalise(t)) for t in keep], now)
        after = store.count_questions(corpus_id)
    return AddReport(after - before, len(keep) - (after - before), len(worded) - len(keep), no_words)


def questions(store: Store, corpus_id: int) -> list[Question]:
    return [Question(r["id"], r["text"], r["state"]) for r in store.question_rows(corpus_id)]


def current(store: Store, corpus_id: int) -> Question | None:
    """The question to label now: the first open one."""
    row = store.first_open_question(corpus_id)
    return Question(row["id"], row["text"], row["state"]) if row else None


def labels_of(store: Store, question_id: int) -> dict[int, int]:
    """Chunk id -> grade of one question's labels."""
    return store.question_labels(question_id)


# -- progress ------------------------------------------------------------------------------------
@dataclass
class Progress:
    total: int
    labelled: int  # with at least one relevant passage
    none: int  # no passage answers it
    skipped: int
    open: int
    seconds_left: float

    @property
    def done(self) -> int:
        return self.labelled + self.none

    def summary(self, preparing: bool = False) -> str:
        """"3 of 40 labelled, about 7 minutes left"; while the page is still ``preparing`` the
        passages to show, no time left: that counts the person's labelling, not the wait."""
        minutes = self.seconds_left / 60
        left = (", preparing the passages to show first" if preparing and self.open
                else f", about {minutes:.0f} minute{'s' * (round(minutes) != 1)} left" if minutes >= 1
                else f", about {self.seconds_left:.0f} seconds left" if self.open else "")
        skipped = f" ({self.skipped} skipped)" if self.skipped else ""
        return f"{self.done} of {self.total} labelled{skipped}{left}"


def progress(store: Store, corpus_id: int) -> Progress:
    """Counts by state, and the time the open questions should take at the person's own
    median pace (breaks left out)."""
    counts = store.question_state_counts(corpus_id)
    times = store.decision_times(corpus_id, 51)
    gaps = [a - b for a, b in itertools.pairwise(times) if a - b < PAUSE]
    pace = statistics.median(gaps) if len(gaps) >= 2 else SECONDS_PER_QUESTION
    return Progress(sum(counts.values()), counts.get("labelled", 0), counts.get("none", 0),
                    counts.get("skipped", 0), counts.get("open", 0),
                    counts.get("open", 0) * pace)


# -- labelling -----------------------------------------------------------------------------------
def _question(store: Store, question_id: int):
    row = store.question_row(question_id)
    if row is None:
        raise WorkspaceError(f"no question {question_id}; it may have been deleted with its corpus")
    return row


# Compare-and-set: every write takes what the person saw (a passage's grade, a question's state
# and marks, the last action), and one made since by another session (a second tab, a second
# terminal) refuses it in one line instead of being overwritten or undone. UNCHECKED skips the
# check, for callers that act on what they have just read themselves.
UNCHECKED = object()


def _refuse_stale(what: str, now: str) -> None:
    raise WorkspaceError(f"{what} was changed in another session since it was shown (it is now "
                         f"{now}); nothing was changed: look again, then press the key again")


def _grade_name(grade: int | None) -> str:
    return GRADE_NAMES.get(grade, "unmarked")


def last_action(store: Store, corpus_id: int) -> int | None:
    """The number of the corpus's latest label action: what ``undo`` reverts, and what a session
    passes back to undo only the action it saw."""
    return store.last_label_action(corpus_id)


def set_label(store: Store, question_id: int, chunk_id: int, grade: int | None,
              seen: int | object | None = UNCHECKED) -> None:
    """Grade one passage for a question (None clears it), committed at once; refused when the
    passage's grade is no longer ``seen``, the one shown when the key was pressed."""
    if grade not in (None, RELEVANT, PARTLY):
        raise WorkspaceError(f"a label is {RELEVANT} (relevant) or {PARTLY} (partly relevant)")
    with store.transaction():
        question = _question(store, question_id)
        if store.chunk_corpus(chunk_id) != question["corpus_id"]:
            raise WorkspaceError(f"passage {chunk_id} is not in this question's corpus")
        before = labels_of(store, question_id).get(chunk_id)
        if seen is not UNCHECKED and before != seen:
            _refuse_stale("this passage's label", _grade_name(before))
        if before == grade:
            return
        store.log_label_change(question["corpus_id"], store.next_label_action(question["corpus_id"]),
                               question_id, chunk_id, before, grade)
        store.write_label(question_id, chunk_id, grade)
        _sync(store, question["corpus_id"])


def cycle_label(store: Store, question_id: int, chunk_id: int,
                seen: int | object | None = UNCHECKED) -> int | None:
    """What one key press does: unmarked → relevant → partly relevant → unmarked, from the
    grade ``seen`` on the screen (refused if it has changed since)."""
    now = labels_of(store, question_id).get(chunk_id) if seen is UNCHECKED else seen
    grade = {None: RELEVANT, RELEVANT: PARTLY, PARTLY: None}[now]
    set_label(store, question_id, chunk_id, grade, now)
    return grade


def decide(store: Store, question_id: int, state: str, seen_state: str | object = UNCHECKED,
           seen_marks: dict[int, int] | object = UNCHECKED) -> None:
    """Close a question: "labelled" (needs a marked passage), "none" (no passage answers it;
    marks are cleared) or "skipped"; "open" puts it back in the queue. Refused when the
    question's state is no longer the one shown (``seen_state``), and "none" when its marks are
    not (``seen_marks``): a stale "none" would clear another session's labels."""
    if state not in ("labelled", "none", "skipped", "open"):
        raise WorkspaceError(f"unknown question state {state!r}")
    with store.transaction():
        question = _question(store, question_id)
        corpus_id = question["corpus_id"]
        marks = labels_of(store, question_id)
        if seen_state is not UNCHECKED and question["state"] != seen_state:
            _refuse_stale("this question", question["state"])
        if state == "none" and seen_marks is not UNCHECKED and marks != seen_marks:
            _refuse_stale("this question's marks", plural(len(marks), "passage") + " marked")
        if state == "labelled" and not marks:
            raise WorkspaceError("mark at least one passage first (its number key), or press n "
                                 "if none answers the question")
        if question["state"] == state:
            return
        action = store.next_label_action(corpus_id)
        if state == "none":
            for chunk_id, grade in marks.items():
                store.log_label_change(corpus_id, action, question_id, chunk_id, grade, None)
                store.write_label(question_id, chunk_id, None)
        store.log_label_change(corpus_id, action, question_id, None, question["state"], state)
        store.set_question_state(question_id, state,
                                 time.time() if state in ("labelled", "none") else None)
        _sync(store, corpus_id)


def undo(store: Store, corpus_id: int, seen: int | object | None = UNCHECKED) -> Question | None:
    """Revert the last action on the corpus's labels; returns the question it touched. Refused
    when the last action is no longer ``seen`` (``last_action`` when the screen was shown):
    Undo never reverts what another session did since."""
    with store.transaction():
        action = last_action(store, corpus_id)
        if seen is not UNCHECKED and action != seen:
            raise WorkspaceError("another session labelled since this screen was shown, so Undo "
                                 "would revert its step, not yours; nothing was undone: look "
                                 "again, and undo from there if you still want to")
        if action is None:
            return None
        events = store.label_action_changes(corpus_id, action)
        for e in events:
            if e["chunk_id"] is None:
                store.reopen_question(e["question_id"], e["before"])
            else:
                store.write_label(e["question_id"], e["chunk_id"],
                                  None if e["before"] is None else int(e["before"]))
        store.forget_label_action(corpus_id, action)
        _sync(store, corpus_id)
    row = _question(store, events[0]["question_id"])
    return Question(row["id"], row["text"], row["state"])


def reopen_skipped(store: Store, corpus_id: int) -> int:
    """Put the skipped questions back in the queue; returns how many."""
    return store.reopen_skipped_questions(corpus_id)


# -- which passages to show ----------------------------------------------------------------------
@dataclass
class Passage:
    chunk_id: int
    text: str
    document: str


def fine_tuned_model(store: Store, corpus_id: int) -> str | None:
    """The folder of the newest model fine-tuned on a pair set of this corpus, if any."""
    from core.using.runs import list_runs
    mine = {p.id for p in store.pair_sets(corpus_id)}
    return next((r.model_path for r in list_runs(store)
                 if r.kind == "fine-tune" and r.model_path and r.pair_set_id in mine), None)


def _top(store: Store, corpus_id: int, model_name: str, text: str, k: int) -> list[int]:
    from core.measuring.evaluate import encode_one
    from core.using.search import corpus_index
    model = models.load(model_name)
    full = model.get_embedding_dimension()
    index, ids = corpus_index(store, corpus_id, model_name, full)
    query = encode_one(model, text)
    rows, _ = index.search(query, k)
    return [ids[i] for i in rows[0] if i >= 0]


def _pooled_models(store: Store, fine_tuned: str | None) -> list[tuple[str, str]]:
    """(model, how a person calls it) of each model whose passages are pooled: the base model,
    every installed one (a bigger model finds passages the small one misses) and the newest
    fine-tune."""
    return [(models.DEFAULT_MODEL, f"the base model ({models.DEFAULT_MODEL})"),
            *[(name, name) for name in models.installed_names(store.home)]] + (
        [(fine_tuned, "the fine-tuned model")] if fine_tuned else [])


def ready(store: Store, corpus_id: int, fine_tuned: str | None = None) -> bool:
    """Whether the passages of a question show at once: every pooled model is loaded and has
    the corpus encoded in this process. Before, ``prepare`` takes a while (encoding 1,600
    passages: about a minute per model on a busy 2-core CPU), and a page says so."""
    from core.using.search import index_ready
    return all(index_ready(store, corpus_id, name) for name, _ in _pooled_models(store, fine_tuned))


def prepare(store: Store, corpus_id: int, fine_tuned: str | None, progress: StageProgress) -> None:
    """Load each pooled model and build its index of the corpus (passage vectors come from the
    workspace cache, so only passages no model run encoded yet take time), reporting
    ``(stage, fraction)``: "encoding passages with the base model (…): 640 of 1,597"."""
    from core.measuring.evaluate import counted
    from core.using.search import corpus_index
    for name, called in _pooled_models(store, fine_tuned):
        progress(f"loading {called}", 0.0)
        dim = models.load(name).get_embedding_dimension()
        corpus_index(store, corpus_id, name, dim, counted(progress, f"encoding passages with {called}"))


def pool(question_id: int, rankings: list[list[int]], depth: int = POOL_DEPTH) -> list[int]:
    """Interleave rankings without duplicates up to ``depth`` passages, the first turn going to
    a ranking chosen by the question, then shuffle by the question: neither the set nor the
    order favours or reveals a model.

    >>> sorted(pool(1, [[10, 11, 12], [12, 13, 14]], depth=4))
    [10, 11, 12, 13]
    """
    order = rankings[question_id % len(rankings):] + rankings[:question_id % len(rankings)]
    picked: list[int] = []
    for rank in range(max(map(len, order), default=0)):
        for ranking in order:
            if rank < len(ranking) and ranking[rank] not in picked and len(picked) < depth:
                picked.append(ranking[rank])
    random.Random(question_id).shuffle(picked)
    return picked


def candidates(store: Store, corpus_id: int, question: Question,
               fine_tuned: str | None = None) -> list[Passage]:
    """The pooled passages for a question, then any labelled passage the pool lacks (found
    with the search box). Passage vectors come from the workspace cache."""
    shown = pool(question.id, [_top(store, corpus_id, m, question.text, POOL_DEPTH)
                               for m, _ in _pooled_models(store, fine_tuned)])
    shown += [c for c in labels_of(store, question.id) if c not in shown]
    return passages(store, shown)


def passages(store: Store, chunk_ids: list[int]) -> list[Passage]:
    """Passages by chunk id, in the order given."""
    rows = store.passage_rows(chunk_ids)
    return [Passage(i, rows[i]["text"], rows[i]["document"]) for i in chunk_ids if i in rows]


def find_passages(store: Store, corpus_id: int, words: str, limit: int = 8) -> list[Passage]:
    """Passages holding the most of the typed words: for what neither model found."""
    terms = list(dict.fromkeys(w.lower() for w in re.findall(r"\w{2,}", words)))[:8]
    if not terms:
        raise WorkspaceError("type a word or two that the passage contains")
    return passages(store, store.chunks_with_words(corpus_id, terms, limit))


# -- people's pair set ---------------------------------------------------------------------------
def people_pair_set(store: Store, corpus_id: int) -> PairSet | None:
    return next((p for p in store.pair_sets(corpus_id) if p.source == SOURCE), None)


def _sync(store: Store, corpus_id: int) -> None:
    """Rewrite the people's pair set from the labels (inside the caller's transaction): the
    first PEOPLE_TEST_MAX labelled questions are the test split; a later one trains unless it
    shares a passage, directly or through other questions, with a test question."""
    rows = store.labelled_rows(corpus_id)
    pair_set = people_pair_set(store, corpus_id)
    if pair_set is None:
        if not rows:
            return
        name = PEOPLE_SET
        taken = {p.name for p in store.pair_sets(corpus_id)}
        while name in taken:  # someone imported a set under this name
            name += " (labelled)"
        pair_set_id = store.create_pair_set(corpus_id, name, SOURCE, {})
    else:
        pair_set_id = pair_set.id
    by_question: dict[int, list] = {}
    for r in rows:
        by_question.setdefault(r["id"], []).append(r)
    # Questions sharing a passage are one group, on one side: a test question's answer never
    # shows up in training.
    parent = {q: q for q in by_question}

    def root(q: int) -> int:
        while parent[q] != q:
            parent[q] = parent[parent[q]]
            q = parent[q]
        return q

    first_with: dict[int, int] = {}
    for question_id, labels in by_question.items():
        for r in labels:
            parent[root(question_id)] = root(first_with.setdefault(r["chunk_id"], question_id))
    tested = {root(q) for q in list(by_question)[:plan.PEOPLE_TEST_MAX]}
    split_of = {q: "test" if root(q) in tested else "train" for q in by_question}
    store.replace_pairs(pair_set_id, [(f"h{r['id']}", r["text"], r["chunk_id"], r["passage"],
                                       split_of[r["id"]], r["relevance"]) for r in rows])


def people_test_set(store: Store, corpus_id: int) -> RetrievalSet | None:
    """People's labelled test questions against the corpus, once there are
    ``plan.PEOPLE_TEST_MIN`` of them; None before (generated questions must then do)."""
    pair_set = ready_people_set(store, corpus_id)
    return None if pair_set is None else RetrievalSet.from_pair_set(store, pair_set.id, "test")


def test_questions(store: Store, pair_set_id: int) -> int:
    return store.test_question_count(pair_set_id)


def ready_people_set(store: Store, corpus_id: int) -> PairSet | None:
    """The people's pair set once its test split can judge a model (``plan.PEOPLE_TEST_MIN``
    questions): what documents-only runs and Results judge on by default."""
    pair_set = people_pair_set(store, corpus_id)
    if pair_set is None or test_questions(store, pair_set.id) < plan.PEOPLE_TEST_MIN:
        return None
    return pair_set


def export_labels(store: Store, corpus_id: int) -> list[dict]:
    """Every graded label of the corpus's labelled questions: query, passage, relevance."""
    return [{"query": r["text"], "passage": r["passage"], "relevance": r["relevance"],
             "chunk_id": r["chunk_id"]} for r in store.labelled_rows(corpus_id)]


def judge_models(store: Store, pair_set_id: int, progress=None) -> list[int]:
    """Measure each base model (the bundled one and every one installed) and every model trained
    on the corpus (fine-tunes and documents-only rotations) on a pair set's test questions, each
    once: people's questions judge every run. A run that kept the base model is the base model
    and is not measured again. Returns the new evaluation ids.

    Args:
        progress: called with (stage, fraction) while a model is measured.
    """
    from core.measuring.evaluate import BASELINE, evaluate_named, finetuned_label, load_evaluations, save
    from core.using.runs import MODEL_RUNS, list_runs
    corpus_id = store.pair_set(pair_set_id).corpus_id
    mine = {p.id for p in store.pair_sets(corpus_id)}
    # Each base model: the bundled one and every one installed (by name, as it is measured).
    wanted = {models.DEFAULT_MODEL: BASELINE, **{m: m for m in models.installed_names(store.home)}}
    done = {e.model for e in load_evaluations(store, pair_set_id)}
    for run in reversed(list_runs(store)):  # oldest first, so labels follow the runs' order
        # A run that kept the base saved the base model unchanged: measuring its folder would
        # only re-encode every passage to find the base model's numbers again.
        if run.kind in MODEL_RUNS and run.model_path and run.pair_set_id in mine \
                and not run.kept_base:
            wanted.setdefault(run.model_path, finetuned_label(run.job_id)
                              if run.kind == "fine-tune" else run.name)
            if run.pair_set_id == pair_set_id and run.evaluation_id is not None:
                done.add(run.model_path)  # its job measured it on these very questions
    data = RetrievalSet.from_pair_set(store, pair_set_id, "test")
    new = []
    for model, name in wanted.items():
        if model not in done:  # each stage says which model: "baseline: encoding passages: …"
            told = (lambda stage, f, name=name: progress(f"{name}: {stage}", f)) if progress else None
            result = evaluate_named(model, data, store=store, progress=told)
            new.append(save(store, result, pair_set_id, name))
    return new
