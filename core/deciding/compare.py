"""What a comparison of two evaluations says, in numbers and in sentences computed from them.

The statements are the ones people quote from Matryoshka fine-tuning results: the gain at full
size, the gain at the smallest size, whether a small fine-tuned vector beats the full-size
baseline, and how much of its full-size score the fine-tuned model keeps when truncated. Given
each question's NDCG@10, every gain and loss carries its paired bootstrap interval
(``core.measuring.significance``), and one whose interval holds zero is called "not significant", never
a gain.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from core.documents.pairs import is_generated
from core.measuring.evaluate import BASELINE, METRICS, StoredEvaluation
from core.measuring.significance import Difference, paired_bootstrap
from core.training import plan
from core.using.label import SOURCE as PEOPLE
from core.using.label import test_questions
from core.using.runs import Run, list_runs
from core.workspace.store import Store, WorkspaceError
from core.workspace.wording import plural, sentence

Metrics = dict[int, dict[str, float]]
PerQuery = dict[int, dict[str, float]]  # dimension -> question id -> NDCG@10
GENERATED_TEST = ("Measured on generated questions, which flatter fine-tuning: label "
                  f"{plan.PEOPLE_TEST_MIN} or more people's questions to trust this.")


def trust_note(pair_set) -> str | None:
    """What a reader must know before believing scores measured on this pair set's test split."""
    return GENERATED_TEST if is_generated(pair_set) else None


def capped_metrics(pair_set, metrics: Metrics) -> list[str]:
    """The metrics that read a perfect 1.0 only because of how the pairs were made: the offline
    generator keeps a question only when the base model already ranks its passage in its top k
    (``PseudoQueryConfig.filter_top_k``), so the base model's Recall@k and Accuracy@k for that
    k and above are 1.0 by construction, and any other model can only lose on them."""
    k = (pair_set.settings.get("config") or {}).get("filter_top_k")
    if pair_set.source != "builtin" or not k:
        return []
    return sorted({m for ms in metrics.values() for m, v in ms.items()
                   if v >= 1.0 and m.split("@")[0] in ("recall", "accuracy")
                   and int(m.split("@")[1]) >= k}, key=METRICS.index)


def ceiling_note(pair_set, metrics: Metrics) -> str | None:
    """Why ``capped_metrics`` read 1.0, in a sentence; None when none do."""
    capped = capped_metrics(pair_set, metrics)
    if not capped:
        return None
    k = pair_set.settings["config"]["filter_top_k"]
    names = " and ".join(m[0].upper() + m[1:] for m in capped)
    return (f"{names} read 1.0 by construction, not by skill: the generator kept only questions "
            f"whose passage the base model already ranks in its top {k}, so the base model cannot "
            f"miss there and a fine-tuned model can only lose; compare on NDCG@10 or MRR@10.")


def gains(reference: Metrics, other: Metrics, metric: str) -> list[dict]:
    """Per shared dimension: both scores, the absolute and the relative change."""
    rows = []
    for dim in sorted(set(reference) & set(other), reverse=True):
        before, after = reference[dim][metric], other[dim][metric]
        rows.append({"dim": dim, "before": before, "after": after, "change": after - before,
                     "relative": (after / before - 1) if before else float("nan")})
    return rows


def per_query_ndcg(evaluation: StoredEvaluation) -> PerQuery:
    """Each question's NDCG@10 at each dimension of a stored evaluation. Evaluations stored
    before per-question NDCG was kept give it from the rank of the first relevant passage,
    which is exact for questions with one relevant passage."""
    stored = evaluation.details.get("per_query_ndcg")
    if stored:
        return {int(d): scores for d, scores in stored.items()}
    return {int(d): {q: (1 / math.log2(rank + 1) if 1 <= rank <= 10 else 0.0)
                     for q, (rank, _) in ranks.items()}
            for d, ranks in evaluation.details.get("per_query", {}).items()}


def difference(a: dict[str, float], b: dict[str, float]) -> Difference | None:
    """The paired bootstrap of b against a over the questions both scored; None below two."""
    common = sorted(set(a) & set(b))
    if len(common) < 2:
        return None
    return paired_bootstrap([a[q] for q in common], [b[q] for q in common])


def differences(a: PerQuery, b: PerQuery) -> dict[int, Difference]:
    """Per shared dimension, largest first: B's NDCG@10 against A's, question by question."""
    out = {}
    for dim in sorted(set(a) & set(b), reverse=True):
        found = difference(a[dim], b[dim])
        if found:
            out[dim] = found
    return out


def compare_evaluations(a: StoredEvaluation, b: StoredEvaluation) -> dict[int, Difference]:
    """Every shared dimension's difference between two evaluations of the same test set."""
    if a.pair_set_id != b.pair_set_id:
        raise WorkspaceError(f"evaluations {a.id} and {b.id} were measured on different pair "
                             "sets; compare runs of the same pair set")
    found = differences(per_query_ndcg(a), per_query_ndcg(b))
    if not found:
        raise WorkspaceError(f"evaluations {a.id} and {b.id} share no dimension with two or more "
                             "questions scored by both")
    return found


def _interval(d: Difference) -> str:
    return (f"95% interval {d.interval()} over {d.questions} questions; better on "
            f"{d.wins}, worse on {d.losses}")


def headlines(reference: Metrics, other: Metrics, metric: str, names=(BASELINE, "fine-tuned"),
              per_query: tuple[PerQuery, PerQuery] | None = None) -> list[str]:
    """Sentences on the change from ``reference`` to ``other``.

    Args:
        per_query: each question's NDCG@10 under the reference and the other model; with it,
            NDCG@10 gains and losses say whether they are significant, and a gain that is not
            is never stated as one.
    """
    rows = gains(reference, other, metric)
    if not rows:
        return []
    ref_name, other_name = names
    label = metric.upper()
    full, smallest = rows[0], rows[-1]
    tested = per_query if per_query and metric == "ndcg@10" else None
    found = differences(*tested) if tested else {}

    def change(row) -> str:
        text = f"{row['relative']:+.1%} at {row['dim']} dims"
        d = found.get(row["dim"])
        return f"{text} ({d.verdict()}: {_interval(d)})" if d else text

    lines = [f"{sentence(other_name)} {label}: {change(full)}"
             + (f" and {change(smallest)}." if len(rows) > 1 else ".")]
    n = max((d.questions for d in found.values()), default=0)
    if found and all(d.wins == d.losses == 0 for d in found.values()):
        # More questions cannot separate two models that score every question alike.
        lines.append(f"{sentence(other_name)} and {ref_name} score each of these {n} questions "
                     "the same at every size: here they are the same model.")
    elif found and not any(d.significant for d in found.values()):
        lines.append(f"At no size do these {n} questions tell {other_name} from {ref_name}: "
                     "label more questions before choosing one on this difference.")

    def beats(d: int) -> bool:
        if not tested:
            return True
        test = difference(tested[0].get(full["dim"], {}), tested[1].get(d, {}))
        return bool(test and test.significant and test.delta > 0)

    beating = [r["dim"] for r in rows if r["after"] >= full["before"] and beats(r["dim"])]
    if beating and min(beating) < full["dim"]:
        d = min(beating)
        lines.append(f"{sentence(other_name)} at {d} dims ({other[d][metric]:.3f}) beats the "
                     f"{ref_name} at {full['dim']} dims ({full['before']:.3f}): "
                     f"{full['dim'] / d:g}× smaller vectors, better retrieval.")
    kept = [r["dim"] for r in rows if r["after"] >= 0.99 * full["after"]]
    if kept and min(kept) < full["dim"]:
        d = min(kept)
        lines.append(f"{sentence(other_name)} keeps {other[d][metric] / full['after']:.0%} of "
                     f"its full-size score at {d} dims, {full['dim'] / d:g}× smaller.")
    worse = [r["dim"] for r in rows if r["change"] < 0
             and (not found or (r["dim"] in found and found[r["dim"]].significant))]
    if worse:
        lines.append(f"{label} fell at {', '.join(map(str, worse))} dims: with few or noisy "
                     "pairs, fine-tuning can hurt; add pairs or train fewer epochs.")
    return lines


# -- the comparison that matters -----------------------------------------------------------------
@dataclass
class Comparison:
    """The one comparison every page and the CLI show first: on the corpus's best test set, the
    base model against the best other candidate measured on that same set.

    Attributes:
        pair_set_id: the test set both runs were measured on (None: nothing is measured yet).
        test_set: that set in words, e.g. "people's questions (40 test questions)".
        base: the base model's newest evaluation on the set, if any.
        best: the other run with the highest mean NDCG@10 on the set, if any; never a run
            that kept the base model unchanged.
        same_as_base: runs of the corpus, on any of its sets, that handed back the base model
            ("= base"), one per model.
    """
    pair_set_id: int | None
    test_set: str = ""
    people: bool = False
    base: Run | None = None
    best: Run | None = None
    same_as_base: list[Run] = field(default_factory=list)

    def runs(self) -> list[Run]:
        """Base first, then the best other: the order charts and tables use."""
        return [r for r in (self.base, self.best) if r is not None]

    def headline(self) -> str:
        """One line with both numbers, always from the one test set."""
        if self.base is None and self.best is None:
            return "Nothing measured yet."
        if self.base is None or self.best is None:
            only = self.base or self.best
            full = max(only.ndcg())
            return (f"On {self.test_set}: {only.shown_name} NDCG@10 {only.ndcg()[full]:.3f} at "
                    f"{full} dims; no other model is measured on this set yet.")
        dims = [d for d in self.best.ndcg() if d in self.base.ndcg()]
        if not dims:
            return f"On {self.test_set}: {self.base.name} and {self.best.name} share no dimension."
        a, b = self.base.ndcg(), self.best.ndcg()
        parts = [f"{a[d]:.3f} → {b[d]:.3f} at {d} dims" for d in dict.fromkeys((dims[0], dims[-1]))]
        return (f"On {self.test_set}: {self.best.shown_name} against {self.base.name}, NDCG@10 "
                f"{' and '.join(parts)}.")

    def best_model_run(self, runs: list[Run]) -> Run | None:
        """The run whose saved model is the best one: Export's default. A model measured on
        people's questions after its job is a separate evaluation; its job holds the folder."""
        if self.best is None:
            return None
        if self.best.model_path:
            return self.best
        return next((r for r in runs if r.model_path and not r.kept_base
                     and r.model_path == self.best.model), None)

    def to_json(self) -> dict:
        return {"pair_set_id": self.pair_set_id, "test_set": self.test_set, "people": self.people,
                "base": self.base.id if self.base else None,
                "best": self.best.id if self.best else None,
                "same_as_base": [r.id for r in self.same_as_base], "headline": self.headline()}


def test_set_rank(store: Store, pair_set) -> tuple:
    """How much a test set can be trusted, for max(): people's questions once there are
    ``plan.PEOPLE_TEST_MIN`` of them, then other questions people wrote (an imported set), then
    generated ones (they flatter fine-tuning), then too few people's questions; more test
    questions first within a kind, then the newer set."""
    n = test_questions(store, pair_set.id)
    people = pair_set.source == PEOPLE
    ready = people and n >= plan.PEOPLE_TEST_MIN
    kind = 3 if ready else 0 if people else 1 if is_generated(pair_set) else 2
    return kind, n, pair_set.id


def describe_test_set(store: Store, pair_set) -> str:
    n = test_questions(store, pair_set.id)
    return f"'{pair_set.name}' ({plural(n, 'test question')})"


def is_base(run: Run) -> bool:
    """An evaluation of the base model: what every page and job labels BASELINE."""
    return run.kind == "evaluation" and run.name == BASELINE


def _mean_ndcg(run: Run, dims: set[int]) -> float:
    scores = [v for d, v in run.ndcg().items() if not dims or d in dims]
    return sum(scores) / len(scores) if scores else float("-inf")


def comparison(store: Store, corpus_id: int | None = None, pair_set_id: int | None = None,
               runs: list[Run] | None = None) -> Comparison:
    """The comparison that matters, computed one way for every page and the CLI.

    Args:
        corpus_id: the corpus whose test sets count; None: the corpus of the newest measured run.
        pair_set_id: a test set the person chose; None: the corpus's best test set that has a
            measured run (``test_set_rank``), so two sets never meet in one headline.
        runs: ``list_runs(store)``, when the caller has it already.
    """
    runs = list_runs(store) if runs is None else runs
    measured = [r for r in runs if r.metrics and r.pair_set_id is not None]
    sets = {p.id: p for p in store.pair_sets()}
    if corpus_id is None and pair_set_id is None:
        newest = next((r for r in measured if r.pair_set_id in sets), None)
        if newest is None:
            return Comparison(None)
        corpus_id = sets[newest.pair_set_id].corpus_id
    if pair_set_id is None:
        ranked = [p for p in sets.values() if p.corpus_id == corpus_id
                  and any(r.pair_set_id == p.id for r in measured)]
        if not ranked:
            return Comparison(None)
        pair_set_id = max(ranked, key=lambda p: test_set_rank(store, p)).id
    pair_set = sets.get(pair_set_id) or store.pair_set(pair_set_id)
    on_set = [r for r in measured if r.pair_set_id == pair_set_id]
    base = next((r for r in on_set if is_base(r)), None)
    corpus_id = pair_set.corpus_id
    # Every run of the corpus that kept the base, once per model folder: a page on any of its
    # sets says where such a fine-tune went, rather than leaving it out unexplained.
    same = list({(r.model_path or r.model): r for r in reversed(measured) if r.kept_base
                 and r.pair_set_id in sets and sets[r.pair_set_id].corpus_id == corpus_id}.values())
    # Another measurement of the base's weights under a name a person gave it (e.g. shorter
    # passages) is a candidate; only the base's own "baseline" entries are not.
    others = [r for r in on_set if not r.kept_base and not is_base(r)]
    shared = set(base.ndcg()) if base else set()
    best = max(others, key=lambda r: _mean_ndcg(r, shared), default=None)
    return Comparison(pair_set_id, describe_test_set(store, pair_set), pair_set.source == PEOPLE,
                      base, best, same)
