"""An LLM API key is sent to the endpoint and written nowhere: not in the workspace, the logs, the
job configs, the pair exports or the BEIR export, whether it came from the page or the CLI."""
import logging
import secrets
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import main
from core.documents.corpus import ChunkSettings, Document, ingest
from core.workspace.store import Store
from tests.conftest import PARAGRAPHS, ROOT
from tests.llm_server import FakeLLM

KEY = "sk-ragtune-" + secrets.token_hex(12)


def files_holding(root: Path, needle: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain the needle as UTF-8 or UTF-16."""
    forms = [needle.encode(), needle.encode("utf-16-le")]
    return [f for f in root.rglob("*")
            if f.is_file() and any(form in f.read_bytes() for form in forms)]


@pytest.fixture
def corpus(home, count) -> str:
    docs = [Document(f"d{i}.txt", "text", p) for i, p in enumerate(PARAGRAPHS)]
    ingest(Store(home), "plants", docs, count, ChunkSettings(64, 0))
    return "plants"


@pytest.fixture
def llm():
    server = FakeLLM(required_key=KEY)
    yield server
    server.close()


def generate_on_the_page(llm: FakeLLM, name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("views/pairs.py").run()
    fields = {t.label: t for t in at.text_input}
    fields["Model"].set_value("tiny").run()  # the default pair set name follows the model
    fields = {t.label: t for t in at.text_input}
    fields["Base URL"].set_value(llm.url)
    fields["API key (if the endpoint needs one)"].set_value(KEY)
    fields["Pair set name (an existing one is resumed)"].set_value(name)
    next(b for b in at.button if b.label == "Generate" and b.key != "builtin_go").click().run()
    return at


def test_the_api_key_is_sent_and_written_nowhere(home, corpus, llm, tmp_path, monkeypatch,
                                                 caplog, capsys):
    caplog.set_level(logging.DEBUG)
    at = generate_on_the_page(llm, "from the page")
    assert not at.exception
    assert "now holds" in at.success[0].value

    monkeypatch.setenv("RAGTUNE_LLM_API_KEY", KEY)
    assert main(["pairs", "generate", "--corpus", corpus, "--method", "llm", "--base-url", llm.url,
                 "--llm-model", "tiny", "--name", "from the cli", "--json"]) == 0
    store = Store(home)
    pair_sets = {p.name: p.id for p in store.pair_sets(store.corpus(corpus).id)}
    assert set(pair_sets) == {"from the page", "from the cli"}
    assert all(store.pairs(i) for i in pair_sets.values())
    assert llm.headers and all(h["Authorization"] == f"Bearer {KEY}" for h in llm.headers)

    exports = tmp_path / "exports"
    assert main(["pairs", "export", str(pair_sets["from the cli"]),
                 "--output", str(exports / "pairs.jsonl")]) == 0
    assert main(["export", "beir", str(exports / "beir"),
                 "--pairs", str(pair_sets["from the page"])]) == 0
    assert main(["list", "--json"]) == 0
    assert (exports / "pairs.jsonl").stat().st_size > 0

    assert files_holding(home, KEY) == []
    assert files_holding(exports, KEY) == []
    assert KEY not in caplog.text
    out, err = capsys.readouterr()
    assert KEY not in out + err


def test_a_refused_key_is_not_repeated_in_the_error(home, corpus, monkeypatch, capsys):
    server = FakeLLM(required_key="another key")
    try:
        monkeypatch.setenv("RAGTUNE_LLM_API_KEY", KEY)
        assert main(["pairs", "generate", "--corpus", corpus, "--method", "llm", "--base-url", server.url,
                     "--llm-model", "tiny"]) != 0
    finally:
        server.close()
    err = capsys.readouterr().err
    assert "refused the API key" in err and KEY not in err
    assert files_holding(home, KEY) == []
    store = Store(home)
    assert store.pair_sets(store.corpus(corpus).id) == []  # the refused run left nothing behind
