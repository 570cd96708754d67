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

import math
import random
import re
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

from core.measuring.evaluate import (
    EvalResult,
    RetrievalSet,
    evaluate,
    evaluate_named,
)
from core.training.checkpoints import (
    checkpoint_seconds,
    drop_incomplete_checkpoints,
    resumable_plan,
    save_model,
)
from core.training.config import Reporter, TrainConfig, TrainResult, stage_progress
from core.training.device import DeviceSetup, precision, prepare_torch, world_size
from core.training.plan import Architecture, Plan, default_plan
from core.training.replan import PlanKeeper, ReplanScope, evaluation_seconds, passage_seconds
from core.workspace import models
from core.workspace.errors import WorkspaceError, explain_out_of_room, is_out_of_room
from core.workspace.store import Store
from core.workspace.wording import duration

NO_GAIN = "fine-tuning did not help on this data"
VALIDATION_PASSAGES = 3000
EVAL_BUDGET_SHARE = 0.1  # the most of the budget one evaluation during training may cost


def training_pairs(pairs: list[tuple[str, str]], max_pairs: int | None,
                   seed: int = 42) -> list[tuple[str, str]]:
    """Exact repeats dropped (MNRL would score them as each other's wrong answers), then capped
    by a seeded sample rather than the first N, so a cap keeps every document represented."""
    unique = list(dict.fromkeys(pairs))
    if max_pairs is None or max_pairs >= len(unique):
        return unique
    keep = sorted(random.Random(seed).sample(range(len(unique)), max_pairs))
    return [unique[i] for i in keep]


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
    elif setup.device == "cpu":  # a 110M model's batch of 32 long passages takes ~20 GB
        import psutil
        free_memory = psutil.virtual_memory().available
    plan = default_plan(len(pairs), tokens, setup.device, model.max_seq_length,
                        sum(p.numel() for p in model.parameters()), config.budget_minutes,
                        config.generated_pairs, setup.bf16, epochs=config.epochs,
                        learning_rate=config.learning_rate, batch_size=config.batch_size,
                        max_seq_length=config.max_seq_length, max_pairs=config.max_pairs,
                        hard_negatives=config.hard_negatives, free_memory=free_memory,
                        architecture=architecture(model), compute_parameters=compute_parameters(model))
    resolved = config.with_plan(plan).resolved(model.get_embedding_dimension(), plan.max_pairs)
    return resolved, plan


def compute_parameters(model) -> int | None:
    """Parameters outside the transformer's embedding tables, which set its training speed
    (``plan.pairs_per_second``); None where the model has no such tables to tell apart."""
    embeddings = getattr(getattr(model[0], "auto_model", None), "embeddings", None)
    if embeddings is None:
        return None
    return sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in embeddings.parameters())


def architecture(model) -> Architecture | None:
    """Width, depth and heads of a SentenceTransformer's transformer, for the memory estimate."""
    settings = getattr(getattr(model[0], "auto_model", None), "config", None)
    try:
        return Architecture(settings.hidden_size, settings.num_hidden_layers,
                            settings.num_attention_heads)
    except AttributeError:  # not a BERT-like transformer: the device's default batch
        return None


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
        CachedMultipleNegativesRankingLoss,
        MatryoshkaLoss,
        MultipleNegativesRankingLoss,
    )
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
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )
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
    from core.training.callback import PlanCallback

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
                                         callbacks=[PlanCallback(keeper, evaluator, reporter)])
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


def write_model_card(model_path: Path, config: TrainConfig, baseline: EvalResult,
                     finetuned: EvalResult, more: str = "") -> None:
    """Append what was trained and how it scored to the model's README, for whoever gets it;
    ``more`` is a further section (what it cost outside the corpus)."""
    rows = "\n".join(
        f"| {d} | {baseline.metrics[d]['ndcg@10']:.4f} | {finetuned.metrics[d]['ndcg@10']:.4f} | "
        f"{(finetuned.metrics[d]['ndcg@10'] / max(baseline.metrics[d]['ndcg@10'], 1e-9) - 1):+.1%} |"
        for d in finetuned.dims if d in baseline.metrics)
    card = (f"\n\n## Fine-tuned with ragtune\n\nMatryoshka fine-tuning (MatryoshkaLoss over "
            f"{'CachedMultipleNegativesRankingLoss' if config.loss == 'cached_mnrl' else 'MultipleNegativesRankingLoss'}) "
            f"of `{config.model}` at dims {config.dims}.\n\n"
            f"| dims | NDCG@10 before | NDCG@10 after | change |\n|---|---|---|---|\n{rows}\n\n"
            f"Configuration:\n\n```json\n{config.to_json()}\n```\n{more}")
    readme = model_path / "README.md"
    readme.write_text((readme.read_text() if readme.exists() else f"# {model_path.name}\n") + card)
