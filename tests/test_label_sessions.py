"""Two labelling sessions on one corpus (two tabs, two terminals) never overwrite each other:
every label write carries what its session saw, and a change made since by the other session
refuses it in one line. Before, B's stale "none" cleared A's label in the CLI, and B's Undo on
the page reverted A's step."""
from __future__ import annotations

import io

import pytest
from streamlit.testing.v1 import AppTest

from core.cli import main
from core.using import label
from core.workspace.errors import WorkspaceError
from tests.conftest import ROOT
from tests.test_references import notes  # noqa: F401

QUESTION = "Why are leaves green?"


@pytest.fixture
def asked(notes):  # noqa: F811
    """Corpus 1 (two passages, ids 1 and 2) with one open question, id 1."""
    label.add_questions(notes, 1, [QUESTION])
    return notes


def test_a_stale_key_is_refused_and_the_other_sessions_grade_kept(asked):
    label.cycle_label(asked, 1, 1, None)  # A: unmarked -> relevant
    with pytest.raises(WorkspaceError, match=r"changed in another session.*now relevant"):
        label.cycle_label(asked, 1, 1, None)  # B saw it unmarked: would make it partly relevant
    with pytest.raises(WorkspaceError, match="changed in another session"):
        label.set_label(asked, 1, 1, None, None)
    assert label.labels_of(asked, 1) == {1: label.RELEVANT}


def test_a_stale_none_never_clears_the_other_sessions_labels(asked):
    label.set_label(asked, 1, 1, label.RELEVANT, None)  # A marks, not done yet
    with pytest.raises(WorkspaceError, match="marks was changed in another session"):
        label.decide(asked, 1, "none", "open", {})  # B saw no marks
    label.decide(asked, 1, "labelled", "open", {1: label.RELEVANT})  # A: done
    with pytest.raises(WorkspaceError, match=r"question was changed in another session.*labelled"):
        label.decide(asked, 1, "none", "open", {})
    assert label.labels_of(asked, 1) == {1: label.RELEVANT}
    assert label.questions(asked, 1)[0].state == "labelled"


def test_undo_reverts_only_the_step_its_session_saw(asked):
    seen_by_b = label.last_action(asked, 1)  # None: nothing done yet
    label.set_label(asked, 1, 2, label.PARTLY, None)  # A
    with pytest.raises(WorkspaceError, match="nothing was undone"):
        label.undo(asked, 1, seen_by_b)
    assert label.labels_of(asked, 1) == {2: label.PARTLY}
    assert label.undo(asked, 1, label.last_action(asked, 1)).id == 1  # A's own undo works
    assert label.labels_of(asked, 1) == {}


class Interleaved(io.StringIO):
    """Session B's keyboard: before B's first line is read, session A labels the question."""

    def __init__(self, store, text: str):
        super().__init__(text)
        self.store, self.first = store, True

    def readline(self, *args) -> str:
        if self.first:
            self.first = False
            label.set_label(self.store, 1, 1, label.RELEVANT)
            label.decide(self.store, 1, "labelled")
        return super().readline(*args)


def test_label_start_refuses_a_stale_none_and_keeps_the_other_terminals_label(asked, monkeypatch,
                                                                             capsys):
    monkeypatch.setattr("sys.stdin", Interleaved(asked, "n\nq\n"))
    assert main(["label", "start", "--corpus", "notes"]) == 0
    err = capsys.readouterr().err
    assert "! this question was changed in another session" in err, err
    assert label.labels_of(asked, 1) == {1: label.RELEVANT}
    assert label.questions(asked, 1)[0].state == "labelled"


def page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    return at.switch_page("views/label.py").run()


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def test_the_label_page_never_undoes_or_clears_another_tabs_work(asked):
    a, b = page(), page()  # two tabs, each drawn before the other acts
    assert not a.exception and not b.exception
    button(a, "mark_1").click().run()  # A marks the first passage shown
    marked = label.labels_of(asked, 1)
    assert list(marked.values()) == [label.RELEVANT]
    button(b, "none").click().run()  # B still shows no marks: none of these
    assert "marks was changed in another session" in " ".join(e.value for e in b.error)
    assert label.labels_of(asked, 1) == marked
    button(a, "mark_1").click().run()  # A's screen is its own: relevant -> partly relevant
    partly = label.labels_of(asked, 1)
    assert list(partly.values()) == [label.PARTLY] and not a.error
    button(b, "undo").click().run()  # B's screen predates A's second step
    assert "nothing was undone" in " ".join(e.value for e in b.error)
    assert label.labels_of(asked, 1) == partly
    button(a, "undo").click().run()  # A's own undo works
    assert label.labels_of(asked, 1) == marked and not a.error
