import io
import time
from pathlib import Path

import pytest

from core.workspace import models
from core.workspace.store import Store

ROOT = Path(__file__).resolve().parent.parent


# Fixtures that fine-tune a model (tests/test_runs.py): every test using one is slow, whichever of
# them happens to run first and pay for the training.
TRAINING_FIXTURES = {"trained", "trained_copy"}


def pytest_collection_modifyitems(items):
    """Marked by what they do, so a new test lands in the right tier without anyone remembering to:
    every test in a tests/test_browser*.py module drives Chromium (``browser``), and every test
    that uses a training fixture trains (``slow``)."""
    for item in items:
        module = getattr(item, "module", None)  # docstring examples have none
        if module is not None and module.__name__.rsplit(".", 1)[-1].startswith("test_browser"):
            item.add_marker(pytest.mark.browser)
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


TRAINED: list[str] = []  # what trained since the current test began (background jobs too)


@pytest.fixture(scope="session", autouse=True)
def watch_training():
    """Note every run of transformers' ``Trainer.train`` (sentence-transformers' trainer is one),
    for ``trains_only_when_slow``; it still trains."""
    from transformers import Trainer
    real = Trainer.train

    def train(self, *args, **kwargs):
        TRAINED.append(type(self).__name__)
        return real(self, *args, **kwargs)

    Trainer.train = train
    yield
    Trainer.train = real


@pytest.fixture(autouse=True)
def trains_only_when_slow(request, watch_training):
    """A test that trains a model takes a minute or more: it must be marked ``slow`` (or drive the
    browser), so the fast tier that plain ``pytest`` runs stays fast. Found by what it does, not
    by whoever wrote it remembering."""
    TRAINED.clear()
    yield
    marked = request.node.get_closest_marker("slow") or request.node.get_closest_marker("browser")
    if TRAINED and not marked:
        pytest.fail(f"this test trains a model ({TRAINED[0]}.train ran): mark it @pytest.mark.slow",
                    pytrace=False)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test (``item.rep_call``…) for fixtures that act on failure,
    such as tests.browser.screenshot_on_failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh workspace, also named by RAGTUNE_HOME for code that reads it."""
    monkeypatch.setenv("RAGTUNE_HOME", str(tmp_path / "ws"))
    return tmp_path / "ws"


@pytest.fixture
def store(home) -> Store:
    return Store(home)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A real 32-dimension sentence-transformers model in a few MB (tests/installing.py)."""
    from tests.installing import build_tiny_model
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tiny_spec(tiny_model, monkeypatch):
    """The tiny model in ``models.CATALOGUE`` for one test, installable from parts built here."""
    from tests.installing import catalogued
    return catalogued(tiny_model, monkeypatch)


@pytest.fixture(scope="session")
def count():
    return models.token_counter()


@pytest.fixture(scope="session")
def tuned(tmp_path_factory) -> Path:
    """The bundled model with every weight moved a little (seeded), saved: a stand-in for a
    fine-tuned model that costs no training, of the same architecture with other weights (and
    worse ones: the merges with the base score higher outside any corpus)."""
    import torch
    model = models.load_fresh(None, "cpu")
    generator = torch.Generator().manual_seed(29)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=generator))
    path = tmp_path_factory.mktemp("tuned") / "model"
    model.save(str(path))
    return path


def pdf_bytes(paragraphs: list[str]) -> bytes:
    from fpdf import FPDF
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for p in paragraphs:
        pdf.multi_cell(0, 6, p)
        pdf.ln(4)
    return bytes(pdf.output())


def docx_bytes(paragraphs: list[str]) -> bytes:
    import docx
    document = docx.Document()
    for p in paragraphs:
        document.add_paragraph(p)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


PARAGRAPHS = [
    "Photosynthesis converts light energy into chemical energy. Plants store that energy in "
    "glucose, which fuels their growth through the season.",
    "The Calvin cycle fixes carbon dioxide into sugars. It runs in the stroma of the chloroplast "
    "and needs the ATP made by the light reactions.",
    "Stomata are small pores on leaves. They open to let carbon dioxide in and close to keep "
    "water from escaping on hot, dry days.",
]


def wait_until(check, timeout: float = 300, what: str = "the condition"):
    """Poll ``check`` until it returns something true (returned), or fail naming ``what``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
