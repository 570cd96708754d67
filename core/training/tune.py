"""The documents-only run: the best model a corpus alone can justify, never worse at full size.

Most teams arrive with documents and no labelled questions. Fine-tuning on generated pairs and
picking the epoch on generated test questions flatters fine-tuning (on a public 10-K set it
"won" on generated questions and lost 0.6% NDCG@10 at full size on people's), so generated
questions never judge here. The candidates are

* ``base``: the model as it is, truncated;
* ``rotation``: the corpus-fitted orthogonal rotation (core.training.rotate), full size exactly kept;
* ``pca``: the centred rotation, which changes full-size rankings (see below when it is kept);
* ``fine-tuned`` and ``fine-tuned + rotation``: trained on generated pairs (core.training.train), only
  when people's questions can judge them.

**Without people's questions** each candidate is scored, per size, by how many of each passage's
10 nearest passages under the candidate's own full size it still ranks in its own top 10
(neighbour agreement): what a smaller vector loses of what the full size knew. The base and the
rotation keep the base model's full-size rankings exactly, so they are always eligible. The
centred rotation changes full-size rankings, and documents cannot show whether for the better
in general, but they do show one thing that decides it: whether the corpus's mean makes hubs,
passages that crowd into the top 10 of far more queries than their share (Radovanović et al.,
JMLR 2010, "Hubs in space"; Suzuki et al., EMNLP 2013, "Centering similarity measures to reduce
hubs"). It is eligible only when centring cuts hubness by ``HUB_CUT`` or more for both the
passages and generated questions as queries: on the three benchmark corpora that held exactly
where centring gained at full size on people's questions (packages: hubness −38% and −33%, NDCG@10
+2.8%; Python docs −17% and −3%, −1.9%; man pages −4% and +73%, −3.8%), and it kept centring
out of a fourth corpus built after the rule was set (library man pages, −5.0%). Generated questions
only count hubs here; they never score a model.

**With at least ``MIN_QUESTIONS`` people's questions** every candidate, the fine-tuned ones
included, is scored by NDCG@10 on them, and one that scores below the base at full size is
not eligible.

The unsupervised Matryoshka adaptor (benchmarks.adaptor) is not a candidate: started at the rotation
on the four benchmark corpora, it lost to it at 13 of 16 truncated sizes (NDCG@10 change against
the base +33.5% where the rotation has +47.1%, library man pages at 32 dims) and gained at three
(+0.7 and +0.5 points on the Python docs at 256 and 128, +2.9 on man pages at 32;
benchmarks/quality.py): keeping passage-to-passage similarities is not what ranks passages for
questions. It also costs a minute or two where the rotation costs a second.

The kept candidate maximises the mean score over the truncated sizes (the full size, where the
eligible candidates keep the base, beat it, or centre away its hubs, already passed its test).

Example::

    result = tune(store, corpus_id, output_dir=Path("tuned"))
    result.kept, result.model_path   # ('rotation', 'tuned/model')
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.measuring.evaluate import RetrievalSet, default_dims, encode, ndcg_by_dim
from core.training import plan
from core.training.rotate import Rotation, fit, passage_vectors, prime_cache, save_rotated
from core.workspace import models
from core.workspace.errors import Canceled
from core.workspace.store import Store, WorkspaceError

log = logging.getLogger(__name__)
MIN_QUESTIONS = plan.PEOPLE_TEST_MIN  # fewer people's questions than this cannot judge a model
NEIGHBOURS = 10
AGREEMENT_QUERIES = 500  # passages sampled as queries for neighbour agreement
HUB_CUT = 0.25  # the share of hubness centring must remove before it may change full size
HUB_QUERIES = 2000  # queries sampled to count how often each passage is in a top 10
DOCUMENTS_ONLY_NOTE = (
    "Documents alone show how well each size keeps the full-size model's rankings, never "
    "whether a model ranks better: the run keeps the base model's full-size rankings exactly, "
    "unless centring the vectors removes hubs (passages that crowd into every top 10). Real "
    f"gains at full size need {MIN_QUESTIONS} or more people's questions.")


@dataclass
class Candidate:
    """One model the run considered.

    Attributes:
        name: base, rotation, pca, fine-tuned or fine-tuned + rotation.
        scores: size → selection score (neighbour agreement, or NDCG@10 on people's questions).
        eligible: whether it passed the full-size guard.
        reason: why it is not eligible, or was not tried.
    """
    name: str
    scores: dict[int, float] = field(default_factory=dict)
    eligible: bool = False
    reason: str = ""

    def mean_truncated(self) -> float:
        truncated = [v for d, v in self.scores.items() if d != max(self.scores)]
        return float(np.mean(truncated)) if truncated else 0.0


@dataclass
class TuneResult:
    model_path: str
    kept: str
    judged_by: str  # "neighbour agreement" or "people's questions (N)"
    candidates: list[Candidate]
    dims: list[int]
    seconds: float
    note: str
    hubness: dict[str, tuple[float, float]] = field(default_factory=dict)  # before, after centring

    def to_json(self) -> dict:
        return {"model_path": self.model_path, "kept": self.kept, "judged_by": self.judged_by,
                "dims": self.dims, "seconds": round(self.seconds, 2), "note": self.note,
                "hubness": {k: [round(v, 3) for v in pair] for k, pair in self.hubness.items()},
                "candidates": [{**asdict(c), "scores": {str(d): round(v, 4)
                                                        for d, v in c.scores.items()}}
                               for c in self.candidates]}


def neighbour_agreement(reference: np.ndarray, candidate: np.ndarray, dims: list[int],
                        k: int = NEIGHBOURS, queries: int = AGREEMENT_QUERIES, seed: int = 0
                        ) -> dict[int, float]:
    """Per size d: the share of each sampled passage's k nearest passages under ``reference``
    (full size) that ``candidate``'s first d entries also rank in their top k; the passage
    itself never counts as its own neighbour.

    Args:
        reference: (passages, dim) vectors of the base model.
        candidate: (passages, dim) vectors of the candidate, same passage order.
    """
    from core.measuring.evaluate import top_k, unit_rows
    k = min(k, len(reference) - 1)
    if k < 1:
        raise WorkspaceError("neighbour agreement needs at least two passages")
    rows = np.random.default_rng(seed).permutation(len(reference))[:queries]

    def neighbours(vectors: np.ndarray) -> list[set[int]]:
        found, _ = top_k(unit_rows(vectors[rows]), vectors, k + 1)
        return [set(r.tolist()) - {int(q)} for q, r in zip(rows, found)]

    truth = neighbours(reference)
    scores = {}
    for d in dims:
        got = neighbours(candidate[:, :d])
        scores[d] = float(np.mean([len(t & g) / len(t) for t, g in zip(truth, got)]))
    return scores


def hubness(passages: np.ndarray, queries: np.ndarray | None = None, k: int = NEIGHBOURS,
            sample: int = HUB_QUERIES, seed: int = 0) -> float:
    """The skewness of the k-occurrence: how often each passage is among the k nearest of a
    query, over up to ``sample`` queries. Near 0 when every passage gets its share; large when a
    few hub passages crowd into most top-k lists (Radovanović et al., JMLR 2010).

    Args:
        passages: (passages, dim) vectors.
        queries: (queries, dim) vectors; None uses the passages themselves as queries, each
            leaving itself out of its own top k.
    """
    from core.measuring.evaluate import top_k, unit_rows
    source = passages if queries is None else queries
    rows = np.random.default_rng(seed).permutation(len(source))[:sample]
    extra = 1 if queries is None else 0
    found, _ = top_k(unit_rows(source[rows]), passages, k + extra)
    if extra:  # drop the passage itself, or the last of the k + 1 when a tie pushed it out
        found = np.array([[i for i in r if i != q][:k] for q, r in zip(rows, found)])
    counts = np.bincount(found.ravel(), minlength=len(passages)).astype(np.float64)
    spread = counts.std()
    return float(((counts - counts.mean()) ** 3).mean() / spread ** 3) if spread > 0 else 0.0


def centring_hubness(base: np.ndarray, generated: np.ndarray, centred: Rotation
                     ) -> dict[str, tuple[float, float]]:
    """Hubness before and after ``centred`` maps the vectors, with the passages themselves and
    with generated questions as queries."""
    mapped = centred.apply(base)
    return {"passages": (hubness(base), hubness(mapped)),
            "generated questions": (hubness(base, generated),
                                    hubness(mapped, centred.apply(generated)))}


def centring_removes_hubs(measured: dict[str, tuple[float, float]]) -> bool:
    """Whether centring cut hubness by ``HUB_CUT`` or more for every kind of query. Where there
    are no hubs to remove (hubness at or below 0 before), centring removes none."""
    return bool(measured) and all(before > 0 and after <= before * (1 - HUB_CUT)
                                  for before, after in measured.values())


def hubness_line(measured: dict[str, tuple[float, float]]) -> str:
    """One sentence on what centring does to the hubs, for the page and the CLI: the rule
    reads every kind of query, so the sentence names the one that fell short."""
    if not measured:
        return ""
    parts = ", ".join(f"{name} {before:.2f} → {after:.2f}" for name, (before, after)
                      in measured.items())
    kinds = " and ".join(measured)
    short = [name for name, (before, after) in measured.items()
             if not (before > 0 and after <= before * (1 - HUB_CUT))]
    if all(before <= 0 for before, _ in measured.values()):
        verdict = ("there are no hubs here to remove (no skew before centring), so full size is "
                   "kept as it is")
    elif not short:
        verdict = (f"centring cuts hubness by {HUB_CUT:.0%} or more for both {kinds}, so the "
                   "centred rotation may change full size")
    else:
        verdict = (f"the centred rotation may change full size only where centring cuts hubness "
                   f"by {HUB_CUT:.0%} or more for both {kinds}; it does not for "
                   f"{' and '.join(short)}, so full size is kept as it is")
    return (f"Hubness (skew of how often each passage is in a top {NEIGHBOURS}) with centring: "
            f"{parts}; {verdict}.")


def score_note(judged_by: str) -> str:
    """What the candidates' scores mean."""
    if judged_by == "neighbour agreement":
        return (f"Scores: the share of each passage's {NEIGHBOURS} nearest passages under the "
                "candidate's own full size that each size still finds.")
    return "Scores: NDCG@10 on people's questions."


def guard(candidates: list[Candidate], full: int, floor: float, reason: str) -> None:
    """Mark eligible the candidates scoring at least ``floor`` at the full size ``full``."""
    for c in candidates:
        c.eligible = c.scores.get(full, -1.0) >= floor
        c.reason = "" if c.eligible else reason


def _choose(candidates: list[Candidate]) -> Candidate:
    """The eligible candidate with the best mean over truncated sizes; the base on ties, as the
    simplest model."""
    eligible = [c for c in candidates if c.eligible]
    return max(eligible, key=lambda c: (round(c.mean_truncated(), 6), c.name == "base"))


def tune(store: Store, corpus_id: int, output_dir: Path, model: str | None = None, *,
         people: RetrievalSet | None = None, budget_minutes: float | None = None,
         reporter=None) -> TuneResult:
    """Fit and judge the candidates for a corpus; save the kept one to ``output_dir/model``.

    Args:
        store: the workspace (passage vectors come from and go to its cache).
        corpus_id: the corpus whose passages the rotations are fitted on.
        output_dir: where models are written.
        model: the base model (default: the bundled one).
        people: people's questions on this corpus; with ``MIN_QUESTIONS`` or more they judge
            every candidate and the fine-tuned ones are tried too.
        budget_minutes: training time for the fine-tuned candidate (the plan's default).
        reporter: a ``core.training.train.Reporter`` told what the run is doing.
    """
    started = time.perf_counter()
    hubs: dict[str, tuple[float, float]] = {}

    def say(text: str) -> None:  # a new stage, once the job has not been asked to stop
        stop_if_asked(reporter)
        (reporter.status if reporter else log.info)(text)
    corpus = store.corpus(corpus_id)
    texts = [c["text"] for c in store.chunks(corpus_id)]
    if len(texts) < 3:
        raise WorkspaceError(f"corpus '{corpus.name}' has {len(texts)} passages; a documents-only "
                             "run needs at least 3 to learn anything from them")
    judged = people is not None and len(people.queries) >= MIN_QUESTIONS
    if people is not None and not judged:
        raise WorkspaceError(f"{len(people.queries)} people's questions cannot judge a model; "
                             f"give at least {MIN_QUESTIONS}, or none for a documents-only run")
    base_model = models.load(model)
    dims = default_dims(base_model.get_embedding_dimension())
    say(f"Encoding {len(texts):,} passages of '{corpus.name}'")
    base = passage_vectors(store, model, texts, lambda done, total: stop_if_asked(reporter))
    say("Fitting the rotations")
    maps: dict[str, Rotation] = {"rotation": fit(base, "rotation"), "pca": fit(base, "pca")}
    candidates = [Candidate("base")] + [Candidate(name) for name in maps]
    if judged:
        if people.corpus != texts:
            raise WorkspaceError("the people's questions must be on this corpus's passages")
        queries = encode(base_model, people.queries, role="query")
        candidates[0].scores = ndcg_by_dim(queries, base, people, dims)
        for c in candidates[1:]:
            c.scores = ndcg_by_dim(maps[c.name].apply(queries), maps[c.name].apply(base),
                                      people, dims)
        floor = candidates[0].scores[dims[0]]
        guard(candidates, dims[0], floor, "ranks below the base at full size")
        candidates += _finetuned_candidates(store, corpus_id, texts, model, people, dims,
                                            output_dir, budget_minutes, floor, reporter)
        judged_by = f"people's questions ({len(people.queries)})"
    else:
        say("Counting hubs with and without centring")
        generated = encode(base_model, _generated_queries(store, corpus_id), role="query")
        hubs = centring_hubness(base, generated, maps["pca"])
        for c in candidates:
            vectors = base if c.name == "base" else maps[c.name].apply(base)
            c.scores = neighbour_agreement(vectors, vectors, dims)
            c.eligible = c.name != "pca" or centring_removes_hubs(hubs)
        if not candidates[2].eligible:
            candidates[2].reason = (f"changes full-size rankings, and centring does not cut "
                                    f"hubness by {HUB_CUT:.0%} or more for both passages and "
                                    "generated questions here; only people's questions can show "
                                    "it does not lose at full size")
        candidates.append(Candidate("fine-tuned", reason=not_tried(store, corpus_id)))
        judged_by = "neighbour agreement"
    kept = _choose(candidates)
    stop_if_asked(reporter)
    model_path = _save_kept(store, kept.name, maps, base, texts, model, output_dir, corpus.name)
    return TuneResult(str(model_path), kept.name, judged_by, candidates, dims,
                      time.perf_counter() - started, DOCUMENTS_ONLY_NOTE, hubs)


def stop_if_asked(reporter) -> None:
    """Raise ``Canceled`` once the job has been asked to stop (the page's Cancel, Ctrl-C in
    the CLI): a documents-only run keeps nothing until its model is saved, so it stops at
    once rather than finish and then say it was canceled."""
    if reporter is not None and reporter.should_stop():
        raise Canceled("canceled before the run kept a model")


def not_tried(store: Store, corpus_id: int) -> str:
    """Why the fine-tuned candidate was not tried, from the corpus's own counts: the advice
    never asks for questions the workspace already has."""
    from core.documents.pairs import is_generated
    counts = [(store.test_question_count(p.id), p.name) for p in store.pair_sets(corpus_id)
              if not is_generated(p)]
    n, name = max(counts, default=(0, ""))
    if n >= MIN_QUESTIONS:
        return (f"not tried: this run was asked for documents only; judge on the people's "
                f"questions of '{name}' ({n} test questions) to try it")
    return (f"not tried: generated questions cannot judge it; label {MIN_QUESTIONS - n} more "
            f"people's questions to make a test set of {MIN_QUESTIONS}"
            + (f" ('{name}' has {n})" if n else ""))


def _save_kept(store: Store, kept: str, maps: dict[str, Rotation], base: np.ndarray,
               texts: list[str], model: str | None, output_dir: Path, corpus: str) -> Path:
    """The kept model's folder: the base's own, a fine-tuned one, or a rotation saved now."""
    if kept == "base":
        return models.resolve(model)
    if kept.startswith("fine-tuned"):
        return output_dir / kept.replace(" + ", "-")
    path = output_dir / "model"
    save_rotated(model, maps[kept], path, {"corpus": corpus})
    prime_cache(store, path, maps[kept], base, texts)
    return path


def _finetuned_candidates(store: Store, corpus_id: int, texts: list[str], model: str | None,
                          people: RetrievalSet, dims: list[int], output_dir: Path,
                          budget_minutes: float | None, floor: float, reporter
                          ) -> list[Candidate]:
    """Fine-tune on generated pairs (generated now when the corpus has none), pick the epoch on
    the people's questions, and score it with and without its own rotation."""
    from core.training.config import TrainConfig
    from core.training.train import train
    pairs = [(p["query"], p["positive"]) for p in store.pairs(_generated_pair_set(store, corpus_id))]
    config = TrainConfig(model=model or models.DEFAULT_MODEL, generated_pairs=True,
                         budget_minutes=budget_minutes)
    result = train(config, pairs, people, output_dir / "fine-tuned-run", reporter or _Silent())
    tuned = Candidate("fine-tuned")
    if result.kept == "base":
        tuned.reason = "no epoch beat the base model on the people's questions"
        return [tuned]
    tuned_model = models.load(result.model_path)
    vectors = encode(tuned_model, texts, role="document")
    queries = encode(tuned_model, people.queries, role="query")
    tuned.scores = ndcg_by_dim(queries, vectors, people, dims)
    rotation = fit(vectors, "rotation")
    rotated = Candidate("fine-tuned + rotation",
                        ndcg_by_dim(rotation.apply(queries), rotation.apply(vectors), people, dims))
    Path(result.model_path).rename(output_dir / "fine-tuned")
    save_rotated(str(output_dir / "fine-tuned"), rotation, output_dir / "fine-tuned-rotation",
                 {"corpus_id": corpus_id})
    guard([tuned, rotated], dims[0], floor, "ranks below the base at full size")
    return [tuned, rotated]


def _generated_pair_set(store: Store, corpus_id: int) -> int:
    """The corpus's first generated pair set, generated now when it has none."""
    from core.documents.pairs import is_generated
    from core.documents.pseudo import generate_builtin
    generated = [p for p in store.pair_sets(corpus_id) if is_generated(p)]
    return generated[0].id if generated else generate_builtin(
        store, corpus_id, "generated for the documents-only run", made_by="documents-only run")


def _generated_queries(store: Store, corpus_id: int) -> list[str]:
    return [p["query"] for p in store.pairs(_generated_pair_set(store, corpus_id))]


class _Silent:
    def status(self, text): log.info(text)
    def progress(self, fraction): pass
    def log(self, line): log.info(line)
    def point(self, series, step, value, epoch=None): pass
    def should_stop(self): return False


# -- as a background job -----------------------------------------------------------------------
def check_config(store: Store, config: dict) -> dict:
    """Refuse a documents-only job that cannot run, before it is queued."""
    if not isinstance(config, dict) or not isinstance(config.get("corpus_id"), int):
        raise WorkspaceError("a documents-only run needs a corpus; choose one")
    unknown = sorted(set(config) - {"corpus_id", "model", "budget_minutes", "questions"})
    if unknown:
        raise WorkspaceError(f"unknown setting {unknown[0]!r} for a documents-only run")
    store.corpus(config["corpus_id"])
    budget = config.get("budget_minutes")
    if budget is not None and (not isinstance(budget, (int, float)) or not 0 < budget <= 24 * 60):
        raise WorkspaceError("budget_minutes must be between 0 and 1440, e.g. 10")
    if config.get("questions") is not None:
        people_questions(store, config["corpus_id"], config["questions"])
    models.load(config.get("model"))
    return config


def people_questions(store: Store, corpus_id: int, pair_set_id: int) -> RetrievalSet:
    """The test questions of a people's pair set on this corpus."""
    from core.documents.pairs import is_generated
    pair_set = store.pair_set(pair_set_id)
    if pair_set.corpus_id != corpus_id:
        raise WorkspaceError(f"pair set '{pair_set.name}' belongs to another corpus; pick "
                             "people's questions on the corpus being tuned")
    if is_generated(pair_set):
        raise WorkspaceError(f"pair set '{pair_set.name}' was generated; only people's questions "
                             "can judge a model")
    return RetrievalSet.from_pair_set(store, pair_set_id)


def display_pair_set(store: Store, corpus_id: int, preferred: int | None = None) -> int | None:
    """The pair set a run is shown on in Results and Search: the one named, else a people's
    pair set of the corpus, else any split one."""
    from core.documents.pairs import is_generated
    split = [p for p in store.pair_sets(corpus_id) if store.split_counts(p.id).get("test")]
    split.sort(key=lambda p: (p.id != preferred, is_generated(p)))
    return split[0].id if split else None


def run_job(store: Store, config: dict, job_id: int, folder: Path, reporter) -> dict:
    """The documents-only run as a job: tune, then measure the kept model and the base on the
    corpus's test questions, so it shows in Results, Runs and Search as its own run."""
    from core.measuring.evaluate import evaluate_named, evaluation_label, same_measurement, save
    corpus = store.corpus(config["corpus_id"])
    questions = config.get("questions")
    people = people_questions(store, corpus.id, questions) if questions is not None else None
    result = tune(store, corpus.id, folder, config.get("model"), people=people,
                  budget_minutes=config.get("budget_minutes"), reporter=reporter)
    out = {**result.to_json(), "corpus": corpus.name}
    shown = display_pair_set(store, corpus.id, questions)
    if shown is not None:
        data = RetrievalSet.from_pair_set(store, shown)
        reporter.status("Measuring the base and the kept model on the test questions")
        base_model = config.get("model") or models.DEFAULT_MODEL
        # The base measured on these very questions already is not measured (and listed) twice.
        out["baseline_evaluation"] = same_measurement(store, shown, base_model, data, result.dims)
        if out["baseline_evaluation"] is None:
            base = evaluate_named(base_model, data, result.dims, store)
            out["baseline_evaluation"] = save(store, base, shown, evaluation_label(base_model),
                                               job_id)
        kept = evaluate_named(result.model_path, data, result.dims, store)
        kept.model = f"{config.get('model') or models.DEFAULT_MODEL} ({result.kept})"
        out["evaluation"] = save(store, kept, shown, run_name(result.kept, corpus.name), job_id)
    return out


def run_name(kept: str, corpus: str) -> str:
    """"rotated for docs", or "base for docs" when nothing beat the base model."""
    return f"{'rotated' if kept in ('rotation', 'pca') else kept} for {corpus}"
