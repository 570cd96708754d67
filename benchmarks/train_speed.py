"""Training end to end vs the reference recipe, quality on the demo, and the app under load.

Each variant runs in its own subprocess (so peak memory is its own), on the same demo train
pairs, model, epochs, batch size, sequence length and seed; the parent prints the ratios.
  * ours (run_experiment: encode-once evaluation before, during and after training) vs the
    reference recipe (a SequentialEvaluator of one InformationRetrievalEvaluator per dimension
    before, at each epoch and after, and a plain trainer)           target: time <= 0.6x,
                                                                     NDCG@10 within 0.005
  * peak RSS of CPU training at batch 32                             target: < 3 GB
  * fine-tuning on the real train pairs, and on built-in pseudo-queries, vs the baseline
  * every page's script run while a job trains                       target: < 1 s
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EPOCHS, BATCH, SEQ, DIMS = 1, 32, 128, [384, 256, 128, 64, 32]


def demo_data(home: str, builtin: bool = False):
    from core.documents.beir import load_demo
    from core.documents.pseudo import generate_builtin
    from core.measuring.evaluate import RetrievalSet
    from core.workspace import models
    from core.workspace.store import Store
    store = Store(home)
    corpus_id, pair_set_id = load_demo(store, models.token_counter())
    if builtin:
        pseudo = generate_builtin(store, corpus_id, "pseudo")
        pairs = [(p["query"], p["positive"]) for p in store.pairs(pseudo)]
    else:
        pairs = [(p["query"], p["positive"]) for p in store.pairs(pair_set_id, "train")]
    return store, pairs, RetrievalSet.from_pair_set(store, pair_set_id)


class Quiet:
    def status(self, text): pass
    def progress(self, fraction): pass
    def log(self, line): pass
    def point(self, series, step, value, epoch=None): pass
    def should_stop(self): return False


def run_ours(home: str, builtin: bool) -> dict:
    from core.training.config import TrainConfig
    from core.training.finetune import run_experiment
    store, pairs, data = demo_data(home, builtin)
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH, max_seq_length=SEQ, dims=DIMS)
    start = time.perf_counter()
    result = run_experiment(config, pairs, data, Path(home) / "ours", Quiet(), store)
    return {"seconds": time.perf_counter() - start, "pairs": len(pairs),
            "baseline": {d: m["ndcg@10"] for d, m in result.baseline.metrics.items()},
            "finetuned": {d: m["ndcg@10"] for d, m in result.finetuned.metrics.items()}}


def run_reference(home: str) -> dict:
    """The public recipe's structure, on the same data and settings."""
    import datasets
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator, SequentialEvaluator
    from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    from core.workspace import models
    _, pairs, data = demo_data(home)
    start = time.perf_counter()
    model = SentenceTransformer(str(models.resolve(None)), device="cpu")
    model.max_seq_length = SEQ
    queries = dict(zip(data.query_ids, data.queries))
    corpus = dict(zip(data.corpus_ids, data.corpus))
    evaluator = SequentialEvaluator([InformationRetrievalEvaluator(
        queries, corpus, data.relevant, name=f"dim_{d}", truncate_dim=d, show_progress_bar=False)
        for d in DIMS])
    before = evaluator(model)
    loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), matryoshka_dims=DIMS)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(Path(home) / "reference"), num_train_epochs=EPOCHS,
        per_device_train_batch_size=BATCH, learning_rate=2e-5, warmup_steps=0.1,
        lr_scheduler_type="cosine", optim="adamw_torch", use_cpu=True,
        batch_sampler=BatchSamplers.NO_DUPLICATES, eval_strategy="epoch", save_strategy="epoch",
        save_total_limit=2, load_best_model_at_end=True,
        metric_for_best_model="eval_dim_128_cosine_ndcg@10", logging_steps=10, seed=42,
        data_seed=42, report_to="none", disable_tqdm=True)
    dataset = datasets.Dataset.from_dict({"anchor": [q for q, _ in pairs],
                                          "positive": [p for _, p in pairs]})
    SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                               evaluator=evaluator).train()
    after = evaluator(model)
    return {"seconds": time.perf_counter() - start, "pairs": len(pairs),
            "baseline": {d: before[f"dim_{d}_cosine_ndcg@10"] for d in DIMS},
            "finetuned": {d: after[f"dim_{d}_cosine_ndcg@10"] for d in DIMS}}


def page_times_while_training(home: str) -> dict:
    """Time each page's script run (AppTest, warm) while the runner trains in this process."""
    from streamlit.testing.v1 import AppTest

    from core.training import jobs
    store, _, _ = demo_data(home)
    os.environ["RAGTUNE_HOME"] = home
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()  # starts the runner
    pair_set_id = store.pair_sets()[0].id
    job_id = jobs.submit(store, "train", {"pair_set_id": pair_set_id, "epochs": 3, "batch_size": BATCH,
                                          "max_seq_length": SEQ})
    while jobs.get(store, job_id).status.split(":")[0] != "Training":
        time.sleep(0.2)
    times = {}
    for view in ("home", "corpus", "pairs", "finetune", "results"):
        if view != "home":
            at.switch_page(f"views/{view}.py")
        at.run()  # warm-up: imports, caches
        start = time.perf_counter()
        at.run()
        times[view] = time.perf_counter() - start
        assert not at.exception, at.exception
    running = jobs.get(store, job_id).state == "running"
    jobs.cancel(store, job_id)
    while jobs.get(store, job_id).state == "running":
        time.sleep(0.2)
    return {"times": times, "job_was_running": running}


def child(which: str) -> None:
    with tempfile.TemporaryDirectory() as home:
        if which == "pages":
            out = page_times_while_training(home)
        elif which == "reference":
            out = run_reference(home)
        else:
            out = run_ours(home, builtin=which == "builtin")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def spawn(which: str) -> dict:
    result = subprocess.run([sys.executable, __file__, which], capture_output=True, text=True,
                            cwd=ROOT, timeout=3600)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    ours, reference = spawn("ours"), spawn("reference")
    dims = [str(d) for d in DIMS]
    print(f"data: demo corpus, {ours['pairs']} train pairs, {EPOCHS} epoch, batch {BATCH}, seq {SEQ}, cpu")
    print(f"ours / reference time:          {ours['seconds'] / reference['seconds']:.2f}x   "
          f"({ours['seconds']:.0f} s vs {reference['seconds']:.0f} s; target <= 0.6x)")
    diff = {d: ours["finetuned"][d] - reference["finetuned"][d] for d in dims}
    print("fine-tuned NDCG@10, ours - ref:  " + ", ".join(f"{d}d {v:+.4f}" for d, v in diff.items())
          + "   (target: none below -0.005)")
    print(f"peak RSS, CPU training batch {BATCH}: ours {ours['peak_rss_mb']:.0f} MB, reference "
          f"{reference['peak_rss_mb']:.0f} MB   (target < 3072 MB)")
    print("demo NDCG@10 baseline -> fine-tuned on real train pairs: " + ", ".join(
        f"{d}d {ours['baseline'][d]:.4f}->{ours['finetuned'][d]:.4f} "
        f"({ours['finetuned'][d] / ours['baseline'][d] - 1:+.1%})" for d in dims))
    builtin = spawn("builtin")
    print(f"demo NDCG@10 with {builtin['pairs']} built-in pseudo-query pairs instead: " + ", ".join(
        f"{d}d {builtin['finetuned'][d]:.4f} ({builtin['finetuned'][d] / builtin['baseline'][d] - 1:+.1%})"
        for d in dims))
    pages = spawn("pages")
    print("page script runs while a job trains (s): " + ", ".join(
        f"{k} {v:.2f}" for k, v in pages["times"].items())
          + f"   (max {max(pages['times'].values()):.2f} s; target < 1 s; job running: {pages['job_was_running']})")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        child(sys.argv[1])
    else:
        main()
