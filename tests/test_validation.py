"""The best epoch is picked on pairs held out from the training side, never on the test queries:
the rule itself, and the runs that use it (the page's job, ``finetune`` and ``train``)."""
import json
from pathlib import Path

import pytest

from core import cli
from core.documents.beir import load_demo
from core.documents.corpus import normalise
from core.training import jobs
from core.training.runner import Runner
from core.training.validation import VALIDATION_FILE, hold_out
from core.workspace.store import WorkspaceError

TINY = {"epochs": 1, "batch_size": 8, "max_seq_length": 64, "dims": [384, 64], "max_pairs": 24}


def held_queries(folder: Path) -> set[str]:
    lines = (folder / VALIDATION_FILE).read_text(encoding="utf-8").splitlines()
    return {normalise(json.loads(line)["query"]) for line in lines}


def test_a_tenth_is_held_out_in_whole_groups_and_never_a_test_query():
    # 40 passages with two questions each, so every group has two pairs.
    pairs = [(f"question {i} about topic {i // 2}", f"passage {i // 2}") for i in range(80)]
    held = hold_out(pairs, generated=False, seed=3, test_queries=["Question 0 about topic 0?"])
    assert len(held.validation) == 8 and len(held.train) == 72
    passages = {p for _, p in held.validation}
    assert not passages & {p for _, p in held.train}  # a held-out passage is never trained on
    assert "question 0 about topic 0" not in {normalise(q) for q, _ in held.validation}
    data = held.retrieval_set([f"passage {i}" for i in range(40)] + ["an extra passage"])
    assert len(data.queries) == 8 and len(data.corpus) == 41


def test_generated_pairs_hold_out_at_most_the_capped_share():
    pairs = [(f"q{i}", f"p{i}") for i in range(8000)]
    assert len(hold_out(pairs, generated=True).validation) == 500
    assert len(hold_out(pairs, generated=False).validation) == 800


@pytest.mark.parametrize("pairs", [[("q", "p")], [("q1", "p"), ("q2", "p")]])
def test_pairs_that_cannot_spare_a_validation_query_are_refused_in_one_line(pairs):
    with pytest.raises(WorkspaceError, match="cannot spare a validation query"):
        hold_out(pairs, generated=False)


@pytest.fixture
def pair_set_id(store, count):
    return load_demo(store, count, limit=60)[1]


@pytest.mark.slow
def test_the_pages_job_and_the_finetune_command_validate_off_the_test_queries(store, pair_set_id):
    tested = {normalise(p["query"]) for p in store.pairs(pair_set_id, "test")}
    trained = {normalise(p["query"]) for p in store.pairs(pair_set_id, "train")}
    # The page's path: submit, then the runner's handler.
    job_id = jobs.submit(store, "train", {**TINY, "pair_set_id": pair_set_id})
    runner = Runner(store)
    runner.run_one(jobs.claim(store))
    job = jobs.get(store, job_id)
    assert job.state == "succeeded", job.error
    assert job.result["validation_pairs"] > 0
    from_page = held_queries(jobs.job_dir(store, job_id))
    # The CLI's path, in this process to spare a model load.
    assert cli.main(["finetune", "--pairs", str(pair_set_id), "--epochs", "1", "--max-pairs",
                     "24", "--batch-size", "8", "--max-seq-length", "64", "--json"]) == 0
    cli_job = max(j.id for j in jobs.all_jobs(store))
    from_cli = held_queries(jobs.job_dir(store, cli_job))
    for held in (from_page, from_cli):
        assert held and not held & tested and held <= trained
    # Epoch 0 on the chart is the untrained model on the validation queries, not the baseline's
    # test numbers (which it used to equal).
    epoch0 = {p["series"]: p["value"] for p in jobs.events(store, job_id, "point") if p["step"] == 0}
    assert epoch0["ndcg@10/64"] != pytest.approx(job.result["baseline"]["64"]["ndcg@10"])
