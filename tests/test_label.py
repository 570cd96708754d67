"""People's questions: import (and bad imports), labelling with undo, pooling, the people's pair
set with graded relevance, measuring on it, and the ``label`` and ``compare`` commands."""
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from core.cli import main
from core.deciding.compare import compare_evaluations
from core.documents import demo
from core.documents.beir import load_demo
from core.measuring.evaluate import RetrievalSet, evaluate_named, load_evaluations, query_metrics, save
from core.training import plan
from core.using import label
from core.using.search import corpus_index
from core.workspace import models
from core.workspace.store import Store, WorkspaceError
from tests.test_bad_input import one_line, parquet_bytes, snapshot

SUMMARIES = [q for _, q, _ in demo.stdlib_pairs(40)]


@pytest.fixture(scope="module")
def template(tmp_path_factory, count) -> Path:
    """The demo cut to 40 docstrings with the base model's passage vectors cached, built once;
    each test labels a copy of it."""
    home = tmp_path_factory.mktemp("label") / "ws"
    store = Store(home)
    corpus_id, _ = load_demo(store, count, limit=40)
    corpus_index(store, corpus_id, models.DEFAULT_MODEL, 384)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return home


@pytest.fixture
def demo_store(template, home) -> tuple[Store, int]:
    shutil.copytree(template, home)
    store = Store(home)
    return store, store.corpus("python-stdlib-docs").id


def label_first(store: Store, corpus_id: int, n: int) -> None:
    """Label n questions: the passage whose document answers it, relevant, and the passage
    after it, partly relevant."""
    answer = {q: ident for ident, q, _ in demo.stdlib_pairs(40)}
    for _ in range(n):
        question = label.current(store, corpus_id)
        chunk = store.query("SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id "
                            "WHERE d.name = ? AND c.corpus_id = ? LIMIT 1",
                            [answer[question.text], corpus_id])[0]["id"]
        label.set_label(store, question.id, chunk, label.RELEVANT)
        label.set_label(store, question.id, chunk + 1, label.PARTLY)
        label.decide(store, question.id, "labelled")


# -- import ------------------------------------------------------------------------------------
def test_every_upload_format_and_the_paste_box_read_the_same_questions():
    questions = ["How do I sort a list?", "What does bisect do?"]
    frame = pd.DataFrame({"id": [1, 2], "question": questions})
    assert label.read_questions("q.txt", "\n".join(questions).encode() + b"\n\n") == questions
    assert label.read_questions("q.csv", frame.to_csv(index=False).encode()) == questions
    assert label.read_questions("q.jsonl", frame.to_json(orient="records", lines=True).encode()) == questions
    assert label.read_questions("q.parquet", parquet_bytes(frame)) == questions
    assert label.parse_pasted("  How do I sort a list? \n\nWhat does bisect do?") == questions


def test_duplicates_are_counted_not_added_and_labels_survive_a_reimport(demo_store):
    store, corpus_id = demo_store
    report = label.add_questions(store, corpus_id, [*SUMMARIES[:5], SUMMARIES[0].upper()])
    assert (report.added, report.already) == (5, 1)
    label_first(store, corpus_id, 2)
    labelled = label.export_labels(store, corpus_id)
    again = label.add_questions(store, corpus_id, SUMMARIES[:8])
    assert (again.added, again.already) == (3, 5)
    assert label.export_labels(store, corpus_id) == labelled
    assert label.progress(store, corpus_id).summary().startswith("2 of 8 labelled")


BAD_QUESTION_FILES = [
    ("an empty list", "q.txt", b"", "holds no questions"),
    ("only blank lines", "q.txt", b"\n  \n\n", "holds no questions"),
    ("100,000 questions", "q.txt", "\n".join(f"Question {i}?" for i in range(100_000)).encode(),
     "100,000 questions"),
    ("not UTF-8", "q.txt", "Qu'est-ce qu'un été ?".encode("latin-1"), "not valid UTF-8"),
    ("binary", "q.txt", b"\x00\x01\x02\x03", "binary"),
    ("no question column", "q.csv", b"id,text\n1,hello\n", "no question column"),
    ("an Excel workbook named .csv", "q.csv", b"PK\x03\x04\x14\x00" + bytes(200),
     "not a CSV text file (a zip archive, such as an Excel workbook); save it from the "
     "spreadsheet as CSV UTF-8"),
    ("a Latin-1 CSV", "q.csv", "question\nQu'est-ce qu'un été ?\n".encode("latin-1"),
     "not a CSV text file (text, but not UTF-8); save it"),
    ("a broken table", "q.jsonl", b"{not json\n", "could not read it"),
    ("another format", "q.pdf", b"%PDF-1.4", "questions come as"),
]


@pytest.mark.parametrize("what,name,data,message", BAD_QUESTION_FILES,
                         ids=[c[0] for c in BAD_QUESTION_FILES])
def test_bad_question_files_are_one_line_and_change_nothing(demo_store, what, name, data, message):
    store, corpus_id = demo_store
    label.add_questions(store, corpus_id, SUMMARIES[:3])
    label_first(store, corpus_id, 1)
    before = snapshot(store)
    with pytest.raises(WorkspaceError) as error:
        label.add_questions(store, corpus_id, label.read_questions(name, data))
    assert message in one_line(error.value)
    assert snapshot(store) == before


def test_very_long_lines_are_left_out_and_counted(demo_store):
    store, corpus_id = demo_store
    text = "What is a deque?\n" + "word " * 2000 + "\nHow do I parse JSON?\n"
    report = label.add_questions(store, corpus_id, label.read_questions("q.txt", text.encode()))
    assert (report.added, report.too_long) == (2, 1)
    assert "longer than 1,000 characters" in report.summary()


# -- labelling ---------------------------------------------------------------------------------
def test_keys_cycle_the_grade_decisions_close_and_undo_reverts_a_whole_action(demo_store):
    store, corpus_id = demo_store
    label.add_questions(store, corpus_id, SUMMARIES[:3])
    first = label.current(store, corpus_id)
    shown = label.candidates(store, corpus_id, first)
    assert 1 <= len(shown) <= label.POOL_DEPTH
    chunk = shown[0].chunk_id
    assert [label.cycle_label(store, first.id, chunk) for _ in range(3)] == [2, 1, None]
    with pytest.raises(WorkspaceError, match="mark at least one passage"):
        label.decide(store, first.id, "labelled")
    label.cycle_label(store, first.id, chunk)
    label.cycle_label(store, first.id, shown[1].chunk_id)
    label.decide(store, first.id, "none")  # clears both marks in one action
    assert label.labels_of(store, first.id) == {}
    assert label.current(store, corpus_id).id != first.id
    assert label.undo(store, corpus_id).id == first.id  # the whole "none" comes back
    assert label.labels_of(store, first.id) == {chunk: 2, shown[1].chunk_id: 2}
    assert label.current(store, corpus_id).id == first.id
    label.decide(store, first.id, "labelled")
    label.decide(store, label.current(store, corpus_id).id, "skipped")
    progress = label.progress(store, corpus_id)
    assert (progress.labelled, progress.skipped, progress.open) == (1, 1, 1)
    assert "1 of 3 labelled (1 skipped)" in progress.summary() and "left" in progress.summary()
    assert label.reopen_skipped(store, corpus_id) == 1


def test_a_passage_from_the_search_box_stays_on_the_question(demo_store):
    store, corpus_id = demo_store
    label.add_questions(store, corpus_id, SUMMARIES[:1])
    question = label.current(store, corpus_id)
    pooled = {p.chunk_id for p in label.candidates(store, corpus_id, question)}
    found = next(p for p in label.find_passages(store, corpus_id, "the and of", limit=40)
             if p.chunk_id not in pooled)
    label.set_label(store, question.id, found.chunk_id, label.PARTLY)
    assert label.candidates(store, corpus_id, question)[-1].chunk_id == found.chunk_id
    with pytest.raises(WorkspaceError, match="type a word"):
        label.find_passages(store, corpus_id, " ? ")


def test_pooling_takes_as_many_from_each_model_and_hides_which_found_what():
    base, tuned = [1, 2, 3, 4, 5, 6, 7, 8, 9], [11, 12, 13, 14, 15, 16, 17, 18, 19]
    for question_id in range(6):
        shown = label.pool(question_id, [base, tuned])
        assert len(shown) == 9 and len(set(shown)) == 9
        assert abs(len(set(shown) & set(base)) - len(set(shown) & set(tuned))) == 1
        assert shown == label.pool(question_id, [base, tuned])  # stable across reloads
    assert label.pool(0, [base, [1, 2, 3]], depth=20) == label.pool(0, [base, [1, 2, 3]], depth=20)
    assert sorted(label.pool(0, [base, [1, 2, 3]], depth=20)) == base  # no duplicates
    orders = {tuple(label.pool(q, [base, tuned])) for q in range(6)}
    assert len(orders) > 1 and any(o[0] in tuned for o in orders)


def test_the_first_question_waits_with_a_count_and_no_time_left_then_the_next_is_instant(demo_store):
    store, corpus_id = demo_store
    label.add_questions(store, corpus_id, SUMMARIES[:3])
    store.db.execute("DELETE FROM embeddings")  # a corpus no model has encoded yet
    assert not label.ready(store, corpus_id)
    waiting = label.progress(store, corpus_id).summary(preparing=True)
    assert waiting == "0 of 3 labelled, preparing the passages to show first"
    stages = []
    label.prepare(store, corpus_id, None, lambda stage, fraction: stages.append((stage, fraction)))
    passages = len(store.chunks(corpus_id))
    called = f"the base model ({models.DEFAULT_MODEL})"
    assert stages[0] == (f"loading {called}", 0.0)
    assert stages[-1] == (f"encoding passages with {called}: {passages:,} of {passages:,}", 1.0)
    fractions = [f for _, f in stages[1:]]
    assert stages[1] == (f"encoding passages with {called}: 0 of {passages:,}", 0.0)
    assert fractions == sorted(fractions) and len(fractions) == 1 + -(-passages // 64)
    assert label.ready(store, corpus_id)  # built once: every later question is instant
    assert label.progress(store, corpus_id).summary().endswith("about 36 seconds left")
    again = []
    label.prepare(store, corpus_id, None, lambda stage, fraction: again.append(stage))
    assert again == [f"loading {called}"]  # nothing encoded twice


# -- people's pair set -------------------------------------------------------------------------
def test_labelled_questions_become_a_graded_people_test_set_from_twenty(demo_store, monkeypatch):
    store, corpus_id = demo_store
    label.add_questions(store, corpus_id, SUMMARIES[:25])
    label_first(store, corpus_id, plan.PEOPLE_TEST_MIN - 1)
    assert label.people_test_set(store, corpus_id) is None
    label_first(store, corpus_id, 1)
    data = label.people_test_set(store, corpus_id)
    pair_set = label.people_pair_set(store, corpus_id)
    assert pair_set.source == "people" and len(data.query_ids) == plan.PEOPLE_TEST_MIN
    assert all(set(g.values()) == {2} for g in data.grades.values())  # partly is the default 1
    assert all(len(data.relevant[q]) == 2 for q in data.query_ids)
    # Past the test set's size a question trains, unless it shares a passage with a test
    # question (through other questions too): that would leak a test answer into training.
    monkeypatch.setattr(plan, "PEOPLE_TEST_MAX", 21)
    used = {p["chunk_id"] for p in store.pairs(pair_set.id)}
    fresh = [r["id"] for r in store.chunks(corpus_id) if r["id"] not in used]
    for chunks in ([fresh[0]], [fresh[1]], [fresh[2]], [fresh[2], next(iter(used))]):
        question = label.current(store, corpus_id)
        for chunk in chunks:
            label.set_label(store, question.id, chunk, label.RELEVANT)
        label.decide(store, question.id, "labelled")
    sides = {p["query"]: p["split"] for p in store.pairs(pair_set.id)}
    assert [sides[q] for q in SUMMARIES[20:24]] == ["test", "train", "test", "test"]


def test_graded_ndcg_weighs_a_partly_relevant_passage_below_a_relevant_one():
    binary = query_metrics(["b", "a", "x"], {"a", "b"})
    graded = query_metrics(["b", "a", "x"], {"a", "b"}, {"a": 2, "b": 1})
    ideal = 2 + 1 / 1.5849625007211563
    assert binary["ndcg@10"] == pytest.approx(1.0)
    assert graded["ndcg@10"] == pytest.approx((1 + 2 / 1.5849625007211563) / ideal)
    assert graded["recall@1"] == binary["recall@1"]  # other metrics count any grade as relevant


def test_people_questions_judge_models_and_a_model_against_itself_is_not_significant(demo_store):
    store, corpus_id = demo_store
    label.add_questions(store, corpus_id, SUMMARIES[:plan.PEOPLE_TEST_MIN])
    label_first(store, corpus_id, plan.PEOPLE_TEST_MIN)
    pair_set = label.people_pair_set(store, corpus_id)
    stages = []
    assert len(label.judge_models(store, pair_set.id, lambda stage, f: stages.append(stage))) == 1
    n = plan.PEOPLE_TEST_MIN  # the base model, each stage named and counted; nothing fine-tuned
    assert f"baseline: encoding queries: {n} of {n}" in stages
    assert label.judge_models(store, pair_set.id) == []  # measured once
    again = evaluate_named(None, RetrievalSet.from_pair_set(store, pair_set.id), store=store)
    save(store, again, pair_set.id, "baseline again")
    first, second = load_evaluations(store, pair_set.id)
    assert first.details["per_query_ndcg"]["384"] == second.details["per_query_ndcg"]["384"]
    for d in compare_evaluations(first, second).values():
        assert d.verdict() == "not significant" and d.ties == plan.PEOPLE_TEST_MIN


def test_the_results_page_measures_every_model_on_people_questions_and_counts_in_words(demo_store):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    store, corpus_id = demo_store
    label.add_questions(store, corpus_id, SUMMARIES[:plan.PEOPLE_TEST_MIN])
    label_first(store, corpus_id, plan.PEOPLE_TEST_MIN)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("views/results.py").run()
    next(b for b in at.button if b.label.startswith("Measure the base model and every")).click().run()
    assert not at.exception
    assert "Measured 1 model on people's questions." in [s.value for s in at.success]


# -- CLI ---------------------------------------------------------------------------------------
def test_label_import_start_export_and_compare_on_the_command_line(demo_store, tmp_path, capsys,
                                                                   monkeypatch):
    store, corpus_id = demo_store
    name = store.corpus(corpus_id).name
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(SUMMARIES[:4] + SUMMARIES[:1]))
    assert main(["label", "import", str(questions), "--corpus", name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"added": 4, "already": 1,
                                                                    "too_long": 0, "no_words": 0}
    assert main(["label", "import", str(questions), "--corpus", str(corpus_id)]) == 0
    assert capsys.readouterr().out.strip() == "added 0 questions, 5 already there"
    # A person at the terminal: marks 1 then 2 twice (partly), done; none; skip; undo the skip;
    # a bad key; then quits.
    monkeypatch.setattr("sys.stdin", io.StringIO("1\n2 2\n\nn\ns\nu\n42\nq\n"))
    assert main(["label", "start", "--corpus", name, "--json"]) == 0
    out, err = capsys.readouterr()
    assert "Q: " + SUMMARIES[0] in out and "'42' is not a passage number" in err
    done = json.loads(out.splitlines()[-1])
    assert (done["labelled"], done["none"], done["skipped"], done["open"]) == (1, 1, 0, 2)
    output = tmp_path / "labels.jsonl"
    assert main(["label", "export", "--corpus", name, "--output", str(output)]) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["query"], r["relevance"]) for r in rows] == [(SUMMARIES[0], 2), (SUMMARIES[0], 1)]
    assert all(r["passage"] for r in rows)

    assert main(["evaluate", "--pairs", "1", "--dims", "384,64", "--json"]) == 0
    assert main(["evaluate", "--pairs", "1", "--dims", "384,64", "--json"]) == 0
    capsys.readouterr()
    assert main(["compare", "e1", "e2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert set(result["dims"]) == {"384", "64"}
    for d in result["dims"].values():
        assert d["delta"] == 0 and d["ci95"] == [0, 0] and d["significant"] is False
        assert (d["wins"], d["losses"]) == (0, 0) and d["ties"] == d["questions"]


BAD_FILES = {"empty.txt": b"", "many.txt": "\n".join(f"Question {i}?" for i in range(100_000)).encode(),
             "latin.txt": "Qu'est-ce qu'un été ?".encode("latin-1"), "photo.txt": b"\x00\x01binary",
             "ids.csv": b"id,text\n1,hello\n", "broken.jsonl": b"{not json\n",
             "paper.pdf": b"%PDF-1.4"}
CORPUS = "python-stdlib-docs"
BAD_LABEL_COMMANDS = [
    (["label", "import", "nowhere.txt", "--corpus", CORPUS], "does not exist"),
    (["label", "import", "{t}/empty.txt", "--corpus", CORPUS], "holds no questions"),
    (["label", "import", "{t}/many.txt", "--corpus", CORPUS], "100,000 questions"),
    (["label", "import", "{t}/latin.txt", "--corpus", CORPUS], "not valid UTF-8"),
    (["label", "import", "{t}/photo.txt", "--corpus", CORPUS], "binary"),
    (["label", "import", "{t}/ids.csv", "--corpus", CORPUS], "no question column"),
    (["label", "import", "{t}/broken.jsonl", "--corpus", CORPUS], "could not read it"),
    (["label", "import", "{t}/paper.pdf", "--corpus", CORPUS], "questions come as"),
    (["label", "import", "{t}/ids.csv", "--corpus", "no such corpus"], "no corpus"),
    (["label", "export", "--corpus", CORPUS, "--output", "{t}/out.jsonl"], "no labelled questions"),
    (["label", "export", "--corpus", "99", "--output", "{t}/out.jsonl"], "no corpus 99"),
    (["label", "start", "--corpus", "no such corpus"], "no corpus"),
    (["compare", "e1", "e9"], "no run 'e9'"),
    (["compare", "x", "e1"], "no run 'x'"),
    (["compare", "e1", "e2"], "different pair sets"),
]


@pytest.mark.parametrize("argv,message", BAD_LABEL_COMMANDS,
                         ids=[" ".join(a[:2]) + f" {i}" for i, (a, _) in enumerate(BAD_LABEL_COMMANDS)])
def test_bad_label_and_compare_commands_are_one_line_and_change_nothing(demo_store, tmp_path, capsys,
                                                                        argv, message):
    store, corpus_id = demo_store
    for name, data in BAD_FILES.items():
        (tmp_path / name).write_bytes(data)
    main(["evaluate", "--pairs", "1", "--dims", "64"])  # e1, on the demo's pair set
    label.add_questions(store, corpus_id, SUMMARIES[:2])
    label_first(store, corpus_id, 2)
    people = label.people_pair_set(store, corpus_id)
    store.db.execute("UPDATE pairs SET split = 'test' WHERE pair_set_id = ?", (people.id,))
    main(["evaluate", "--pairs", str(people.id), "--dims", "64"])  # e2, on people's questions
    store.db.execute("DELETE FROM labels")  # so export has nothing to write
    capsys.readouterr()
    before = snapshot(store)
    assert main([a.format(t=tmp_path) for a in argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(store) == before and not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("argv", [["--help"], ["label", "--help"], ["label", "start", "--help"],
                                  ["compare", "--help"]])
def test_label_and_compare_have_help(argv, capsys):
    assert main(argv) == 0 and "usage:" in capsys.readouterr().out


def test_the_label_page_refuses_an_empty_paste_and_labels_with_the_mouse(demo_store):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    store, corpus_id = demo_store
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("views/label.py").run()
    assert not at.exception and "No questions for this corpus yet" in at.info[0].value
    next(b for b in at.button if b.label == "Add the pasted questions").click().run()
    assert "holds no questions" in at.error[0].value and label.questions(store, corpus_id) == []
    at.text_area[0].input("\n".join(SUMMARIES[:3])).run()
    next(b for b in at.button if b.label == "Add the pasted questions").click().run()
    assert "Added 3 questions, 0 already there" in at.success[0].value
    first = label.current(store, corpus_id)
    next(b for b in at.button if b.label == "Mark").click().run()  # passage 1, with the mouse
    next(b for b in at.button if b.label == "Done, next").click().run()
    counts = at.get("progress")[0].proto.text
    assert not at.exception and "1 of 3 labelled" in counts and "left" in counts
    assert list(label.labels_of(store, first.id).values()) == [label.RELEVANT]
    next(b for b in at.button if b.label == "Undo").click().run()
    assert label.current(store, corpus_id).id == first.id


def test_an_installed_model_joins_the_pool(demo_store, tiny_model, tiny_spec, tmp_path):
    """A bigger model finds passages the small one misses: once installed, its top passages are
    pooled too, and the first question waits for it to encode the corpus."""
    from core.workspace.install import install
    from tests.installing import split_zip, wheels
    store, corpus_id = demo_store
    label.add_questions(store, corpus_id, SUMMARIES[:2])
    label.prepare(store, corpus_id, None, lambda stage, fraction: None)
    assert label.ready(store, corpus_id)
    install("tiny", store.home, from_folder=wheels(tmp_path / "parts", split_zip(tiny_model, "tiny")))
    assert not label.ready(store, corpus_id)
    stages = []
    label.prepare(store, corpus_id, None, lambda stage, fraction: stages.append(stage))
    assert "loading tiny" in stages and label.ready(store, corpus_id)
    question = label.current(store, corpus_id)
    base_only = label.pool(question.id, [label._top(store, corpus_id, models.DEFAULT_MODEL, question.text,
                                                    label.POOL_DEPTH)])
    assert {p.chunk_id for p in label.candidates(store, corpus_id, question)} != set(base_only)
