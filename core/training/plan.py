"""The default training plan: one function decides epochs, learning rate, batch size, sequence
length and how many pairs to use, from the data, the device and a time budget.

The Fine-tune page and ``python -m core train`` both call ``default_plan``, so "the default run"
is the same run from either. Every setting a user gives explicitly wins; the plan only fills in
what was left open (``None`` in ``TrainConfig``).

How it decides:

* **Sequence length** fits 95% of the training passages (padding to the model's maximum spends
  most of the compute on pad tokens for typical chunk sizes).
* **Throughput** is the measured MiniLM rate on the device at sequence length 128, scaled by the
  sequence length and by the model's size (its parameters outside the embedding tables), so a
  bigger model gets fewer epochs in the same time.
* **Epochs** fill the budget, up to the reference recipe's 4 (Schmid, "Fine-tune Embedding models
  for RAG", 2024), or for a small set up to 10, so that it gets a few hundred updates
  (``epoch_cap``); when even one epoch does not fit, the pairs are capped instead.
* **Learning rate** is the recipe's 2e-5 for people's pairs; generated pairs are noisier, and a
  lower rate keeps the model closer to where it started, so no dimension gets worse.
* **Batch size** on a CPU is ``default_batch_size`` where its activations fit in the free
  memory, else the cached loss below; on a GPU it is the largest power of two whose activations
  fit in the free device memory, up to ``MAX_BATCH`` and small enough for ``MIN_STEPS_PER_EPOCH`` steps (but at least
  the recipe's ``MIN_BATCH``, with the cached loss if even that does not fit): more in-batch
  negatives make MNRL's task harder and its gradient better (Henderson et al., 2017; the GTE and E5
  recipes train with thousands). A batch the user fixes beyond the memory gets the cached loss
  (GradCache, Gao et al., 2021), which holds only a mini-batch of activations at once.

The constant rate is only a first guess: a busy machine, another card or another model can be
several times off. ``replan`` therefore re-decides epochs and pairs from the rate a run measures
over its first steps, its measured evaluations and saves, and the time already spent, so the
training phase ends near its budget on any machine.

Example::

    >>> plan = default_plan(n_pairs=480, passage_tokens=[120] * 480, device="cpu",
    ...                     model_max_seq=256, parameters=22_700_000)
    >>> plan.summary()
    '10 epochs · lr 2e-05 · batch 32 · seq 128 · 480 pairs · ≈ 6 min 16 s'
    >>> plan.arithmetic()
    '10 epochs × 480 pairs at an assumed 15.0 pairs/s = 5 min 20 s of training, + 56 s for evaluations and saves (15%) = 6 min 16 s; the pairs run out first: 10 epochs are the most for a set this size, so the 10-min budget is not filled'
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from core.workspace.errors import WorkspaceError
from core.workspace.wording import duration, plural

# Training pairs per second for a MiniLM-sized model (22.7M parameters) at sequence length 128,
# forward and backward, in float32; measured with benchmarks/step_speed.py on 2 CPU cores.
PAIRS_PER_SECOND = {"cuda": 400.0, "mps": 60.0, "cpu": 15.0}
BF16_SPEEDUP = 1.4  # CPU with native bf16 (AMX): 0.75x the step time, benchmarks/step_speed.py
REFERENCE_PARAMETERS = 22_700_000
# The same model's parameters outside its embedding tables: a token's forward and backward pass
# costs about 6 FLOPs per such parameter, an embedding lookup next to nothing (Kaplan et al.,
# 2020, "Scaling Laws for Neural Language Models"), so these, not all parameters, scale the rate.
# Measured with one training step of batch 32 at sequence length 128 on one CPU thread:
# all-mpnet-base-v2 (85.6M of them, 109.5M in all) ran 8.8x slower than all-MiniLM-L6-v2
# (10.8M, 22.7M in all): 7.9x by these, 4.8x by all parameters.
REFERENCE_COMPUTE_PARAMETERS = 10_794_624
BUDGET_MINUTES = {"cuda": 5.0, "mps": 10.0, "cpu": 10.0}
MAX_EPOCHS = 4  # the reference recipe's, for a set of its size (6.3k pairs: ~200 steps an epoch)
# A small set gets more passes where the budget allows, so a run makes at least MIN_STEPS
# optimizer steps: at 16–22 steps an epoch, 4 epochs are under 100 updates. Measured with
# benchmarks/quality.py on people's test questions: 10 epochs against 4 on the Python docs (517
# pairs) and the library man pages (688) gained 1.5–4 points of NDCG@10 at every size on both.
MIN_STEPS = 220
MAX_EPOCHS_SMALL_SET = 10


def budget_defaults() -> str:
    """The default time budget in words, for help texts: "10 min on CPU, 5 on a GPU"."""
    return f"{BUDGET_MINUTES['cpu']:g} min on CPU, {BUDGET_MINUTES['cuda']:g} on a GPU"
EVAL_SHARE = 0.15  # of the budget kept for the per-epoch evaluations and saving
# After training, the general reference set and the merges with the base model
# (core.training.forgetting) get this share of the budget; training plans for the rest.
MERGE_SHARE = 0.1
# The kept merge may score at most this much general-set NDCG@10 (absolute, at the run's size)
# below the base model; the best validation score among the α within it is kept.
GENERAL_TOLERANCE = 0.01
VALIDATION_SHARE = 0.1  # of the training side held out to pick the best epoch
MAX_VALIDATION_PAIRS = 500  # generated sets are large; more queries sharpen little, cost every epoch
MAX_BATCH = 1024
MIN_BATCH = 32  # the reference recipe's batch: fewer in-batch negatives only where data is tiny
MIN_STEPS_PER_EPOCH = 64  # more pairs per batch, fewer updates: unmeasured beyond this on a GPU
MEMORY_HEADROOM = 0.8  # of the free device memory a plan fills (allocator fragmentation, spikes)
# The budget is a ceiling a run keeps within this share, and fills to within it unless the data
# runs out first (said in the plan line before the run starts).
BUDGET_TOLERANCE = 0.15
# A further epoch cut short to fill the budget must train at least this share of it: shorter, it
# would change the model little. (It used to have to train as long as its evaluation took too;
# on a busy machine, where one evaluation takes minutes, that left a third of the budget unused.
# The best epoch is kept, so a short one costs only its time, which is the budget's.)
MIN_LAST_EPOCH_SHARE = 0.05


@dataclass
class Plan:
    """Resolved settings plus the time they should take."""
    epochs: int
    learning_rate: float
    batch_size: int
    max_seq_length: int
    max_pairs: int  # pairs actually used
    hard_negatives: int
    seconds: float  # the training phase, evaluations and saving included: estimated, then re-planned
    budget_seconds: float
    device: str
    loss: str = "mnrl"  # "cached_mnrl" where a fixed batch would not fit in the device memory
    mini_batch_size: int | None = None  # cached_mnrl: texts through the model at once
    measured_pairs_per_second: float | None = None  # None until the run timed its first steps
    first_estimate_seconds: float | None = None  # ``seconds`` before the first re-plan
    last_epoch_pairs: int | None = None  # a re-planned last epoch cut short to end at the budget
    epoch_cap: int = MAX_EPOCHS  # the most epochs re-planning may fill the budget with
    assumed_pairs_per_second: float | None = None  # the constant rate the first estimate used
    epochs_fixed: bool = False  # the user set the epochs (so they, not the cap, may end it early)
    # The last re-plan's sum, so its log line is arithmetic a reader can check (``arithmetic``):
    # spent, pairs still to train, evaluations and saves still to come, each with its price.
    breakdown: dict | None = None

    def last_epoch(self) -> int:
        """Pairs the last epoch trains (one epoch: ``max_pairs``, which re-planning may cut)."""
        return self.last_epoch_pairs or self.max_pairs

    def summary(self) -> str:
        cut = f" (the last {self.last_epoch_pairs:,})" if self.last_epoch_pairs else ""
        return (f"{plural(self.epochs, 'epoch')} · lr {self.learning_rate:.0e} · "
                f"batch {self.batch_size} · seq {self.max_seq_length} · {self.max_pairs:,} pairs{cut} · "
                f"≈ {duration(self.seconds)}")

    def data_runs_out(self) -> bool:
        """The plan ends more than ``BUDGET_TOLERANCE`` under its budget: every pair, in as
        many epochs as it may have, takes less time than that."""
        return self.seconds < (1 - BUDGET_TOLERANCE) * self.budget_seconds

    def arithmetic(self) -> str:
        """How ``seconds`` was reached, in numbers a reader can check: the first estimate's
        epochs × pairs at the assumed rate plus the evaluations' share, or a re-plan's time
        spent plus what is still to train, evaluate and save at the measured prices."""
        if self.breakdown:
            b = self.breakdown
            saves = b["saves"] * b["save_seconds"]
            return (f"{duration(b['spent'])} spent + {b['pairs']:,} pairs to train at "
                    f"{b['rate']:.1f} pairs/s ({duration(b['pairs'] / b['rate'])}) + "
                    f"{plural(b['evaluations'], 'evaluation')} × {duration(b['eval_seconds'])} + "
                    f"{plural(b['saves'], 'save')} × {duration(b['save_seconds'])} "
                    f"({duration(b['evaluations'] * b['eval_seconds'] + saves)}) = "
                    f"{duration(self.seconds)} of the {duration(self.budget_seconds)} budget")
        if not self.assumed_pairs_per_second:
            return f"≈ {duration(self.seconds)} of the {duration(self.budget_seconds)} budget"
        pairs = (self.epochs - 1) * self.max_pairs + self.last_epoch()
        training = pairs / self.assumed_pairs_per_second
        cut = f" (the last {self.last_epoch_pairs:,})" if self.last_epoch_pairs else ""
        line = (f"{self.epochs} epoch{'s' * (self.epochs != 1)} × {self.max_pairs:,} pairs{cut} at an "
                f"assumed {self.assumed_pairs_per_second:.1f} pairs/s = {duration(training)} of "
                f"training, + {duration(self.seconds - training)} for evaluations and saves "
                f"({EVAL_SHARE:.0%}) = {duration(self.seconds)}")
        if self.seconds >= self.budget_seconds - 0.5 and training / (1 - EVAL_SHARE) > self.seconds + 0.5:
            line += " (the budget: the rest is cut when the run measures its speed)"
        elif self.data_runs_out() and (self.epochs_fixed or self.epochs >= self.epoch_cap):
            why = ("the epochs you set" if self.epochs_fixed else
                   f"{self.epochs} epochs are the most for a set this size")
            line += (f"; the pairs run out first: {why}, so the "
                     f"{self.budget_seconds / 60:g}-min budget is not filled")
        return line

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


def pairs_per_second(device: str, seq: int, parameters: int, bf16: bool = False,
                     compute_parameters: int | None = None) -> float:
    """The assumed training rate: MiniLM's on the device, scaled by the sequence length and by
    the model's size (its ``compute_parameters`` where known, else all its parameters).

    Example::

        >>> round(pairs_per_second("cpu", 128, 109_486_464, compute_parameters=85_645_440), 2)
        1.89
    """
    rate = PAIRS_PER_SECOND.get(device, PAIRS_PER_SECOND["cpu"])
    if bf16 and device == "cpu":
        rate *= BF16_SPEEDUP
    size = (REFERENCE_COMPUTE_PARAMETERS / max(compute_parameters, 1) if compute_parameters
            else REFERENCE_PARAMETERS / max(parameters, 1))
    return rate * (128 / max(seq, 32)) * size


def epoch_cap(n_pairs: int, batch_size: int) -> int:
    """The most epochs a plan fills its budget with: the recipe's ``MAX_EPOCHS``, or for a
    small set enough for ``MIN_STEPS`` optimizer steps, up to ``MAX_EPOCHS_SMALL_SET``.

    Example::

        >>> epoch_cap(517, 32), epoch_cap(1129, 32), epoch_cap(6300, 32)
        (10, 7, 4)
    """
    steps = max(1, math.ceil(n_pairs / max(batch_size, 1)))
    return min(MAX_EPOCHS_SMALL_SET, max(MAX_EPOCHS, math.ceil(MIN_STEPS / steps)))


def default_batch_size(device: str) -> int:
    """Bigger batches give MNRL more negatives; CPU memory and time favour a modest size."""
    return 64 if device == "cuda" else 32


@dataclass
class Architecture:
    """What sizes a transformer's activations: width, depth and attention heads."""
    hidden: int
    layers: int
    heads: int


def bytes_per_pair(seq: int, arch: Architecture, bf16: bool) -> int:
    """Activation memory one (question, passage) pair holds for the backward pass.

    Per layer and token a transformer keeps about ``34·h + 5·a·s`` bytes in 16-bit precision
    (Korthikanti et al., 2022, "Reducing Activation Recomputation in Large Transformer
    Models"); float32 doubles it. A pair is two texts; questions are shorter than passages, but
    sizing both at ``seq`` keeps the estimate on the safe side.

    Example::

        >>> bytes_per_pair(128, Architecture(384, 6, 12), bf16=True) // 2**20
        30
    """
    per_token = 34 * arch.hidden + 5 * arch.heads * seq
    return 2 * seq * arch.layers * per_token * (1 if bf16 else 2)


def static_bytes(parameters: int) -> int:
    """Weights, gradients and AdamW's two moments, all float32."""
    return 16 * parameters


@dataclass
class BatchChoice:
    batch_size: int
    loss: str  # "mnrl", or "cached_mnrl" when the batch's activations exceed the memory
    mini_batch_size: int | None  # cached_mnrl only


def batch_for_memory(free_bytes: int, parameters: int, per_pair: int, n_pairs: int,
                     wanted: int | None = None) -> BatchChoice:
    """The batch a device with ``free_bytes`` of free memory trains with.

    Args:
        free_bytes: free device memory before the model is trained.
        parameters: the model's parameter count (weights, gradients and optimizer state).
        per_pair: activation bytes of one pair (``bytes_per_pair``).
        n_pairs: training pairs; the batch leaves ``MIN_STEPS_PER_EPOCH`` steps per epoch,
            unless that means fewer than ``MIN_BATCH`` pairs in a batch.
        wanted: a batch size the user fixed; kept, with the cached loss if it does not fit.

    Example::

        >>> batch_for_memory(80 * 2**30, 22_700_000, 31 * 2**20, 100_000)
        BatchChoice(batch_size=1024, loss='mnrl', mini_batch_size=None)
        >>> batch_for_memory(80 * 2**30, 22_700_000, 31 * 2**20, 6_000)
        BatchChoice(batch_size=64, loss='mnrl', mini_batch_size=None)
        >>> batch_for_memory(4 * 2**30, 22_700_000, 31 * 2**20, 50_000, wanted=512)
        BatchChoice(batch_size=512, loss='cached_mnrl', mini_batch_size=64)
    """
    room = max(0, int(free_bytes * MEMORY_HEADROOM) - static_bytes(parameters))
    fits = _power_of_two_at_most(room // max(per_pair, 1))
    batch = wanted or min(n_pairs, max(MIN_BATCH, min(
        MAX_BATCH, fits, _power_of_two_at_most(n_pairs // MIN_STEPS_PER_EPOCH))))
    if batch <= fits:
        return BatchChoice(batch, "mnrl", None)
    # GradCache holds one mini-batch of activations at a time, plus every text's embedding.
    return BatchChoice(batch, "cached_mnrl", max(1, fits))


def _power_of_two_at_most(n: int) -> int:
    return 1 << (n.bit_length() - 1) if n >= 1 else 0


def default_plan(n_pairs: int, passage_tokens: list[int], device: str, model_max_seq: int,
                 parameters: int, budget_minutes: float | None = None, generated: bool = False,
                 bf16: bool = False, *, epochs: int | None = None, learning_rate: float | None = None,
                 batch_size: int | None = None, max_seq_length: int | None = None,
                 max_pairs: int | None = None, hard_negatives: int | None = None,
                 free_memory: int | None = None, architecture: Architecture | None = None,
                 compute_parameters: int | None = None) -> Plan:
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
        free_memory: free memory in bytes (the accelerator's, or on a CPU the machine's), to
            size the batch from; ``architecture`` must come with it. On a CPU the batch stays
            the default where it fits (a bigger one is slower, not better, in a budget of
            minutes), else the cached loss holds a mini-batch at a time.
        compute_parameters: the parameters outside the embedding tables, which set the
            speed (``pairs_per_second``); None: all ``parameters`` do.
    """
    budget = 60 * (budget_minutes if budget_minutes is not None else BUDGET_MINUTES.get(device, 10.0))
    seq = min(max_seq_length or seq_length_for(passage_tokens, model_max_seq), model_max_seq)
    batch = batch_size or max(2, min(default_batch_size(device), n_pairs))
    loss, mini_batch = "mnrl", None
    if free_memory is not None and architecture is not None:
        choice = batch_for_memory(free_memory, parameters, bytes_per_pair(seq, architecture, bf16),
                                  n_pairs, batch_size if device == "cuda" else batch_size or batch)
        batch, loss, mini_batch = min(choice.batch_size, n_pairs), choice.loss, choice.mini_batch_size
    rate = pairs_per_second(device, seq, parameters, bf16, compute_parameters)
    train_budget = budget * (1 - EVAL_SHARE)
    used = min(max_pairs or n_pairs, n_pairs)
    cap = epoch_cap(used, batch)
    fixed = epochs is not None
    if epochs is None:
        epochs = max(1, min(cap, int(train_budget // (used / rate))))
    if max_pairs is None and epochs * used / rate > train_budget:
        used = min(used, max(batch, int(train_budget * rate / epochs)))
    last = None  # the time whole epochs leave goes to one further epoch cut short, as ``replan``
    spare = int((train_budget - epochs * used / rate) * rate)  # does: the promise is the budget
    if not fixed and max_pairs is None and epochs < cap and spare >= max(
            batch, rate * MIN_LAST_EPOCH_SHARE * budget):
        epochs, last = epochs + 1, min(used, spare)
    trained = (epochs - 1) * used + (last or used)
    return Plan(epochs=epochs,
                learning_rate=learning_rate or (1e-5 if generated else 2e-5),
                batch_size=batch, max_seq_length=seq, max_pairs=used,
                hard_negatives=hard_negatives or 0,
                seconds=min(budget, trained / rate / (1 - EVAL_SHARE)),
                last_epoch_pairs=last if last and last < used else None,
                budget_seconds=budget, device=device, loss=loss, mini_batch_size=mini_batch,
                epoch_cap=cap, assumed_pairs_per_second=rate, epochs_fixed=fixed)


@dataclass
class Measured:
    """What a run has measured so far, for ``replan``."""
    elapsed: float  # seconds since the training phase began: loading, evaluations, steps, saves
    pairs_done: int  # pairs trained so far, in all epochs
    pairs_per_second: float  # training steps and data loading only
    epochs_done: int  # epochs already evaluated and saved
    eval_seconds: float  # one evaluation on the validation queries
    save_seconds: float  # one checkpoint (and, at the end, the kept model)


def replan(plan: Plan, measured: Measured, pairs_per_epoch: int, max_epochs: int,
           epochs_open: bool = True, pairs_open: bool = True) -> Plan:
    """The plan re-decided from a run's measured speed, so its training phase ends at its budget.

    Whole epochs fill the remaining time as in ``default_plan`` (up to ``max_epochs``, never
    fewer than the epochs already begun). The time whole epochs leave goes to one further epoch
    cut short, where it can train ``MIN_LAST_EPOCH_SHARE`` of the budget after its evaluation
    and save are paid for (an epoch on a slow machine can be most of the budget, so whole
    epochs alone could end far before it; once planned, it stays down to half that, so a rate
    wavering near the line does not add and drop it at every step); and
    when the time runs out inside an epoch, that epoch stops after the pairs that fit (the
    batches are shuffled, so they are a random sample). Re-planned at every step, this cut
    follows a machine that slows down while the last epoch runs. Settings the user fixed stay
    (a fixed single epoch may still be cut); otherwise only ``seconds`` is re-estimated, which is
    what the progress bar's time left is read from.

    Args:
        plan: the plan being run (its budget, batch size and learning rate stay).
        measured: the run's speed and the time spent so far.
        pairs_per_epoch: pairs one epoch goes through (the training set the trainer holds).
        max_epochs: the most epochs the trainer was set up for.
        epochs_open, pairs_open: whether the plan may change epochs and pairs.

    Example::

        >>> plan = default_plan(2000, [100] * 2000, "cpu", 256, 22_700_000, budget_minutes=10)
        >>> slow = Measured(elapsed=60, pairs_done=64, pairs_per_second=5.0, epochs_done=0,
        ...                 eval_seconds=10, save_seconds=2)
        >>> again = replan(plan, slow, 2000, 4)  # a third of the expected speed
        >>> (plan.epochs, again.epochs, again.max_pairs, again.last_epoch_pairs, round(again.seconds))
        (4, 2, 2000, 634, 600)
    """
    rate = max(measured.pairs_per_second, 1e-9)
    left = plan.budget_seconds - measured.elapsed
    per_epoch = measured.eval_seconds + measured.save_seconds

    def cost(epochs: int, pairs: int) -> float:
        """Seconds still to spend for a run of ``epochs`` epochs, the last of ``pairs`` pairs."""
        to_train = max(0, (epochs - 1) * pairs_per_epoch + pairs - measured.pairs_done)
        return to_train / rate + max(0, epochs - measured.epochs_done) * per_epoch + measured.save_seconds

    def last_fits(epochs: int) -> int:
        """Pairs epoch ``epochs`` can train, the epochs before it whole, to end at the budget."""
        fixed = max(0, epochs - measured.epochs_done) * per_epoch + measured.save_seconds
        return int((left - fixed) * rate + measured.pairs_done - (epochs - 1) * pairs_per_epoch)

    begun = max(1, -(-measured.pairs_done // max(pairs_per_epoch, 1)))
    epochs, last = plan.epochs, plan.last_epoch() if plan.epochs == 1 or plan.last_epoch_pairs else pairs_per_epoch
    if epochs_open:
        fitting = [e for e in range(begun, max(max_epochs, begun) + 1) if cost(e, pairs_per_epoch) <= left]
        epochs, last = (max(fitting) if fitting else begun), pairs_per_epoch
    if pairs_open and (epochs_open or epochs == 1):
        if cost(epochs, pairs_per_epoch) > left:  # time runs out inside this epoch
            in_epoch = measured.pairs_done - (epochs - 1) * pairs_per_epoch
            # To the nearest whole step, not the next: the run stops only at a step's end, and on
            # a busy machine one step can be a fifth of a short budget (28 s of 2 min, measured).
            fits = round(last_fits(epochs) / plan.batch_size) * plan.batch_size
            last = min(pairs_per_epoch, max(fits, in_epoch, plan.batch_size))
        else:
            shortest = max(plan.batch_size, rate * MIN_LAST_EPOCH_SHARE * plan.budget_seconds)
            if plan.epochs == epochs + 1:  # planned already: kept down to half that, so a rate
                shortest = max(plan.batch_size, shortest / 2)  # near the line does not flip it
            if epochs_open and epochs < max_epochs and last_fits(epochs + 1) >= shortest:
                epochs, last = epochs + 1, min(pairs_per_epoch, last_fits(epochs + 1))
            elif epochs_open and epochs < max_epochs:
                # Whole epochs end well short of the budget, and a further epoch's evaluation and
                # save leave it no room: a short one that ends past the budget, but nearer to it
                # and well inside the ceiling, beats stopping early (a busy 2-core run stopped at
                # 0.80 of its budget with 24 s left, where a 32-pair epoch would have ended at 1.05).
                short = min(pairs_per_epoch, -(-int(shortest) // plan.batch_size) * plan.batch_size)
                under = left - cost(epochs, pairs_per_epoch)
                over = cost(epochs + 1, short) - left
                if over < under and over <= BUDGET_TOLERANCE / 2 * plan.budget_seconds:
                    epochs, last = epochs + 1, short
    seconds = measured.elapsed + cost(epochs, last)
    evaluations = max(0, epochs - measured.epochs_done)
    breakdown = {"spent": measured.elapsed, "rate": rate, "evaluations": evaluations,
                 "pairs": max(0, (epochs - 1) * pairs_per_epoch + last - measured.pairs_done),
                 "eval_seconds": measured.eval_seconds, "saves": evaluations + 1,
                 "save_seconds": measured.save_seconds}
    one = epochs == 1
    return replace(plan, epochs=epochs, max_pairs=last if one else pairs_per_epoch,
                   last_epoch_pairs=None if one or last >= pairs_per_epoch else last, seconds=seconds,
                   measured_pairs_per_second=measured.pairs_per_second, breakdown=breakdown,
                   first_estimate_seconds=plan.first_estimate_seconds or plan.seconds)


def planned_vs_actual(plan: dict, took: float) -> str:
    """One line for people: the training phase's time against its budget, its first estimate
    (the one the page and the plan line promised, from an assumed rate) and, where the run
    re-planned, the forecast it last made from its measured rate: three different things,
    named apart.

    Args:
        plan: a run's ``Plan.to_json()`` (as stored with the job and printed by the CLI).
        took: the seconds the training phase took (``seconds.train``).

    Example::

        >>> planned_vs_actual({"seconds": 590, "budget_seconds": 600, "first_estimate_seconds": 420,
        ...                    "measured_pairs_per_second": 14.2}, 610)
        'training took 10 min 10 s of a 10 min 00 s budget (2% over it); first estimate 7 min 00 s, re-planned at a measured 14.2 pairs/s to 9 min 50 s'
    """
    off = took / plan["budget_seconds"] - 1  # "+108% of it" read as if 108% of the budget was used
    line = (f"training took {duration(took)} of a {duration(plan['budget_seconds'])} budget "
            f"({abs(off):.0%} {'over' if off > 0 else 'under'} it)")
    if plan.get("measured_pairs_per_second"):
        line += (f"; first estimate {duration(plan['first_estimate_seconds'])}, re-planned at a "
                 f"measured {plan['measured_pairs_per_second']:.1f} pairs/s to "
                 f"{duration(plan['seconds'])}")
    else:
        line += f"; estimated {duration(plan['seconds'])}"
    return line


# People's labelled questions (core/using/label.py): how many make a test set worth judging runs on,
# and how many the test set keeps before later questions go to training. At 20 questions the
# bootstrap interval of an NDCG@10 difference is already informative for gains of ~5 points; at
# 100 it narrows to about ±0.03, and further questions teach the model more than they sharpen it.
PEOPLE_TEST_MIN = 20
PEOPLE_TEST_MAX = 100


# The learning curve (core.training.curve): nested shares of the training questions, each
# fine-tuned, all under one budget. The full set is the point a team has today; a half and a
# quarter give the slope the forecast extends. A point trains on at least CURVE_MIN_QUESTIONS
# questions: fewer leave one or two validation queries and a handful of in-batch negatives, and
# its gain would be noise however the test set judged it.
CURVE_FRACTIONS = (0.25, 0.5, 1.0)
CURVE_MIN_QUESTIONS = 10
# A curve's default budget is this many fine-tunes' worth (``BUDGET_MINUTES``): split 1:2:4, the
# full-size point then gets about what a plain fine-tune gets once the evaluations are paid.
CURVE_BUDGET_RUNS = 2.0


def curve_budget_minutes(device: str, given: float | None = None) -> float:
    """The whole curve's budget: ``given``, else ``CURVE_BUDGET_RUNS`` default fine-tunes."""
    return given if given is not None else CURVE_BUDGET_RUNS * BUDGET_MINUTES.get(device, 10.0)


def curve_sizes(n_questions: int) -> list[int]:
    """How many training questions each trained point of the curve uses, smallest first: the
    ``CURVE_FRACTIONS`` of ``n_questions`` that reach ``CURVE_MIN_QUESTIONS``.

    Raises:
        WorkspaceError: fewer than two such points (a forecast needs a slope), saying how many
            more training questions would give them.

    Example::

        >>> curve_sizes(120), curve_sizes(30)
        ([30, 60, 120], [15, 30])
    """
    sizes = sorted({round(f * n_questions) for f in CURVE_FRACTIONS
                    if round(f * n_questions) >= CURVE_MIN_QUESTIONS})
    if len(sizes) < 2:
        # The second-largest fraction must reach the minimum for two points.
        needed = math.ceil(CURVE_MIN_QUESTIONS / sorted(CURVE_FRACTIONS)[-2])
        raise WorkspaceError(
            f"a learning curve needs two trained points of at least {CURVE_MIN_QUESTIONS} training "
            f"questions each, so {needed} training questions; there are {n_questions}: add "
            f"{needed - n_questions} more (label them, or import pairs)")
    return sizes


def curve_share(seconds_left: float, size: int, sizes_left: list[int]) -> float:
    """The budget of the next point: the time left split in proportion to the questions each
    point still to run trains on (``size`` among ``sizes_left``, itself included).

    Proportional, so every point gets the same seconds per question: where the budget binds, each
    makes the same number of passes over its questions, and the curve measures what more
    questions add, not what more epochs add. Re-split before every point from the time really
    left, so a small point that ends early (its epochs run out, ``epoch_cap``) hands its time on.

    Example::

        >>> [round(curve_share(700, s, [10, 20, 40])) for s in (10, 20, 40)]  # planned at the start
        [100, 200, 400]
    """
    return max(0.0, seconds_left) * size / sum(sizes_left)
