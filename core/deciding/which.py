"""Which model? Every candidate the workspace has, on one corpus's test questions, against what
its index costs: the question a team asks right after "RAG or fine-tuning?" (take a bigger
model, tune the small one, or both).

A candidate is a model measured on the test set that judges the corpus (``compare``'s rule:
people's questions first): each base model (the bundled one, each installed one), its
documents-only rotation, its fine-tunes. Each is scored at every size it was measured at, so a
point is (candidate, dimensions): NDCG@10 against index bytes per passage (dimensions × 4
bytes, the float32 ragtune stores and searches). Bigger is not a safe guess: on real questions
over annual-report excerpts the 110M all-mpnet-base-v2 scored under the 22M all-MiniLM-L6-v2,
while it encoded the corpus about 5× slower.

The answer is one sentence: the best point, and the cheapest point whose paired-bootstrap
interval against it holds zero (``core.measuring.significance``), i.e. that these questions
cannot tell from the best. Below ``MIN_QUESTIONS`` questions no candidate is named as good
enough.
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass, field

from core.deciding.compare import PerQuery, describe_test_set, difference, per_query_ndcg, test_set_rank, trust_note
from core.measuring.evaluate import BASELINE, RetrievalSet, encode, encode_one, load_evaluations
from core.measuring.significance import Difference
from core.measuring.storage import vector_bytes
from core.using import label
from core.using.runs import Run, list_runs
from core.workspace import models
from core.workspace.disk import human_bytes
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store

log = logging.getLogger(__name__)
PRECISION = "float32"  # how ragtune stores and searches vectors (Results' storage table prices the others)
BYTES_PER_VALUE = vector_bytes(1, PRECISION)
SPEED_SAMPLE = 32  # passages encoded to time a model: enough for a steady rate, seconds on a CPU
FRACTIONS = {2: "half", 3: "a third", 4: "a quarter", 6: "a sixth", 8: "an eighth", 12: "a twelfth",
             16: "a sixteenth", 24: "a twenty-fourth"}  # every ratio of two sizes ragtune lists


@dataclass
class Speed:
    """How fast a model encodes on this machine."""
    passages_per_second: float
    query_ms: float  # one question, encoded alone: what a search waits for


@dataclass
class Candidate:
    """One model measured on the test set.

    Attributes:
        name: how a person calls it ("all-MiniLM-L6-v2", "fine-tuned (job 3) of all-MiniLM-L6-v2").
        run_id: its run (``python -m core list runs``).
        model: what ``models.load`` takes.
        ndcg: NDCG@10 per dimension, largest first.
        training_seconds: time its training or rotation job took; None for a base model.
    """
    name: str
    run_id: str
    kind: str
    model: str
    ndcg: dict[int, float]
    per_query: PerQuery = field(repr=False)
    training_seconds: float | None = None
    speed: Speed | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "run": self.run_id, "kind": self.kind, "model": self.model,
                "ndcg@10": {str(d): round(v, 4) for d, v in self.ndcg.items()},
                "bytes_per_passage": {str(d): bytes_per_passage(d) for d in self.ndcg},
                "training_seconds": self.training_seconds,
                "passages_per_second": self.speed and round(self.speed.passages_per_second, 1),
                "query_ms": self.speed and round(self.speed.query_ms, 1)}


def bytes_per_passage(dims: int) -> int:
    return vector_bytes(dims, PRECISION)


@dataclass
class Point:
    """A candidate at one size."""
    candidate: Candidate
    dims: int

    @property
    def ndcg(self) -> float:
        return self.candidate.ndcg[self.dims]

    @property
    def bytes(self) -> int:
        return bytes_per_passage(self.dims)

    def said(self) -> str:
        return f"{self.candidate.name} at {self.dims} dims (NDCG@10 {self.ndcg:.3f})"

    def to_json(self) -> dict:
        return {"candidate": self.candidate.name, "run": self.candidate.run_id, "dims": self.dims,
                "ndcg@10": round(self.ndcg, 4), "bytes_per_passage": self.bytes}


@dataclass
class WhichModel:
    """Every candidate on one test set, the best two, and the cheapest the questions cannot tell
    from the best."""
    corpus: str
    test_set: str
    questions: int
    caution: str | None  # why these questions may mislead (generated ones flatter fine-tuning)
    candidates: list[Candidate]
    best: Point | None = None
    runner_up: Point | None = None  # the best point of another candidate
    best_two: Difference | None = None  # the best against the runner-up
    cheapest: Point | None = None  # the fewest bytes the questions cannot tell from the best
    cheapest_vs_best: Difference | None = None

    def sentence(self) -> str:
        """The answer, in one sentence a team can act on."""
        if self.best is None:
            return f"No model is measured on {self.test_set} of {self.corpus} yet."
        if self.runner_up is None:
            return (f"Only {self.best.candidate.name} is measured on {self.test_set}: install or "
                    "fine-tune another model to compare.")
        if self.best_two is None or not self.best_two.enough:
            return (f"{self.best.said()} scores highest, but {self.questions} questions are too "
                    "few to tell the candidates apart: label more people's questions.")
        if all(p.bytes >= self.best.bytes for p in self.points()):
            return f"{self.best.said()} is the best and the smallest index: take it."
        if self.cheapest is None:
            return (f"{self.best.said()} is the one to take: every cheaper candidate is "
                    f"significantly worse on these {self.questions} questions.")
        d = self.cheapest_vs_best
        cheap = self.cheapest
        other = "its own" if cheap.candidate is self.best.candidate else f"{cheap.candidate.name} at"
        return (f"{self.best.said()} is not significantly better than {other} "
                f"{cheap.dims} dims (NDCG@10 {cheap.ndcg:.3f}; difference {-d.delta:+.3f}, 95% "
                f"interval {_flipped(d)} over {d.questions} questions), at "
                f"{_share(cheap.bytes, self.best.bytes)} of the index "
                f"({human_bytes(self.cheapest.bytes)} against {human_bytes(self.best.bytes)} a "
                f"passage){_speed_note(self.cheapest, self.best)}.")

    def points(self) -> list[Point]:
        return [Point(c, d) for c in self.candidates for d in c.ndcg]

    def to_json(self) -> dict:
        return {"corpus": self.corpus, "test_set": self.test_set, "questions": self.questions,
                "caution": self.caution, "sentence": self.sentence(),
                "precision": PRECISION,
                "candidates": [c.to_json() for c in self.candidates],
                "best": self.best and self.best.to_json(),
                "runner_up": self.runner_up and self.runner_up.to_json(),
                "best_two": self.best_two and self.best_two.to_json(),
                "cheapest": self.cheapest and self.cheapest.to_json(),
                "cheapest_vs_best": self.cheapest_vs_best and self.cheapest_vs_best.to_json()}


def _flipped(d: Difference) -> str:
    """The interval of best minus cheaper, from the one of cheaper minus best."""
    low, high = d.ci95
    return f"{-high:+.3f} to {-low:+.3f}"


def _share(part: int, whole: int) -> str:
    """"a third", "1/32" or "67%": how much of the best's index the cheaper one takes."""
    ratio = whole / part
    if ratio == int(ratio):
        return FRACTIONS.get(int(ratio), f"1/{int(ratio)}")
    return f"{part / whole:.0%}"


def _speed_note(cheap: Point, best: Point) -> str:
    a, b = cheap.candidate.speed, best.candidate.speed
    if not a or not b or cheap.candidate.model == best.candidate.model:
        return ""
    ratio = a.passages_per_second / b.passages_per_second
    if ratio >= 1.2:
        return f", encoding {ratio:.1f}× faster"
    return f", encoding {1 / ratio:.1f}× slower" if ratio <= 1 / 1.2 else ""


# -- building it ----------------------------------------------------------------------------------
def judging_set(store: Store, corpus_id: int):
    """The pair set whose test questions judge the corpus: ``compare``'s ranking (people's
    questions once there are enough, then imported, then generated ones)."""
    sets = [p for p in store.pair_sets(corpus_id) if store.split_counts(p.id).get("test")]
    if not sets:
        raise WorkspaceError("this corpus has no test questions yet: label people's questions "
                             "(Label page, python -m core label) or split a pair set (Pairs page)")
    return max(sets, key=lambda p: test_set_rank(store, p))


def which_model(store: Store, corpus_ref: str, measure: bool = True,
                speed_sample: int = SPEED_SAMPLE, progress=None) -> WhichModel:
    """Every candidate of a corpus on its judging test set, the best two and the cheapest
    candidate the questions cannot tell from the best.

    Args:
        corpus_ref: the corpus's name or id.
        measure: first measure, on that set, every model not yet measured on it (each base
            model, rotation and fine-tune of the corpus; ``label.judge_models``).
        speed_sample: passages encoded to time each model on this machine; 0: no timing.
        progress: called with (stage, fraction) while models are measured and timed.
    """
    corpus = store.find_corpus(corpus_ref)
    pair_set = judging_set(store, corpus.id)
    if measure:
        label.judge_models(store, pair_set.id, progress)
    runs = list_runs(store)
    candidates = _candidates(store, pair_set.id, runs)
    if speed_sample > 0:
        data = RetrievalSet.from_pair_set(store, pair_set.id, "test")
        for i, c in enumerate(candidates):
            if progress:
                progress(f"timing {c.name} on this machine", i / len(candidates))
            c.speed = timed(c.model, data.corpus[:speed_sample], data.queries[:3])
    questions = max((len(q) for c in candidates for q in c.per_query.values()), default=0)
    found = WhichModel(corpus.name, describe_test_set(store, pair_set), questions,
                       trust_note(pair_set), candidates)
    return decide(found)


def _candidates(store: Store, pair_set_id: int, runs: list[Run]) -> list[Candidate]:
    """One candidate per model measured on the set (its newest measurement), never a run that
    handed back the base model unchanged."""
    evaluations = {e.id: e for e in load_evaluations(store, pair_set_id)}
    jobs_by_model = {r.model_path: r for r in runs if r.model_path and r.job_id is not None}
    seen, out = set(), []
    for run in runs:  # newest first
        if run.pair_set_id != pair_set_id or not run.ndcg() or run.kept_base \
                or run.evaluation_id not in evaluations:
            continue
        model = run.model_path or run.model
        job = run if run.job_id is not None and run.kind != "evaluation" else jobs_by_model.get(model)
        if model in seen:
            continue
        seen.add(model)
        out.append(Candidate(_name(run, job), run.id, job.kind if job else "base model", model,
                             run.ndcg(), per_query_ndcg(evaluations[run.evaluation_id]),
                             job.seconds if job else None))
    return sorted(out, key=lambda c: -max(c.ndcg.values()))


def _name(run: Run, job: Run | None) -> str:
    """A base model by its name (not "baseline", which any base may be labelled), a trained
    model with the base it started from."""
    if job is not None:
        return f"{job.name} of {job.model}"
    return (run.model or models.DEFAULT_MODEL) if run.name == BASELINE else run.name


def timed(model_name: str, passages: list[str], queries: list[str]) -> Speed:
    """Passages a second and one question's latency, on this machine as it is loaded now."""
    model = models.load(model_name)
    encode_one(model, queries[0] if queries else "warm up")  # first call pays for set-up
    started = time.perf_counter()
    encode(model, passages, role="document")
    rate = len(passages) / max(time.perf_counter() - started, 1e-9)
    latencies = []
    for query in queries or ["a question"]:
        started = time.perf_counter()
        encode_one(model, query)
        latencies.append(1000 * (time.perf_counter() - started))
    return Speed(rate, statistics.median(latencies))


def decide(found: WhichModel) -> WhichModel:
    points = found.points()
    if not points:
        return found
    # Highest NDCG@10, then the smaller index, then the candidate listed first.
    found.best = max(points, key=lambda p: (p.ndcg, -p.bytes))
    others = [p for p in points if p.candidate is not found.best.candidate]
    if not others:
        return found
    found.runner_up = max(others, key=lambda p: (p.ndcg, -p.bytes))
    found.best_two = _versus(found.runner_up, found.best)
    within = []
    for point in points:
        if point.bytes < found.best.bytes:
            d = _versus(found.best, point)
            if d is not None and d.enough and not d.significant:
                within.append((point, d))
    if within:
        found.cheapest, found.cheapest_vs_best = min(within, key=lambda x: (x[0].bytes, -x[0].ndcg))
    return found


def _versus(a: Point, b: Point) -> Difference | None:
    """B against A question by question (delta: B − A)."""
    return difference(a.candidate.per_query.get(a.dims, {}), b.candidate.per_query.get(b.dims, {}))
