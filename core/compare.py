"""What a comparison of two evaluations says, in numbers and in sentences computed from them.

The statements are the ones people quote from Matryoshka fine-tuning results: the gain at full
size, the gain at the smallest size, whether a small fine-tuned vector beats the full-size
baseline, and how much of its full-size score the fine-tuned model keeps when truncated.
"""
from __future__ import annotations

from .evaluate import METRICS
from .pairs import is_generated

Metrics = dict[int, dict[str, float]]
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


def headlines(reference: Metrics, other: Metrics, metric: str, names=("baseline", "fine-tuned")
              ) -> list[str]:
    rows = gains(reference, other, metric)
    if not rows:
        return []
    ref_name, other_name = names
    label = metric.upper()
    full, smallest = rows[0], rows[-1]
    lines = [f"{other_name.capitalize()} {label}: {full['relative']:+.1%} at {full['dim']} dims"
             + (f" and {smallest['relative']:+.1%} at {smallest['dim']} dims." if len(rows) > 1 else ".")]
    beating = [r["dim"] for r in rows if r["after"] >= full["before"]]
    if beating and min(beating) < full["dim"]:
        d = min(beating)
        lines.append(f"{other_name.capitalize()} at {d} dims ({other[d][metric]:.3f}) beats the "
                     f"{ref_name} at {full['dim']} dims ({full['before']:.3f}): "
                     f"{full['dim'] // d}× smaller vectors, better retrieval.")
    kept = [r["dim"] for r in rows if r["after"] >= 0.99 * full["after"]]
    if kept and min(kept) < full["dim"]:
        d = min(kept)
        lines.append(f"{other_name.capitalize()} keeps {other[d][metric] / full['after']:.0%} of "
                     f"its full-size score at {d} dims, {full['dim'] // d}× smaller.")
    worse = [r["dim"] for r in rows if r["change"] < 0]
    if worse:
        lines.append(f"{label} fell at {', '.join(map(str, worse))} dims: with few or noisy "
                     "pairs, fine-tuning can hurt; add pairs or train fewer epochs.")
    return lines
