"""At least eight bad invocations of every CLI command that takes input, run in-process through
``core.cli.main``: each exits non-zero with one line on stderr that names the problem, writes no
output file and leaves the workspace exactly as it was. (``pairs`` subcommands and ``decide``
have their own tables in test_bad_input.py and test_decision.py.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from core.cli import main
from core.workspace.store import Store
from tests.test_bad_input import GOOD_CORPUS, GOOD_QRELS, GOOD_QUERIES, demo_set, unchanged, workspace, write  # noqa: F401


def unsplit(store: Store) -> str:
    return str(next(p.id for p in store.pair_sets(store.corpus("bio").id) if p.name == "unsplit"))


def beir_folder(t: Path, **broken: str) -> str:
    files = {"corpus.jsonl": GOOD_CORPUS, "queries.jsonl": GOOD_QUERIES,
             "qrels/test.tsv": GOOD_QRELS, **broken}
    for name, text in files.items():
        write(t / "beir" / name, text)
    return str(t / "beir")


def pairs_file(t: Path) -> str:
    return write(t / "train.jsonl", "".join(
        f'{{"query": "What is part {i} about?", "positive": "Part {i} is about leaves."}}\n'
        for i in range(3)))


# (command, what, arguments from (tmp_path, store), text the message must hold)
CASES = [
    ("evaluate", "nothing to evaluate", lambda t, s: ["evaluate"], "BEIR folder or --pairs"),
    ("evaluate", "missing pair set", lambda t, s: ["evaluate", "--pairs", "999"], "no pair set 999"),
    ("evaluate", "pair set without a test split",
     lambda t, s: ["evaluate", "--pairs", unsplit(s)], "split"),
    ("evaluate", "dimension zero", lambda t, s: ["evaluate", "--pairs", str(demo_set(s)),
                                                 "--dims", "0"], "dimension"),
    ("evaluate", "dimensions not numbers", lambda t, s: ["evaluate", "--pairs", str(demo_set(s)),
                                                         "--dims", "big,small"], "--dims"),
    ("evaluate", "dimension above the model's", lambda t, s: ["evaluate", "--pairs",
                                                              str(demo_set(s)), "--dims", "4096"],
     "384"),
    ("evaluate", "folder that is not BEIR", lambda t, s: ["evaluate", str(t)], "corpus.jsonl"),
    ("evaluate", "missing model folder", lambda t, s: ["evaluate", "--pairs", str(demo_set(s)),
                                                       "--model", str(t / "no-model")],
     "does not exist"),
    ("evaluate", "unknown split", lambda t, s: ["evaluate", beir_folder(t), "--split", "dev"],
     "dev"),
    ("train", "missing pairs file", lambda t, s: ["train", "--pairs-file", str(t / "none.jsonl"),
                                                  "--eval", beir_folder(t)], "does not exist"),
    ("train", "eval folder that is not BEIR", lambda t, s: ["train", "--pairs-file", pairs_file(t),
                                                            "--eval", str(t)], "corpus.jsonl"),
    ("train", "malformed config", lambda t, s: ["train", "--pairs-file", pairs_file(t), "--eval",
                                                beir_folder(t), "--config",
                                                write(t / "c.json", "{oops")], "c.json"),
    ("train", "config with a wrong type",
     lambda t, s: ["train", "--pairs-file", pairs_file(t), "--eval", beir_folder(t), "--config",
                   write(t / "c.json", '{"epochs": "two"}')], "'epochs'"),
    ("train", "zero epochs", lambda t, s: ["train", "--pairs-file", pairs_file(t), "--eval",
                                           beir_folder(t), "--epochs", "0"], "epochs"),
    ("train", "negative sequence length", lambda t, s: ["train", "--pairs-file", pairs_file(t),
                                                        "--eval", beir_folder(t),
                                                        "--max-seq-length", "-5"], "length"),
    ("train", "negative learning rate", lambda t, s: ["train", "--pairs-file", pairs_file(t),
                                                      "--eval", beir_folder(t),
                                                      "--learning-rate", "-1"], "learning"),
    ("train", "negative budget", lambda t, s: ["train", "--pairs-file", pairs_file(t), "--eval",
                                               beir_folder(t), "--budget-minutes", "-3"],
     "budget"),
    ("train", "missing model", lambda t, s: ["train", "--pairs-file", pairs_file(t), "--eval",
                                             beir_folder(t), "--model", str(t / "no-model")],
     "does not exist"),
    ("finetune", "missing pair set", lambda t, s: ["finetune", "--pairs", "999"],
     "no pair set 999"),
    ("finetune", "pair set not split", lambda t, s: ["finetune", "--pairs", unsplit(s)], "split"),
    ("finetune", "zero epochs", lambda t, s: ["finetune", "--pairs", str(demo_set(s)),
                                              "--epochs", "0"], "epochs"),
    ("finetune", "negative pair cap", lambda t, s: ["finetune", "--pairs", str(demo_set(s)),
                                                    "--max-pairs", "-1"], "pairs"),
    ("finetune", "batch size zero", lambda t, s: ["finetune", "--pairs", str(demo_set(s)),
                                                  "--batch-size", "0"], "batch"),
    ("finetune", "sequence length too long", lambda t, s: ["finetune", "--pairs",
                                                           str(demo_set(s)),
                                                           "--max-seq-length", "1000000"],
     "out of range"),
    ("finetune", "missing model", lambda t, s: ["finetune", "--pairs", str(demo_set(s)),
                                                "--model", str(t / "no-model")], "does not exist"),
    ("finetune", "hub ID offline", lambda t, s: ["finetune", "--pairs", str(demo_set(s)),
                                                 "--model", "nobody/no-such-model"],
     "not available offline"),
    ("export model", "missing run", lambda t, s: ["runs", "export", "j999", "--zip",
                                                  str(t / "out.zip")], "999"),
    ("export model", "run id that is not one", lambda t, s: ["runs", "export", "banana", "--zip",
                                                             str(t / "out.zip")], "banana"),
    ("export model", "negative job id", lambda t, s: ["runs", "export", "-3", "--zip",
                                                      str(t / "out.zip")], "-3"),
    ("export model", "a baseline run has no model", lambda t, s: ["runs", "export", "e1", "--zip",
                                                                  str(t / "out.zip")], "e1"),
    ("export model", "missing evaluation", lambda t, s: ["runs", "export", "e999", "--zip",
                                                         str(t / "out.zip")], "e999"),
    ("export model", "empty run id", lambda t, s: ["runs", "export", "", "--zip",
                                                   str(t / "out.zip")], "run"),
    ("export model", "job id with letters", lambda t, s: ["runs", "export", "j1x", "--zip",
                                                          str(t / "out.zip")], "j1x"),
    ("export model", "huge job id", lambda t, s: ["runs", "export", "9" * 30, "--zip",
                                                  str(t / "out.zip")], "999"),
    ("ingest", "overlap above the chunk size",
     lambda t, s: ["corpus", "ingest", write(t / "a.txt", "Leaves are green. " * 40), "--chunk-size", "64",
                   "--overlap", "80"], "overlap"),
    ("ingest", "negative overlap", lambda t, s: ["corpus", "ingest", write(t / "a.txt", "Leaves. " * 40),
                                                 "--overlap", "-1"], "overlap"),
    ("ingest", "empty folder", lambda t, s: ["corpus", "ingest", str(Path(write(t / "d" / ".keep", "")).parent)],
     "nothing to ingest"),
    ("ingest", "empty corpus name", lambda t, s: ["corpus", "ingest", write(t / "a.txt", "Leaves. " * 40),
                                                  "--corpus", " "], "blank"),
    ("ingest", "missing model", lambda t, s: ["corpus", "ingest", write(t / "a.txt", "Leaves. " * 40),
                                              "--model", str(t / "no-model")], "does not exist"),
    ("ingest", "unsupported file", lambda t, s: ["corpus", "ingest", write(t / "a.exe", "MZ")],
     "unsupported"),
    ("ingest", "empty file", lambda t, s: ["corpus", "ingest", write(t / "a.txt", "")], "empty"),
    ("ingest", "latin-1 file", lambda t, s: ["corpus", "ingest", write(t / "a.txt", "Grüße".encode("latin-1"))],
     "UTF-8"),
    # Numbers Python parses but nothing downstream can take (NaN, infinity, beyond 64 bits).
    ("train", "budget not a number", lambda t, s: ["train", "--pairs-file", pairs_file(t), "--eval",
                                                   beir_folder(t), "--budget-minutes", "nan"],
     "not a number of minutes"),
    ("train", "infinite budget", lambda t, s: ["train", "--pairs-file", pairs_file(t), "--eval",
                                               beir_folder(t), "--budget-minutes", "inf"],
     "not a number of minutes"),
    ("train", "config with a NaN budget",
     lambda t, s: ["train", "--pairs-file", pairs_file(t), "--eval", beir_folder(t), "--config",
                   write(t / "c.json", '{"budget_minutes": NaN}')], "budget_minutes nan"),
    ("train", "config with a seed beyond 2**32", lambda t, s: ["train", "--pairs-file", pairs_file(t),
                                                               "--eval", beir_folder(t), "--config",
                                                               write(t / "c.json", '{"seed": 4294967296}')],
     "seed 4294967296 is out of range"),
    ("evaluate", "pair set id beyond 64 bits", lambda t, s: ["evaluate", "--pairs", "9" * 30],
     "out of range"),
    ("finetune", "pair set id beyond 64 bits", lambda t, s: ["finetune", "--pairs", "9" * 30],
     "out of range"),
    ("finetune", "huge pair cap", lambda t, s: ["finetune", "--pairs", str(demo_set(s)),
                                                "--max-pairs", "9" * 30], "out of range"),
    ("curve", "missing pair set", lambda t, s: ["curve", "--pair-set", "999"], "no pair set 999"),
    ("curve", "unknown pair set name", lambda t, s: ["curve", "--pair-set", "nope"],
     "no pair set is named 'nope'"),
    ("curve", "blank pair set", lambda t, s: ["curve", "--pair-set", " "], "id or name"),
    ("curve", "pair set id beyond 64 bits", lambda t, s: ["curve", "--pair-set", "9" * 30],
     "out of range"),
    ("curve", "pair set not split", lambda t, s: ["curve", "--pair-set", unsplit(s)], "split"),
    ("curve", "zero budget", lambda t, s: ["curve", "--pair-set", str(demo_set(s)),
                                           "--budget-minutes", "0"], "minutes"),
    ("curve", "budget not a number", lambda t, s: ["curve", "--pair-set", str(demo_set(s)),
                                                   "--budget-minutes", "soon"], "minutes"),
    ("curve", "missing model", lambda t, s: ["curve", "--pair-set", str(demo_set(s)),
                                             "--model", str(t / "no-model")], "does not exist"),
    ("demo", "negative limit", lambda t, s: ["corpus", "demo", "--limit", "-1"], "limit"),
    ("demo", "zero limit", lambda t, s: ["corpus", "demo", "--limit", "0"], "limit"),
]


@pytest.mark.parametrize("command,what,args,message", CASES,
                         ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_bad_arguments_fail_in_one_line(unchanged, tmp_path, monkeypatch, capsys,  # noqa: F811
                                        command, what, args, message):
    monkeypatch.setenv("RAGTUNE_HOME", str(unchanged.home))
    argv = args(tmp_path, unchanged)
    before = set(tmp_path.rglob("*"))
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert message in err, err
    assert not [p for p in tmp_path.rglob("*") if p not in before and p.suffix == ".zip"]


def test_every_command_that_takes_input_has_eight_bad_cases():
    counts = {c[0]: 0 for c in CASES}
    for command, *_ in CASES:
        counts[command] += 1
    assert set(counts) >= {"evaluate", "train", "finetune", "export model", "ingest"}
    assert min(v for k, v in counts.items() if k != "demo") >= 8, counts
