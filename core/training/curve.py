"""The learning curve: what a team's own labelled questions buy, measured at a few sizes, and the
forecast of what more of them would buy.

"How many pairs do I need?" has answers from 500 to 10,000 in the guides. A team that has
labelled its first questions can measure its own answer: from a pair set's training questions,
nested subsets (a seeded shuffle of the questions, then its first quarter, half and all of it:
``plan.CURVE_FRACTIONS``) are each fine-tuned as ``python -m core finetune`` would
(``core.training.finetune.run_experiment``: held-out validation, budgeted trainer, rotation and
merge), under one budget the plan splits between them (``plan.curve_share``: in proportion to
their questions, re-split before each from the time really left, less what each point still
to run will cost beyond its share: its final evaluation, or what the points so far ran over
theirs, whichever is more: ``overhead``). Every point is scored on the same test questions, the untrained
model first (n = 0), with the paired-bootstrap interval of its gain over it
(``core.measuring.significance``); ``core.measuring.forecast`` then extends the curve.

Subsets are of questions, not pairs: a question labelled with two passages is two pairs, and
both go in or stay out together. The test questions are never among them (the pair set's split
keeps them apart). A point's model is deleted once it is scored: the curve keeps numbers, not
models (a fine-tune of all the questions is ``finetune``'s job).

The curve is a background job (kind "curve", ``core.training.jobs``); its result, this module's
``Curve`` as JSON, is stored with the job, and the pages read the newest one (``latest``).

Example::

    store = Store()
    curve = run_curve(store, pair_set_id=3, model=None, budget_minutes=20, seed=42,
                      output_dir=Path("/tmp/curve"), reporter=TerminalReporter())
    curve.outlook().sentence()
"""
from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from core.measuring.evaluate import PREFERRED_DIM, RetrievalSet, evaluate_named
from core.measuring.forecast import Expected, LogLaw, expect, fit, labels_to_tell
from core.measuring.significance import Difference, paired_bootstrap
from core.training import plan
from core.training.config import Reporter, TrainConfig, stage_progress
from core.training.device import DeviceSetup
from core.training.replan import evaluation_seconds
from core.workspace import models, ranges
from core.workspace.errors import Canceled, WorkspaceError
from core.workspace.store import Store
from core.workspace.wording import duration, percent_span, plural

# A point given less training time than this after the evaluations are paid for would train for
# a step or two: the budget is refused up front instead, with the least that would do.
MIN_POINT_SECONDS = 15.0


@dataclass
class CurvePoint:
    """One size of the curve.

    Attributes:
        questions: training questions (0: the untrained model).
        pairs: the (question, passage) pairs they make.
        ndcg: NDCG@10 on the test questions, per embedding size.
        differences: the paired-bootstrap comparison with the untrained model, per size (none at 0).
        budget_seconds: the share of the curve's budget it was given (0 at n = 0).
        seconds: what it took, its final evaluation included.
        kept: what the run kept: "base" (no epoch beat the untrained model), an epoch, or "".
        pairs_trained: pairs an epoch trained on: ``pairs`` less the validation pairs held out,
            or fewer where the budget allowed no more (said in the log).
    """
    questions: int
    pairs: int
    ndcg: dict[int, float]
    differences: dict[int, Difference] = field(default_factory=dict)
    budget_seconds: float = 0.0
    seconds: float = 0.0
    kept: str = ""
    pairs_trained: int = 0

    def to_json(self) -> dict:
        return {**asdict(self), "ndcg": {str(d): v for d, v in self.ndcg.items()},
                "differences": {str(d): x.to_json() for d, x in self.differences.items()}}

    @classmethod
    def from_json(cls, data: dict) -> CurvePoint:
        names = {f.name for f in fields(Difference)}
        differences = {int(d): Difference(**{**{k: v for k, v in x.items() if k in names},
                                             "ci95": tuple(x["ci95"])})
                       for d, x in data["differences"].items()}
        return cls(**{**data, "ndcg": {int(d): v for d, v in data["ndcg"].items()},
                      "differences": differences})


@dataclass
class Outlook:
    """What the curve forecasts at one embedding size, for people."""
    dim: int
    base: float  # the untrained model's NDCG@10
    questions: int  # training questions measured (the largest point)
    measured: float  # its gain
    doubled: Expected
    quadrupled: Expected
    tell: int | None  # training questions below which the test set cannot tell a gain from zero

    def sentence(self) -> str:
        """"With about 120 more training questions (240 in all), fine-tuning should gain
        2.1–4.3% NDCG@10 at 128 dims over the base model (1.5% measured with today's 120);
        below 60 the test set cannot tell a gain from zero." """
        def share(x: float) -> float:
            return x / max(self.base, 1e-9)
        more = self.doubled.questions - self.questions
        if self.tell is None:
            return (f"At {self.dim} dims the measured gain does not grow with more training "
                    f"questions ({share(self.measured):+.1%} with today's {self.questions}): "
                    "more labels are not forecast to help; check the pairs before labelling more")
        said = (f"With about {more} more training questions ({self.doubled.questions} in all), "
                f"fine-tuning should gain {percent_span(share(self.doubled.low), share(self.doubled.high))} "
                f"NDCG@10 at {self.dim} dims over the base model ({share(self.measured):+.1%} "
                f"measured with today's {self.questions})")
        if self.tell > self.questions:
            return said + (f"; the test set can tell a gain from zero from about {self.tell} "
                           "training questions on")
        return said + f"; below {self.tell} the test set cannot tell a gain from zero"

    def to_json(self) -> dict:
        return {"dim": self.dim, "base": self.base, "questions": self.questions,
                "measured": self.measured, "doubled": self.doubled.to_json(),
                "quadrupled": self.quadrupled.to_json(), "tell": self.tell,
                "sentence": self.sentence()}


@dataclass
class Curve:
    """A measured learning curve: the untrained model, then each trained size, ascending."""
    pair_set_id: int
    model: str
    dims: list[int]
    test_questions: int
    train_questions: int
    points: list[CurvePoint]
    budget_seconds: float
    seconds: float = 0.0
    canceled: bool = False

    def trained(self, upto: int | None = None) -> list[CurvePoint]:
        """The trained points, those of at most ``upto`` questions if given."""
        return [p for p in self.points if p.questions and (upto is None or p.questions <= upto)]

    def law(self, dim: int, upto: int | None = None) -> LogLaw:
        """``forecast.fit`` to the trained points (of at most ``upto`` questions) at ``dim``."""
        points = self.trained(upto)
        return fit([p.questions for p in points], [p.differences[dim].delta for p in points],
                   [_half_width(p.differences[dim]) for p in points])

    def outlook(self, dim: int | None = None) -> Outlook:
        """The forecast at ``dim`` (default: ``PREFERRED_DIM`` where measured, else the full
        size) for 2× and 4× today's training questions."""
        dim = dim or (PREFERRED_DIM if PREFERRED_DIM in self.dims else self.dims[0])
        law, top = self.law(dim), self.trained()[-1]
        return Outlook(dim, self.points[0].ndcg[dim], top.questions, top.differences[dim].delta,
                       expect(law, 2 * top.questions), expect(law, 4 * top.questions),
                       labels_to_tell(law, _half_width(top.differences[dim])))

    def forecast_line(self, dim: int, steps: int = 40) -> list[Expected]:
        """The law and its band from the smallest trained point to 4× the largest, evenly in
        log n, for a chart."""
        law, sizes = self.law(dim), [p.questions for p in self.trained()]
        low, high = sizes[0], 4 * sizes[-1]
        return [expect(law, round(low * (high / low) ** (i / steps))) for i in range(steps + 1)]

    def budget_line(self) -> str:
        off = self.seconds / self.budget_seconds - 1
        return (f"the curve took {duration(self.seconds)} of its {duration(self.budget_seconds)} "
                f"budget ({abs(off):.0%} {'over' if off > 0 else 'under'} it)")

    def to_json(self) -> dict:
        out = {**asdict(self), "points": [p.to_json() for p in self.points]}
        if len(self.trained()) >= 2:
            out["outlook"] = self.outlook().to_json()
        return out

    @classmethod
    def from_json(cls, data: dict) -> Curve:
        names = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in names},
                      "points": [CurvePoint.from_json(p) for p in data["points"]]})


def _half_width(difference: Difference) -> float:
    low, high = difference.ci95
    return (high - low) / 2


# -- the subsets ---------------------------------------------------------------------------
def train_questions(store: Store, pair_set_id: int) -> dict[str, list[tuple[str, str]]]:
    """The pair set's training questions (by query id, in stored order) and their pairs."""
    questions: dict[str, list[tuple[str, str]]] = {}
    for p in store.pairs(pair_set_id, "train"):
        questions.setdefault(p["query_id"], []).append((p["query"], p["positive"]))
    return questions


def nested_subsets(question_ids: list[str], sizes: list[int], seed: int) -> list[list[str]]:
    """Prefixes of one seeded shuffle: each subset holds every smaller one, so a point differs
    from the one before only by the questions it adds.

    Example::

        >>> small, big = nested_subsets([f"q{i}" for i in range(8)], [2, 4], seed=0)
        >>> set(small) <= set(big), len(big)
        (True, 4)
    """
    order = list(question_ids)
    random.Random(seed).shuffle(order)
    return [order[:size] for size in sizes]


# -- running it ----------------------------------------------------------------------------
class PointReporter:
    """The curve's reporter as one point's run sees it: its status lines say which point, and
    its chart points stay out (three runs' epochs on one chart would read as one run)."""

    def __init__(self, reporter: Reporter, title: str):
        self.reporter, self.title = reporter, title

    def status(self, text: str) -> None:
        self.reporter.status(f"{self.title}: {text}")

    def progress(self, fraction: float) -> None:
        self.reporter.progress(fraction)

    def log(self, line: str) -> None:
        self.reporter.log(f"{self.title}: {line}")

    def point(self, series: str, step: int, value: float, epoch: float | None = None) -> None:
        pass

    def should_stop(self) -> bool:
        return self.reporter.should_stop()


def check_budget(budget: float, spent: float, evaluation: float, sizes: list[int]) -> None:
    """Refuse a budget that leaves the smallest point under ``MIN_POINT_SECONDS`` of training once
    ``spent`` and a final evaluation per point (``evaluation`` seconds each) are paid, saying the
    least budget that would do."""
    reserve = evaluation * len(sizes)
    if plan.curve_share(budget - spent - reserve, sizes[0], sizes) >= MIN_POINT_SECONDS:
        return
    least = spent + reserve + MIN_POINT_SECONDS * sum(sizes) / sizes[0]
    raise WorkspaceError(
        f"a {duration(budget)} budget is too small for a curve of {len(sizes)} fine-tunes: the "
        f"untrained model's evaluation took {duration(spent)} and each point's will take about "
        f"{duration(evaluation)}, leaving the smallest under {MIN_POINT_SECONDS:.0f} s of "
        f"training; give --budget-minutes {least / 60:.1f} or more")


def overhead(curve: Curve, price: float) -> float:
    """What a point costs beyond its share of the budget: its final evaluation (``price``) before
    any point has run, then what the points so far took beyond their shares (loading, the
    evaluations, a merge step running over on a busy machine), so the shares left shrink by it."""
    over = [p.seconds - p.budget_seconds for p in curve.trained()]
    return max(price, sum(over) / len(over)) if over else price


def run_curve(store: Store, pair_set_id: int, model: str | None, budget_minutes: float | None,
              seed: int, output_dir: Path, reporter: Reporter,
              dims: list[int] | None = None) -> Curve:
    """Measure the learning curve of a pair set (see the module docstring).

    Args:
        store: the workspace.
        pair_set_id: a pair set split into train and test.
        model: the base model (None: the bundled one).
        budget_minutes: the whole curve's time (None: ``plan.curve_budget_minutes``).
        seed: the shuffle of the questions, and every run's seed.
        output_dir: where the points' runs write (each deleted once scored).
        reporter: the job's (or a terminal's) progress.
        dims: embedding sizes to score (default: the model's size and its halvings).
    """
    from core.documents.pairs import is_generated
    from core.training.finetune import run_experiment
    started = time.perf_counter()
    pair_set = store.pair_set(pair_set_id)
    questions = train_questions(store, pair_set_id)
    sizes = plan.curve_sizes(len(questions))
    test = RetrievalSet.from_pair_set(store, pair_set_id, "test")
    name = model or models.DEFAULT_MODEL
    budget = 60 * plan.curve_budget_minutes(DeviceSetup.detect().device, budget_minutes)
    reporter.log(f"learning curve of '{pair_set.name}': {plural(len(questions), 'training question')} "
                 f"in nested subsets of {', '.join(map(str, sizes))}, each fine-tuned, "
                 f"{plural(len(test.queries), 'test question')}, {duration(budget)} in all")
    base = evaluate_named(name, test, dims, store, stage_progress(
        reporter, "Measuring the untrained model on the test questions"))
    # Each point's final evaluation encodes every passage with its own model: priced from this
    # one, the passages the cache served at a timed sample's rate.
    price = evaluation_seconds(base, base.seconds, models.load(name), test, seed)
    check_budget(budget, time.perf_counter() - started, price, sizes)
    curve = Curve(pair_set_id, name, base.dims, len(test.queries), len(questions),
                  [CurvePoint(0, 0, {d: m["ndcg@10"] for d, m in base.metrics.items()},
                              seconds=base.seconds)], budget)
    corpus = [c["text"] for c in store.chunks(pair_set.corpus_id)]
    order = test.query_ids
    for i, subset in enumerate(nested_subsets(list(questions), sizes, seed)):
        if reporter.should_stop():
            break
        point_started = time.perf_counter()
        left = budget - (point_started - started) - overhead(curve, price) * (len(sizes) - i)
        share = max(MIN_POINT_SECONDS, plan.curve_share(left, len(subset), sizes[i:]))
        pairs = [pair for q in subset for pair in questions[q]]
        title = f"Point {i + 1} of {len(sizes)} ({len(subset)} questions)"
        reporter.log(f"{title}: {len(pairs)} pairs, {duration(share)} of the "
                     f"{duration(max(0.0, left))} left after the evaluations to come")
        config = TrainConfig(model=name, dims=base.dims, seed=seed, budget_minutes=share / 60,
                             generated_pairs=is_generated(pair_set))
        folder = output_dir / f"point-{len(subset)}"
        result = run_experiment(config, pairs, test, folder, PointReporter(reporter, title),
                                store, corpus)
        shutil.rmtree(folder, ignore_errors=True)
        if result.finetuned is None:  # canceled while it trained
            break
        tuned = result.finetuned
        held = len(set(pairs)) - result.validation_pairs  # the training side, after the hold-out
        trained = min(held, int(result.training.plan.get("max_pairs") or held))
        if trained < held:  # the point then stands for fewer questions than it is plotted at
            reporter.log(f"{title}: trained on {trained} of its {held} training pairs, all its "
                         f"{duration(share)} allowed; a larger budget would train on them all")
        curve.points.append(CurvePoint(
            len(subset), len(pairs), {d: m["ndcg@10"] for d, m in tuned.metrics.items()},
            {d: paired_bootstrap([base.per_query_ndcg[d][q] for q in order],
                                 [tuned.per_query_ndcg[d][q] for q in order]) for d in base.dims},
            share, time.perf_counter() - point_started,
            "base" if result.kept_base else f"epoch {result.training.kept}", trained))
        reporter.log(f"{title}: NDCG@10 {curve.points[-1].ndcg[base.dims[0]]:.4f} at "
                     f"{base.dims[0]} dims, {curve.points[-1].differences[base.dims[0]].summary()}")
    curve.canceled = len(curve.points) <= len(sizes)
    if curve.canceled and len(curve.points) == 1:
        raise Canceled()
    curve.seconds = time.perf_counter() - started
    reporter.log(curve.budget_line())
    return curve


# -- as a job, and what the pages read -------------------------------------------------------
KIND = "curve"


def check_config(store: Store, config: dict) -> dict:
    """A curve job's config, checked before it is queued: the pair set has a split and enough
    training questions for two points, the budget is a number of minutes."""
    known = {"pair_set_id", "budget_minutes", "model", "seed"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise WorkspaceError(f"unknown setting {unknown[0]!r} in the curve config; known: "
                             f"{', '.join(sorted(known))}")
    if config.get("pair_set_id") is None:
        raise WorkspaceError("choose a pair set to measure the learning curve of")
    pair_set = store.pair_set(ranges.row_id(config["pair_set_id"], "pair_set_id"))
    if config.get("budget_minutes") is not None:
        ranges.minutes(config["budget_minutes"])
    ranges.seed(config.get("seed", 42), "seed")
    if not store.pairs(pair_set.id, "test"):
        raise WorkspaceError(f"pair set '{pair_set.name}' has no test split; split it first "
                             "(Pairs page, or python -m core pairs split)")
    plan.curve_sizes(len(train_questions(store, pair_set.id)))
    models.load(config.get("model"))  # a missing model is refused now, not after the baseline
    return config


def run_job(store: Store, config: dict, output_dir: Path, reporter: Reporter) -> dict:
    try:
        store.pair_set(config["pair_set_id"])
    except WorkspaceError:
        raise WorkspaceError(f"pair set {config['pair_set_id']} was deleted after this curve was "
                             "queued; start a new one on an existing pair set") from None
    return run_curve(store, config["pair_set_id"], config.get("model"), config.get("budget_minutes"),
                     config.get("seed", 42), output_dir, reporter).to_json()


def latest(store: Store, pair_set_id: int | None = None, corpus_id: int | None = None) -> Curve | None:
    """The newest curve measured to its end, of a pair set, of any pair set of a corpus, or of
    any at all: what the pages and the forecast read (from the job rows: ``core.training.jobs``
    runs this module, so it is not imported back)."""
    wanted = None if corpus_id is None else set(store.pair_set_ids(corpus_id))
    for row in store.job_rows():  # newest first
        if row["kind"] != KIND or row["state"] != "succeeded":
            continue
        curve = Curve.from_json(json.loads(row["result"]))
        if pair_set_id is not None and curve.pair_set_id != pair_set_id:
            continue
        if wanted is not None and curve.pair_set_id not in wanted:
            continue
        if len(curve.trained()) >= 2:
            return curve
    return None


def running_job(store: Store, pair_set_id: int) -> int | None:
    """The curve job queued or running on this pair set, if any (one at a time per pair set)."""
    return next((int(row["id"]) for row in store.active_job_configs(KIND)
                 if json.loads(row["config"]).get("pair_set_id") == pair_set_id), None)


def why_not(store: Store, pair_set_id: int) -> str | None:
    """Why a curve cannot be measured on this pair set (no split, too few training questions),
    in one line; None when it can."""
    try:
        check_config(store, {"pair_set_id": pair_set_id})
    except WorkspaceError as error:
        return str(error)
    return None


def measured_need(store: Store, corpus_id: int | None = None) -> str | None:
    """The sentence the Label and Decide pages show in place of the guides' fixed numbers once
    a curve has been measured (of the corpus's pair sets, or of any): how many more questions
    should add how much, and below how many the test set cannot tell. None before."""
    curve = latest(store, corpus_id=corpus_id)
    if curve is None:
        return None
    return (f"Measured on your questions ({plural(curve.train_questions, 'training question')}, "
            f"{curve.test_questions} to test): {curve.outlook().sentence()}.")
