"""Every page, on every workspace a user can point RAGTUNE_HOME at: never a traceback, and where
the workspace cannot be used, one line that says what is wrong and how to fix it."""
import re
from contextlib import nullcontext

import pytest
from streamlit.testing.v1 import AppTest

from core.store import Store
from tests.conftest import ROOT
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

