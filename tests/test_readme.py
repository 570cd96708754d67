"""README's numbers are the code's: each claim is rebuilt from the constant or function that makes
it true, so changing one without the other fails here. (Benchmark figures, such as search
latency, are measured by benchmarks/ and not restated here.)"""
import re

import pytest

from core.deciding import decision
from core.deciding.compare import GENERATED_TEST
from core.documents.corpus import Deduper
from core.documents.demo import stdlib_pairs
from core.documents.pairs import TEST_FRACTION
from core.documents.pseudo import PseudoQueryConfig, keep_answerable
from core.measuring.evaluate import default_dims
from core.training import plan
from core.training.train import VALIDATION_PASSAGES
from core.using import search
from tests.conftest import ROOT

README = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # one line per paragraph


def claims() -> list[tuple[str, str]]:
    generator = PseudoQueryConfig()
    example = plan.default_plan(n_pairs=480, passage_tokens=[120] * 480, device="cpu",
                                model_max_seq=256, parameters=22_700_000)
    real_questions = re.search(r"label (\d+) or more people's", GENERATED_TEST).group(1)
    return [
        ("questions in Decide", f"{len(decision.load().questions)} questions about the use case"),
        ("answers needed", f"Give at least {decision.MIN_ANSWERS} answers"),
        ("fine-tuning's examples", f"prerequisites ({decision.PREREQUISITES[0].needs.split()[-2]}+ examples"),
        ("near-duplicate threshold", f"Jaccard ≥ {Deduper.THRESHOLD}"),
        ("generated pairs filter", f"ranks its passage in the top {generator.filter_top_k} of the corpus"),
        ("generator sample", f"Beyond {generator.max_chunks:,} chunks both the queries and that ranking "
                             f"come from a seeded sample of {generator.max_chunks:,} chunks"),
        ("real questions to add", f"point at labelling {real_questions} or more people's questions"),
        ("people's test set", f"labelled people's questions once there are {plan.PEOPLE_TEST_MIN},"),
        ("default dimensions", f"({', '.join(map(str, default_dims(384)))} by default)"),
        ("validation passages", f"against at most {VALIDATION_PASSAGES:,} passages"),
        ("time budget", f"({plan.BUDGET_MINUTES['cpu']:g} minutes on CPU, {plan.BUDGET_MINUTES['cuda']:g} "
                        "on a GPU, settable)"),
        ("epochs", f"fill the budget up to the reference recipe's {plan.MAX_EPOCHS} (a small set, up "
                   f"to {plan.MAX_EPOCHS_SMALL_SET}: at least {plan.MIN_STEPS} optimizer"),
        ("plan example", f'("{example.summary()}")'),
        ("exact search", f"is exact (one matrix product) up to {search.EXACT_LIMIT:,} passages"),
        ("demo split", f"split {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%}".replace("%", "")),
    ]


@pytest.mark.parametrize("what,sentence", claims(), ids=[c[0] for c in claims()])
def test_readme_states_what_the_code_does(what, sentence):
    assert sentence in README, f"{what}: README should say {sentence!r}"


def test_the_demo_has_about_600_pairs():
    assert "About 600 pairs" in README
    assert 550 <= len(stdlib_pairs()) <= 650


def test_when_no_generated_query_passes_the_filter_all_are_kept():
    assert "if no query passes, all of them are kept rather than none" in README
    assert keep_answerable(["a", "b", "c"], [False, True, False]) == ["b"]
    assert keep_answerable(["a", "b"], [False, False]) == ["a", "b"]
