"""One definition per default: what a page's widgets start at is what the CLI's flags default to,
and both are the core module's own value, so a user gets the same run from either."""
import ast
import contextlib
import io

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import build_parser
from core.documents.corpus import ChunkSettings
from core.documents.llm import LLMConfig, llm_pair_set_name
from core.documents.pairs import SPLIT_SEED, TEST_FRACTION
from core.documents.pseudo import BUILTIN_PAIR_SET, PseudoQueryConfig
from core.measuring.evaluate import PREFERRED_DIM, evaluation_label
from core.training.config import LOSSES, TrainConfig
from core.workspace.models import DEFAULT_MODEL
from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def page(path: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(path)
    at.run()
    assert not at.exception
    return at


def widget(at: AppTest, kind: str, label: str):
    [found] = [w for w in at.get(kind) if w.label == label]
    return found


def cli_defaults(*argv: str) -> dict:
    return vars(build_parser().parse_args(list(argv)))


def cli_help(*command: str) -> str:
    out = io.StringIO()
    with pytest.raises(SystemExit), contextlib.redirect_stdout(out):
        build_parser().parse_args([*command, "--help"])
    return " ".join(out.getvalue().split())


def test_corpus_page_chunks_like_ingest(home):
    at = page("views/corpus.py")
    ingest = cli_defaults("corpus", "ingest", "docs")
    assert widget(at, "slider", "Chunk size (tokens of the model)").value == ingest["chunk_size"] \
        == ChunkSettings().size
    assert widget(at, "slider", "Overlap (tokens)").value == ingest["overlap"] == ChunkSettings().overlap


@pytest.fixture
def demo(home, count):
    from core.documents.beir import load_demo
    from core.workspace.store import Store
    return load_demo(Store(home), count, limit=40)


def test_pairs_page_generates_and_splits_like_the_cli(home, demo):
    at = page("views/pairs.py")
    generate = cli_defaults("pairs", "generate", "--corpus", "c")
    split = cli_defaults("pairs", "split", "1")
    assert widget(at, "number_input", "Queries per chunk").value == generate["per_chunk"] \
        == PseudoQueryConfig.per_chunk
    assert widget(at, "number_input", "Seed").value == generate["seed"] == PseudoQueryConfig.seed
    assert widget(at, "selectbox", "Style").value == generate["style"] == PseudoQueryConfig.style
    assert widget(at, "text_input", "Pair set name").value == BUILTIN_PAIR_SET
    assert widget(at, "text_input", "Base URL").value == generate["base_url"] == LLMConfig.base_url
    assert widget(at, "text_input", "Model").value == generate["llm_model"] == LLMConfig.model
    assert widget(at, "number_input", "Questions per chunk").value == generate["per_chunk"] \
        == LLMConfig.questions_per_chunk
    assert widget(at, "number_input", "Parallel requests").value == generate["concurrency"] \
        == LLMConfig.concurrency
    assert widget(at, "text_input", "Pair set name (an existing one is resumed)").value \
        == llm_pair_set_name(LLMConfig.model)
    assert widget(at, "slider", "Test share").value == split["test_fraction"] == TEST_FRACTION
    assert widget(at, "number_input", "Split seed").value == split["seed"] == SPLIT_SEED


def test_finetune_page_starts_from_the_configs_defaults(home, demo):
    at = page("views/finetune.py")
    loss = widget(at, "selectbox", "Loss")
    default = TrainConfig()
    assert loss.options == list(LOSSES) and loss.value == default.loss
    assert cli_defaults("train", "--pairs-file", "p.jsonl", "--eval", "beir")["loss"] is None  # the config's
    assert "--loss {" + ",".join(LOSSES) + "}" in cli_help("train")
    assert widget(at, "number_input", "Seed").value == default.seed
    assert widget(at, "number_input", "Warmup share").value == default.warmup
    assert widget(at, "selectbox", "Keep the best epoch by").value == default.best_metric
    # The dimension the best epoch is picked at: what TrainConfig decides for these dimensions.
    dims = widget(at, "multiselect", "Matryoshka dimensions").value
    resolved = TrainConfig(dims=dims).resolved(max(dims), 100)
    assert dims == resolved.dims and widget(at, "selectbox", "at dimension").value == resolved.best_dim


def test_the_bundled_model_is_the_baseline_however_it_is_named():
    assert evaluation_label(None) == evaluation_label(DEFAULT_MODEL) == "baseline"
    assert evaluation_label("org/other-model") == "org/other-model"


def sources() -> dict[str, ast.Module]:
    """Every core module and page, parsed: where a default's value could be written again."""
    return {str(path.relative_to(ROOT)): ast.parse(path.read_text(encoding="utf-8"))
            for folder in ("core", "views") for path in sorted((ROOT / folder).rglob("*.py"))}


def test_the_bundled_models_name_is_written_once():
    assert TrainConfig().model == DEFAULT_MODEL
    written = [f"{path}:{node.lineno}" for path, tree in sources().items() for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and node.value == DEFAULT_MODEL]
    assert [w.partition(":")[0] for w in written] == ["core/workspace/models.py"], \
        "the bundled model's name typed again: " + ", ".join(written)


def test_no_measurement_is_saved_under_a_label_typed_in_place():
    """The base model's measurements are labelled ``evaluate.BASELINE`` wherever they are saved
    (a job, a documents-only run, people's questions), so every listing shows them together."""
    typed = [f"{path}:{node.lineno}" for path, tree in sources().items() for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "save"
             and len(node.args) > 3 and isinstance(node.args[3], ast.Constant)]
    assert not typed, "labels typed in place: " + ", ".join(typed)


def test_runs_and_pages_start_at_the_dimension_core_prefers():
    typed = [f"{path}:{node.lineno}" for path, tree in sources().items() if path.startswith("views/")
             for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value == PREFERRED_DIM]
    assert not typed, "a page picks a dimension itself: " + ", ".join(typed)
    assert TrainConfig(dims=[256, PREFERRED_DIM, 64]).resolved(256, 10).best_dim == PREFERRED_DIM
    assert TrainConfig(dims=[256, 64]).resolved(256, 10).best_dim == 64  # else the smallest
