"""A delete says everything it removes before it is confirmed: deleting a corpus removed its
people's questions and their labels without a word. The pages' confirmation, the CLI's report
and core's plan are one text (``Deletion.summary``)."""
from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from core.cli import main
from core.using import label, runs
from tests.conftest import ROOT
from tests.test_references import notes  # noqa: F401


def asked(store) -> None:
    """Three questions on corpus 1, one labelled with two graded passages."""
    label.add_questions(store, 1, ["Why are leaves green?", "How do roots drink?", "What is soil?"])
    label.set_label(store, 1, 1, label.RELEVANT)
    label.set_label(store, 1, 2, label.PARTLY)
    label.decide(store, 1, "labelled")


def test_the_plan_of_a_corpus_delete_names_its_questions_and_labels(notes):  # noqa: F811
    asked(notes)
    text = runs.plan_delete_corpus(notes, 1).summary()
    assert "3 questions with 2 labels" in text, text


def test_the_cli_reports_the_questions_and_labels_it_deleted(notes, capsys):  # noqa: F811
    asked(notes)
    assert main(["corpus", "delete", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "3 questions with 2 labels" in payload["deleted"]
    assert (payload["questions"], payload["labels"]) == (3, 2)
    assert notes.query("SELECT * FROM questions") == [] == notes.query("SELECT * FROM labels")


def test_the_corpus_page_asks_about_the_questions_before_deleting(notes):  # noqa: F811
    asked(notes)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("views/corpus.py").run()
    next(b for b in at.button if b.label.startswith("Delete corpus")).click().run()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "3 questions with 2 labels" in warning, warning
