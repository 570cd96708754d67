"""One fine-tuning experiment from end to end: baseline → training → rotation → the general set and
the merge with the base (``core.training.forgetting``) → fine-tuned evaluation.

Shared by the background job (pair sets from the workspace, results stored with the job) and by
``python -m core train`` (pairs from a file, a BEIR folder to evaluate on). Both models are
measured on the same test queries with the same evaluator, so the two lines on the results chart
are comparable by construction. The best epoch is picked on validation pairs held out from the
training side (``core.training.validation``), never on those test queries.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from core.measuring.evaluate import EvalResult, RetrievalSet, evaluate_named
from core.training.config import Reporter, TrainConfig, TrainResult, stage_progress
from core.training.device import DeviceSetup
from core.training.forgetting import GeneralCheck, allowance, check_and_merge
from core.training.plan import BUDGET_MINUTES, MERGE_SHARE
from core.training.rotate import RotationCheck, rotate_if_it_helps
from core.training.train import NO_GAIN, plan_run, train, write_model_card
from core.training.validation import VALIDATION_FILE, HeldOut, hold_out
from core.workspace import models
from core.workspace.store import Store
from core.workspace.wording import duration


@dataclass
class ExperimentResult:
    baseline: EvalResult
    finetuned: EvalResult | None  # None when the run was canceled
    training: TrainResult
    seconds: dict[str, float]
    validation_pairs: int = 0
    rotation: RotationCheck | None = None  # None when it was not tried
    general: GeneralCheck | None = None  # the last step: None where no model was trained

    @property
    def kept_base(self) -> bool:
        return self.training.kept == "base"

    def to_json(self) -> dict:
        return {"baseline": self.baseline.metrics_json(),
                "finetuned": self.finetuned.metrics_json() if self.finetuned else None,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
                "model_path": self.training.model_path, "best_epoch": self.training.best_epoch,
                "kept": self.training.kept, "plan": self.training.plan,
                "message": NO_GAIN if self.kept_base else None,
                "stopped_early": self.training.stopped_early,
                "validation_pairs": self.validation_pairs,
                "rotation": {**asdict(self.rotation), "line": self.rotation.line()}
                if self.rotation else None,
                "general": self.general.to_json() if self.general else None,
                "alpha": self.general.kept_alpha if self.general else None}


def held_out(config: TrainConfig, pairs: list[tuple[str, str]], eval_data: RetrievalSet,
             corpus: list[str] | None = None) -> tuple[HeldOut, RetrievalSet]:
    """The run's training pairs and its validation set (against ``corpus``, by default the test
    set's passages); the same on every rank of a distributed run, since it depends only on the
    seed."""
    held = hold_out(pairs, bool(config.generated_pairs), config.seed, eval_data.queries)
    return held, held.retrieval_set(corpus if corpus is not None else eval_data.corpus)


def run_experiment(config: TrainConfig, pairs: list[tuple[str, str]], eval_data: RetrievalSet,
                   output_dir: Path, reporter: Reporter, store: Store | None = None,
                   corpus: list[str] | None = None, resume: bool = False) -> ExperimentResult:
    """Baseline on ``eval_data``, training on ``pairs`` less a held-out validation share that
    picks the best epoch and whether the corpus-fitted rotation is folded in, then the kept
    model on ``eval_data``."""
    started = time.perf_counter()
    held, validation = held_out(config, pairs, eval_data, corpus)
    setup = DeviceSetup.detect()
    # What train() gets: the settings left open are re-planned while it runs, within the budget
    # less the share kept for the general set and the merges after it.
    budget, asked = merge_reserve(config, setup.device)
    # Every setting is checked before the baseline is measured, so a mistake costs nothing.
    config, _ = plan_run(asked, held.train, models.load(config.model), setup)
    reporter.log(held.summary())
    reporter.log(f"{duration(MERGE_SHARE * budget)} of the {duration(budget)} budget is kept for "
                 "the general set and the merges with the base model; training plans for the rest")
    held.save(output_dir / VALIDATION_FILE)

    baseline = evaluate_named(config.model, eval_data, config.dims, store,
                              stage_progress(reporter, "Measuring the baseline"))
    reporter.log("baseline " + baseline.line())
    after_baseline = time.perf_counter()
    training = train(asked, held.train, validation, output_dir, reporter, corpus, resume, store)
    after_training = time.perf_counter()
    finetuned = rotation = general = None
    if training.kept == "base":
        finetuned = baseline  # the same weights: measuring them again would only cost time
    elif not training.stopped_early and Path(training.model_path).is_dir():
        reporter.status("Trying the corpus-fitted rotation on the validation queries")
        rotation = rotate_if_it_helps(Path(training.model_path), validation, config.dims, store)
        reporter.log(rotation.line())
        general = check_and_merge(config, Path(training.model_path), validation, store, reporter,
                                  allowance(budget, time.perf_counter() - started))
        finetuned = evaluate_named(training.model_path, eval_data, config.dims, store,
                                   stage_progress(reporter, "Measuring the fine-tuned model"))
        finetuned.model = config.model + " (fine-tuned)"
    if finetuned is not None:
        write_model_card(Path(training.model_path), config, baseline, finetuned,
                         general.card() if general else "")
    done = time.perf_counter()
    merging = general.seconds if general else 0.0
    return ExperimentResult(baseline, finetuned, training, {
        "baseline_eval": after_baseline - started, "train": after_training - after_baseline,
        "general": merging, "final_eval": done - after_training - merging,
        "total": done - started}, len(held.validation), rotation, general)


def merge_reserve(config: TrainConfig, device: str) -> tuple[float, TrainConfig]:
    """The run's whole budget in seconds, and the config training gets: that budget less the
    ``MERGE_SHARE`` kept for the general set and the merges after training
    (``core.training.forgetting``), so the run as a whole keeps to the budget it was given."""
    budget = 60 * (config.budget_minutes or BUDGET_MINUTES.get(device, 10.0))
    return budget, replace(config, budget_minutes=budget * (1 - MERGE_SHARE) / 60)
