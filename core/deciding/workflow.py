"""Where the workspace stands in the flow decide → corpus → pairs → baseline → fine-tune →
label → results → search, and the one thing to do next. The Home page and the sidebar show it.

A fine-tuned model measured only on generated questions has proved nothing (they flatter it),
so once one exists the next step is labelling people's questions until they make a test set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from core.deciding.compare import comparison
from core.documents.pairs import chosen_by_a_person
from core.training import jobs, plan
from core.using.label import people_pair_set, test_questions
from core.using.runs import list_runs
from core.workspace.store import Store
from core.workspace.wording import plural

T = TypeVar("T")


@dataclass
class Step:
    key: str
    title: str
    page: str  # the view that does this step
    state: str  # a short line on what the workspace holds for it
    done: bool


@dataclass
class Status:
    steps: list[Step]
    next: Step
    action: str  # the label of the next-action button
    running: int
    queued: int
    comparison: str = ""  # the comparison that matters, in one line (core.deciding.compare.comparison)

    def summary(self) -> str:
        corpora, pair_sets = self.steps[1].state, self.steps[2].state
        jobs_part = f"{self.running} job{'s' * (self.running != 1)} running"
        return f"{corpora} · {pair_sets} · {jobs_part}"


def active_jobs(store: Store) -> list[jobs.Job]:
    return [j for j in jobs.all_jobs(store) if j.state in ("queued", "running")]


def status(store: Store, corpus_id: int | None = None) -> Status:
    """The steps and the next action; ``corpus_id`` (default: that of the newest measured run)
    is the corpus whose comparison that matters is told."""
    corpora = store.corpora()
    pair_sets = store.pair_sets()
    split = [p for p in pair_sets if {"train", "test"} <= set(store.split_counts(p.id))]
    runs = list_runs(store)
    measured = [r for r in runs if r.kind == "evaluation" and r.metrics]
    tuned = [r for r in runs if r.kind == "fine-tune" and r.metrics]
    active = active_jobs(store)
    people = [test_questions(store, p.id) for p in filter(None, (people_pair_set(store, c.id)
                                                                 for c in corpora))]
    judged = any(n >= plan.PEOPLE_TEST_MIN for n in people)
    running = sum(j.state == "running" for j in active)
    queued = len(active) - running
    steps = [
        # The answers live in the page address, not the workspace: the step is never "done".
        Step("decide", "Decide", "views/decide.py", "optional: RAG, fine-tuning or both?", False),
        Step("corpus", "Corpus", "views/corpus.py",
             plural(len(corpora), "corpus", "corpora"), bool(corpora)),
        Step("pairs", "Pairs", "views/pairs.py",
             f"{plural(len(pair_sets), 'pair set')} ({len(split)} split)", bool(split)),
        Step("baseline", "Baseline", "views/results.py", plural(len(measured), "evaluation"),
             bool(measured)),
        Step("finetune", "Fine-tune", "views/finetune.py",
             # A fine-tune that kept the base handed back no model of its own.
             f"{plural(sum(not r.kept_base for r in tuned), 'fine-tuned model')}"
             + (f", {sum(r.kept_base for r in tuned)} kept the base" if any(
                 r.kept_base for r in tuned) else "")
             + (f", {running} running" if running else "") + (f", {queued} queued" if queued else ""),
             bool(tuned)),
        Step("label", "Label", "views/label.py",
             f"{plural(max(people, default=0), 'people' + chr(39) + 's test question')}"
             + ("" if judged else f" (a test set from {plan.PEOPLE_TEST_MIN})"), judged),
        Step("results", "Results", "views/runs.py", plural(len(runs), "run"), bool(tuned)),
        Step("search", "Search", "views/search.py",
             "compare two models on real questions" if len(measured) + len(tuned) >= 1
             else "needs a measured model", False),
    ]
    if not corpora:
        step, action = steps[1], "Load the demo corpus"
    elif not split:
        step, action = steps[2], "Make question→passage pairs"
    elif not measured:
        step, action = steps[3], "Measure the baseline"
    elif not tuned and active:
        step, action = steps[4], "Watch the fine-tuning job"
    elif not tuned:
        step, action = steps[4], "Fine-tune the model"
    elif not judged:
        step, action = steps[5], "Label real questions to check the gain"
    else:
        step, action = steps[7], "Search with both models"
    matters = comparison(store, corpus_id, runs=runs)
    return Status(steps, step, action, running, queued,
                  matters.headline() if matters.pair_set_id is not None else "")


def current_choice(options: list[T], remembered: T | None, preferred: T | None = None) -> T:
    """Which corpus or pair set a page shows first: the one this person last chose, wherever they
    chose it, while it still exists; else ``preferred`` (e.g. the Results page's people's
    questions); else the newest, which is what someone who just added one wants to see.

    Example::

        >>> current_choice([1, 2, 3], 2), current_choice([1, 2, 3], 9, preferred=1)
        (2, 1)
        >>> current_choice([1, 2, 3], None)
        3

    Raises:
        ValueError: there is nothing to choose from (the page says so before asking).
    """
    if not options:
        raise ValueError("no options to choose from")
    for choice in (remembered, preferred):
        if choice is not None and choice in options:
            return choice
    return options[-1]


def preferred_pair_set(pair_sets: list, preferred: int | None = None) -> int | None:
    """The pair set a page shows first when the person has chosen none: ``preferred`` (e.g. the
    test set of the comparison that matters), else the newest one a person made; a set a run
    made for its own use (the documents-only run's generated questions) is never the default."""
    if preferred is not None:
        return preferred
    return next((p.id for p in reversed(pair_sets) if chosen_by_a_person(p)), None)
