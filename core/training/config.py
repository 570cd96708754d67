"""A fine-tuning run's records: its config (flat, validated, saved with the result), the
``Reporter`` it tells its progress to, and the result it hands back.

Example::

    config = TrainConfig.from_dict({"epochs": 2, "budget_minutes": 3})   # checked, one line if wrong
    config.to_json()   # what the job stores and the model folder's ragtune.json keeps
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Protocol

from core.measuring.evaluate import METRICS, PREFERRED_DIM, check_dims, default_dims, stage_name
from core.training.plan import Plan
from core.workspace import models, ranges
from core.workspace.errors import WorkspaceError

LOSSES = ("mnrl", "cached_mnrl")


@dataclass
class TrainConfig:
    """Everything that defines a fine-tuning run; stored with the job and shown to the user.

    ``None`` means "let the default plan decide" (``core.training.plan.default_plan``): the page and the
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
        """Every number within its range (``core.workspace.ranges``), before any plan divides by it."""
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
