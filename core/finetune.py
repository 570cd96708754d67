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
from .train import Reporter, TrainConfig, TrainResult, train, training_pairs, write_model_card


@dataclass
class ExperimentResult:
    baseline: EvalResult
    finetuned: EvalResult | None  # None when the run was canceled
    training: TrainResult
    seconds: dict[str, float]

    def to_json(self) -> dict:
        return {"baseline": self.baseline.metrics_json(),
                "finetuned": self.finetuned.metrics_json() if self.finetuned else None,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
                "model_path": self.training.model_path, "best_epoch": self.training.best_epoch,
                "stopped_early": self.training.stopped_early}


def run_experiment(config: TrainConfig, pairs: list[tuple[str, str]], eval_data: RetrievalSet,
                   output_dir: Path, reporter: Reporter, store: Store | None = None,
                   corpus: list[str] | None = None, resume: bool = False) -> ExperimentResult:
    started = time.perf_counter()
    # Every setting is checked before the baseline is measured, so a mistake costs nothing.
    dim = models.load(config.model).get_embedding_dimension()
    resolved = config.resolved(dim, len(training_pairs(pairs, config.max_pairs)))
    dims = resolved.dims

    def progress(stage: str, fraction: float) -> None:
        reporter.status(f"{stage.capitalize()} ({fraction:.0%})")

    reporter.status("Measuring the baseline")
    baseline = evaluate_named(config.model, eval_data, dims, store, progress)
    reporter.log("baseline " + baseline.line())
    after_baseline = time.perf_counter()
    training = train(config, pairs, eval_data, output_dir, reporter, corpus, resume)
    after_training = time.perf_counter()
    finetuned = None
    if not training.stopped_early and Path(training.model_path).is_dir():
        reporter.status("Measuring the fine-tuned model")
        finetuned = evaluate_named(training.model_path, eval_data, dims, store, progress)
        finetuned.model = config.model + " (fine-tuned)"
        write_model_card(Path(training.model_path), resolved, baseline, finetuned)
    done = time.perf_counter()
    return ExperimentResult(baseline, finetuned, training, {
        "baseline_eval": after_baseline - started, "train": after_training - after_baseline,
        "final_eval": done - after_training, "total": done - started})
