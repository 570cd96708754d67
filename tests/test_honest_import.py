"""BEIR import says what it dropped: every label naming an unknown passage or query is counted,
with the first few ids, and an import whose labels all fail is refused."""
import json

import pytest

from core.cli import main
from core.documents.beir import import_beir
from core.workspace.store import Store, WorkspaceError


def beir(folder, labels: list[tuple[str, str]]):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "title": "", "text": f"Passage {i} is about plant number {i}."}) + "\n"
        for i in range(20)))
    (folder / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": f"What is plant {i}?"}) + "\n" for i in range(20)))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in labels))
    return folder


def test_dropped_labels_are_counted_with_their_ids(tmp_path, home, capsys):
    labels = ([(f"q{i}", f"d{i}") for i in range(20)]  # 20 good
              + [(f"q{i}", f"missing{i}") for i in range(20)]  # 20 unknown passages
              + [("nobody", "d1"), ("ghost", "d2")])  # 2 unknown queries
    folder = beir(tmp_path / "set", labels)
    assert main(["corpus", "ingest", str(folder), "--corpus", "plants"]) == 0
    out = capsys.readouterr().out
    assert ("22 of 42 labels dropped: 20 name unknown passages (missing0, missing1, missing2, …), "
            "2 name unknown queries (nobody, ghost)") in out, out
    store = Store(home)
    [pair_set] = store.pair_sets(store.corpus("plants").id)
    assert len(store.pairs(pair_set.id)) == 20


def test_json_output_carries_the_dropped_label_counts_the_text_shows(tmp_path, home, capsys):
    labels = ([(f"q{i}", f"d{i}") for i in range(5)] + [("q1", "missing"), ("ghost", "d2")])
    assert main(["corpus", "ingest", str(beir(tmp_path / "set", labels)), "--corpus", "plants", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {k: payload[k] for k in ("labels", "dropped_labels", "unknown_passages",
                                    "unknown_queries")} == {"labels": 7, "dropped_labels": 2,
                                                            "unknown_passages": 1,
                                                            "unknown_queries": 1}


def test_a_query_with_no_letter_or_digit_is_dropped_and_counted(tmp_path, home, capsys):
    folder = beir(tmp_path / "set", [(f"q{i}", f"d{i}") for i in range(5)])
    with (folder / "queries.jsonl").open("a") as f:
        f.write(json.dumps({"_id": "blank", "text": "\u200b🙂?"}) + "\n")
    with (folder / "qrels" / "test.tsv").open("a") as f:
        f.write("blank\td1\t1\n")
    assert main(["corpus", "ingest", str(folder), "--corpus", "plants", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (payload["dropped_labels"], payload["wordless_queries"]) == (1, 1)
    store = Store(home)
    [pair_set] = store.pair_sets(store.corpus("plants").id)
    assert len(store.pairs(pair_set.id)) == 5


def test_an_import_whose_labels_all_fail_is_refused(tmp_path, store, count):
    folder = beir(tmp_path / "set", [(f"q{i}", f"missing{i}") for i in range(5)])
    with pytest.raises(WorkspaceError, match="none of the 5 labels could be linked: 5 of 5 labels "
                                             "dropped: 5 name unknown passages"):
        import_beir(store, folder, "plants", count)
    assert store.corpora() == []  # nothing was imported
