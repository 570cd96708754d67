"""One reference resolver (a corpus by name or id, in every command) and one name rule (every
way a corpus is created): odd references are one line, never a traceback or a wrong "no
corpus"; a name ``ingest`` refuses is refused by ``pairs import`` too."""
from __future__ import annotations

import pytest

from core.cli import main
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store
from tests.test_bad_input import snapshot, write


@pytest.fixture
def notes(store: Store) -> Store:
    """A workspace with one small corpus, 'notes' (id 1), built without a model."""
    corpus_id = store.create_corpus("notes", {})
    document = store.add_document(corpus_id, "a.txt", "text", 60)
    store.add_chunks(corpus_id, document, [(0, None, "Leaves are green because of chlorophyll.", 6),
                                           (1, None, "Roots take up water from the soil.", 7)])
    return store


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Exit code, stderr and stdout of one command run here."""
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.err.strip(), out.out


def test_the_resolver_takes_a_name_or_an_id_and_a_name_wins(notes):
    assert notes.find_corpus("notes").id == notes.find_corpus("1").id == 1
    notes.create_corpus("1", {})  # a corpus named like the other's id
    assert notes.find_corpus("1").name == "1"
    with pytest.raises(WorkspaceError, match="no corpus 'nope'"):
        notes.find_corpus("nope")


BAD_REFS = ["²", "٣", "9" * 20, "-1", " ", "1.0"]
COMMANDS = [["label", "import", "QUESTIONS", "--corpus"], ["tune", "--corpus"],
            ["rotate", "--corpus"], ["pairs", "generate", "--corpus"],
            ["label", "export", "--output", "OUT", "--corpus"], ["label", "start", "--corpus"],
            ["pairs", "list", "--corpus"], ["corpus", "delete"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_odd_corpus_references_are_one_line_in_every_command(notes, tmp_path, capsys, command):
    questions = write(tmp_path / "q.txt", "Why are leaves green?\n")
    before = snapshot(notes)
    for ref in BAD_REFS:
        argv = [questions if a == "QUESTIONS" else str(tmp_path / "out.jsonl") if a == "OUT" else a
                for a in command]
        code, err, _ = run(capsys, *argv, ref)
        assert code == 1 and err.startswith("error: ") and "\n" not in err, (ref, err)
        assert "no corpus" in err or "out of range" in err, (ref, err)
    assert snapshot(notes) == before


def test_a_corpus_id_works_where_a_name_does(notes, tmp_path, capsys):
    """``pairs generate --corpus 1`` said "no corpus '1'" though corpus 1 exists."""
    code, err, _ = run(capsys, "pairs", "generate", "--corpus", "1", "--method", "llm", "--estimate")
    assert code == 0, err
    code, *_ = run(capsys, "label", "import", write(tmp_path / "q.txt", "Why are leaves green?\n"),
                  "--corpus", "1")
    assert code == 0 and len(notes.query("SELECT * FROM questions WHERE corpus_id = 1")) == 1
    code, err, out = run(capsys, "corpus", "delete", "notes")
    assert code == 0 and "deleted corpus 'notes'" in out, err
    assert notes.corpora() == []


@pytest.mark.parametrize("name", ["x\u202ey", "   ", "tab\there"])
def test_pairs_import_refuses_the_names_ingest_refuses(notes, tmp_path, capsys, name):
    pairs = write(tmp_path / "p.csv", "query,passage\nWhy green?,Leaves are green because of "
                                      "chlorophyll.\n")
    before = snapshot(notes)
    code, err, _ = run(capsys, "pairs", "import", pairs, "--corpus", name)
    assert code == 1 and "corpus name" in err and "blank or holds control" in err, err
    assert snapshot(notes) == before
    with pytest.raises(WorkspaceError, match="blank or holds control"):
        notes.create_corpus(name, {})
    code, err, _ = run(capsys, "pairs", "import", pairs, "--corpus", "notes", "--name", name)
    assert code == 1 and "pair set name" in err and "blank or holds control" in err, err
    assert snapshot(notes) == before


def test_pairs_import_into_an_existing_corpus_by_id(notes, tmp_path, capsys):
    pairs = write(tmp_path / "p.csv", "query,passage\nWhy green?,Leaves are green because of "
                                      "chlorophyll.\n")
    code, err, _ = run(capsys, "pairs", "import", pairs, "--corpus", "1")
    assert code == 0, err
    assert [c.name for c in notes.corpora()] == ["notes"] and len(notes.pair_sets(1)) == 1


@pytest.mark.parametrize("command", [["label", "import", "DIR", "--corpus", "notes"],
                                     ["pairs", "import", "DIR", "--corpus", "notes"]])
def test_a_folder_given_for_a_file_is_named_a_folder(notes, tmp_path, capsys, command):
    code, err, _ = run(capsys, *[str(tmp_path) if a == "DIR" else a for a in command])
    assert code == 1 and "is a folder" in err and "does not exist" not in err, err
    assert ".txt" in err or "CSV" in err
