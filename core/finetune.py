"""One fine-tuning experiment from end to end: baseline → training → fine-tuned evaluation.

Shared by the background job (pair sets from the workspace, results stored with the job) and by
``python -m core train`` (pairs from a file, a BEIR folder to evaluate on). Both models are
measured on the same test queries with the same evaluator, so the two lines on the results chart
are comparable by construction.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import models
from .evaluate import EvalResult, RetrievalSet, evaluate_named
from .store import Store
from .train import Reporter, TrainConfig, TrainResult, train, write_model_card


@dataclass
class ExperimentResult:
    baseline: EvalResult
    finetuned: EvalResult | None  # None when the run was canceled
    training: TrainResult
    seconds: dict[str, float]

    def to_json(self) -> dict:
        def table(result: EvalResult | None):
            return {str(d): m for d, m in result.metrics.items()} if result else None
        return {"baseline": table(self.baseline), "finetuned": table(self.finetuned),
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
                "model_path": self.training.model_path, "best_epoch": self.training.best_epoch,
                "stopped_early": self.training.stopped_early}


def run_experiment(config: TrainConfig, pairs: list[tuple[str, str]], eval_data: RetrievalSet,
                   output_dir: Path, reporter: Reporter, store: Store | None = None,
                   corpus: list[str] | None = None, resume: bool = False) -> ExperimentResult:
    started = time.perf_counter()
    model = models.load(config.model)
    dims = config.resolved(model.get_embedding_dimension(), max(len(pairs), config.batch_size)).dims

    def progress(stage: str, fraction: float) -> None:
        reporter.status(f"{stage.capitalize()} ({fraction:.0%})")

    reporter.status("Measuring the baseline")
    baseline = evaluate_named(config.model, eval_data, dims, store, progress)
    reporter.log("baseline NDCG@10: " + ", ".join(
        f"{d}d {m['ndcg@10']:.4f}" for d, m in baseline.metrics.items()))
    after_baseline = time.perf_counter()
    training = train(config, pairs, eval_data, output_dir, reporter, corpus, resume)
    after_training = time.perf_counter()
    finetuned = None
    if not training.stopped_early and Path(training.model_path).is_dir():
        reporter.status("Measuring the fine-tuned model")
        finetuned = evaluate_named(training.model_path, eval_data, dims, store, progress)
        finetuned.model = config.model + " (fine-tuned)"
        resolved = TrainConfig.from_dict({**config.__dict__, "dims": dims})
        write_model_card(Path(training.model_path), resolved, baseline, finetuned)
    done = time.perf_counter()
    return ExperimentResult(baseline, finetuned, training, {
        "baseline_eval": after_baseline - started, "train": after_training - after_baseline,
        "final_eval": done - after_training, "total": done - started})
