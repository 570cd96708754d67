"""One rule for what counts as a question, wherever questions enter: a line with no letter or
digit once NFKC-normalised and stripped of zero-width and other format characters is refused
and counted, whether it is invisible, emoji or punctuation. (A zero-width question was stored
while emoji-only and punctuation-only ones were counted as repeats of each other.)"""
from __future__ import annotations

import pytest

from core.cli import main
from core.documents.pairs import read_pairs_file
from core.using import label
from core.workspace.errors import WorkspaceError
from tests.test_bad_input import snapshot, write
from tests.test_references import notes  # noqa: F401

WORDLESS = ["\u200b", "\u200b\u200d\ufeff", "🙂", "🙂🙂🙂", "???", "?!…", "\u2060—\u2060"]
WORDED = ["Why?\u200b", "²", "Ⅻ kings", "何故ですか", "🙂 why green", "x"]


def test_the_rule_sees_letters_and_digits_only():
    from core.workspace.text import has_words, question_text
    assert not any(has_words(t) for t in WORDLESS)
    assert all(has_words(t) for t in WORDED)
    assert question_text("  Why   green? ") == "Why green?"


def test_wordless_questions_are_all_left_out_and_counted_the_same_way(notes):  # noqa: F811
    report = label.add_questions(notes, 1, ["Why are leaves green?", *WORDLESS])
    assert (report.added, report.already, report.no_words) == (1, 0, len(WORDLESS))
    assert "left out 7 lines with no letter or digit" in report.summary()
    assert [q.text for q in label.questions(notes, 1)] == ["Why are leaves green?"]


def test_a_file_of_only_wordless_questions_is_refused_with_one_line(notes, tmp_path, capsys):  # noqa: F811
    before = snapshot(notes)
    assert main(["label", "import", write(tmp_path / "q.txt", "\n".join(WORDLESS)),
                 "--corpus", "notes"]) == 1
    err = capsys.readouterr().err.strip()
    assert "nothing added: 7 lines with no letter or digit" in err and "\n" not in err, err
    assert snapshot(notes) == before
    with pytest.raises(WorkspaceError, match="1 line with no letter or digit"):
        label.add_questions(notes, 1, label.parse_pasted("\u200b"))


def test_imported_pairs_follow_the_same_rule():
    data = "query,passage\nWhy green?,Leaves are green.\n\u200b,Roots take up water.\n".encode()
    with pytest.raises(WorkspaceError, match="1 of 2 queries have no letter or digit"):
        read_pairs_file("p.csv", data)
