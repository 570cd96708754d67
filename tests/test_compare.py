from core.deciding.compare import gains, headlines


def table(values: dict[int, float]):
    return {d: {"ndcg@10": v} for d, v in values.items()}


def test_headlines_state_the_gains_the_crossover_and_the_retention():
    # The published bge-base result (P. Schmid, 2024): 768 → 64 dims.
    baseline = table({768: 0.768, 512: 0.764, 256: 0.755, 128: 0.723, 64: 0.644})
    tuned = table({768: 0.825, 512: 0.828, 256: 0.823, 128: 0.818, 64: 0.789})
    lines = headlines(baseline, tuned, "ndcg@10")
    assert lines[0] == "Fine-tuned NDCG@10: +7.4% at 768 dims and +22.5% at 64 dims."
    assert "Fine-tuned at 64 dims (0.789) beats the baseline at 768 dims (0.768)" in lines[1]
    assert lines[2] == "Fine-tuned keeps 99% of its full-size score at 128 dims, 6× smaller."
    assert len(lines) == 3


def test_a_name_keeps_its_capitals_at_the_start_of_a_sentence():
    """str.capitalize lowercased the rest: the model "BAAI/bge-small" read "Baai/bge-small"."""
    lines = headlines(table({384: 0.6, 64: 0.5}), table({384: 0.62, 64: 0.6}), "ndcg@10",
                      ("baseline", "BAAI/bge-small (fine-tuned)"))
    assert lines[0].startswith("BAAI/bge-small (fine-tuned) NDCG@10: +3.3% at 384 dims")
    assert all("Baai" not in line for line in lines)


def test_a_loss_is_said_plainly():
    lines = headlines(table({384: 0.6, 64: 0.5}), table({384: 0.55, 64: 0.52}), "ndcg@10")
    assert lines[-1].startswith("NDCG@10 fell at 384 dims")
    assert [round(g["relative"], 3) for g in gains(table({384: 0.6, 64: 0.5}),
                                                     table({384: 0.55, 64: 0.52}), "ndcg@10")] == [-0.083, 0.04]


def test_a_size_ratio_that_is_not_whole_is_not_rounded_down():
    lines = headlines(table({384: 0.60, 256: 0.59}), table({384: 0.62, 256: 0.62}), "ndcg@10")
    assert "1.5× smaller" in lines[1] and "1× smaller" not in " ".join(lines)


def test_a_perfect_recall_on_filtered_generated_pairs_is_explained_and_only_there():
    from core.deciding.compare import capped_metrics, ceiling_note
    from core.workspace.store import PairSet
    metrics = {384: {"ndcg@10": 0.8, "recall@1": 1.0, "recall@10": 1.0, "accuracy@10": 1.0,
                     "recall@5": 0.9}}
    generated = PairSet(1, 1, "g", "builtin", 0.0, {"config": {"filter_top_k": 10}})
    assert capped_metrics(generated, metrics) == ["recall@10", "accuracy@10"]
    assert "top 10" in ceiling_note(generated, metrics)
    people = PairSet(2, 1, "p", "import", 0.0, {})
    assert capped_metrics(people, metrics) == [] and ceiling_note(people, metrics) is None
