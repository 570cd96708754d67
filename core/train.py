"""Matryoshka fine-tuning of an embedding model on question→passage pairs.

The loss is ``MatryoshkaLoss`` (Kusupati et al., 2022) over ``MultipleNegativesRankingLoss``
(Henderson et al., 2017): for each question, its passage must outscore every other passage in
the batch, and this must hold for the first d dimensions alone at every d in ``dims`` — so the
truncated vectors stay good, not just the full ones. Batches never hold the same text twice
(``BatchSamplers.NO_DUPLICATES``), since a duplicate would be scored as a wrong answer. Large
effective batches in little memory come from ``CachedMultipleNegativesRankingLoss`` (GradCache,
Gao et al., 2021), which — unlike gradient accumulation — really adds in-batch negatives.

After every epoch the model is evaluated with ragtune's own evaluator (encode once, score every
dimension) and the best epoch by the chosen metric and dimension is kept: small data overfits,
and a run must never hand back a model worse than it saw along the way.

The loop reads top to bottom in ``train``: device → model and plan → data, loss and the untrained
model's score → arguments, callbacks and trainer → fit → keep the best → save; each step is a
small function above it.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import time
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Protocol

from . import models, ranges
from .errors import WorkspaceError, explain_out_of_room, is_out_of_room
from .evaluate import (METRICS, PREFERRED_DIM, EvalResult, RetrievalSet, check_dims, default_dims,
                       encode, evaluate, evaluate_named, stage_name)
from .plan import BUDGET_TOLERANCE, Architecture, Measured, Plan, default_plan, replan
from .store import Store
from .wording import duration, plural

LOSSES = ("mnrl", "cached_mnrl")
NO_GAIN = "fine-tuning did not help on this data"
VALIDATION_PASSAGES = 3000
EVAL_BUDGET_SHARE = 0.1  # the most of the budget one evaluation during training may cost
# A sample timed to price the validation passages; paid from the budget (36 took 52 s at a load
# of 14 on 2 cores), so small.
EVAL_PROBE_PASSAGES = 16
RESUME_ONLY = ("optimizer.pt", "scheduler.pt")  # what only the checkpoint resumed from needs
PLAN_FILE = "ragtune_plan.json"  # the re-planned plan, saved with each checkpoint for a resume


@dataclass
class TrainConfig:
    """Everything that defines a fine-tuning run; stored with the job and shown to the user.

    ``None`` means "let the default plan decide" (``core.plan.default_plan``): the page and the
    CLI leave the same settings open, so they run the same default.
    """
    model: str = models.DEFAULT_MODEL
    pair_set_id: int | None = None
    dims: list[int] = field(default_factory=list)  # empty: the model's size and its halvings
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    warmup: float = 0.1  # share of the steps spent warming up the learning rate
    max_seq_length: int | None = None
    seed: int = 42
    loss: str = "mnrl"
    mini_batch_size: int = 16  # cached_mnrl: how many texts go through the model at once
    hard_negatives: int | None = None  # mined per pair with sentence-transformers' mine_hard_negatives
    max_pairs: int | None = None  # None: as many as the time budget allows
    best_metric: str = "ndcg@10"
    best_dim: int | None = None  # None: PREFERRED_DIM if trained, else the smallest trained one
    budget_minutes: float | None = None  # None: 10 on CPU, 5 on a GPU
    generated_pairs: bool = False  # the pairs were generated, not written by people

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Refuse unknown settings and wrongly typed values, naming the setting."""
        if not isinstance(data, dict):
            raise WorkspaceError("a training config must be a JSON object of setting → value")
        types = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(types))
        if unknown:
            raise WorkspaceError(f"unknown setting {unknown[0]!r} in the training config; "
                                 f"known: {', '.join(sorted(types))}")
        for name, value in data.items():
            _check_type(name, value, types[name])
        config = cls(**data)
        config.check_ranges()
        return config

    def check_ranges(self) -> None:
        """Every number within its range (``core.ranges``), before any plan divides by it."""
        if self.pair_set_id is not None:
            ranges.row_id(self.pair_set_id, "pair_set_id")
        for name, low, high in (("epochs", 1, 1000), ("batch_size", 2, 1 << 20),
                                ("mini_batch_size", 1, 1 << 20), ("max_seq_length", 8, 100_000),
                                ("max_pairs", 2, ranges.MAX_ID), ("hard_negatives", 0, 100),
                                ("best_dim", 1, 1 << 20)):
            if getattr(self, name) is not None:
                ranges.count(getattr(self, name), name, low, high)
        for dim in self.dims:
            ranges.count(dim, "dims", 1, 1 << 20)
        ranges.seed(self.seed, "seed")
        if self.learning_rate is not None:
            ranges.share(self.learning_rate, "learning_rate")
        ranges.share(self.warmup, "warmup", closed=True)
        if self.budget_minutes is not None:
            ranges.minutes(self.budget_minutes, "budget_minutes")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def with_plan(self, plan: Plan) -> TrainConfig:
        """Fill every setting left open with the plan's value."""
        chosen = {"epochs": plan.epochs, "batch_size": plan.batch_size,
                  "learning_rate": plan.learning_rate, "max_seq_length": plan.max_seq_length,
                  "hard_negatives": plan.hard_negatives, "max_pairs": plan.max_pairs}
        filled = {k: v for k, v in chosen.items() if getattr(self, k) is None}
        if plan.loss == "cached_mnrl":  # a fixed batch beyond the device memory: plain MNRL would not fit
            filled.update(loss="cached_mnrl", mini_batch_size=plan.mini_batch_size)
        return TrainConfig(**{**asdict(self), **filled})

    def resolved(self, model_dim: int, n_pairs: int) -> TrainConfig:
        """Check every setting against the model and data; fill in the derived dimensions."""
        dims = check_dims(self.dims or default_dims(model_dim), model_dim)
        if self.dims and list(self.dims) != sorted(self.dims, reverse=True):
            raise WorkspaceError(f"dims {self.dims} must be listed from largest to smallest, "
                                 f"e.g. {','.join(map(str, dims))}")
        if self.loss not in LOSSES:
            raise WorkspaceError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.best_metric not in METRICS:
            raise WorkspaceError(f"best_metric must be one of {', '.join(METRICS)}")
        self.check_ranges()
        if n_pairs < 2:
            raise WorkspaceError(f"training needs at least 2 pairs and has {n_pairs}; add pairs "
                                 "or generate more")
        if self.batch_size is not None and self.batch_size > n_pairs:
            raise WorkspaceError(f"batch size {self.batch_size} is larger than the {n_pairs} "
                                 f"training pairs; use a batch size of at most {n_pairs}")
        best_dim = self.best_dim or (PREFERRED_DIM if PREFERRED_DIM in dims else dims[-1])
        if best_dim not in dims:
            raise WorkspaceError(f"best_dim {best_dim} is not one of the trained dims {dims}")
        return TrainConfig(**{**asdict(self), "dims": dims, "best_dim": best_dim})


def _check_type(name: str, value, annotation: str) -> None:
    """Type-check one setting against its annotation (``int``, ``float | None``, ``list[int]``…)."""
    optional = annotation.endswith("| None")
    kind = annotation.removesuffix(" | None")
    if value is None:
        ok = optional
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "list[int]":
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                             for v in value)
    else:  # a new field type must be taught here, not silently accepted
        raise TypeError(f"no type check for {annotation}")
    if not ok:
        words = {"int": "a whole number", "float": "a number", "bool": "true or false",
                 "str": "text", "list[int]": "a list of whole numbers"}[kind]
        raise WorkspaceError(f"setting {name!r} must be {words}{' or null' * optional}, "
                             f"not {json.dumps(value)}")


class Reporter(Protocol):
    """Where a run tells what it is doing: the job store, or the terminal."""
    def status(self, text: str) -> None: ...
    def progress(self, fraction: float) -> None: ...
    def log(self, line: str) -> None: ...
    def point(self, series: str, step: int, value: float, epoch: float | None = None) -> None: ...
    def should_stop(self) -> bool: ...


def stage_progress(reporter: Reporter, title: str):
    """A progress callback for ``evaluate``: the stage in the status (once per stage, so the
    log is not flooded; a new status restarts the job's ETA) and its fraction on the bar."""
    shown: list[str] = []

    def progress(stage: str, fraction: float) -> None:
        stage = stage_name(stage)  # the count moves the bar, not the status
        if not shown or shown[-1] != stage:
            shown.append(stage)
            reporter.status(f"{title}: {stage}")
        reporter.progress(fraction)

    return progress


@dataclass
class TrainResult:
    model_path: str
    best_epoch: float | None
    steps: int
    seconds: float
    stopped_early: bool
    history: list[dict]
    kept: str | float | None  # "base" when no epoch beat the untrained model, else the epoch
    plan: dict


def training_pairs(pairs: list[tuple[str, str]], max_pairs: int | None,
                   seed: int = 42) -> list[tuple[str, str]]:
    """Exact repeats dropped (MNRL would score them as each other's wrong answers), then capped
    by a seeded sample rather than the first N, so a cap keeps every document represented."""
    unique = list(dict.fromkeys(pairs))
    if max_pairs is None or max_pairs >= len(unique):
        return unique
    keep = sorted(random.Random(seed).sample(range(len(unique)), max_pairs))
    return [unique[i] for i in keep]


# -- devices -------------------------------------------------------------------------------
@dataclass
class DeviceSetup:
    device: str
    bf16: bool
    tf32: bool
    optim: str
    memory: str  # for people: what the accelerator has

    @classmethod
    def detect(cls) -> DeviceSetup:
        import torch
        device = models.pick_device()
        if device == "cuda":
            props = torch.cuda.get_device_properties(0)
            return cls("cuda", torch.cuda.is_bf16_supported(), props.major >= 8, "adamw_torch_fused",
                       f"{props.name}, {props.total_memory / 2**30:.0f} GB")
        return cls(device, device == "cpu" and cpu_has_bf16(), False, "adamw_torch", "")


def cpu_has_bf16() -> bool:
    """Native bfloat16 matrix units (Intel AMX, AVX512-BF16): only there does bf16 autocast
    speed training up; elsewhere it is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def plan_run(config: TrainConfig, pairs: list[tuple[str, str]], model, setup: DeviceSetup
             ) -> tuple[TrainConfig, Plan]:
    """The default plan for these pairs on this model and device, and the config it completes
    (every setting resolved and checked). The page, the CLI and the job all come through here."""
    pairs = training_pairs(pairs, None)
    sample = [p for _, p in pairs[:: max(1, len(pairs) // 2000)]]  # token lengths of ≤ 2,000
    tokens = [len(ids) for ids in model.tokenizer(sample, add_special_tokens=False,
                                                  verbose=False)["input_ids"]] if sample else []
    free_memory = None
    if setup.device == "cuda":
        import torch
        free_memory = torch.cuda.mem_get_info()[0]
    plan = default_plan(len(pairs), tokens, setup.device, model.max_seq_length,
                        sum(p.numel() for p in model.parameters()), config.budget_minutes,
                        config.generated_pairs, setup.bf16, epochs=config.epochs,
                        learning_rate=config.learning_rate, batch_size=config.batch_size,
                        max_seq_length=config.max_seq_length, max_pairs=config.max_pairs,
                        hard_negatives=config.hard_negatives, free_memory=free_memory,
                        architecture=architecture(model))
    resolved = config.with_plan(plan).resolved(model.get_embedding_dimension(), plan.max_pairs)
    return resolved, plan


def architecture(model) -> Architecture | None:
    """Width, depth and heads of a SentenceTransformer's transformer, for the memory estimate."""
    settings = getattr(getattr(model[0], "auto_model", None), "config", None)
    try:
        return Architecture(settings.hidden_size, settings.num_hidden_layers,
                            settings.num_attention_heads)
    except AttributeError:  # not a BERT-like transformer: the device's default batch
        return None


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
    (``core.plan.replan``) so the training phase ends at its budget however busy the machine.

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
        if self.rate is None and again.seconds <= self.plan.budget_seconds and \
                self.steps_of(again) >= self.target_steps():
            return  # a provisional rate only cuts a plan that would overrun; it never grows one
        self.plan = again
        self.schedule.total = self.target_steps()

    def provisional_rate(self) -> float | None:
        """Before ``CALIBRATION_STEPS`` steps are timed: the one timed step, or the first step
        whole (warm-up included, so slow: it may only cut). On a busy machine a step can take
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


# -- evaluation inside the trainer ----------------------------------------------------------
def matryoshka_evaluator(data: RetrievalSet, dims: list[int]):
    """A trainer evaluator backed by ragtune's evaluate(): one encoding for every dimension.

    Args:
        data: the validation queries and passages every epoch is judged on.
        dims: the trained Matryoshka dimensions, each scored from the same encoding.
    """
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    class MatryoshkaIR(SentenceEvaluator):
        def __init__(self):
            super().__init__()
            self.greater_is_better = True
            self.primary_metric = "score"
            self.last: EvalResult | None = None

        def __call__(self, model, output_path=None, epoch=-1, steps=-1):
            self.last = evaluate(model, data, dims, model_name="in training")
            flat = {f"dim{d}_{m}": v for d, ms in self.last.metrics.items() for m, v in ms.items()}
            return flat

    return MatryoshkaIR()


def measure_untrained(config: TrainConfig, validation: RetrievalSet, store: Store | None,
                      reporter: Reporter) -> tuple[EvalResult, float]:
    """Score the untrained model on the validation queries: the score every epoch must beat.

    It is measured as it would be kept (its own sequence length), so its passages come from the
    vector cache the baseline just filled. That makes this evaluation cheaper than an epoch's:
    ``evaluation_seconds`` prices the passages it did not encode, and the plan keeper replaces
    that estimate with the first epoch's measured evaluation.

    Args:
        config: the resolved run settings (model, dims).
        validation: the queries and passages that pick the best epoch.
        store: the workspace whose vector cache serves the passages, if any.
        reporter: told the stage.

    Returns:
        The untrained model's result and how many seconds measuring it took.
    """
    untrained = evaluate_named(config.model, validation, config.dims, store, stage_progress(
        reporter, f"Measuring the untrained model on {len(validation.queries)} validation queries"))
    # The evaluation alone, not loading the model by name first (12 s of a cold start on a
    # busy machine, which priced every epoch's evaluation at 16 s where it took 6).
    return untrained, untrained.seconds


def validation_for_budget(config: TrainConfig, validation: RetrievalSet, store: Store | None,
                          reporter: Reporter, model, budget_seconds: float
                          ) -> tuple[RetrievalSet, EvalResult, float]:
    """The validation set every epoch is judged on, the untrained model's score on it (epoch 0
    on the chart) and one evaluation's price: fewer passages (every relevant one kept) where
    evaluating all of them would cost over ``EVAL_BUDGET_SHARE`` of the budget, and the log
    says so. On a busy 2-core machine one evaluation of 350 passages was priced at 2 min 21 s,
    more than a 2-minute budget: no plan could have kept it.

    Args:
        config: the resolved run settings (model, dims, seed).
        validation: the held-out queries against at most ``VALIDATION_PASSAGES`` passages.
        store: the workspace whose vector cache serves the untrained model's passages.
        reporter: told the stages, the line about a smaller set, and the epoch-0 points.
        model: the model about to be trained (``evaluation_seconds``).
        budget_seconds: the run's budget.
    """
    per_passage = passage_seconds(model, validation.corpus, config.seed) if model else None
    if per_passage:  # priced before the untrained model is measured: that is an evaluation too
        keep = int(EVAL_BUDGET_SHARE * budget_seconds / per_passage) - len(validation.queries) // 2
        smaller = validation.subset(max(0, keep), config.seed)
        if len(smaller.corpus) < len(validation.corpus):
            whole = per_passage * (len(validation.corpus) + len(validation.queries) / 2)
            reporter.log(f"evaluations use {len(smaller.corpus):,} of the "
                         f"{len(validation.corpus):,} validation passages (every relevant one "
                         f"kept): at the {per_passage:.2f} s a passage just timed, all of them "
                         f"would take ≈ {duration(whole)}, over {EVAL_BUDGET_SHARE:.0%} of the "
                         f"{duration(budget_seconds)} budget")
            validation = smaller
    untrained, seconds = measure_untrained(config, validation, store, reporter)
    price = evaluation_seconds(untrained, seconds, model, validation, config.seed, per_passage)
    for dim, ms in untrained.metrics.items():  # epoch 0 on the chart: where training starts
        reporter.point(f"ndcg@10/{dim}", 0, ms["ndcg@10"], 0.0)
    return validation, untrained, price


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


CHECKPOINT_PRICE = 10  # a checkpoint's time, in timed ``torch.save``s of the bare weights


def checkpoint_seconds(model, folder: Path) -> float:
    """What one save will take before the first is timed: the bare weights written once, timed,
    times ``CHECKPOINT_PRICE``. A checkpoint also writes the model's folder and AdamW's two
    moments, and the best one is read back at the end: on the loaded 2-core machine the bare
    weights took 0.23 s, ``save_pretrained`` 0.6 s and an AdamW-state-sized save 3.4 s, and a
    2-minute run spent 16 s on a checkpoint and reading it back where it had priced 4."""
    import torch
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / "save-probe.pt"
    started = time.perf_counter()
    try:
        torch.save(model.state_dict(), probe)
    # No room (torch says so for a file-size limit with a RuntimeError) is reported in words
    # where a checkpoint is written, not by this probe.
    except (OSError, RuntimeError):
        return 0.0
    finally:
        seconds = time.perf_counter() - started
        probe.unlink(missing_ok=True)
    return CHECKPOINT_PRICE * seconds


def precision(setup: DeviceSetup) -> str:
    """The precision training really runs in, in words: bf16 here is autocast (the weights and
    AdamW stay float32), and the evaluations encode in float32."""
    return "bf16 autocast, evaluated in float32" if setup.bf16 else "float32"


# -- the pieces of a run -------------------------------------------------------------------
def world_size() -> int:
    """How many processes train together (torchrun and accelerate set ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def prepare_torch(seed: int, setup: DeviceSetup) -> None:
    """Seed PyTorch and allow TF32 matrix products where the device has them.

    Args:
        seed: the run's seed, so two runs of one config start from the same initial state.
        setup: the detected device.
    """
    import torch
    torch.manual_seed(seed)
    if setup.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


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


def training_dataset(pairs: list[tuple[str, str]], model, config: TrainConfig,
                     corpus: list[str] | None, reporter: Reporter):
    """The pairs as the trainer's dataset (``anchor``, ``positive``), with hard negatives mined
    from ``corpus`` when the config asks for them.

    Args:
        pairs: (query, passage) training pairs, already deduplicated and capped.
        model: the SentenceTransformer that mines the negatives.
        config: the resolved settings (``hard_negatives``, ``batch_size``).
        corpus: passages to mine hard negatives from.
        reporter: told that mining has begun (it takes a corpus encoding).
    """
    import datasets
    dataset = datasets.Dataset.from_dict({"anchor": [q for q, _ in pairs],
                                          "positive": [p for _, p in pairs]})
    if not config.hard_negatives:
        return dataset
    from sentence_transformers.util import mine_hard_negatives
    reporter.status(f"Mining {config.hard_negatives} hard negatives per pair")
    dataset = mine_hard_negatives(dataset, model, corpus=corpus, num_negatives=config.hard_negatives,
                                  relative_margin=0.05, sampling_strategy="top",
                                  output_format="n-tuple", verbose=False)
    if len(dataset) < config.batch_size:
        raise WorkspaceError("too few pairs kept hard negatives; turn hard negatives off")
    return dataset


def matryoshka_loss(model, config: TrainConfig):
    """MatryoshkaLoss over in-batch negatives ranking, cached (GradCache) when the config says.

    Args:
        model: the SentenceTransformer being trained.
        config: the resolved settings (``loss``, ``mini_batch_size``, ``dims``).
    """
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss, MatryoshkaLoss, MultipleNegativesRankingLoss)
    ranking = (CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size)
               if config.loss == "cached_mnrl" else MultipleNegativesRankingLoss(model))
    return MatryoshkaLoss(model, ranking, matryoshka_dims=config.dims)


def training_arguments(config: TrainConfig, setup: DeviceSetup, checkpoints: Path, max_epochs: int,
                       steps_per_epoch: int, prompts: dict | None, distributed: bool):
    """The trainer's arguments: evaluate and save every epoch, keep the best by the config's
    metric at its dimension, batches without duplicates.

    Args:
        config: the resolved settings.
        setup: the detected device (precision, optimizer).
        checkpoints: the folder the trainer saves its checkpoints in.
        max_epochs: the most epochs the plan may grow to (``ReplanScope.max_epochs``).
        steps_per_epoch: optimizer steps in one epoch, to log about ten times an epoch.
        prompts: the model's prompts per dataset column (``models.training_prompts``).
        distributed: whether several processes train together.
    """
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers, SentenceTransformerTrainingArguments)
    return SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=max_epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup,
        lr_scheduler_type="cosine",
        optim=setup.optim,
        bf16=setup.bf16,
        tf32=setup.tf32 or None,
        use_cpu=setup.device == "cpu",
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=f"eval_dim{config.best_dim}_{config.best_metric}",
        greater_is_better=True,
        logging_steps=max(1, min(10, steps_per_epoch // 10)),
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=True,
        ddp_backend="gloo" if distributed and setup.device == "cpu" else None,
        dataloader_drop_last=distributed,
        prompts=prompts,
        # On a GPU the batches are tokenised by worker processes while the device computes, and
        # copied from pinned memory (unmeasured: no GPU was lent when this was written); on a
        # CPU the workers would compete with training for the same cores.
        dataloader_num_workers=2 if setup.device == "cuda" else 0,
        dataloader_pin_memory=setup.device == "cuda",
    )


def progress_callback(keeper: PlanKeeper, evaluator, reporter: Reporter):
    """The trainer callback that ties a run to its plan keeper and its reporter: the re-planned
    schedule, the stop where the plan ends or on cancel, the chart's points, and the plan saved
    with each checkpoint.

    Args:
        keeper: the run's plan keeper.
        evaluator: the ``matryoshka_evaluator`` whose last result each evaluation reports.
        reporter: where progress is told.
    """
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        told = 0.0  # when the time left was last reported
        planned = 0  # the steps planned, as last reported

        def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
            # Every parameter group's rate ends wherever the re-planned run ends.
            lr_scheduler.lr_lambdas = [keeper.schedule] * len(lr_scheduler.base_lrs)

        def on_epoch_begin(self, args, state, control, **kwargs):
            keeper.epoch_begin()

        def stop_if(self, keeper_says, control, step: int, epoch: float | None) -> None:
            """Apply what the keeper decided; tell people when that changed the plan's shape
            or raised the time left, with the sum that did it."""
            shape = keeper.shape()
            if keeper_says():
                control.should_training_stop = True
                control.should_log = True  # the last step's loss, however few steps ran
            left, before = keeper.time_left()
            if shape != keeper.shape() or before is not None:
                rate = keeper.plan.measured_pairs_per_second or 0.0
                rose = f"; time left up from {duration(before)} to {duration(left)}" if before is not None else ""
                reporter.log(f"re-planned from the measured {rate:.1f} pairs/s: "
                             f"{keeper.plan.summary()} ({plural(keeper.target_steps(), 'step')}): "
                             f"{keeper.plan.arithmetic()}{rose}")
            if before is not None or time.perf_counter() - self.told > 5:
                self.told = time.perf_counter()  # the page's time left, from the measured rate
                reporter.point("seconds_left", step, left, epoch)
            if keeper.target_steps() != self.planned:  # the page's "step 3 of 42"
                self.planned = keeper.target_steps()
                reporter.point("steps_planned", step, self.planned, epoch)

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1:
                control.should_log = True  # the chart's first point, before logging_steps
            self.stop_if(lambda: keeper.step_end(state.global_step), control, state.global_step,
                         state.epoch)
            reporter.progress(min(1.0, state.global_step / max(keeper.schedule.total, 1)))
            if reporter.should_stop():
                control.should_training_stop = True
                control.should_save = True
                reporter.log(f"cancel requested: stopping after step {state.global_step}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                reporter.point("loss", state.global_step, float(logs["loss"]), state.epoch)

        def on_epoch_end(self, args, state, control, **kwargs):
            self.stop_if(lambda: keeper.epoch_end(round(state.epoch)), control, state.global_step,
                         state.epoch)
            if keeper.skips_evaluation():
                control.should_evaluate = control.should_save = False
                reporter.log(f"epoch {state.epoch:.2f} is not evaluated: its evaluation "
                             f"(≈ {duration(keeper.eval_seconds)}) would end the run past its "
                             f"{duration(keeper.plan.budget_seconds)} budget; the best evaluated "
                             "epoch is kept")

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            keeper.evaluated()
            result = evaluator.last
            if result is None:
                return
            for dim, ms in result.metrics.items():
                reporter.point(f"ndcg@10/{dim}", state.global_step, ms["ndcg@10"], state.epoch)
            reporter.log(f"epoch {state.epoch:.2f}: {result.line()}")

        def on_save(self, args, state, control, **kwargs):
            keeper.saved()
            if state.is_world_process_zero:  # the process that writes the checkpoints
                slim_checkpoints(Path(args.output_dir))
                newest = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if newest.is_dir():
                    (newest / PLAN_FILE).write_text(json.dumps(keeper.plan.to_json()))

    return Progress()


def fit(trainer, checkpoints: Path, resume: bool) -> None:
    """Run the trainer, from the newest complete checkpoint when resuming.

    Args:
        trainer: the SentenceTransformerTrainer, set up.
        checkpoints: its checkpoint folder; a checkpoint cut short is dropped before and after.
        resume: continue from the newest complete checkpoint, if there is one.

    Raises:
        WorkspaceError: the disk filled up while a checkpoint was written.
    """
    has_checkpoint = bool(drop_incomplete_checkpoints(checkpoints))
    try:
        # True lets the trainer pick the newest checkpoint by step number (a name sort would
        # put checkpoint-9 after checkpoint-10).
        trainer.train(resume_from_checkpoint=True if resume and has_checkpoint else None)
    except Exception as error:
        if trainer.is_world_process_zero():  # a save cut short must never be resumed from
            drop_incomplete_checkpoints(checkpoints)
        if is_out_of_room(error):
            raise WorkspaceError(explain_out_of_room("a training checkpoint", checkpoints) +
                                 "; a resumed job continues from its last complete checkpoint"
                                 ) from error
        raise


def run_history(trainer, model, evaluator, stopped: bool) -> list[dict]:
    """Every epoch's evaluation (``epoch_history``); a run canceled before its first evaluation
    is measured as it stands, so it is still usable.

    Args:
        trainer: the trainer after ``fit``.
        model: the model it trained.
        evaluator: the ``matryoshka_evaluator`` it evaluated with.
        stopped: whether the run was canceled.
    """
    history = epoch_history(trainer.state.log_history)  # a resumed run's earlier epochs too
    if stopped and not history:
        evaluator(model)
        history.append({"epoch": trainer.state.epoch, "step": trainer.state.global_step,
                        "metrics": evaluator.last.metrics_json()})
    return history


def keep_best(history: list[dict], best_checkpoint: str | None, config: TrainConfig,
              base_score: float, reporter: Reporter) -> tuple[float | None, float | str | None]:
    """Which epoch was best, and what the run keeps: that epoch, or ``"base"`` when no epoch beat
    the untrained model — a run never hands back a model worse than it started from.

    Args:
        history: every epoch's evaluation (``run_history``).
        best_checkpoint: the trainer's best checkpoint by the config's metric, if any.
        config: the resolved settings (``best_metric``, ``best_dim``).
        base_score: the untrained model's score by that metric at that dimension.
        reporter: told when the untrained model is kept.

    Returns:
        The best epoch (``None`` when no checkpoint was evaluated) and what is kept.
    """
    best = next((h["epoch"] for h in history if best_checkpoint and
                 best_checkpoint.endswith(f"-{h['step']}")), None)
    best_score = max(h["metrics"][str(config.best_dim)][config.best_metric] for h in history)
    kept = best if best_score > base_score else "base"
    if kept == "base":
        reporter.log(f"{NO_GAIN}: no epoch beat the untrained model's {config.best_metric} "
                     f"{base_score:.4f} at {config.best_dim} dims, so it is kept")
    return best, kept


# -- training ------------------------------------------------------------------------------
def train(config: TrainConfig, pairs: list[tuple[str, str]], eval_data: RetrievalSet,
          output_dir: Path, reporter: Reporter, corpus: list[str] | None = None,
          resume: bool = False, store: Store | None = None) -> TrainResult:
    """Fine-tune ``config.model`` on (query, passage) pairs and save the best of its epochs and
    the untrained model, judged on ``eval_data``, to ``output_dir/model``; checkpoints in
    ``output_dir/checkpoints`` allow resuming.

    Args:
        config: the run's settings; those left ``None`` are filled in by the default plan.
        pairs: (query, passage) training pairs.
        eval_data: validation queries that pick the best epoch (against at most
            ``VALIDATION_PASSAGES`` passages, so an epoch's evaluation stays cheap).
        output_dir: where checkpoints and the model go.
        reporter: where progress is told (the job store or the terminal).
        corpus: passages to mine hard negatives from.
        resume: continue from the newest checkpoint in ``output_dir``.
        store: the workspace whose vector cache serves the untrained model's passages.
    """
    from sentence_transformers import SentenceTransformerTrainer
    from transformers.trainer_callback import PrinterCallback

    started = time.perf_counter()
    setup = DeviceSetup.detect()
    distributed = world_size() > 1
    prepare_torch(config.seed, setup)

    # The model, and the plan that fills in every setting left open.
    reporter.status(f"Loading {config.model} on {setup.device}")
    model = models.load_fresh(config.model, None if distributed else setup.device)
    asked = config  # before the plan fills it in: what re-planning may change
    config, plan = plan_run(config, pairs, model, setup)
    reporter.log(f"plan: {plan.summary()}: {plan.arithmetic()}")
    checkpoints = output_dir / "checkpoints"
    scope = ReplanScope.of(asked, config, distributed, plan.epoch_cap)
    pairs = training_pairs(pairs, scope.pairs_held(config), config.seed)
    # A resumed run sets the trainer up as its first process did, and keeps that one's plan.
    saved_plan = resumable_plan(checkpoints) if resume else None
    if saved_plan is not None:
        plan, scope = saved_plan, scope.closed()

    # The data, the loss, and the judge of every epoch, which scores the untrained model first.
    model.max_seq_length = min(config.max_seq_length, model.max_seq_length)
    dataset = training_dataset(pairs, model, config, corpus, reporter)
    loss = matryoshka_loss(model, config)
    validation, untrained, eval_seconds = validation_for_budget(
        config, eval_data.subset(VALIDATION_PASSAGES, config.seed), store, reporter,
        None if distributed else model, plan.budget_seconds)
    evaluator = matryoshka_evaluator(validation, config.dims)
    save_price = checkpoint_seconds(model, output_dir)

    # The trainer, set up for the most the plan may grow to; the plan keeper says when to stop.
    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    keeper = PlanKeeper(plan, started, eval_seconds, len(dataset), steps_per_epoch,
                        scope.max_epochs, scope.epochs_open, scope.pairs_open,
                        config.batch_size * world_size(), config.warmup, save_seconds=save_price)
    reporter.point("seconds_left", 0, keeper.time_left()[0], 0.0)
    reporter.point("steps_planned", 0, keeper.target_steps(), 0.0)
    args = training_arguments(config, setup, checkpoints, scope.max_epochs, steps_per_epoch,
                              models.training_prompts(model, dataset.column_names), distributed)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                         evaluator=evaluator,
                                         callbacks=[progress_callback(keeper, evaluator, reporter)])
    trainer.remove_callback(PrinterCallback)  # progress goes to the reporter, not stdout
    reporter.status(f"Training: {min(len(dataset), plan.max_pairs)} pairs, {keeper.schedule.total} "
                    f"steps on {setup.device} ({precision(setup)}); an evaluation ≈ "
                    f"{duration(eval_seconds)} ({len(validation.queries)} queries, "
                    f"{len(validation.corpus):,} passages), a save ≈ {duration(save_price)}")
    fit(trainer, checkpoints, resume)

    # What the run did, and the best of its epochs and the untrained model, saved.
    stopped = reporter.should_stop()
    plan = keeper.plan  # what the run measured and did
    config = replace(config, epochs=plan.epochs, max_pairs=plan.max_pairs)
    history = run_history(trainer, model, evaluator, stopped)
    model_path = output_dir / "model"
    best = kept = None
    if trainer.is_world_process_zero():  # the process that writes the model
        base_score = untrained.metrics[config.best_dim][config.best_metric]
        best, kept = keep_best(history, trainer.state.best_model_checkpoint, config, base_score,
                               reporter)
        # The trainer's model holds the best epoch's weights, so the untrained one is reloaded.
        chosen = models.load_fresh(config.model, setup.device) if kept == "base" else trainer.model
        save_model(chosen, model_path, {"config": asdict(config), "plan": plan.to_json(),
                                        "history": history, "best_epoch": best, "kept": kept,
                                        "device": setup.device})
        if not stopped:  # the model is saved; checkpoints only serve to resume a stopped run
            shutil.rmtree(checkpoints, ignore_errors=True)
    reporter.point("seconds_left", trainer.state.global_step, 0.0, trainer.state.epoch)
    return TrainResult(str(model_path), best, trainer.state.global_step,
                       time.perf_counter() - started, stopped, history, kept, plan.to_json())


def epoch_history(log_history: list[dict]) -> list[dict]:
    """Every evaluation the trainer logged, as ``{"epoch", "step", "metrics": {dim: {metric:
    value}}}``; read from the trainer's state, which a resume restores from the checkpoint, so a
    resumed run still knows the epochs its earlier process trained."""
    history = []
    for entry in log_history:
        metrics: dict[str, dict[str, float]] = {}
        for key, value in entry.items():
            found = re.fullmatch(r"eval_dim(\d+)_(.+)", key)
            if found:
                metrics.setdefault(found[1], {})[found[2]] = value
        if metrics:
            history.append({"epoch": entry.get("epoch"), "step": entry["step"], "metrics": metrics})
    return history


def end_distributed() -> None:
    """Tear down the process group that torchrun or accelerate set up for the trainer, so the
    processes exit cleanly (and PyTorch does not warn of a leak); once per process, at its end."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def resumable_plan(folder: Path) -> Plan | None:
    """The plan saved with the newest complete checkpoint: a resumed run keeps the epochs and
    pairs its first process re-planned, so its sampler and schedule line up with the checkpoint."""
    found = drop_incomplete_checkpoints(folder)
    if not found or not (found[-1] / PLAN_FILE).is_file():
        return None
    return Plan(**json.loads((found[-1] / PLAN_FILE).read_text()))


def checkpoint_step(path: Path) -> int:
    return int(path.name.rpartition("-")[2])


def drop_incomplete_checkpoints(folder: Path) -> list[Path]:
    """Delete the checkpoints in ``folder`` that were cut short (a full disk, a killed process)
    and return the others, oldest first: the trainer writes ``trainer_state.json`` last, so a
    checkpoint without it is incomplete, and resuming from it would fail."""
    found = sorted((p for p in folder.glob("checkpoint-*") if p.is_dir()), key=checkpoint_step)
    for path in found:
        if not (path / "trainer_state.json").is_file():
            shutil.rmtree(path, ignore_errors=True)
    return [p for p in found if p.exists()]


def slim_checkpoints(folder: Path) -> None:
    """Keep the optimizer state in the newest checkpoint alone, the one a resume starts from;
    the trainer keeps at most one other (the best epoch's), whose weights are all that is used
    of it, and the optimizer state would double its size."""
    for path in drop_incomplete_checkpoints(folder)[:-1]:
        for name in RESUME_ONLY:
            (path / name).unlink(missing_ok=True)


def save_model(model, path: Path, details: dict) -> None:
    """Save ``model`` with ragtune's ``details`` (ragtune.json) into a sibling folder and move it
    into place only when complete, so ``path`` never holds half a model.

    Args:
        model: the SentenceTransformer to save.
        path: the model folder; one saved there before is replaced.
        details: what ragtune records about the run.
    """
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        model.save(str(partial))
        (partial / "ragtune.json").write_text(json.dumps(details, indent=2))
    except Exception as error:
        shutil.rmtree(partial, ignore_errors=True)
        if is_out_of_room(error):
            raise WorkspaceError(explain_out_of_room("the fine-tuned model", path.parent)) from error
        raise
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)


def write_model_card(model_path: Path, config: TrainConfig, baseline: EvalResult,
                     finetuned: EvalResult) -> None:
    """Append what was trained and how it scored to the model's README, for whoever gets it."""
    rows = "\n".join(
        f"| {d} | {baseline.metrics[d]['ndcg@10']:.4f} | {finetuned.metrics[d]['ndcg@10']:.4f} | "
        f"{(finetuned.metrics[d]['ndcg@10'] / max(baseline.metrics[d]['ndcg@10'], 1e-9) - 1):+.1%} |"
        for d in finetuned.dims if d in baseline.metrics)
    card = (f"\n\n## Fine-tuned with ragtune\n\nMatryoshka fine-tuning (MatryoshkaLoss over "
            f"{'CachedMultipleNegativesRankingLoss' if config.loss == 'cached_mnrl' else 'MultipleNegativesRankingLoss'}) "
            f"of `{config.model}` at dims {config.dims}.\n\n"
            f"| dims | NDCG@10 before | NDCG@10 after | change |\n|---|---|---|---|\n{rows}\n\n"
            f"Configuration:\n\n```json\n{config.to_json()}\n```\n")
    readme = model_path / "README.md"
    readme.write_text((readme.read_text() if readme.exists() else f"# {model_path.name}\n") + card)
