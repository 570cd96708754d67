"""The steps ``core.training.train.train`` is read as, each on its own: what re-planning may change, how
many pairs the trainer holds, and what a run keeps at its end. (The whole loop runs for real in
test_replan, test_plan, test_jobs and test_faults.)"""
from core.training.config import TrainConfig
from core.training.plan import MAX_EPOCHS
from core.training.replan import ReplanScope
from core.training.train import NO_GAIN, keep_best
from tests.reporter import Lines


def planned(**asked) -> TrainConfig:
    """The config as the plan filled it in: 2 epochs of at most 300 pairs unless the user said."""
    return TrainConfig(**{"epochs": 2, "max_pairs": 300, **asked})


def test_settings_left_to_the_plan_may_be_replanned_and_the_trainer_holds_room_to_grow():
    scope = ReplanScope.of(TrainConfig(), planned(), distributed=False, epoch_cap=MAX_EPOCHS)
    assert scope == ReplanScope(epochs_open=True, pairs_open=True, max_epochs=MAX_EPOCHS)
    assert scope.pairs_held(planned()) is None  # every pair: a re-plan may train more than 300


def test_settings_the_user_fixed_or_several_processes_keep_the_plan():
    fixed = ReplanScope.of(TrainConfig(epochs=2), planned(), distributed=False, epoch_cap=MAX_EPOCHS)
    assert fixed == ReplanScope(epochs_open=False, pairs_open=True, max_epochs=2)
    assert fixed.pairs_held(planned()) == 300  # two whole epochs of the plan's pairs
    assert fixed.pairs_held(planned(epochs=1)) is None  # one epoch: the keeper stops inside it
    torchrun = ReplanScope.of(TrainConfig(), planned(), distributed=True, epoch_cap=MAX_EPOCHS)
    assert torchrun == ReplanScope(epochs_open=False, pairs_open=False, max_epochs=2)
    assert torchrun.pairs_held(planned()) == 300


def test_a_resumed_run_replans_nothing_but_keeps_the_trainer_its_first_process_set_up():
    scope = ReplanScope.of(TrainConfig(), planned(), distributed=False, epoch_cap=MAX_EPOCHS)
    assert scope.closed() == ReplanScope(epochs_open=False, pairs_open=False, max_epochs=MAX_EPOCHS)


def history(*scores: float) -> list[dict]:
    return [{"epoch": float(n), "step": 10 * n, "metrics": {"128": {"ndcg@10": s}}}
            for n, s in enumerate(scores, start=1)]


def test_the_best_epoch_is_kept_when_it_beats_the_untrained_model():
    config, reporter = TrainConfig(best_dim=128), Lines()
    assert keep_best(history(0.5, 0.7, 0.6), "out/checkpoint-20", config, 0.55, reporter) == (2.0, 2.0)
    assert not reporter.lines


def test_the_untrained_model_is_kept_and_said_to_be_when_no_epoch_beats_it():
    config, reporter = TrainConfig(best_dim=128), Lines()
    assert keep_best(history(0.5, 0.6), "out/checkpoint-20", config, 0.6, reporter) == (2.0, "base")
    assert reporter.lines == [f"{NO_GAIN}: no epoch beat the untrained model's ndcg@10 0.6000 at "
                              "128 dims, so it is kept"]
    # A run canceled before its first evaluation has no best epoch: it is measured as it stood,
    # and that model (kept None) or the untrained one, whichever scores higher, is kept.
    assert keep_best(history(0.9), None, config, 0.6, Lines()) == (None, None)
    assert keep_best(history(0.5), None, config, 0.6, Lines()) == (None, "base")
