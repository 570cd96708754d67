"""Every page, on every workspace a user can point RAGTUNE_HOME at: never a traceback, and where
the workspace cannot be used, one line that says what is wrong and how to fix it."""
import json
import re
import shutil
from contextlib import nullcontext

import pandas as pd
import pyarrow
import pytest
from streamlit.testing.v1 import AppTest

from core.documents.beir import load_demo
from core.documents.corpus import Document, ingest
from core.documents.pairs import import_pairs
from core.measuring.evaluate import MISSED_RANK, StoredEvaluation, misses
from core.training import jobs
from core.using import label
from core.workspace import models
from core.workspace.store import Store
from tests.conftest import PARAGRAPHS, ROOT
from tests.test_job_rules import read_only

APP = str(ROOT / "app.py")
# Every page app.py registers, read from app.py so that a page added later is tested too.
PAGES = re.findall(r'st\.Page\("([^"]+)"', (ROOT / "app.py").read_text())

# What each workspace must say, in words of the one line: (what is wrong, how to fix it).
WORKSPACES = {"corrupt": ("not a ragtune workspace", "point RAGTUNE_HOME elsewhere"),
              "read-only": ("is read-only", "make it writable"),
              "empty": None}


def test_every_page_is_found():
    assert len(PAGES) >= 9 and "views/label.py" in PAGES, PAGES


@pytest.mark.parametrize("workspace", list(WORKSPACES))
@pytest.mark.parametrize("path", PAGES)
def test_every_page_on_a_bad_workspace_shows_one_line_not_a_traceback(home, workspace, path):
    if workspace == "corrupt":
        home.mkdir(parents=True)
        (home / "ragtune.db").write_bytes(b"this is not a database\n" * 200)
    if workspace == "read-only":
        Store(home)  # a fresh workspace, then made read-only for root too
    with read_only(home) if workspace == "read-only" else nullcontext():
        at = AppTest.from_file(APP, default_timeout=120)
        at.switch_page(path)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value.replace("\\", "") for e in at.error]
    if WORKSPACES[workspace] is None:
        assert not errors, errors
        return
    assert len(errors) == 1, errors
    [line] = errors
    assert "\n" not in line and all(words in line for words in WORKSPACES[workspace]), line



# -- a page's own faults: each one line, the rest of the page still there where it can be ---------
def shown(path: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(path)
    return at.run()


def one_line(at: AppTest, words: str) -> str:
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value.replace("\\", "") for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0] and words in errors[0], errors
    return errors[0]


def test_finetune_page_on_a_pair_set_that_cannot_spare_validation(store, count):
    corpus_id = ingest(store, "plants", [Document("plants", "text", "\n\n".join(PARAGRAPHS))],
                       count).corpus_id
    pair_set_id = import_pairs(store, corpus_id, "one passage", [
        ("What makes leaves green?", PARAGRAPHS[0]), ("Why are leaves green?", PARAGRAPHS[0]),
        ("What else?", PARAGRAPHS[1])]).pair_set_id
    ids = [p["id"] for p in store.pairs(pair_set_id)]
    store.set_splits(pair_set_id, {ids[0]: "train", ids[1]: "train", ids[2]: "test"})
    at = shown("views/finetune.py")
    one_line(at, "cannot spare a validation query")
    assert not any(b.label == "Start fine-tuning" for b in at.button)  # nothing to start


@pytest.fixture
def lost_weights(store, count):
    """The demo corpus with one fine-tuning run whose model folder lost its weights."""
    corpus_id, pair_set_id = load_demo(store, count, limit=40)
    job_id = store.db.execute(
        "INSERT INTO jobs (kind, state, config, created, started, finished, result) VALUES "
        "('train', 'succeeded', ?, 1, 1, 2, '{}')",
        (json.dumps({"pair_set_id": pair_set_id, "model": models.DEFAULT_MODEL}),)).lastrowid
    folder = jobs.job_dir(store, job_id) / "model"
    shutil.copytree(models.resolve(None), folder,
                    ignore=shutil.ignore_patterns(*(f"*{s}" for s in models.WEIGHT_SUFFIXES)))
    store.db.execute("UPDATE jobs SET result = ? WHERE id = ?",
                     (json.dumps({"model_path": str(folder)}), job_id))
    label.add_questions(store, corpus_id, ["How do I count the items of a deque?"])
    return store


@pytest.mark.parametrize("path", ["views/label.py", "views/runs.py"])
def test_pages_on_a_fine_tuned_model_that_lost_its_weights(lost_weights, path):
    at = shown(path)
    one_line(at, "has no weights")
    if path == "views/runs.py":  # the rest of the page is still there
        assert any(s.value == "Rename or delete" for s in at.subheader)


def test_the_results_pages_table_of_misses_is_one_type_per_column(store):
    """A column of ranks and ">100" texts made Streamlit log a pyarrow traceback on every view
    of the Results page before fixing the table up; every column must convert as it is."""
    evaluation = StoredEvaluation(1, None, "m", "baseline", None, 0.0, 1.0, {32: {}}, {"per_query": {
        "32": {"q1": [0, "x"], "q2": [7, "y"], "q3": [1, "z"]}}})
    rows = misses(store, evaluation, 32).rows
    assert [r[MISSED_RANK] for r in rows] == [0, 7]  # not found at all first, then the worst rank
    pyarrow.Table.from_pandas(pd.DataFrame(rows))  # raised ArrowTypeError/ArrowInvalid before
