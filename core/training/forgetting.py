"""Does it forget? What a fine-tune cost outside its corpus, and the merge that pays.

After training, three things are measured on the general reference set
(``core.documents.general``: queries over Wikipedia passages, unlike a team's documents):

1. The base and the fine-tuned model at every size, with the paired-bootstrap interval of the
   difference (``core.measuring.significance``): a drop whose interval leaves zero out is a cost
   the run states beside its in-domain gain.
2. The merges θ(α) = (1 − α)·θ_base + α·θ_tuned (``core.training.merge``) for α in
   ``merge.ALPHAS``, each scored on the run's validation queries (held out from the training
   side, never the test split) and on the general set.
3. The α kept: 1 where the fine-tune shows no general-set drop to win back at the run's size
   (no interval below zero); otherwise the best validation score (the run's metric at its size, the one that picked the
   best epoch) among the α whose general-set NDCG@10 at that size is at most
   ``plan.GENERAL_TOLERANCE`` below θ(0)'s: the base's weights as the run keeps a model (its
   sequence length, its rotation), so α = 0 always qualifies and there is always one. Where it
   is below 1 the run's model folder becomes the merge and the trained weights move to
   ``tuned`` beside it.

The time it takes comes out of the run's budget: training plans for ``1 − plan.MERGE_SHARE`` of
it, and this step takes about that share of the run as it ends (``allowance``: a short run gets
a short step), sizing its sets from the price of a timed sample of passages
(``replan.passage_seconds``). Where all of the general set does not fit, the comparison uses its
first queries with every relevant passage and a seeded sample of the others, the grid's
validation queries are cut the same way, and the log says so; merges the time does not allow
are left out (α = 0 and 1 are always there). The base model's vectors are cached in the
workspace, so only the first run on a model pays for them.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.documents import general as general_set
from core.measuring.evaluate import EvalResult, RetrievalSet, cache_key, evaluate
from core.measuring.significance import Difference, paired_bootstrap
from core.training import merge
from core.training.config import Reporter, TrainConfig, stage_progress
from core.training.plan import GENERAL_TOLERANCE, MERGE_SHARE
from core.training.replan import passage_seconds
from core.workspace import models
from core.workspace.store import Store
from core.workspace.wording import duration

log = logging.getLogger(__name__)
MIN_QUERIES = 10  # fewer give no bootstrap verdict (core.measuring.significance.MIN_QUESTIONS)
PASSAGES_PER_QUERY = 6  # a sized set keeps about this many passages for each query it keeps
MIN_PASSAGES = 40  # the least a set is cut to: MIN_QUERIES queries and their relevant passages
# The step encodes the general passages with the tuned model and the four merges, and the
# validation passages (half as many) with the merges: about 7 times the general passages.
ENCODINGS_PER_GENERAL_PASSAGE = 7.0


@dataclass
class AlphaPoint:
    """One model on the grid (α = 0 the base, 1 the fine-tuned one): its validation score (the
    run's metric at the run's size) and its general-set NDCG@10 at every size."""
    alpha: float
    validation: float
    general: dict[int, float]


@dataclass
class GeneralCheck:
    """What the fine-tune cost on the general set, the grid of merges and the α kept.

    Attributes:
        dim, metric: the size and metric the α was chosen by (the run's best epoch's).
        differences: the fine-tuned model against the base per size (paired bootstrap over the
            general queries).
        queries, passages: how much of the general set was used (``notes`` says why, if not all).
        validation_queries: how many of the run's validation queries scored the grid.
        grid: the models scored, by α; merges the time did not allow are left out.
        kept_alpha: the α the run's model is.
        seconds: the time the step took.
    """
    dim: int
    metric: str
    differences: dict[int, Difference]
    queries: int
    passages: int
    validation_queries: int
    grid: list[AlphaPoint]
    kept_alpha: float
    tolerance: float = GENERAL_TOLERANCE
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def point(self, alpha: float) -> AlphaPoint:
        return next(p for p in self.grid if p.alpha == alpha)

    def full(self) -> int:
        return max(self.differences)

    def cost(self) -> Difference:
        """The fine-tuned model against the base on the general set at full size."""
        return self.differences[self.full()]

    def kept_general(self) -> dict[int, float]:
        """The kept model's general-set NDCG@10 per size."""
        return self.point(self.kept_alpha).general

    def recovered(self) -> float | None:
        """The share of the general-set drop at full size from θ(0) to the fine-tuned model that
        the kept α wins back; None where there is no drop."""
        full = self.full()
        base, tuned = self.point(0.0).general[full], self.point(1.0).general[full]
        if base - tuned <= 0:
            return None
        return (self.kept_general()[full] - tuned) / (base - tuned)

    def headline(self) -> str:
        """One sentence: the general-set cost (or none) at full size, and the α kept."""
        d, full = self.cost(), self.full()
        if d.significant and d.delta < 0:
            what = f"costs {-d.delta:.3f} NDCG@10 at {full}d (95% interval {d.interval()})"
        elif d.significant:
            what = f"gains {d.delta:.3f} NDCG@10 at {full}d (95% interval {d.interval()})"
        else:
            what = f"changes NDCG@10 at {full}d by {d.change()}, {d.verdict()}"
        kept = ("the run keeps the fine-tuned model (α = 1)" if self.kept_alpha == 1 else
                f"the run keeps the merge at α = {self.kept_alpha:g}")
        back = self.recovered()
        if back is not None and self.kept_alpha < 1 and d.significant and d.delta < 0:
            kept += f", which wins back {back:.0%} of that drop"
        return f"On the general set ({self.queries} queries) the fine-tune {what}; {kept}"

    def card(self) -> str:
        """The model card's section: the three models on the general set at every size."""
        base, tuned, kept = self.point(0.0).general, self.point(1.0).general, self.kept_general()
        rows = "\n".join(f"| {d} | {base[d]:.4f} | {tuned[d]:.4f} | {kept[d]:.4f} |" for d in base)
        return (f"\n\n## Outside the corpus\n\nNDCG@10 on ragtune's general reference set "
                f"({self.queries} Wikipedia queries over {self.passages:,} passages), and of the "
                f"merge with the base model this folder holds (α = {self.kept_alpha:g}):\n\n"
                f"| dims | base | fine-tuned | kept |\n|---|---|---|---|\n{rows}\n\n"
                f"{self.headline()}.\n")

    def to_json(self) -> dict:
        return {"dim": self.dim, "metric": self.metric, "tolerance": self.tolerance,
                "queries": self.queries, "passages": self.passages,
                "validation_queries": self.validation_queries,
                "differences": {str(d): v.to_json() for d, v in self.differences.items()},
                "grid": [{"alpha": p.alpha, "validation": round(p.validation, 6),
                          "general": {str(d): round(v, 6) for d, v in p.general.items()}}
                         for p in self.grid],
                "kept_alpha": self.kept_alpha, "recovered": self.recovered(),
                "seconds": round(self.seconds, 2), "notes": self.notes, "headline": self.headline()}


def choose_alpha(grid: list[AlphaPoint], dim: int, tolerance: float = GENERAL_TOLERANCE,
                 cost: Difference | None = None) -> float:
    """The α with the best validation score among those whose general-set NDCG@10 at ``dim`` is
    at most ``tolerance`` below θ(0)'s (the base's weights as the run keeps a model); on a tie
    the larger α, closer to what was trained. It reads only the grid, validation and general-set
    scores: never a test split.

    With ``cost`` (the fine-tune against the base on the general set at ``dim``), a merge is
    chosen only where that cost is a drop whose interval leaves zero out: with nothing measured
    to win back, a merge picked on a few validation queries gave away gain that people's test
    questions showed (libapi, 10 validation queries: α = 0 kept, −3.4% NDCG@10 at 384 dims,
    −5.4% at 64, while the fine-tune changed the general set by +0.005)."""
    if cost is not None and not (cost.significant and cost.delta < 0):
        return 1.0
    base = next(p for p in grid if p.alpha == 0.0).general[dim]
    allowed = [p for p in grid if base - p.general[dim] <= tolerance + 1e-9]
    return max(allowed, key=lambda p: (round(p.validation, 6), p.alpha)).alpha


def fewer(data: RetrievalSet, max_passages: int, seed: int) -> RetrievalSet:
    """The first queries (both sets keep a seeded order) with every relevant passage and a seeded
    sample of the others, about ``PASSAGES_PER_QUERY`` passages a query, ``max_passages`` in all."""
    if len(data.corpus) <= max_passages:
        return data
    n = max(MIN_QUERIES, min(len(data.query_ids), max_passages // PASSAGES_PER_QUERY))
    keep = data.query_ids[:n]
    texts = dict(zip(data.query_ids, data.queries))
    smaller = RetrievalSet(data.corpus_ids, data.corpus, keep, [texts[q] for q in keep],
                           {q: data.relevant[q] for q in keep}, data.skipped,
                           {q: g for q, g in data.grades.items() if q in keep})
    return smaller.subset(max_passages, seed)


def general_passages(per_passage: float, seconds: float, available: int) -> int:
    """How many general passages the step can afford in ``seconds`` at ``per_passage`` each."""
    affordable = seconds / max(per_passage, 1e-6) / ENCODINGS_PER_GENERAL_PASSAGE
    return int(min(available, max(MIN_PASSAGES, affordable)))


def allowance(budget_seconds: float, spent_seconds: float) -> float:
    """The step's time: ``MERGE_SHARE`` of the run as it will end, counting what it has taken so
    far (``spent_seconds``), and never more than that share of the budget. A short run gets a
    short step rather than the share of a budget it did not use."""
    return MERGE_SHARE * min(budget_seconds, spent_seconds / (1 - MERGE_SHARE))


def check_and_merge(config: TrainConfig, model_path: Path, validation: RetrievalSet,
                    store: Store | None, reporter: Reporter, seconds: float) -> GeneralCheck:
    """Measure the cost on the general set, score the merges and keep the chosen α in
    ``model_path`` (see the module docstring). It is never given the run's test split.

    Args:
        config: the resolved run settings (base model, dims, the best epoch's metric and size).
        model_path: the trained model's folder; replaced by the merge where one is kept.
        validation: the run's validation queries, held out from the training side.
        store: the workspace whose vector cache serves the validation queries' passages.
        reporter: told the stages and the lines the log keeps.
        seconds: the time this step may take (``allowance``); its sets are sized to it.
    """
    started = time.perf_counter()
    everything = general_set.load().retrieval_set()
    per_passage = passage_seconds(models.load(str(model_path)), everything.corpus, config.seed)
    size = general_passages(per_passage, seconds - (time.perf_counter() - started),
                            len(everything.corpus))
    general = fewer(everything, size, config.seed)
    grid_validation = fewer(validation, max(size // 2, MIN_PASSAGES), config.seed)
    notes = []
    if len(general.corpus) < len(everything.corpus):
        notes.append(f"the general set is measured on {len(general.queries)} of its "
                     f"{len(everything.queries)} queries ({len(general.corpus):,} of its "
                     f"{len(everything.corpus):,} passages) and the merges on "
                     f"{len(grid_validation.queries)} validation queries: at the {per_passage:.3f} s "
                     f"a passage just timed, that is what the step's {duration(seconds)} allow "
                     f"({MERGE_SHARE:.0%} of the run)")
    grid, ends = _grid(config, model_path, grid_validation, general, store, reporter,
                       started + seconds, notes)
    differences = {d: paired_bootstrap([ends[0].per_query_ndcg[d][q] for q in general.query_ids],
                                       [ends[1].per_query_ndcg[d][q] for q in general.query_ids])
                   for d in config.dims}
    kept = choose_alpha(grid, config.best_dim, cost=differences[config.best_dim])
    check = GeneralCheck(config.best_dim, config.best_metric, differences, len(general.queries),
                         len(general.corpus), len(grid_validation.queries), grid, kept, notes=notes)
    if kept < 1:
        keep_merge(config.model, model_path, kept)
    check.seconds = time.perf_counter() - started
    for note in notes:
        reporter.log(note)
    reporter.log(check.headline())
    return check


def _grid(config: TrainConfig, model_path: Path, validation: RetrievalSet, general: RetrievalSet,
          store: Store | None, reporter: Reporter, deadline: float, notes: list[str]
          ) -> tuple[list[AlphaPoint], tuple[EvalResult, EvalResult]]:
    """The base and the fine-tuned model on the general set, then the merges: α = 0 and 0.5 always, 0.75 and 0.25 while the step's time lasts.

    α = 0 is scored as a merge, not as the base model: a merge keeps the fine-tuned model's
    settings (its sequence length, a folded rotation), so θ(0) is the base's weights as the run
    would keep them, which is what the tolerance compares the other merges with. Returns the
    points by α and the base's and the fine-tuned model's general-set results.
    """
    dims, dim, metric = config.dims, config.best_dim, config.best_metric

    def point(alpha: float, model, name: str | None) -> tuple[AlphaPoint, EvalResult]:
        title = "Measuring the fine-tuned model" if name else f"Scoring the merge at α = {alpha:g}"
        key = cache_key(name, model) if name else None  # a merge lives only in memory
        g = evaluate(model, general, dims, model_name=name or f"merge α={alpha:g}",
                     progress=stage_progress(reporter, f"{title} on the general set"))
        v = evaluate(model, validation, [dim], model_name=name or "", store=store, cache_key=key,
                     progress=stage_progress(reporter, f"{title} on the validation queries"))
        return AlphaPoint(alpha, v.metrics[dim][metric],
                          {d: m["ndcg@10"] for d, m in g.metrics.items()}), g

    base_model = models.load(config.model)
    # The general set's vectors are not cached in the workspace: they belong to no corpus, so no
    # delete would ever remove them (a deleted corpus left 43 of them behind).
    base = evaluate(base_model, general, dims, model_name=config.model,
                    progress=stage_progress(reporter, "Measuring the base model on the general set"))
    tuned, tuned_general = point(1.0, models.load(str(model_path)), str(model_path))
    grid = [tuned]
    base_weights = models.load_fresh(config.model, "cpu")  # read once for every merge
    order = (0.0, 0.5, 0.75, 0.25)  # the two that always run, then the rest by use
    for n, alpha in enumerate(order):
        if reporter.should_stop():
            notes.append(f"canceled before the merges at α = {', '.join(f'{a:g}' for a in order[n:])}")
            break
        started = time.perf_counter()
        merged = merge.interpolate(base_weights, models.load_fresh(str(model_path)), alpha,
                                   config.model, str(model_path))
        grid.append(point(alpha, merged, None)[0])
        took = time.perf_counter() - started
        if 1 <= n < len(order) - 1 and time.perf_counter() + took > deadline:
            notes.append(f"the merges at α = {', '.join(f'{a:g}' for a in order[n + 1:])} were "
                         f"not scored: each takes about {duration(took)}, past the step's time")
            break
    return sorted(grid, key=lambda p: p.alpha), (base, tuned_general)


def outcome(result: dict) -> str | None:
    """The headline of a finished fine-tune: its in-domain change on the test questions (the
    kept model against the base, at full size) beside what it cost on the general set and the
    α kept; None for a run without the general step (kept the base, canceled, older runs)."""
    check, base, kept = result.get("general"), result.get("baseline"), result.get("finetuned")
    if not (check and base and kept):
        return None
    full = str(max(map(int, kept)))
    before, after = base[full]["ndcg@10"], kept[full]["ndcg@10"]
    return (f"On its own test questions the kept model scores {after - before:+.3f} NDCG@10 at "
            f"{full}d ({before:.3f} → {after:.3f}). {check['headline']}.")


def grid_series(check: dict) -> dict[str, list[float]]:
    """The grid as a chart's lines: α, the validation score and the general-set NDCG@10 (both
    at the size the α was chosen at)."""
    dim = str(check["dim"])
    return {"alpha": [p["alpha"] for p in check["grid"]],
            "validation": [p["validation"] for p in check["grid"]],
            "general": [p["general"][dim] for p in check["grid"]]}


def kept_general(check: dict | None) -> float | None:
    """The kept model's general-set NDCG@10 at full size, from a run's ``general`` JSON."""
    if not check:
        return None
    kept = next((p for p in check["grid"] if p["alpha"] == check["kept_alpha"]), None)
    return kept["general"][str(max(map(int, kept["general"])))] if kept else None


def keep_merge(base_name: str | None, model_path: Path, alpha: float) -> None:
    """Make the run's model the merge at ``alpha``. The trained weights move to ``tuned`` beside
    it (the first time), and the merge is saved complete before it takes the model's place
    (``checkpoints.save_model``); if saving fails, the trained model is put back."""
    model_path = Path(model_path)
    tuned = model_path.with_name(merge.TUNED_FOLDER)
    moved = not tuned.is_dir()
    if moved:
        model_path.rename(tuned)
    card = tuned / "ragtune.json"
    details = json.loads(card.read_text()) if card.is_file() else {}
    try:
        merge.save_merged(base_name, tuned, alpha, model_path, details)
    except BaseException:
        if moved and not model_path.exists():
            tuned.rename(model_path)
        raise
