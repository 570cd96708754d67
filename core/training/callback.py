"""The trainer callback that ties a run to its plan keeper and its reporter: the re-planned
learning-rate schedule, the stop where the plan ends or on cancel, the chart's points, and the
plan saved with each checkpoint. Imported by ``train`` when a run starts (transformers is a heavy
import a page should not pay for).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from core.training.checkpoints import PLAN_FILE, slim_checkpoints
from core.training.config import Reporter
from core.training.replan import PlanKeeper
from core.workspace.wording import duration, plural


class PlanCallback(TrainerCallback):
    """Hands each step, epoch end, evaluation and save to the plan keeper, applies what it decides,
    and tells the reporter.

    Args:
        keeper: the run's plan keeper.
        evaluator: the ``matryoshka_evaluator`` whose last result each evaluation reports.
        reporter: where progress is told.
    """

    def __init__(self, keeper: PlanKeeper, evaluator, reporter: Reporter):
        self.keeper, self.evaluator, self.reporter = keeper, evaluator, reporter
        self.told = 0.0  # when the time left was last reported
        self.planned = 0  # the steps planned, as last reported

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        # Every parameter group's rate ends wherever the re-planned run ends.
        lr_scheduler.lr_lambdas = [self.keeper.schedule] * len(lr_scheduler.base_lrs)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.keeper.epoch_begin()

    def stop_if(self, keeper_says, control, step: int, epoch: float | None) -> None:
        """Apply what the keeper decided; tell people when that changed the plan's shape
        or raised the time left, with the sum that did it."""
        shape = self.keeper.shape()
        if keeper_says():
            control.should_training_stop = True
            control.should_log = True  # the last step's loss, however few steps ran
        left, before = self.keeper.time_left()
        if shape != self.keeper.shape() or before is not None:
            rate = self.keeper.plan.measured_pairs_per_second or 0.0
            rose = f"; time left up from {duration(before)} to {duration(left)}" if before is not None else ""
            self.reporter.log(f"re-planned from the measured {rate:.1f} pairs/s: "
                              f"{self.keeper.plan.summary()} ({plural(self.keeper.target_steps(), 'step')}): "
                              f"{self.keeper.plan.arithmetic()}{rose}")
        if before is not None or time.perf_counter() - self.told > 5:
            self.told = time.perf_counter()  # the page's time left, from the measured rate
            self.reporter.point("seconds_left", step, left, epoch)
        if self.keeper.target_steps() != self.planned:  # the page's "step 3 of 42"
            self.planned = self.keeper.target_steps()
            self.reporter.point("steps_planned", step, self.planned, epoch)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            control.should_log = True  # the chart's first point, before logging_steps
        self.stop_if(lambda: self.keeper.step_end(state.global_step), control, state.global_step,
                     state.epoch)
        self.reporter.progress(min(1.0, state.global_step / max(self.keeper.schedule.total, 1)))
        if self.reporter.should_stop():
            control.should_training_stop = True
            control.should_save = True
            self.reporter.log(f"cancel requested: stopping after step {state.global_step}")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.reporter.point("loss", state.global_step, float(logs["loss"]), state.epoch)

    def on_epoch_end(self, args, state, control, **kwargs):
        self.stop_if(lambda: self.keeper.epoch_end(round(state.epoch)), control, state.global_step,
                     state.epoch)
        if self.keeper.skips_evaluation():
            control.should_evaluate = control.should_save = False
            self.reporter.log(f"epoch {state.epoch:.2f} is not evaluated: its evaluation "
                         f"(≈ {duration(self.keeper.eval_seconds)}) would end the run past its "
                         f"{duration(self.keeper.plan.budget_seconds)} budget; the best evaluated "
                         "epoch is kept")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.keeper.evaluated()
        result = self.evaluator.last
        if result is None:
            return
        for dim, ms in result.metrics.items():
            self.reporter.point(f"ndcg@10/{dim}", state.global_step, ms["ndcg@10"], state.epoch)
        self.reporter.log(f"epoch {state.epoch:.2f}: {result.line()}")

    def on_save(self, args, state, control, **kwargs):
        self.keeper.saved()
        if state.is_world_process_zero:  # the process that writes the checkpoints
            slim_checkpoints(Path(args.output_dir))
            newest = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if newest.is_dir():
                (newest / PLAN_FILE).write_text(json.dumps(self.keeper.plan.to_json()))
