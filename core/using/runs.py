"""Every evaluation and fine-tuning run in the workspace, as one list a person can manage.

A *run* is either a fine-tuning job (id ``j<job id>``; its metrics are those of the model it
handed back) or an evaluation that is not a job's fine-tuned result (id ``e<evaluation id>``:
a baseline, or a model measured on the Results page or with ``python -m core evaluate``). Runs,
pair sets and corpora can be renamed and deleted here; deleting removes the files and cached
passage vectors that only they used, so the disk space really comes back.

One rule decides every delete, from any page or the CLI: ``why_not_delete`` refuses anything
a queued or running job of any kind uses (``core.training.jobs.uses``: its pair set, its corpus, the
run whose model it starts from) and the run a live job is, and names the job.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from core.measuring.evaluate import StoredEvaluation, finetuned_label, load_evaluations
from core.training import jobs
from core.training.forgetting import kept_general
from core.training.merge import check_alpha, save_merged, tuned_path
from core.workspace import models
from core.workspace.disk import folder_bytes, human_bytes
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store
from core.workspace.text import check_label, text_hash
from core.workspace.wording import plural

log = logging.getLogger(__name__)
ACTIVE = jobs.ACTIVE
MODEL_RUNS = ("fine-tune", "documents-only")  # runs that hand back a model folder
JOB_RUN_KINDS = {"train": "fine-tune", "tune": "documents-only"}
SAME_AS_BASE = "(= base)"


@dataclass
class Run:
    """One row of the runs table.

    Attributes:
        id: ``j3`` for fine-tuning job 3, ``e5`` for evaluation 5.
        kind: "fine-tune", "documents-only" (core.training.tune) or "evaluation".
        name: what the person calls it (the evaluation label; renameable).
        model: the model measured or the base model trained.
        model_path: a folder the model loads from, once there is one (fine-tuned models).
        evaluation_id: the evaluation holding the run's metrics and per-query ranks, if any.
        metrics: dimension → metric name → value.
    """
    id: str
    kind: str
    name: str
    model: str
    pair_set_id: int | None
    pair_set: str
    corpus: str
    config: str
    device: str
    seconds: float
    state: str
    created: float
    evaluation_id: int | None = None
    job_id: int | None = None
    model_path: str | None = None
    kept_base: bool = False  # a run that handed back the base model unchanged ("= base")
    metrics: dict[int, dict[str, float]] = field(default_factory=dict, repr=False)
    # A fine-tune's merge with its base (core.training.forgetting): the α its model is, and that
    # model's NDCG@10 on the general reference set at full size; None where neither was measured.
    alpha: float | None = None
    general: float | None = None

    @property
    def shown_name(self) -> str:
        """The name every list shows: a run that kept the base model says so, so it is never
        read as a model of its own."""
        return f"{self.name} {SAME_AS_BASE}" if self.kept_base else self.name

    def ndcg(self) -> dict[int, float]:
        return {d: m["ndcg@10"] for d, m in sorted(self.metrics.items(), reverse=True)
                if "ndcg@10" in m}

    def row(self) -> dict:
        """A flat record for tables and CSV: one NDCG@10 column per dimension."""
        return {"id": self.id, "kind": self.kind, "name": self.shown_name, "model": self.model,
                "pair set": self.pair_set, "corpus": self.corpus, "config": self.config,
                "device": self.device, "seconds": round(self.seconds, 1), "state": self.state,
                **{f"ndcg@10 {d}d": round(v, 4) for d, v in self.ndcg().items()},
                "alpha": self.alpha,
                "general ndcg@10": None if self.general is None else round(self.general, 4)}

    def to_json(self) -> dict:
        return {"id": self.id, "kind": self.kind, "name": self.name, "model": self.model,
                "model_path": self.model_path, "pair_set_id": self.pair_set_id,
                "pair_set": self.pair_set, "corpus": self.corpus, "config": self.config,
                "device": self.device, "seconds": round(self.seconds, 3), "state": self.state,
                "created": self.created, "evaluation_id": self.evaluation_id,
                "job_id": self.job_id, "kept_base": self.kept_base, "alpha": self.alpha,
                "general_ndcg@10": self.general,
                "metrics": {str(d): m for d, m in sorted(self.metrics.items(), reverse=True)}}


def config_summary(config: dict) -> str:
    """The settings that tell two fine-tuning runs apart, in one short line."""
    parts = [plural(config["epochs"], "epoch")] if config.get("epochs") else []
    parts += [f"{config[k]} {label}" for k, label in
              (("batch_size", "batch"), ("max_pairs", "pairs max"), ("max_seq_length", "seq"))
              if config.get(k)]
    if config.get("learning_rate"):
        parts.append(f"lr {config['learning_rate']:.0e}")
    if config.get("loss") and config["loss"] != "mnrl":
        parts.append(config["loss"])
    return " · ".join(parts) or "default plan"


def job_settings(job: jobs.Job) -> str:
    """A job's settings in one line, for the runs table and the Fine-tune page alike: what its
    plan resolved (the epochs a default run re-planned included), or what a documents-only run
    kept."""
    if job.kind == "tune":
        return f"documents only · kept {job.result.get('kept', '–')}"
    if job.kind == "curve":  # core.training.curve: a fine-tune per share of the questions
        budget = job.config.get("budget_minutes")
        return "learning curve" + (f" · {budget:g} min in all" if budget else "")
    return config_summary({**job.config, **(job.result.get("plan") or {})})


def list_runs(store: Store) -> list[Run]:
    """Every run, newest first."""
    names = store.pair_set_names()  # pair set id → (its name, its corpus's name)
    evaluations = {e.id: e for e in load_evaluations(store)}
    runs: list[Run] = []
    claimed: set[int] = set()
    kept_paths: set[str] = set()  # model folders holding the unchanged base model
    for job in jobs.all_jobs(store):
        if job.kind not in JOB_RUN_KINDS or (job.state == "canceled" and not job.ran):
            continue  # a job canceled while it waited in the queue never ran
        evaluation = evaluations.get(job.result.get("finetuned_evaluation")
                                     or job.result.get("evaluation"))
        if evaluation:
            claimed.add(evaluation.id)
        pair_set_id = job.config.get("pair_set_id", evaluation.pair_set_id if evaluation else None)
        pair_set, corpus = names.get(pair_set_id, ("(deleted)", "(deleted)"))
        if job.kind == "tune" and not evaluation:  # no test questions to show it on
            pair_set, corpus = "", job.result.get("corpus", "")
        plan = job.result.get("plan") or {}
        model_path = job.result.get("model_path")
        runs.append(Run(
            id=f"j{job.id}", kind=JOB_RUN_KINDS[job.kind],
            name=evaluation.label if evaluation else
            (f"documents only for {corpus}" if job.kind == "tune" else finetuned_label(job.id)),
            model=job.config.get("model") or models.DEFAULT_MODEL, pair_set_id=pair_set_id,
            pair_set=pair_set, corpus=corpus,
            config=job_settings(job),
            device=plan.get("device", ""), seconds=job.elapsed, state=job.state,
            created=job.created, evaluation_id=evaluation.id if evaluation else None,
            job_id=job.id, model_path=model_path if model_path and Path(model_path).is_dir() else None,
            kept_base=job.result.get("kept") == "base",
            metrics=evaluation.metrics if evaluation else {},
            alpha=job.result.get("alpha"), general=kept_general(job.result.get("general"))))
        if runs[-1].kept_base and job.kind == "train" and model_path:
            kept_paths.add(model_path)
    for evaluation in evaluations.values():
        if evaluation.id in claimed:
            continue
        pair_set, corpus = names.get(evaluation.pair_set_id, ("", ""))
        runs.append(Run(
            id=f"e{evaluation.id}", kind="evaluation", name=evaluation.label,
            model=evaluation.model, pair_set_id=evaluation.pair_set_id, pair_set=pair_set,
            corpus=corpus, config=f"{evaluation.details.get('queries', '?')} queries · "
                                  f"{evaluation.details.get('corpus', '?')} passages",
            device="", seconds=evaluation.seconds, state="succeeded", created=evaluation.created,
            evaluation_id=evaluation.id, job_id=evaluation.job_id,
            kept_base=evaluation.model in kept_paths, metrics=evaluation.metrics))
    return sorted(runs, key=lambda r: r.created, reverse=True)


def get_run(store: Store, run_id: str) -> Run:
    """One run by its id; a bare number is read as a job id (``3`` is ``j3``)."""
    wanted = run_id.strip().lower()
    if wanted.isdigit():
        wanted = f"j{wanted}"
    for run in list_runs(store):
        if run.id == wanted:
            return run
    raise WorkspaceError(f"no run {run_id!r}; list them with python -m core runs list")


def evaluation_of(store: Store, run: Run) -> StoredEvaluation:
    """The stored evaluation behind a run (metrics and per-query ranks)."""
    if run.evaluation_id is None:
        raise WorkspaceError(f"run {run.id} has no measurements yet ({run.state})")
    rows = [e for e in load_evaluations(store, run.pair_set_id) if e.id == run.evaluation_id]
    if not rows:
        raise WorkspaceError(f"the measurements of run {run.id} were deleted")
    return rows[0]


# -- per-query comparison --------------------------------------------------------------------
@dataclass
class QueryChange:
    query_id: str
    query: str
    rank_a: int  # 1-based rank of the first relevant passage, 0 when not in the top 100
    rank_b: int

    @property
    def outcome(self) -> str:
        a, b = self.rank_a or 10**9, self.rank_b or 10**9
        return "win" if b < a else "loss" if b > a else "tie"


def outcome_sentence(changes: list[QueryChange], reference: str, challenger: str) -> str:
    """Who beats whom, with the challenger as the subject so the counts read in its favour."""
    counts = {o: sum(c.outcome == o for c in changes) for o in ("win", "loss", "tie")}
    return (f"{challenger} ranks the right passage higher than {reference} on {counts['win']} "
            f"questions, lower on {counts['loss']}, the same on {counts['tie']}.")


def wins_and_losses(store: Store, a: Run, b: Run, dim: int) -> list[QueryChange]:
    """Per test query: where the right passage ranks under run ``a`` and under run ``b``.
    Only queries both runs measured are compared; the biggest moves come first."""
    if a.pair_set_id != b.pair_set_id:
        raise WorkspaceError(f"runs {a.id} and {b.id} were measured on different pair sets; "
                             "compare runs of the same pair set")
    ranks = []
    for run in (a, b):
        per_query = evaluation_of(store, run).details.get("per_query", {}).get(str(dim))
        if per_query is None:
            raise WorkspaceError(f"run {run.id} was not measured at {dim} dimensions")
        ranks.append(per_query)
    text = {p["query_id"]: p["query"] for p in store.pairs(a.pair_set_id, "test")}
    changes = [QueryChange(q, text.get(q, q), ranks[0][q][0], ranks[1][q][0])
               for q in ranks[0] if q in ranks[1]]
    worst = 101  # "not in the top 100" counts as just below it
    changes.sort(key=lambda c: -abs((c.rank_a or worst) - (c.rank_b or worst)))
    return changes


# -- rename ------------------------------------------------------------------------------------
def _clean_name(name: str) -> str:
    return check_label((name or "").strip(), "name")


def rename_run(store: Store, run_id: str, name: str) -> None:
    run = get_run(store, run_id)
    if run.evaluation_id is None:
        raise WorkspaceError(f"run {run.id} has no result to name yet ({run.state}); "
                             "rename it once it has finished")
    store.set_evaluation_label(run.evaluation_id, _clean_name(name))


def rename_pair_set(store: Store, pair_set_id: int, name: str) -> None:
    pair_set = store.pair_set(pair_set_id)
    name = _clean_name(name)
    if any(p.name == name and p.id != pair_set_id for p in store.pair_sets(pair_set.corpus_id)):
        raise WorkspaceError(f"this corpus already has a pair set named {name!r}; pick another name")
    store.set_pair_set_name(pair_set_id, name)


def rename_corpus(store: Store, corpus_id: int, name: str) -> None:
    store.corpus(corpus_id)
    name = _clean_name(name)
    if store.corpus_name_taken(name, corpus_id):
        raise WorkspaceError(f"a corpus named {name!r} already exists; pick another name")
    store.set_corpus_name(corpus_id, name)


# -- delete ------------------------------------------------------------------------------------
@dataclass
class Deletion:
    """What a delete removes, told before it is confirmed and reported after."""
    what: str
    runs: list[str]
    pair_sets: int = 0
    chunks: int = 0
    bytes: int = 0
    questions: int = 0  # people's questions, asked of the corpus
    labels: int = 0  # their graded passages

    def summary(self) -> str:
        parts = [self.what]
        if self.pair_sets:
            parts.append(f"{self.pair_sets} pair set{'s' * (self.pair_sets != 1)}")
        if self.chunks:
            parts.append(f"{self.chunks} passages")
        if self.questions:
            parts.append(plural(self.questions, "question")
                         + (f" with {plural(self.labels, 'label')}" if self.labels else ""))
        if self.runs:
            parts.append(f"{len(self.runs)} run{'s' * (len(self.runs) != 1)} ({', '.join(self.runs)})")
        if self.bytes:
            parts.append(f"{human_bytes(self.bytes)} of files and cached vectors")
        return ", ".join(parts)


def _runs_of_pair_sets(store: Store, pair_set_ids: set[int]) -> list[Run]:
    return [r for r in list_runs(store) if r.pair_set_id in pair_set_ids]


def _jobs_of_pair_sets(store: Store, pair_set_ids: set[int]) -> list[int]:
    """Every job on these pair sets, including those canceled before they ran (no runs)."""
    return [j.id for j in jobs.all_jobs(store) if j.config.get("pair_set_id") in pair_set_ids]


def why_not_delete(store: Store, kind: str, ref: int | str) -> str | None:
    """The one rule for deletes, for every job kind: nothing a queued or running job uses
    (``core.training.jobs.uses``) may go, nor the run that job is.

    Args:
        kind: "run", "pair set" or "corpus".
        ref: the run id (``j3``, ``e5``), or the pair set's or corpus's id.
    Returns:
        the reason the delete is refused, in words every page and the CLI show as they are,
        or None when it may go ahead.
    """
    wanted = (kind, get_run(store, str(ref)).id if kind == "run" else int(ref))
    live = [j for j in reversed(jobs.all_jobs(store)) if j.state in ACTIVE]  # oldest first
    for job in live:
        if wanted == ("run", f"j{job.id}"):
            return (f"run j{job.id} is still {job.state}; cancel it on the Fine-tune page "
                    "first, then delete")
    for job in live:
        use = next((u for u in jobs.uses(store, job) if (u.kind, u.ref) == wanted), None)
        if use:
            return (f"job {job.id} is {job.state} and {use.why}; cancel it on the Fine-tune "
                    "page (or wait for it to end), then delete")
    return None


def _refuse_if_used(store: Store, kind: str, ref: int | str) -> None:
    reason = why_not_delete(store, kind, ref)
    if reason:
        raise WorkspaceError(reason)


def _model_cache_prefix(run: Run) -> str | None:
    """The embedding-cache key prefix of a fine-tuned model (its weights' fingerprint)."""
    return models.fingerprint(Path(run.model_path)) + ":" if run.model_path else None


def _plan_runs(store: Store, runs: list[Run]) -> tuple[int, list[str]]:
    """Bytes the runs' files and model caches take, and their cache prefixes."""
    size, prefixes = 0, []
    for run in runs:
        if run.job_id is not None and run.kind in MODEL_RUNS:
            size += folder_bytes(jobs.job_dir(store, run.job_id))
        prefix = _model_cache_prefix(run)
        if prefix:
            prefixes.append(prefix)
            size += store.model_vector_bytes(prefix)
    return size, prefixes


def _delete_runs(store: Store, runs: list[Run], prefixes: list[str]) -> None:
    """Rows inside the caller's transaction; folders after it (see callers)."""
    for prefix in prefixes:
        store.forget_model_vectors(prefix)
    for run in runs:
        # A job's baseline is a run of its own in the list, so it stays until deleted itself.
        if run.evaluation_id is not None:
            store.delete_evaluation(run.evaluation_id)
        if run.kind in MODEL_RUNS:
            jobs.forget(store, [run.job_id])


def _remove_folders(store: Store, runs: list[Run]) -> None:
    for run in runs:
        if run.kind in MODEL_RUNS:
            shutil.rmtree(jobs.job_dir(store, run.job_id), ignore_errors=True)


def plan_delete_run(store: Store, run_id: str) -> Deletion:
    run = get_run(store, run_id)
    size, _ = _plan_runs(store, [run])
    return Deletion(f"run {run.id} ({run.name})", [run.id], bytes=size)


def delete_run(store: Store, run_id: str) -> Deletion:
    """Delete a run: a fine-tuning job with its model folder, checkpoints, the evaluation of
    its model and that model's cached vectors; or one evaluation."""
    report = plan_delete_run(store, run_id)
    with store.transaction():  # the rule and the delete see the same jobs
        _refuse_if_used(store, "run", run_id)
        run = get_run(store, run_id)
        _, prefixes = _plan_runs(store, [run])
        _delete_runs(store, [run], prefixes)
    _remove_folders(store, [run])  # after the commit: a failed delete keeps the model
    log.info("deleted %s", report.summary())
    return report


def plan_delete_pair_set(store: Store, pair_set_id: int) -> Deletion:
    pair_set = store.pair_set(pair_set_id)
    runs = _runs_of_pair_sets(store, {pair_set_id})
    size, _ = _plan_runs(store, runs)
    return Deletion(f"pair set '{pair_set.name}'", [r.id for r in runs], bytes=size)


def delete_pair_set(store: Store, pair_set_id: int) -> Deletion:
    """Delete a pair set with every run measured or trained on it and every job of it."""
    report = plan_delete_pair_set(store, pair_set_id)
    with store.transaction():
        _refuse_if_used(store, "pair set", pair_set_id)
        runs = _runs_of_pair_sets(store, {pair_set_id})
        _, prefixes = _plan_runs(store, runs)
        _delete_runs(store, runs, prefixes)
        jobs.forget(store, _jobs_of_pair_sets(store, {pair_set_id}))
        store.delete_pair_set_row(pair_set_id)
    _remove_folders(store, runs)
    return report


def _orphan_hashes(store: Store, corpus_id: int) -> list[str]:
    """Text hashes of the corpus's passages that no other corpus holds."""
    mine = {text_hash(t) for t in store.chunk_texts(corpus_id)}
    others = {text_hash(t) for t in store.chunk_texts_elsewhere(corpus_id)}
    return sorted(mine - others)


def plan_delete_corpus(store: Store, corpus_id: int) -> Deletion:
    corpus = store.corpus(corpus_id)
    pair_set_ids = {p.id for p in store.pair_sets(corpus_id)}
    runs = _runs_of_pair_sets(store, pair_set_ids)
    size, _ = _plan_runs(store, runs)
    size += store.text_vector_bytes(_orphan_hashes(store, corpus_id))
    chunks = store.chunk_count(corpus_id)
    questions, labels = store.question_counts(corpus_id)
    return Deletion(f"corpus '{corpus.name}'", [r.id for r in runs], pair_sets=len(pair_set_ids),
                    chunks=chunks, bytes=size, questions=questions, labels=labels)


def delete_corpus(store: Store, corpus_id: int) -> Deletion:
    """Delete a corpus with its passages, people's questions and their labels, pair sets,
    runs, jobs, their files, and the cached passage vectors no other corpus shares."""
    report = plan_delete_corpus(store, corpus_id)
    with store.transaction():
        _refuse_if_used(store, "corpus", corpus_id)
        pair_set_ids = {p.id for p in store.pair_sets(corpus_id)}
        runs = _runs_of_pair_sets(store, pair_set_ids)
        _, prefixes = _plan_runs(store, runs)
        _delete_runs(store, runs, prefixes)
        jobs.forget(store, _jobs_of_pair_sets(store, pair_set_ids))
        store.forget_text_vectors(_orphan_hashes(store, corpus_id))
        store.delete_corpus_row(corpus_id)
    _remove_folders(store, runs)
    return report


# -- by kind: the one table the pages use to rename or delete what a user picked ---------------
KINDS = ("run", "pair set", "corpus")
_ACTIONS = {"run": (rename_run, plan_delete_run, delete_run),
            "pair set": (rename_pair_set, plan_delete_pair_set, delete_pair_set),
            "corpus": (rename_corpus, plan_delete_corpus, delete_corpus)}


def _actions(kind: str):
    if kind not in _ACTIONS:
        raise WorkspaceError(f"cannot rename or delete a {kind!r}; pick one of {', '.join(KINDS)}")
    return _ACTIONS[kind]


def rename(store: Store, kind: str, ref: int | str, name: str) -> None:
    """Rename a run, pair set or corpus (``kind`` one of ``KINDS``)."""
    _actions(kind)[0](store, ref, name)


def plan_delete(store: Store, kind: str, ref: int | str) -> Deletion:
    """What deleting a run, pair set or corpus would remove, nothing removed yet."""
    return _actions(kind)[1](store, ref)


def delete(store: Store, kind: str, ref: int | str) -> Deletion:
    """Delete a run, pair set or corpus and all that depends on it (refused while a job uses it)."""
    return _actions(kind)[2](store, ref)


# -- merging a run with its base ---------------------------------------------------------------
def _model_of(store: Store, ref: str) -> str:
    """A model by name or folder, or a run (``j3``) for the model folder it handed back."""
    if ref.strip().lower().startswith("j") and ref.strip()[1:].isdigit():
        run = get_run(store, ref)
        if not run.model_path:
            raise WorkspaceError(f"run {run.id} has no model folder ({run.state})")
        return run.model_path
    return ref


def merge_run(store: Store, run_id: str, alpha, base: str | None = None,
              out: Path | str | None = None) -> tuple[Path, str]:
    """Save θ(α) = (1 − α)·base + α·tuned of a fine-tuning run (``core.training.merge``) as a
    model folder, by default ``merged-<α>`` beside the run's model; the run itself is unchanged.

    Args:
        run_id: the fine-tuning run whose trained weights are α = 1.
        alpha: from 0 (the base) to 1 (the trained model).
        base: the model at α = 0, by name, folder or run; by default the one the run trained from.
        out: the folder to write.

    Returns:
        The folder written and the base model's name.
    """
    alpha = check_alpha(alpha)
    run = get_run(store, run_id)
    if run.kind != "fine-tune":
        raise WorkspaceError(f"run {run.id} is {'an' if run.kind[0] in 'aeiou' else 'a'} {run.kind} "
                             "run: only a fine-tune has trained weights to merge with its base")
    if not run.model_path:
        raise WorkspaceError(f"run {run.id} has no model folder ({run.state}); merge a run "
                             "that finished")
    trained = tuned_path(Path(run.model_path))
    base_name = _model_of(store, base) if base else run.model
    target = Path(out) if out else Path(run.model_path).with_name(f"merged-{alpha:.2f}")
    if target.resolve() in (Path(run.model_path).resolve(), trained.resolve()):
        raise WorkspaceError(f"{target} is the run's own model; give another --out folder")
    save_merged(base_name, trained, alpha, target, {"run": run.id})
    return target, base_name
