"""The default plan (one function for the page, the CLI and the job), config type checks, and
the base-model guard: a run never hands back a model worse than the one it started from."""
import json
from pathlib import Path

import pytest

from core.documents.beir import load_demo
from core.measuring.evaluate import RetrievalSet, evaluate
from core.training.config import TrainConfig
from core.training.device import DeviceSetup
from core.training.finetune import run_experiment
from core.training.plan import (
    MAX_EPOCHS,
    MAX_EPOCHS_SMALL_SET,
    default_plan,
    epoch_cap,
    planned_vs_actual,
    seq_length_for,
)
from core.training.train import NO_GAIN, plan_run
from core.workspace import models
from core.workspace.store import WorkspaceError
from tests.reporter import Lines

MINILM = 22_700_000


def test_small_data_gets_more_epochs_than_the_recipe_and_a_fitted_sequence_length():
    plan = default_plan(480, [100] * 480, "cpu", 256, MINILM)
    assert plan.epochs == plan.epoch_cap == MAX_EPOCHS_SMALL_SET and plan.max_pairs == 480
    assert plan.max_seq_length == 128 and plan.learning_rate == 2e-5
    assert plan.seconds <= plan.budget_seconds
    assert plan.summary().startswith("10 epochs · lr 2e-05 · batch 32 · seq 128 · 480 pairs")
    # A set of the reference recipe's size gets its 4 epochs, where the budget allows them.
    recipe = default_plan(6300, [100] * 1000, "cuda", 256, MINILM, budget_minutes=60)
    assert recipe.epochs == recipe.epoch_cap == MAX_EPOCHS
    assert epoch_cap(517, 32) == 10 and epoch_cap(1129, 32) == 7 and epoch_cap(6300, 64) == 4


def test_large_data_is_capped_to_fit_the_budget_and_a_bigger_model_gets_less():
    small = default_plan(60_000, [200] * 100, "cpu", 256, MINILM, budget_minutes=10)
    assert small.epochs == 1 and small.max_pairs < 60_000
    assert small.seconds <= 600
    bigger = default_plan(60_000, [200] * 100, "cpu", 256, 5 * MINILM, budget_minutes=10)
    assert bigger.max_pairs < small.max_pairs
    gpu = default_plan(60_000, [200] * 100, "cuda", 512, MINILM)
    assert gpu.batch_size == 64 and gpu.budget_seconds == 300


def test_fixed_settings_win_and_generated_pairs_get_a_gentler_rate():
    plan = default_plan(1000, [50] * 1000, "cpu", 256, MINILM, generated=True, epochs=2,
                        max_seq_length=96, max_pairs=300)
    assert (plan.epochs, plan.max_seq_length, plan.max_pairs) == (2, 96, 300)
    assert plan.learning_rate < 2e-5
    assert seq_length_for([], 256) == 256 and seq_length_for([500] * 10, 256) == 256


def test_time_against_the_budget_says_over_or_under():
    """"budget 1 min 00 s (+108% of it)" read as if 108% of the budget had been used."""
    plan = {"seconds": 123, "budget_seconds": 60}
    assert planned_vs_actual(plan, 124.8).startswith("training took 2 min 05 s of a 1 min 00 s "
                                                     "budget (108% over it)")
    assert "of a 1 min 00 s budget (25% under it)" in planned_vs_actual(plan, 45)


def test_page_and_cli_resolve_the_same_plan(store, count):
    _, pair_set_id = load_demo(store, count, limit=60)
    pairs = [(p["query"], p["positive"]) for p in store.pairs(pair_set_id, "train")]
    model = models.load()
    setup = DeviceSetup.detect()
    config, plan = plan_run(TrainConfig(), pairs, model, setup)
    again, same = plan_run(TrainConfig.from_dict(json.loads(TrainConfig().to_json())), pairs, model, setup)
    assert plan == same and config == again
    assert None not in (config.epochs, config.batch_size, config.learning_rate,
                        config.max_seq_length, config.max_pairs, config.hard_negatives)


@pytest.mark.parametrize("settings, named", [
    ({"epochs": "two"}, "epochs"), ({"epochs": 2.5}, "epochs"), ({"learning_rate": "fast"}, "learning_rate"),
    ({"dims": [384, "64"]}, "dims"), ({"dims": 64}, "dims"), ({"generated_pairs": 1}, "generated_pairs"),
    ({"model": None}, "model"), ({"batch_size": True}, "batch_size"), ({"colour": "red"}, "colour"),
])
def test_wrongly_typed_or_unknown_settings_are_refused_by_name(settings, named):
    with pytest.raises(WorkspaceError, match=named):
        TrainConfig.from_dict(settings)


@pytest.mark.parametrize("settings", [{"max_seq_length": 0}, {"max_seq_length": -5},
                                      {"max_pairs": -1}, {"epochs": 0}, {"budget_minutes": 0}])
def test_out_of_range_settings_are_refused_before_anything_runs(settings):
    with pytest.raises(WorkspaceError):
        TrainConfig.from_dict(settings).resolved(384, 100)


@pytest.mark.slow
def test_a_run_that_does_not_help_keeps_the_base_model_and_says_so(store, count, tmp_path):
    _, pair_set_id = load_demo(store, count, limit=60)
    data = RetrievalSet.from_pair_set(store, pair_set_id)
    train = store.pairs(pair_set_id, "train")
    # Right pairs, so the held-out ones that judge each epoch are right too, and a learning rate
    # that wrecks the weights at the first step: no epoch can beat the untrained model. (Scrambled
    # pairs would scramble the judge as well, and on 6 such queries any model can win by chance.)
    pairs = [(p["query"], p["positive"]) for p in train]
    config = TrainConfig(epochs=2, batch_size=8, learning_rate=0.5, max_seq_length=64, dims=[384, 64])
    result = run_experiment(config, pairs, data, tmp_path / "run", Lines(), store)
    assert result.training.kept == "base" and result.to_json()["message"] == NO_GAIN
    assert result.finetuned.metrics == result.baseline.metrics
    saved = json.loads(Path(result.training.model_path, "ragtune.json").read_text())
    assert saved["kept"] == "base" and saved["plan"]["epochs"] == 2
    reloaded = models.load_fresh(result.training.model_path, "cpu")
    assert evaluate(reloaded, data, [384, 64]).metrics == result.baseline.metrics
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_exported_generated_pairs_plan_the_gentler_rate_without_being_told(store, count):
    from core.documents.pairs import export_jsonl, file_is_generated
    from core.documents.pseudo import PseudoQueryConfig, generate_builtin
    corpus_id, people = load_demo(store, count, limit=40)
    generated = generate_builtin(store, corpus_id, "gen", PseudoQueryConfig(filter_top_k=0))
    assert file_is_generated("g.jsonl", export_jsonl(store, generated).encode())
    assert not file_is_generated("p.jsonl", export_jsonl(store, people).encode())
    assert not file_is_generated("old.jsonl", b'{"query": "q", "positive": "p"}\n')


MPNET, MPNET_COMPUTE, MINILM_COMPUTE = 109_486_464, 85_645_440, 10_794_624


def test_a_110m_model_is_planned_by_its_compute_and_keeps_the_cpu_batch_where_it_fits():
    """all-mpnet-base-v2 trained 8.8x slower than MiniLM (one step, batch 32, seq 128, one CPU
    thread); its parameters outside the embeddings say 7.9x, all its parameters only 4.8x."""
    from core.training.plan import Architecture, pairs_per_second
    small = pairs_per_second("cpu", 128, MINILM, compute_parameters=MINILM_COMPUTE)
    big = pairs_per_second("cpu", 128, MPNET, compute_parameters=MPNET_COMPUTE)
    assert small == pytest.approx(15.0) and 7.5 < small / big < 8.5
    mpnet = Architecture(768, 12, 12)
    roomy = default_plan(500, [110] * 500, "cpu", 384, MPNET, free_memory=32 * 2**30,
                         architecture=mpnet, compute_parameters=MPNET_COMPUTE)
    assert (roomy.batch_size, roomy.loss, roomy.max_seq_length) == (32, "mnrl", 128)
    assert roomy.assumed_pairs_per_second == pytest.approx(big)
    assert roomy.seconds <= roomy.budget_seconds and roomy.epochs < default_plan(
        500, [110] * 500, "cpu", 384, MINILM, compute_parameters=MINILM_COMPUTE).epochs
    # Long passages: 32 of them do not fit in 8 GB, so the cached loss keeps the batch's
    # negatives with a mini-batch at a time, rather than running the machine out of memory.
    tight = default_plan(500, [280] * 500, "cpu", 384, MPNET, free_memory=8 * 2**30,
                         architecture=mpnet, compute_parameters=MPNET_COMPUTE)
    assert (tight.batch_size, tight.loss) == (32, "cached_mnrl") and tight.mini_batch_size < 32
