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

The loop reads top to bottom in ``train``: data → model → loss → arguments → trainer → save.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Protocol

from . import ranges
from .errors import WorkspaceError, explain_out_of_room, is_out_of_room
from .evaluate import (METRICS, EvalResult, RetrievalSet, check_dims, default_dims, evaluate,
                       evaluate_named)
from .plan import Plan, default_plan
from .store import Store

LOSSES = ("mnrl", "cached_mnrl")
NO_GAIN = "fine-tuning did not help on this data"
VALIDATION_PASSAGES = 3000
RESUME_ONLY = ("optimizer.pt", "scheduler.pt")  # what only the checkpoint resumed from needs


@dataclass
class TrainConfig:
    """Everything that defines a fine-tuning run; stored with the job and shown to the user.

    ``None`` means "let the default plan decide" (``core.plan.default_plan``): the page and the
    CLI leave the same settings open, so they run the same default.
    """
    model: str = "all-MiniLM-L6-v2"
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
    best_dim: int | None = None  # None: 128 if trained, else the smallest trained dimension
    budget_minutes: float | None = None  # None: 10 on CPU, 5 on a GPU
    generated_pairs: bool = False  # the pairs were generated, not written by people

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
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

    def with_plan(self, plan: Plan) -> "TrainConfig":
        """Fill every setting left open with the plan's value."""
        chosen = {"epochs": plan.epochs, "batch_size": plan.batch_size,
                  "learning_rate": plan.learning_rate, "max_seq_length": plan.max_seq_length,
                  "hard_negatives": plan.hard_negatives, "max_pairs": plan.max_pairs}
        return TrainConfig(**{**asdict(self), **{k: v for k, v in chosen.items()
                                                 if getattr(self, k) is None}})

    def resolved(self, model_dim: int, n_pairs: int) -> "TrainConfig":
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
        best_dim = self.best_dim or (128 if 128 in dims else dims[-1])
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
    def detect(cls) -> "DeviceSetup":
        import torch
        from .models import pick_device
        device = pick_device()
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


def plan_run(config: TrainConfig, pairs: list[tuple[str, str]], model, setup: "DeviceSetup"
             ) -> tuple[TrainConfig, Plan]:
    """The default plan for these pairs on this model and device, and the config it completes
    (every setting resolved and checked). The page, the CLI and the job all come through here."""
    pairs = training_pairs(pairs, None)
    sample = [p for _, p in pairs[:: max(1, len(pairs) // 2000)]]  # token lengths of ≤ 2,000
    tokens = [len(ids) for ids in model.tokenizer(sample, add_special_tokens=False,
                                                  verbose=False)["input_ids"]] if sample else []
    plan = default_plan(len(pairs), tokens, setup.device, model.max_seq_length,
                        sum(p.numel() for p in model.parameters()), config.budget_minutes,
                        config.generated_pairs, setup.bf16, epochs=config.epochs,
                        learning_rate=config.learning_rate, batch_size=config.batch_size,
                        max_seq_length=config.max_seq_length, max_pairs=config.max_pairs,
                        hard_negatives=config.hard_negatives)
    resolved = config.with_plan(plan).resolved(model.get_embedding_dimension(), plan.max_pairs)
    return resolved, plan


# -- evaluation inside the trainer ----------------------------------------------------------
def matryoshka_evaluator(data: RetrievalSet, dims: list[int], reporter: Reporter | None = None):
    """A trainer evaluator backed by ragtune's evaluate(): one encoding for every dimension."""
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
    import datasets
    import torch
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss, MatryoshkaLoss, MultipleNegativesRankingLoss)
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers, SentenceTransformerTrainingArguments)
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    from . import models

    started = time.perf_counter()
    setup = DeviceSetup.detect()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    torch.manual_seed(config.seed)
    if setup.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    reporter.status(f"Loading {config.model} on {setup.device}")
    model = models.load_fresh(config.model, None if distributed else setup.device)
    config, plan = plan_run(config, pairs, model, setup)
    reporter.log(f"plan: {plan.summary()}")
    pairs = training_pairs(pairs, config.max_pairs, config.seed)
    model.max_seq_length = min(config.max_seq_length, model.max_seq_length)
    columns = {"anchor": [q for q, _ in pairs], "positive": [p for _, p in pairs]}
    dataset = datasets.Dataset.from_dict(columns)
    if config.hard_negatives:
        from sentence_transformers.util import mine_hard_negatives
        reporter.status(f"Mining {config.hard_negatives} hard negatives per pair")
        dataset = mine_hard_negatives(dataset, model, corpus=corpus, num_negatives=config.hard_negatives,
                                      relative_margin=0.05, sampling_strategy="top",
                                      output_format="n-tuple", verbose=False)
        if len(dataset) < config.batch_size:
            raise WorkspaceError("too few pairs kept hard negatives; turn hard negatives off")

    ranking = (CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size)
               if config.loss == "cached_mnrl" else MultipleNegativesRankingLoss(model))
    loss = MatryoshkaLoss(model, ranking, matryoshka_dims=config.dims)
    validation = eval_data.subset(VALIDATION_PASSAGES, config.seed)
    evaluator = matryoshka_evaluator(validation, config.dims)
    primary = f"eval_dim{config.best_dim}_{config.best_metric}"
    # The untrained model as it would be kept (its own sequence length), so its passages come
    # from the vector cache the baseline just filled.
    untrained = evaluate_named(config.model, validation, config.dims, store, stage_progress(
        reporter, f"Measuring the untrained model on {len(validation.queries)} validation queries"))
    base_score = untrained.metrics[config.best_dim][config.best_metric]
    for dim, ms in untrained.metrics.items():  # epoch 0 on the chart: where training starts
        reporter.point(f"ndcg@10/{dim}", 0, ms["ndcg@10"], 0.0)

    steps_per_epoch = math.ceil(len(dataset) / config.batch_size)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=config.epochs,
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
        metric_for_best_model=primary,
        greater_is_better=True,
        logging_steps=max(1, min(10, steps_per_epoch // 4)),
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=True,
        ddp_backend="gloo" if distributed and setup.device == "cpu" else None,
        dataloader_drop_last=distributed,
        prompts=models.training_prompts(model, dataset.column_names),
    )
    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            reporter.progress(state.global_step / max(state.max_steps, 1))
            if reporter.should_stop():
                control.should_training_stop = True
                control.should_save = True
                reporter.log(f"cancel requested: stopping after step {state.global_step}")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                reporter.point("loss", state.global_step, float(logs["loss"]), state.epoch)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            result = evaluator.last
            if result is None:
                return
            for dim, ms in result.metrics.items():
                reporter.point(f"ndcg@10/{dim}", state.global_step, ms["ndcg@10"], state.epoch)
            reporter.log(f"epoch {state.epoch:.2f}: {result.line()}")

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:  # the process that writes the checkpoints
                slim_checkpoints(Path(args.output_dir))

    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss,
                                         evaluator=evaluator, callbacks=[Progress()])
    trainer.remove_callback(PrinterCallback)  # progress goes to the reporter, not stdout
    checkpoints = output_dir / "checkpoints"
    has_checkpoint = bool(drop_incomplete_checkpoints(checkpoints))
    reporter.status(f"Training: {len(dataset)} pairs, {steps_per_epoch * config.epochs} steps "
                    f"on {setup.device}")
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
    stopped = reporter.should_stop()
    history = epoch_history(trainer.state.log_history)  # a resumed run's earlier epochs too
    if stopped and not history:
        # Canceled before the first evaluation: measure what we have, so the run is still usable.
        evaluator(model)
        history.append({"epoch": trainer.state.epoch, "step": trainer.state.global_step,
                        "metrics": evaluator.last.metrics_json()})
    model_path = output_dir / "model"
    best = kept = None
    if trainer.is_world_process_zero():
        best_checkpoint = trainer.state.best_model_checkpoint
        best = next((h["epoch"] for h in history if best_checkpoint and
                     best_checkpoint.endswith(f"-{h['step']}")), None)
        best_score = max(h["metrics"][str(config.best_dim)][config.best_metric] for h in history)
        # The untrained model is a candidate too: a run never hands back a worse model.
        kept = best if best_score > base_score else "base"
        if kept == "base":
            reporter.log(f"{NO_GAIN}: no epoch beat the untrained model's {config.best_metric} "
                         f"{base_score:.4f} at {config.best_dim} dims, so it is kept")
        save_model(models.load_fresh(config.model, setup.device) if kept == "base" else trainer.model,
                   model_path, {"config": asdict(config), "plan": plan.to_json(),
                                "history": history, "best_epoch": best, "kept": kept,
                                "device": setup.device})
        if not stopped:  # the model is saved; checkpoints only serve to resume a stopped run
            shutil.rmtree(checkpoints, ignore_errors=True)
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
