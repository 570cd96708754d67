import io
import time
from pathlib import Path

import pytest

from core.workspace import models
from core.workspace.store import Store

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items):
    """Every test in a tests/test_browser*.py module drives Chromium: mark it ``browser`` here, so a
    new browser test module is left out of ``make test-fast`` without anyone remembering to."""
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1].startswith("test_browser"):
            item.add_marker(pytest.mark.browser)


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
