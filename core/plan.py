"""The default training plan: one function decides epochs, learning rate, batch size, sequence
length and how many pairs to use, from the data, the device and a time budget.

The Fine-tune page and ``python -m core train`` both call ``default_plan``, so "the default run"
is the same run from either. Every setting a user gives explicitly wins; the plan only fills in
what was left open (``None`` in ``TrainConfig``).

How it decides:

* **Sequence length** fits 95% of the training passages (padding to the model's maximum spends
  most of the compute on pad tokens for typical chunk sizes).
* **Throughput** is the measured MiniLM rate on the device at sequence length 128, scaled by the
  sequence length and by the model's size, so a bigger model gets fewer epochs in the same time.
* **Epochs** fill the budget, up to the reference recipe's 4 (Schmid, "Fine-tune Embedding models
  for RAG", 2024); when even one epoch does not fit, the pairs are capped instead.
* **Learning rate** is the recipe's 2e-5 for people's pairs; generated pairs are noisier, and a
  lower rate keeps the model closer to where it started, so no dimension gets worse.

Example::

    >>> plan = default_plan(n_pairs=480, passage_tokens=[120] * 480, device="cpu",
    ...                     model_max_seq=256, parameters=22_700_000)
    >>> plan.summary()
    '4 epochs · lr 2e-05 · batch 32 · seq 128 · 480 pairs · ≈ 2 min'
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

# Training pairs per second for a MiniLM-sized model (22.7M parameters) at sequence length 128,
# forward and backward, in float32; measured with benchmarks/step_speed.py on 2 CPU cores.
PAIRS_PER_SECOND = {"cuda": 400.0, "mps": 60.0, "cpu": 15.0}
BF16_SPEEDUP = 1.4  # CPU with native bf16 (AMX): 0.75x the step time, benchmarks/step_speed.py
REFERENCE_PARAMETERS = 22_700_000
BUDGET_MINUTES = {"cuda": 5.0, "mps": 10.0, "cpu": 10.0}
MAX_EPOCHS = 4


def budget_defaults() -> str:
    """The default time budget in words, for help texts: "10 min on CPU, 5 on a GPU"."""
    return f"{BUDGET_MINUTES['cpu']:g} min on CPU, {BUDGET_MINUTES['cuda']:g} on a GPU"
EVAL_SHARE = 0.15  # of the budget kept for the per-epoch evaluations and saving
VALIDATION_SHARE = 0.1  # of the training side held out to pick the best epoch
MAX_VALIDATION_PAIRS = 500  # generated sets are large; more queries sharpen little, cost every epoch


@dataclass
class Plan:
    """Resolved settings plus the time they should take."""
    epochs: int
    learning_rate: float
    batch_size: int
    max_seq_length: int
    max_pairs: int  # pairs actually used
    hard_negatives: int
    seconds: float  # estimated training time
    budget_seconds: float
    device: str

    def summary(self) -> str:
        minutes = self.seconds / 60
        took = f"≈ {minutes:.0f} min" if minutes >= 1 else f"≈ {self.seconds:.0f} s"
        return (f"{self.epochs} epoch{'s' * (self.epochs != 1)} · lr {self.learning_rate:.0e} · "
                f"batch {self.batch_size} · seq {self.max_seq_length} · {self.max_pairs:,} pairs · "
                f"{took}")

    def to_json(self) -> dict:
        return asdict(self)


def validation_size(n_train: int, generated: bool) -> int:
    """How many training pairs to hold out for choosing the best epoch: a tenth, at least one;
    generated pairs are plentiful, so their share is also capped to keep each epoch's check cheap.
    """
    size = max(1, round(VALIDATION_SHARE * n_train))
    return min(size, MAX_VALIDATION_PAIRS) if generated else size


def seq_length_for(token_counts: list[int], model_max: int) -> int:
    """Long enough for 95% of passages (plus special tokens), rounded up to a multiple of 32."""
    if not token_counts:
        return model_max
    p95 = sorted(token_counts)[int(0.95 * (len(token_counts) - 1))] + 2
    return min(model_max, max(64, 32 * math.ceil(p95 / 32)))


def pairs_per_second(device: str, seq: int, parameters: int, bf16: bool = False) -> float:
    rate = PAIRS_PER_SECOND.get(device, PAIRS_PER_SECOND["cpu"])
    if bf16 and device == "cpu":
        rate *= BF16_SPEEDUP
    return rate * (128 / max(seq, 32)) * (REFERENCE_PARAMETERS / max(parameters, 1))


def default_batch_size(device: str) -> int:
    """Bigger batches give MNRL more negatives; CPU memory and time favour a modest size."""
    return 64 if device == "cuda" else 32


def default_plan(n_pairs: int, passage_tokens: list[int], device: str, model_max_seq: int,
                 parameters: int, budget_minutes: float | None = None, generated: bool = False,
                 bf16: bool = False, *, epochs: int | None = None, learning_rate: float | None = None,
                 batch_size: int | None = None, max_seq_length: int | None = None,
                 max_pairs: int | None = None, hard_negatives: int | None = None) -> Plan:
    """The settings that fit ``budget_minutes`` of training on ``device``.

    Args:
        n_pairs: training pairs available (after removing exact repeats).
        passage_tokens: token counts of the training passages, for the sequence length.
        device: "cpu", "cuda" or "mps".
        model_max_seq: the model's own maximum sequence length.
        parameters: the model's parameter count, to scale the throughput.
        budget_minutes: training time to aim for (default 10 on CPU, 5 on a GPU).
        generated: the pairs were generated, not written by people (a gentler learning rate).
        bf16: training runs in bfloat16 (faster on CPUs with native support).
        epochs … hard_negatives: values the user fixed; the plan keeps them and fits the rest.
    """
    budget = 60 * (budget_minutes if budget_minutes is not None else BUDGET_MINUTES.get(device, 10.0))
    seq = min(max_seq_length or seq_length_for(passage_tokens, model_max_seq), model_max_seq)
    batch = batch_size or max(2, min(default_batch_size(device), n_pairs))
    rate = pairs_per_second(device, seq, parameters, bf16)
    train_budget = budget * (1 - EVAL_SHARE)
    used = min(max_pairs or n_pairs, n_pairs)
    if epochs is None:
        epochs = max(1, min(MAX_EPOCHS, int(train_budget // (used / rate))))
    if max_pairs is None and epochs * used / rate > train_budget:
        used = min(used, max(batch, int(train_budget * rate / epochs)))
    return Plan(epochs=epochs,
                learning_rate=learning_rate or (1e-5 if generated else 2e-5),
                batch_size=batch, max_seq_length=seq, max_pairs=used,
                hard_negatives=hard_negatives or 0, seconds=epochs * used / rate,
                budget_seconds=budget, device=device)


# People's labelled questions (core/label.py): how many make a test set worth judging runs on,
# and how many the test set keeps before later questions go to training. At 20 questions the
# bootstrap interval of an NDCG@10 difference is already informative for gains of ~5 points; at
# 100 it narrows to about ±0.03, and further questions teach the model more than they sharpen it.
PEOPLE_TEST_MIN = 20
PEOPLE_TEST_MAX = 100
