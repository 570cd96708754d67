"""The training step alone (no evaluation, no saving): the reference recipe's settings against
ragtune's, and what each difference contributes, on the same pairs, model, batch and seed.

  reference  the model's full sequence length (256 for MiniLM), float32
  +seq       the sequence length the default plan fits to the passages
  +bf16      bfloat16 autocast on a CPU with native bf16 (AMX / AVX512-BF16), float32 otherwise
  +groups    batches of similar-length texts (core.batching), no text twice in a batch
  seq+bf16   the first two (ragtune before length-grouped batches)
  ours       all three
Each variant runs in its own subprocess, twice, in alternating order (these machines are shared
and noisy); the ratio uses the faster of the two runs. Target (issue 8): ours <= 0.6x reference.

    python benchmarks/step_speed.py [--corpus stdlib|manpages|packages] [--pairs 320]
    python benchmarks/step_speed.py --variants seq+bf16,ours     # what grouping adds
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VARIANTS = {"reference": (False, False, False), "+seq": (True, False, False),
            "+bf16": (False, True, False), "+groups": (False, False, True),
            "seq+bf16": (True, True, False), "ours": (True, True, True)}


def child(corpus: str, n_pairs: int, fit_seq: bool, bf16: bool, grouped: bool = False) -> dict:
    import datasets
    import torch
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers.trainer_callback import PrinterCallback

    from benchmarks import corpora
    from benchmarks.length_groups import LengthGroupedBatchSampler
    from core.documents.beir import load_demo
    from core.training.config import TrainConfig
    from core.training.device import DeviceSetup
    from core.training.train import plan_run
    from core.workspace import models
    from core.workspace.store import Store
    with tempfile.TemporaryDirectory() as home:
        store = Store(home)
        load = load_demo if corpus == "stdlib" else lambda s, c: corpora.load(s, corpus, c)
        _, pair_set_id = load(store, models.token_counter())
        pairs = [(p["query"], p["positive"]) for p in store.pairs(pair_set_id, "train")][:n_pairs]
        model = models.load_fresh(None, "cpu")
        setup = DeviceSetup.detect()
        config, _ = plan_run(TrainConfig(epochs=1, batch_size=32), pairs, model, setup)
        if fit_seq:
            model.max_seq_length = config.max_seq_length
        use_bf16 = bf16 and setup.bf16
        torch.manual_seed(42)
        args = SentenceTransformerTrainingArguments(
            output_dir=str(Path(home) / "out"), num_train_epochs=1, per_device_train_batch_size=32,
            learning_rate=2e-5, warmup_steps=0.1, lr_scheduler_type="cosine", use_cpu=True,
            bf16=use_bf16, eval_strategy="no",
            batch_sampler=LengthGroupedBatchSampler if grouped else BatchSamplers.NO_DUPLICATES,
            save_strategy="no", seed=42, report_to="none", disable_tqdm=True)
        dataset = datasets.Dataset.from_dict({"anchor": [q for q, _ in pairs],
                                              "positive": [p for _, p in pairs]})
        loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [384, 256, 128, 64, 32])
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train()
        return {"seconds": time.perf_counter() - start, "seq": model.max_seq_length,
                "bf16": use_bf16, "pairs": len(pairs)}


def spawn(corpus: str, n_pairs: int, variant: str) -> dict:
    fit_seq, bf16, grouped = VARIANTS[variant]
    code = (f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.step_speed import child; "
            f"print(json.dumps(child({corpus!r}, {n_pairs}, {fit_seq}, {bf16}, {grouped})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=3600)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="stdlib")
    parser.add_argument("--pairs", type=int, default=320)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="the first is the baseline")
    args = parser.parse_args()
    chosen = args.variants.split(",")
    unknown = set(chosen) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; pick from {', '.join(VARIANTS)}")
    runs: dict[str, list[dict]] = {v: [] for v in chosen}
    for order in (chosen, chosen[::-1]):
        for variant in order:
            runs[variant].append(spawn(args.corpus, args.pairs, variant))
    best = {v: min(r["seconds"] for r in rs) for v, rs in runs.items()}
    first, baseline = runs[chosen[-1]][0], chosen[0]
    print(f"{args.corpus}: {first['pairs']} pairs, batch 32, 1 epoch, CPU; fitted seq {first['seq']}, "
          f"bf16 {'available' if first['bf16'] else 'not available'}")
    for variant, seconds in best.items():
        print(f"  {variant:<10} {seconds:7.1f} s   {seconds / best[baseline]:.2f}x {baseline}"
              f"   (runs: {', '.join(format(r['seconds'], '.1f') for r in runs[variant])})")


if __name__ == "__main__":
    main()
