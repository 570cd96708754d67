"""A plan that keeps its word: re-planning from the measured rate (pure functions, then a real
tiny run slowed down by its reporter), and the batch sizing rule from free device memory."""
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from core.documents.beir import load_demo
from core.measuring.evaluate import RetrievalSet, evaluate_named
from core.training.config import TrainConfig
from core.training.plan import (
    MAX_BATCH,
    MIN_BATCH,
    Architecture,
    Measured,
    batch_for_memory,
    bytes_per_pair,
    default_plan,
    replan,
    static_bytes,
)
from core.training.replan import CosineSchedule, PlanKeeper, evaluation_seconds
from core.training.train import train
from core.workspace import models

MINILM = 22_700_000
BERT_BASE = Architecture(768, 12, 12)


def measured(rate, elapsed=30.0, done=0, epochs_done=0, eval_seconds=5.0, save_seconds=1.0):
    return Measured(elapsed=elapsed, pairs_done=done, pairs_per_second=rate, epochs_done=epochs_done,
                    eval_seconds=eval_seconds, save_seconds=save_seconds)


# -- re-planning, pure ----------------------------------------------------------------------
def test_a_slower_machine_gets_fewer_epochs_and_a_faster_one_more():
    plan = default_plan(3000, [100] * 3000, "cpu", 256, MINILM, budget_minutes=10)
    # 3000 pairs at the constant 15 pairs/s: two whole epochs, and a third cut to the budget
    assert (plan.epochs, plan.last_epoch_pairs, plan.seconds) == (3, 1650, 600)
    slow = replan(plan, measured(rate=5.0), 3000, max_epochs=4)
    fast = replan(plan, measured(rate=60.0), 3000, max_epochs=4)
    assert slow.epochs == 1 and slow.max_pairs < 3000
    assert fast.epochs == 4 and fast.max_pairs == 3000
    for again in (slow, fast):
        assert again.measured_pairs_per_second in (5.0, 60.0)
        assert again.first_estimate_seconds == plan.seconds
        # ends at a step's end nearest to the budget: at most half a step past it
        assert again.seconds <= plan.budget_seconds + plan.batch_size / again.measured_pairs_per_second / 2


def test_the_replanned_run_fills_its_budget_with_evaluations_and_saving_counted():
    plan = default_plan(100_000, [100] * 1000, "cpu", 256, MINILM, budget_minutes=10)
    again = replan(plan, measured(rate=8.0, elapsed=40, eval_seconds=20, save_seconds=4), 100_000, 4)
    # 40 s spent, one evaluation and two saves (a checkpoint and the final model) still to come
    assert again.epochs == 1
    assert again.max_pairs == int((600 - 40 - 20 - 4 - 4) * 8.0)
    assert again.seconds == pytest.approx(600, abs=1)


def test_epochs_already_begun_are_finished_and_fixed_settings_stay():
    plan = default_plan(500, [100] * 500, "cpu", 256, MINILM, budget_minutes=2)
    # Half-way through epoch 3 with the budget spent: stop epoch 3 here (it is still evaluated),
    # start no fourth.
    late = replan(plan, measured(rate=10.0, elapsed=119, done=1250, epochs_done=2), 500, 4)
    assert (late.epochs, late.last_epoch_pairs) == (3, 250)
    assert plan.budget_seconds < late.seconds < plan.budget_seconds + 10
    fixed = replan(plan, measured(rate=1.0), 500, 4, epochs_open=False, pairs_open=False)
    assert (fixed.epochs, fixed.max_pairs) == (plan.epochs, plan.max_pairs)
    assert fixed.seconds > plan.seconds  # only the estimate (the time left) follows the rate
    one = default_plan(5000, [100] * 5000, "cpu", 256, MINILM, budget_minutes=5, epochs=1)
    shorter = replan(one, measured(rate=2.0), 5000, 1, epochs_open=False)
    assert shorter.epochs == 1 and shorter.max_pairs < one.max_pairs


def test_time_whole_epochs_leave_goes_to_a_last_epoch_cut_short():
    # One epoch takes 70% of the budget on this machine: a second whole one would end at 140%,
    # one epoch alone at 75%; the second epoch is cut to end at the budget.
    plan = default_plan(2100, [100] * 2100, "cpu", 256, MINILM, budget_minutes=10)
    again = replan(plan, measured(rate=5.0, elapsed=10, eval_seconds=10, save_seconds=2), 2100, 4)
    assert (again.epochs, again.max_pairs) == (2, 2100) and 0 < again.last_epoch_pairs < 2100
    assert again.last_epoch() == again.last_epoch_pairs
    assert again.seconds == pytest.approx(plan.budget_seconds, abs=1)
    assert "(the last " in again.summary()
    # Time left for less training than an evaluation and save cost: no further epoch begins.
    short = replan(plan, measured(rate=5.0, elapsed=10, eval_seconds=10, save_seconds=2), 2800, 4)
    assert short.epochs == 1 and short.last_epoch_pairs is None and short.seconds < 600
    assert 600 - short.seconds < 2 * (10 + 2)


def test_a_rate_near_the_line_does_not_flip_the_last_epoch_in_and_out():
    plan = default_plan(500, [100] * 500, "cpu", 256, MINILM, budget_minutes=10)
    # 5 pairs/s, epochs of 500 pairs: a further epoch must train 30 s (5% of the budget, more
    # than its evaluation and save), 150 pairs; after the second, the time left fits 130.
    near = measured(rate=5.0, elapsed=448, done=500, epochs_done=1, eval_seconds=10, save_seconds=2)
    whole = replace(plan, epochs=2, last_epoch_pairs=None)
    # Whole epochs end at 562 s, 38 s short of the 600 s budget: the shortest further epoch (150
    # pairs, 160 in whole steps) ends at 606 s, nearer to it and well inside the ceiling.
    begun = replan(whole, near, 500, 4)
    assert (begun.epochs, begun.last_epoch_pairs) == (3, 160) and begun.seconds == pytest.approx(606)
    later = measured(rate=5.0, elapsed=470, done=500, epochs_done=1, eval_seconds=10, save_seconds=2)
    assert replan(whole, later, 500, 4).epochs == 2  # 16 s short beats 28 s over: not begun
    cut = replace(plan, epochs=3, last_epoch_pairs=200)
    kept = replan(cut, near, 500, 4)  # already planned: kept while it trains half that
    assert kept.epochs == 3 and kept.last_epoch_pairs == pytest.approx(130, abs=2)


def test_a_machine_that_slows_down_in_the_last_epoch_cuts_it_shorter():
    plan = default_plan(1000, [100] * 1000, "cpu", 256, MINILM, budget_minutes=10)
    on_time = replan(plan, measured(rate=5.0, elapsed=540, done=1800, epochs_done=1), 1000, 4)
    slower = replan(plan, measured(rate=2.5, elapsed=540, done=1800, epochs_done=1), 1000, 4)
    assert on_time.epochs == slower.epochs == 2
    assert on_time.last_epoch_pairs is None  # the second epoch still fits whole
    assert 800 <= slower.last_epoch_pairs < 1000  # never fewer than it has trained
    assert slower.seconds <= plan.budget_seconds + 10


def test_a_run_never_plans_fewer_pairs_than_it_has_trained_or_than_one_batch():
    plan = default_plan(5000, [100] * 5000, "cpu", 256, MINILM, budget_minutes=1)
    spent = replan(plan, measured(rate=1.0, elapsed=200, done=96), 5000, 4)
    assert (spent.epochs, spent.max_pairs) == (1, 96)
    fresh = replan(plan, measured(rate=0.01, elapsed=59, done=0), 5000, 4)
    assert fresh.max_pairs == plan.batch_size


def test_the_learning_rate_schedule_ends_where_the_replanned_run_ends():
    schedule = CosineSchedule(total=100, warmup=0.1)
    assert schedule(0) == 0 and schedule(10) == 1 and schedule(100) == 0
    schedule.total = 40
    assert schedule(40) == 0 and 0 < schedule(20) < 1


def test_the_keeper_times_steps_but_not_evaluations_and_shrinks_a_slow_run():
    now = [0.0]
    plan = default_plan(640, [100] * 640, "cpu", 256, MINILM, budget_minutes=1)
    assert (plan.epochs, plan.max_pairs, plan.last_epoch_pairs) == (2, 640, 125)
    keeper = PlanKeeper(plan, started=0.0, eval_seconds=2.0, pairs_per_epoch=640, steps_per_epoch=20,
                        max_epochs=4, epochs_open=True, pairs_open=True, pairs_per_step=32,
                        warmup=0.1, clock=lambda: now[0])
    now[0] = 10.0
    stopped = [keeper.step_end(1)]  # the first step: warm-up, not timed
    for step in range(2, 21):
        now[0] += 4.0  # 8 pairs/s, half the plan's constant
        stopped.append(keeper.step_end(step))
        if stopped[-1]:
            break
    assert keeper.rate == pytest.approx(8.0)
    assert keeper.plan.epochs == 1 and keeper.plan.max_pairs < 640
    assert stopped[-1] and not any(stopped[:-1])
    assert keeper.schedule.total == len(stopped) < 20
    assert keeper.seconds_left() == pytest.approx(keeper.plan.seconds - now[0])


def test_the_keeper_stops_inside_the_last_epoch_where_the_budget_ends():
    now = [0.0]
    plan = default_plan(320, [100] * 320, "cpu", 256, MINILM, budget_minutes=1)
    keeper = PlanKeeper(plan, started=0.0, eval_seconds=2.0, pairs_per_epoch=320, steps_per_epoch=10,
                        max_epochs=4, epochs_open=True, pairs_open=True, pairs_per_step=32,
                        warmup=0.1, clock=lambda: now[0])
    now[0], step = 5.0, 0  # loading and the untrained evaluation
    while True:
        step += 1
        now[0] += 2.0  # 16 pairs/s: an epoch takes 20 s, three whole ones do not fit in 60
        if keeper.step_end(step):
            break
        if step % 10 == 0:
            assert not keeper.epoch_end(step // 10)
            now[0] += 2.0
            keeper.evaluated()
            now[0] += 1.0
            keeper.saved()
    assert keeper.plan.epochs == 3 and step % 10 and 20 < step < 30
    assert keeper.schedule.total == step
    now[0] += 2.0 + 1.0 + 1.0  # the last evaluation, checkpoint and the kept model's save
    assert now[0] == pytest.approx(plan.budget_seconds, abs=3)


def test_the_keeper_follows_a_machine_that_became_busier():
    now = [0.0]
    plan = default_plan(100_000, [100] * 1000, "cpu", 256, MINILM, budget_minutes=60)
    keeper = PlanKeeper(plan, started=0.0, eval_seconds=2.0, pairs_per_epoch=100_000,
                        steps_per_epoch=3125, max_epochs=4, epochs_open=True, pairs_open=True,
                        pairs_per_step=32, warmup=0.1, clock=lambda: now[0])
    for step in range(1, 101):
        now[0] += 2.0 if step <= 60 else 4.0  # another job starts after 60 steps
        keeper.step_end(step)
    assert keeper.rate == pytest.approx(8.0)  # the last steps' speed, not the run's average


def test_the_forecast_stands_once_the_last_step_is_done():
    now = [0.0]
    plan = default_plan(320, [100] * 320, "cpu", 256, MINILM, budget_minutes=1, epochs=1)
    keeper = PlanKeeper(plan, started=0.0, eval_seconds=2.0, pairs_per_epoch=320, steps_per_epoch=10,
                        max_epochs=1, epochs_open=False, pairs_open=True, pairs_per_step=32,
                        warmup=0.1, clock=lambda: now[0])
    step = 0
    while not keeper.step_end(step := step + 1):
        now[0] += 2.0
    forecast = keeper.plan.seconds
    assert keeper.epoch_end(1)
    now[0] += 20.0  # the final evaluation took ten times the 2 s it was priced at
    keeper.evaluated()
    now[0] += 1.0
    keeper.saved()
    # What the run is held to is the forecast it made, not the time it then took.
    assert keeper.plan.seconds == forecast < now[0] - 15


def test_an_epoch_of_one_or_two_steps_is_timed_whole_before_another_begins():
    now = [0.0]
    plan = default_plan(64, [100] * 64, "cpu", 256, MINILM, budget_minutes=1)
    assert plan.epochs > 2  # the constant rate: 64 pairs take seconds
    keeper = PlanKeeper(plan, started=0.0, eval_seconds=5.0, pairs_per_epoch=64, steps_per_epoch=2,
                        max_epochs=4, epochs_open=True, pairs_open=True, pairs_per_step=32,
                        warmup=0.1, clock=lambda: now[0])
    now[0] = 20.0  # loading and the untrained model's evaluation
    keeper.epoch_begin()
    stops = []
    for step in (1, 2):
        now[0] += 12.0  # a busy machine: under 3 pairs/s
        stops.append(keeper.step_end(step))
    assert keeper.rate is None  # one timed step: too few for a rate
    # ... but enough to see that a second epoch (24 s, and its evaluation 5) would end far past
    # 60 s: the provisional rate cuts the plan to this epoch before it ends.
    assert stops == [False, True] and keeper.plan.epochs == 1
    assert keeper.epoch_end(1)
    assert keeper.plan.epochs == 1 and keeper.rate == pytest.approx(64 / 24)


@pytest.mark.slow
def test_an_evaluation_the_cache_served_is_priced_at_encoding_every_passage(store, count):
    _, pair_set_id = load_demo(store, count, limit=60)
    data = RetrievalSet.from_pair_set(store, pair_set_id).subset(120)
    cold = evaluate_named(None, data, [384], store)  # encodes every passage and caches them
    warm = evaluate_named(None, data, [384], store)  # its questions only
    assert warm.timings["passages_encoded"] == 0
    model = models.load_fresh(None, "cpu")
    assert evaluation_seconds(cold, cold.seconds, model, data, seed=0) == cold.seconds
    priced = evaluation_seconds(warm, warm.seconds, model, data, seed=0)
    # Under torchrun the model is not on its device yet: nothing to time a sample with.
    assert evaluation_seconds(warm, warm.seconds, None, data, seed=0) == warm.seconds
    assert priced > 3 * warm.seconds
    assert cold.seconds / 3 < priced < 3 * cold.seconds


# -- batch sizing from free device memory, pure ----------------------------------------------
def test_the_batch_grows_with_free_memory_and_stays_a_power_of_two():
    per_pair = bytes_per_pair(128, Architecture(384, 6, 12), bf16=True)
    sizes = [batch_for_memory(gb * 2**30, MINILM, per_pair, 1_000_000).batch_size for gb in (2, 8, 80)]
    assert sizes == sorted(sizes) and MIN_BATCH <= sizes[0] < sizes[-1] == MAX_BATCH
    assert all(s & (s - 1) == 0 for s in sizes)
    assert all(b.loss == "mnrl" for b in [batch_for_memory(8 * 2**30, MINILM, per_pair, 10**6)])


def test_small_data_keeps_enough_steps_and_a_bigger_model_gets_a_smaller_batch():
    minilm = bytes_per_pair(256, Architecture(384, 6, 12), bf16=True)
    base = bytes_per_pair(256, BERT_BASE, bf16=True)
    assert batch_for_memory(80 * 2**30, MINILM, minilm, 480).batch_size == MIN_BATCH
    assert batch_for_memory(80 * 2**30, MINILM, minilm, 20).batch_size == 20  # never beyond the data
    assert batch_for_memory(80 * 2**30, MINILM, minilm, 64 * 300).batch_size == 256
    assert (batch_for_memory(16 * 2**30, 110_000_000, base, 10**6).batch_size
            < batch_for_memory(16 * 2**30, MINILM, minilm, 10**6).batch_size)
    assert bytes_per_pair(256, BERT_BASE, bf16=False) == 2 * base


def test_a_fixed_batch_beyond_the_memory_gets_the_cached_loss():
    per_pair = bytes_per_pair(256, BERT_BASE, bf16=True)
    fits = batch_for_memory(8 * 2**30, 110_000_000, per_pair, 10**6, wanted=16)
    assert (fits.batch_size, fits.loss) == (16, "mnrl")
    big = batch_for_memory(8 * 2**30, 110_000_000, per_pair, 10**6, wanted=4096)
    assert (big.batch_size, big.loss) == (4096, "cached_mnrl") and 1 <= big.mini_batch_size < 4096
    none_left = batch_for_memory(static_bytes(110_000_000), 110_000_000, per_pair, 10**6, wanted=64)
    assert none_left.loss == "cached_mnrl" and none_left.mini_batch_size == 1
    tight = batch_for_memory(2 * 2**30, 110_000_000, per_pair, 10**6)  # not even the recipe's 32
    assert (tight.batch_size, tight.loss) == (MIN_BATCH, "cached_mnrl") and tight.mini_batch_size < MIN_BATCH


def test_the_plan_sizes_the_batch_from_memory_only_when_told_the_memory():
    cpu = default_plan(50_000, [200] * 100, "cpu", 256, MINILM)
    gpu = default_plan(50_000, [200] * 100, "cuda", 256, MINILM, bf16=True,
                       free_memory=80 * 2**30, architecture=Architecture(384, 6, 12))
    small = default_plan(50_000, [200] * 100, "cuda", 256, MINILM, bf16=True, batch_size=2048,
                         free_memory=2 * 2**30, architecture=Architecture(384, 6, 12))
    assert cpu.batch_size == 32 and gpu.batch_size == 512 and gpu.loss == "mnrl"
    assert small.batch_size == 2048 and small.loss == "cached_mnrl"
    assert TrainConfig().with_plan(small).loss == "cached_mnrl"


# -- a real tiny run, slowed down ------------------------------------------------------------
class SlowReporter:
    """Sleeps at every step, as a machine busy with other work would make each step slower."""

    def __init__(self, delay: float):
        self.delay, self.lines, self.points, self.training = delay, [], [], False

    def status(self, text):
        self.lines.append(text)
        self.training = text.startswith("Training")  # the evaluations are timed as they run

    def progress(self, fraction):
        if self.training:
            time.sleep(self.delay)
    def log(self, line): self.lines.append(line)
    def point(self, series, step, value, epoch=None): self.points.append((series, step, value))
    def should_stop(self): return False


@pytest.mark.slow
def test_a_deliberately_slow_step_makes_a_real_run_shrink_its_plan(store, count, tmp_path):
    _, pair_set_id = load_demo(store, count, limit=60)
    data = RetrievalSet.from_pair_set(store, pair_set_id)
    pairs = [(p["query"], p["positive"]) for p in store.pairs(pair_set_id, "train")]
    config = TrainConfig(batch_size=8, max_seq_length=64, dims=[384, 64], budget_minutes=0.5)
    reporter = SlowReporter(delay=1.5)
    started = time.perf_counter()
    result = train(config, pairs, data, tmp_path / "run", reporter)
    took = time.perf_counter() - started
    plan = result.plan
    assert plan["first_estimate_seconds"] is not None and plan["measured_pairs_per_second"] < 8 / 1.5
    assert plan["epochs"] < plan["epoch_cap"], "the constant rate fills the cap; 1.5 s per step must cut it"
    assert any(line.startswith("re-planned from the measured") for line in reporter.lines)
    # The re-planned estimate is what the run then took (the time left on the page comes from it).
    assert plan["seconds"] == pytest.approx(took, rel=0.25)
    assert [s for s, _, _ in reporter.points if s == "seconds_left"]
    saved = json.loads(Path(result.model_path, "ragtune.json").read_text())
    assert saved["plan"]["epochs"] == saved["config"]["epochs"] == plan["epochs"]


def test_the_pages_time_left_comes_from_the_rate_the_run_reported(store, count):
    from dataclasses import replace

    from core.training import jobs
    from core.training.reporting import StoreReporter
    _, pair_set_id = load_demo(store, count, limit=60)
    job_id = jobs.submit(store, "train", {"pair_set_id": pair_set_id})
    running = replace(jobs.get(store, job_id), state="running", started=time.time() - 100,
                      progress=0.5)
    # Before training has planned, none: the current stage's pace is not training time.
    assert jobs.time_left(store, running) is None
    StoreReporter(store, job_id).point("seconds_left", 12, 30.0, 0.3)
    assert jobs.time_left(store, running) == pytest.approx(30, abs=2)
    assert jobs.time_left(store, replace(running, state="succeeded")) is None
