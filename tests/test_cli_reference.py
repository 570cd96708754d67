"""The CLI's words: README's command reference is the parser's, every example in the README
runs through the parser, old spellings still work with a notice, and the multi-GPU command text
the Fine-tune page shows is built from the parser's own flags."""
import shlex

import pytest

from core.cli import COMMANDS, build_parser, main, reference
from core.cli.aliases import current_words, with_current_words
from core.training.rerun import distributed_commands
from scripts.cli_reference import BEGIN, END, README, current


def test_readme_holds_the_reference_the_parser_writes():
    text = README.read_text(encoding="utf-8")
    assert current(text) == text, "README's command reference is out of date: run `make readme`"
    block = text.partition(BEGIN)[2].partition(END)[0]
    for words, (help_text, configure) in COMMANDS.items():
        if configure:
            assert f"python -m core {words}" in block and help_text in block, words


def test_the_reference_changes_when_a_command_does():
    before = reference()
    COMMANDS["ping"] = ("answer pong", lambda p: p.add_argument("--loud", action="store_true"))
    try:
        assert "python -m core ping [--loud]\n    answer pong" in reference()
    finally:
        del COMMANDS["ping"]
    assert reference() == before


def readme_examples() -> list[list[str]]:
    """The arguments after ``-m core`` of every command line in the README's examples."""
    lines = [line for line in README.read_text(encoding="utf-8").splitlines()
             if line.startswith(("python -m core ", "torchrun ", "accelerate "))
             and BEGIN not in line]
    reference_lines = set(reference().splitlines())
    examples = [shlex.split(line, comments=True) for line in lines if line not in reference_lines]
    return [argv[argv.index("core") + 1:] for argv in examples]


@pytest.mark.parametrize("argv", readme_examples(), ids=lambda argv: " ".join(argv[:2]))
def test_every_readme_example_parses(argv):
    args = build_parser().parse_args(argv)
    assert callable(args.run)


def test_the_examples_use_no_old_spelling():
    assert len(readme_examples()) >= 15
    assert not [argv for argv in readme_examples() if current_words(argv)[1] is not None]


# Every command line of the README before the nouns-first grammar (commit cbec268), and the first
# release's spellings: each still runs, and says its new spelling, for one release.
PREVIOUS_README = """\
demo
ingest docs/ --corpus handbook --chunk-size 256 --overlap 32
pairs import qa.csv --corpus handbook
pairs generate --corpus handbook --style sentences --filter-top-k 0
pairs split 2 --test-fraction 0.2 --seed 42
list pairs --corpus handbook
list --json
export beir out/ --pairs 2
evaluate out/ --model all-MiniLM-L6-v2 --dims 384,256,128,64,32 --json
evaluate --pairs 2
export pairs 2 --split train --output train.jsonl
train --pairs train.jsonl --eval out/ --budget-minutes 10 --epochs 2 --json
train --pairs train.jsonl --eval out/ --config job-3.json
finetune --pairs 2 --epochs 1 --max-pairs 500 --json
tune --corpus handbook --json
resume j3
rotate --corpus handbook --kind rotation
list runs --json
export model j3 --zip model.zip
label import questions.txt --corpus handbook --json
label start --corpus handbook
label export --corpus handbook --output labels.jsonl
compare e1 j2 --json
compare --json
decide --questions
decide answers.json --json
delete run j3
delete pair-set 2
delete corpus handbook
corpora
runs
runs --json
export-model j1 --zip m.zip
export --pairs 1 --beir out
export --beir=out --pairs 1"""


@pytest.mark.parametrize("line", PREVIOUS_README.splitlines())
def test_every_old_spelling_still_parses_and_names_the_new_one(capsys, line):
    old = shlex.split(line)
    new = with_current_words(old)
    args = build_parser().parse_args(new)
    assert callable(args.run)
    err = capsys.readouterr().err
    if new == old:
        assert err == ""
    else:
        assert err.count("\n") == 1 and err.startswith("note: ") and "is now '" in err, err
        new_words = err.split("is now '")[1].split("'")[0]
        assert " ".join(new).startswith(new_words.split(" N")[0].split(" DIR")[0].split(" FILE")[0])


def test_old_spellings_run_the_new_command(home, capsys):
    assert main(["export", "--beir=out", "--pairs", "999"]) == 1  # the new command's own refusal
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("note: 'export beir DIR --pairs N' is now 'pairs export N --beir DIR'")
    assert err[1].startswith("error: no pair set 999")


def test_an_old_beir_export_keeps_its_folder_and_pair_set():
    assert current_words(["export", "--pairs", "4", "--beir", "out/"])[0] == \
        current_words(["export", "beir", "out/", "--pairs", "4"])[0] == ["pairs", "export", "4", "--beir", "out/"]
    assert current_words(["pairs", "export", "4", "--beir", "out/"])[1] is None
    assert current_words(["runs", "list"])[1] is None and current_words(["runs", "-h"])[1] is None


def test_the_distributed_commands_are_real_commands():
    text = distributed_commands(job_id=7, pair_set_id=3, processes=4)
    lines = text.splitlines()
    assert lines[2].startswith("torchrun --nproc_per_node 4 -m core train ")
    assert lines[3].startswith("# or: accelerate launch --num_processes 4 -m core train ")
    parsed = []
    for line in lines:
        argv = shlex.split(line.removeprefix("# or: "))
        assert current_words(argv[argv.index("core") + 1:])[1] is None  # today's spelling
        parsed.append(build_parser().parse_args(argv[argv.index("core") + 1:]))
    export_test, export_train, train, _ = parsed
    assert export_test.run.__name__ == "run_pairs_export" and export_test.pair_set == "3" and export_test.beir
    assert (export_train.pair_set, export_train.split, export_train.output) == ("3", "train", "train.jsonl")
    assert (train.config, train.pairs_file, train.eval) == ("job-7.json", "train.jsonl", export_test.beir)
