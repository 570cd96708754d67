"""Keeping the plan's word: a run's steps, evaluations and saves are timed as it goes, and the plan
is re-made from the measured speed (``core.training.plan.replan``) so the run ends at its budget
however busy the machine is.

``PlanKeeper`` holds the timings and says when to stop; ``ReplanScope`` says what re-planning may
change (only what the user left to the plan); ``CosineSchedule`` keeps the learning rate's decay
ending at the re-planned last step; ``evaluation_seconds`` prices an evaluation before it runs.
"""
from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass, replace

from core.measuring.evaluate import EvalResult, RetrievalSet, encode
from core.training.config import TrainConfig
from core.training.plan import BUDGET_TOLERANCE, Measured, Plan, replan


# -- keeping the plan's word -----------------------------------------------------------------
@dataclass
class CosineSchedule:
    """Learning-rate factor: linear warmup, then cosine decay to zero at step ``total``.

    Installed in the trainer's ``LambdaLR`` so that a re-planned run still ends its schedule at
    its new last step; a callable object (not a function), so the scheduler's checkpoint saves
    ``total`` with it.
    """
    total: int
    warmup: float  # share of the steps

    def __call__(self, step: int) -> float:
        warmup_steps = math.ceil(self.warmup * self.total)
        if step < warmup_steps:
            return step / warmup_steps
        progress = (step - warmup_steps) / max(1, self.total - warmup_steps)
        return max(0.0, 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


class PlanKeeper:
    """Times a run's steps, evaluations and saves, and re-plans epochs and pairs from them
    (``core.training.plan.replan``) so the training phase ends at its budget however busy the machine.

    The trainer is set up for the most the plan may grow to (``max_epochs`` over
    ``pairs_per_epoch``); the keeper says when to stop. Steps are timed between consecutive
    step ends within an epoch, so the first step's warm-up and the evaluations are not counted
    as training speed; each evaluation and save is timed on its own. Once the plan's last step
    is done, the plan is left as it stands: its ``seconds`` is then the forecast the run is held
    to, not a re-count of the time already spent. The speed is that of the
    last ``RATE_WINDOW`` steps, so a machine whose load changes while the run goes on (another
    job starting or ending) is followed within a minute or two, not averaged away.

    Args:
        plan: the plan to start from (its estimate comes from a constant rate).
        started: ``clock()`` when the training phase began (model loading counts).
        eval_seconds: one evaluation's duration, priced by ``evaluation_seconds``.
        pairs_per_epoch: the training set the trainer holds.
        steps_per_epoch: the trainer's steps in one epoch.
        max_epochs: the epochs the trainer was set up for.
        epochs_open, pairs_open: which settings re-planning may change (not those the user fixed).
        pairs_per_step: pairs one optimizer step trains, over every process.
        warmup: the share of steps that warm the learning rate up.
        clock: seconds, monotonic; a test may pass its own.
    """
    CALIBRATION_STEPS = 2  # timed steps before the first re-plan; later ones refine it
    RATE_WINDOW = 32  # steps: enough shuffled batches to average short and long ones
    # A time left that rises by more than this (seconds, or this share of the budget) is shown
    # with a log line saying why; smaller rises are not shown (it keeps counting down).
    RISE_SECONDS, RISE_SHARE = 5.0, 0.05

    def __init__(self, plan: Plan, started: float, eval_seconds: float, pairs_per_epoch: int,
                 steps_per_epoch: int, max_epochs: int, epochs_open: bool, pairs_open: bool,
                 pairs_per_step: int, warmup: float, clock=time.perf_counter,
                 save_seconds: float = 0.0):
        self.plan, self.started, self.clock = plan, started, clock
        self.pairs_per_epoch, self.steps_per_epoch = pairs_per_epoch, steps_per_epoch
        self.max_epochs, self.epochs_open, self.pairs_open = max_epochs, epochs_open, pairs_open
        self.pairs_per_step = pairs_per_step
        # A save is priced from a timed probe until the first checkpoint is timed (unpriced, a
        # 2-minute run on a busy machine spent 17 s it had not planned on saving).
        self.eval_seconds, self.save_seconds = eval_seconds, save_seconds
        self.first_step: float | None = None  # the run's first step, warm-up included
        self.shown: tuple[float, float] | None = None  # (when, time left) last shown
        self.step_seconds: deque[float] = deque(maxlen=self.RATE_WINDOW)
        self.pairs_done = self.epochs_done = 0
        self.last_step: float | None = None
        self.epoch_ended = self.evaluated_at = None
        self.epoch_began, self.pairs_before_epoch = started, 0
        self.epoch_rate: float | None = None  # an epoch timed whole, where steps are too few
        self.finished = False  # the plan's last step is done: its forecast stands
        self.schedule = CosineSchedule(self.target_steps(), warmup)

    def target_steps(self) -> int:
        return self.steps_of(self.plan)

    @property
    def rate(self) -> float | None:
        if len(self.step_seconds) < self.CALIBRATION_STEPS:
            return self.epoch_rate
        return len(self.step_seconds) * self.pairs_per_step / max(sum(self.step_seconds), 1e-9)

    def shape(self) -> tuple[int, int]:
        """Epochs, and the last epoch's length in tenths: a change worth telling people."""
        return self.plan.epochs, 10 * self.plan.last_epoch() // max(self.pairs_per_epoch, 1)

    def seconds_left(self) -> float:
        return max(0.0, self.plan.seconds - (self.clock() - self.started))

    def time_left(self) -> tuple[float, float | None]:
        """The time left to show now, and, where it rose past what was shown, what was shown
        (the caller says why in the log). Re-planned at every step, the forecast wavers by a
        few seconds; a small rise is not shown, so the time left people see only counts down
        unless a line in the log says why it went up."""
        now, truth = self.clock(), self.seconds_left()
        if self.shown is None:
            self.shown = (now, truth)
            return truth, None
        before = max(0.0, self.shown[1] - (now - self.shown[0]))
        rose = truth > before + max(self.RISE_SECONDS, self.RISE_SHARE * self.plan.budget_seconds)
        self.shown = (now, truth if rose else min(truth, before))
        return self.shown[1], before if rose else None

    def step_end(self, global_step: int) -> bool:
        """After each optimizer step; True: stop now (the last epoch's pairs are done)."""
        now = self.clock()
        if self.last_step is not None:
            self.step_seconds.append(now - self.last_step)
        elif self.first_step is None:
            self.first_step = now - self.epoch_began
        self.last_step = now
        # Counted per epoch: an epoch's last batch is usually short, so steps × batch would
        # overshoot the epoch and make the plan believe a further epoch had begun.
        epochs, steps = divmod(global_step, self.steps_per_epoch)
        self.pairs_done = epochs * self.pairs_per_epoch + min(steps * self.pairs_per_step,
                                                               self.pairs_per_epoch)
        self._replan()
        self.finished = global_step >= self.target_steps()
        return self.finished

    def epoch_begin(self) -> None:
        self.epoch_began, self.pairs_before_epoch = self.clock(), self.pairs_done

    def epoch_end(self, epochs_completed: int) -> bool:
        """At an epoch's end, before its evaluation; True: this was the plan's last epoch.

        An epoch of only a step or two (a few dozen pairs) has not timed enough steps for a
        rate, so it is timed whole, warm-up included, and the plan decided from that before a
        further epoch begins: otherwise the plan's constant rate alone would start it.
        """
        self.epoch_ended = self.clock()
        self.last_step = None  # the evaluation and save are not training time
        if len(self.step_seconds) < self.CALIBRATION_STEPS:
            self.epoch_rate = (self.pairs_done - self.pairs_before_epoch) / max(
                self.epoch_ended - self.epoch_began, 1e-9)
            self._replan()
        self.finished = self.finished or epochs_completed >= self.plan.epochs
        return self.finished

    def evaluated(self) -> None:
        self.evaluated_at = self.clock()
        if self.epoch_ended is not None:
            self.eval_seconds = self.evaluated_at - self.epoch_ended

    def saved(self) -> None:
        if self.evaluated_at is not None:
            self.save_seconds = self.clock() - self.evaluated_at
            self.epochs_done += 1
        self.last_step = None
        self._replan()

    def _replan(self) -> None:
        if self.finished:
            return
        rate = self.rate
        if rate is None:  # too few steps timed for a rate: the budget may still be at stake
            rate = self.provisional_rate()
            if rate is None:
                return
        measured = Measured(elapsed=self.clock() - self.started, pairs_done=self.pairs_done,
                            pairs_per_second=rate, epochs_done=self.epochs_done,
                            eval_seconds=self.eval_seconds, save_seconds=self.save_seconds)
        again = replan(self.plan, measured, self.pairs_per_epoch, self.max_epochs,
                       self.epochs_open, self.pairs_open)
        # The first step timed whole (warm-up included) reads slow: it may cut a plan that would
        # overrun, never grow one. One step timed on its own is a measurement and may do both:
        # kept to cuts, a 2-minute run whose first step's warm-up had cut it to 2 steps stopped
        # there, at 0.67 of its budget, though its second step showed the time for 5 more.
        if self.rate is None and not self.step_seconds and again.seconds <= self.plan.budget_seconds \
                and self.steps_of(again) >= self.target_steps():
            return
        self.plan = again
        self.schedule.total = self.target_steps()

    def provisional_rate(self) -> float | None:
        """Before ``CALIBRATION_STEPS`` steps are timed: the one timed step, or the first step
        whole (warm-up included, so slow: it may only cut, see ``_replan``). On a busy machine a step can take
        a fifth of a 2-minute budget, and waiting for two timed ones overran it by half."""
        if self.step_seconds:
            return self.pairs_per_step / max(self.step_seconds[-1], 1e-9)
        if self.first_step is not None and self.pairs_done:
            return self.pairs_done / max(self.first_step, 1e-9)
        return None

    def steps_of(self, plan: Plan) -> int:
        last = min(self.steps_per_epoch, math.ceil(plan.last_epoch() / self.pairs_per_step))
        return (plan.epochs - 1) * self.steps_per_epoch + last

    def skips_evaluation(self) -> bool:
        """At the plan's last epoch's end: whether evaluating (and saving) it would end the run
        past its ceiling (the budget plus ``BUDGET_TOLERANCE``) while an earlier epoch has been
        evaluated, so it can be skipped and the best evaluated epoch kept."""
        ceiling = (1 + BUDGET_TOLERANCE) * self.plan.budget_seconds
        ends = self.clock() - self.started + self.eval_seconds + 2 * self.save_seconds
        return self.finished and self.epochs_done > 0 and ends > ceiling


@dataclass(frozen=True)
class ReplanScope:
    """What re-planning may change in a run, and so how large the trainer is set up.

    Args:
        epochs_open: the epochs were left to the plan, so the measured rate may change them.
        pairs_open: the number of pairs was left to the plan, likewise.
        max_epochs: the epochs the trainer is set up for; the plan keeper stops it earlier.
    """
    epochs_open: bool
    pairs_open: bool
    max_epochs: int

    @classmethod
    def of(cls, asked: TrainConfig, config: TrainConfig, distributed: bool,
           epoch_cap: int) -> ReplanScope:
        """The scope of a run.

        Args:
            asked: the settings as the user gave them, before the plan filled them in.
            config: the settings with the plan's values filled in.
            distributed: whether several processes train together.
            epoch_cap: the most epochs the plan may grow to (``Plan.epoch_cap``).
        """
        # Re-planning needs the processes to agree on where to stop; under torchrun the plan stays.
        epochs_open = asked.epochs is None and not distributed
        pairs_open = asked.max_pairs is None and not distributed
        return cls(epochs_open, pairs_open, epoch_cap if epochs_open else config.epochs)

    def pairs_held(self, config: TrainConfig) -> int | None:
        """How many pairs the trainer holds (``None``: all): every pair when re-planning may grow
        the run past the plan's cap, since the trainer's dataset cannot grow once it is built."""
        return None if self.pairs_open and (self.epochs_open or config.epochs == 1) \
            else config.max_pairs

    def closed(self) -> ReplanScope:
        """The same trainer with nothing left to re-plan: a resumed run keeps its first process's
        plan, so its sampler and schedule line up with the checkpoint (``max_epochs`` stays, as
        the trainer must be set up as that process set it up)."""
        return replace(self, epochs_open=False, pairs_open=False)


def evaluation_seconds(untrained: EvalResult, seconds: float, model, validation: RetrievalSet,
                       seed: int, per_passage: float | None = None) -> float:
    """What one evaluation during training will take, before the first one has been timed.

    The untrained model's evaluation read its passages from the vector cache where it could, but
    every epoch's model encodes them all. So the passages it did not encode are priced at the
    rate it encoded the others, or, where the cache served them all, at the rate of a timed
    sample encoded by ``model`` (the one about to be trained, at its training sequence length).
    Without this, a run evaluated only at its end (one epoch, cut to the budget) planned for an
    evaluation of its questions alone and overran: +19% of a 10-minute budget on a busy 2-core
    machine with 1,569 validation passages.

    Args:
        untrained: ``measure_untrained``'s result (its timings say how many passages it encoded).
        seconds: how long that measurement took.
        model: the model being trained, on its device; None where it is not on it yet (under
            torchrun the trainer places it), so a sample would be timed on the wrong device and
            the untrained model's time is all there is until the first epoch's evaluation.
        validation: the queries and passages every epoch is judged on.
        seed: which passages the sample takes.
        per_passage: a sample's price already timed (``passage_seconds``), if any.
    """
    encoded = int(untrained.timings.get("passages_encoded", len(validation.corpus)))
    served = len(validation.corpus) - encoded
    if served <= 0 or (model is None and not encoded):
        return seconds
    if encoded:
        per_passage = untrained.timings["corpus_encoding"] / encoded
    elif per_passage is None:
        per_passage = passage_seconds(model, validation.corpus, seed)
    return seconds + served * per_passage


def passage_seconds(model, corpus: list[str], seed: int) -> float:
    """Seconds ``model`` takes to encode one of ``corpus``'s passages: a seeded sample, timed."""
    sample = random.Random(seed).sample(corpus, min(EVAL_PROBE_PASSAGES, len(corpus)))
    encode(model, sample[:2])  # the first call's one-off set-up is not an evaluation's cost
    started = time.perf_counter()
    encode(model, sample)
    return (time.perf_counter() - started) / max(len(sample), 1)


# A sample timed to price the validation passages; paid from the budget (36 took 52 s at a load
# of 14 on 2 cores), so small.
EVAL_PROBE_PASSAGES = 16
