"""What a comparison of two evaluations says, in numbers and in sentences computed from them.

The statements are the ones people quote from Matryoshka fine-tuning results: the gain at full
size, the gain at the smallest size, whether a small fine-tuned vector beats the full-size
baseline, and how much of its full-size score the fine-tuned model keeps when truncated.
"""
from __future__ import annotations

from .pairs import is_generated

Metrics = dict[int, dict[str, float]]
GENERATED_TEST = ("Measured on generated questions, which flatter fine-tuning: add 50 real "
                  "questions to trust this.")


def trust_note(pair_set) -> str | None:
    """What a reader must know before believing scores measured on this pair set's test split."""
    return GENERATED_TEST if is_generated(pair_set) else None


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
