"""What a comparison of two evaluations says, in numbers and in sentences computed from them.

The statements are the ones people quote from Matryoshka fine-tuning results: the gain at full
size, the gain at the smallest size, whether a small fine-tuned vector beats the full-size
baseline, and how much of its full-size score the fine-tuned model keeps when truncated. Given
each question's NDCG@10, every gain and loss carries its paired bootstrap interval
(``core.significance``), and one whose interval holds zero is called "not significant", never
a gain.
"""
from __future__ import annotations

import math

from .evaluate import BASELINE, METRICS, StoredEvaluation
from .pairs import is_generated
from .significance import Difference, paired_bootstrap
from .store import WorkspaceError
from .wording import sentence

Metrics = dict[int, dict[str, float]]
PerQuery = dict[int, dict[str, float]]  # dimension -> question id -> NDCG@10
GENERATED_TEST = ("Measured on generated questions, which flatter fine-tuning: add 50 real "
                  "questions to trust this.")


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
    if found and not any(d.significant for d in found.values()):
        n = max(d.questions for d in found.values())
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
