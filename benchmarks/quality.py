"""Fine-tuning quality with the default plan, on three corpora of different kinds, scored on
people's queries: baseline vs fine-tuned NDCG@10 at every dimension, with time.

Two modes per corpus:
  * labelled  — train on people's train pairs, pick the epoch on their test queries (what
                ``python -m core train --pairs … --eval …`` does with no other flags);
  * generated — no labels: generate pairs from the corpus with the default offline generator,
                pick the epoch on a held-out tenth of the *generated* pairs, and score on
                people's test queries, which training never saw.
Targets (issue 8): generated ≥ baseline at every dimension; labelled better at every dimension.

    python benchmarks/quality.py                       # all corpora, both modes
    python benchmarks/quality.py --corpora manpages --modes generated --budget-minutes 3
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import corpora  # noqa: E402
from core.plan import planned_vs_actual  # noqa: E402


class Quiet:
    def status(self, text): pass
    def progress(self, fraction): pass
    def log(self, line): print("   ", line, file=sys.stderr) if "plan:" in line or "did not help" in line else None
    def point(self, series, step, value, epoch=None): pass
    def should_stop(self): return False


def run(corpus: str, mode: str, budget: float | None, home: Path, generator: dict) -> dict:
    from core import models
    from core.beir import load_demo
    from core.evaluate import RetrievalSet
    from core.finetune import run_experiment
    from core.pairs import PseudoQueryConfig, generate_builtin, split
    from core.store import Store
    from core.train import TrainConfig
    store = Store(home)
    count = models.token_counter()
    corpus_id, people = (load_demo(store, count) if corpus == "stdlib"
                         else corpora.load(store, corpus, count))
    test = RetrievalSet.from_pair_set(store, people, "test")
    started = time.perf_counter()
    if mode == "labelled":
        pairs = [(p["query"], p["positive"]) for p in store.pairs(people, "train")]
        validation = None
    else:
        generated = generate_builtin(store, corpus_id, "generated", PseudoQueryConfig(**generator))
        split(store, generated, 0.1, seed=7)
        pairs = [(p["query"], p["positive"]) for p in store.pairs(generated, "train")]
        validation = RetrievalSet.from_pair_set(store, generated, "test")
    generate_seconds = time.perf_counter() - started
    config = TrainConfig(budget_minutes=budget, generated_pairs=mode == "generated")
    result = run_experiment(config, pairs, test, home / f"{mode}-model", Quiet(), store,
                            validation=validation)
    return {"corpus": corpus, "mode": mode, "pairs": len(pairs), "kept": result.training.kept,
            "plan": result.training.plan, "baseline": result.baseline.metrics,
            "finetuned": result.finetuned.metrics,
            "seconds": {"generate": generate_seconds, **result.seconds}}


def report(row: dict) -> None:
    dims = list(row["baseline"])
    gains = [row["finetuned"][d]["ndcg@10"] / max(row["baseline"][d]["ndcg@10"], 1e-9) - 1 for d in dims]
    print(f"\n{row['corpus']} · {row['mode']} · {row['pairs']} pairs · kept {row['kept']} · "
          f"train {row['seconds']['train']:.0f} s, total {row['seconds']['total'] + row['seconds']['generate']:.0f} s")
    print("  " + planned_vs_actual(row["plan"], row["seconds"]["train"]))
    print("  dim   " + "  ".join(f"{d:>7}" for d in dims))
    print("  base  " + "  ".join(f"{row['baseline'][d]['ndcg@10']:7.4f}" for d in dims))
    print("  tuned " + "  ".join(f"{row['finetuned'][d]['ndcg@10']:7.4f}" for d in dims))
    print("  gain  " + "  ".join(f"{g:+7.1%}" for g in gains))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", default="stdlib,manpages,packages")
    parser.add_argument("--modes", default="generated,labelled")
    parser.add_argument("--budget-minutes", type=float, help="default: the plan's own budget")
    parser.add_argument("--generator", default="{}", help="JSON keyword arguments for generate_builtin")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    rows = []
    for corpus in args.corpora.split(","):
        for mode in args.modes.split(","):
            with tempfile.TemporaryDirectory() as home:
                rows.append(run(corpus, mode, args.budget_minutes, Path(home), json.loads(args.generator)))
            report(rows[-1])
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
