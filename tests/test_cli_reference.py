"""The CLI's words: README's command reference is the parser's, every example in the README
runs through the parser, old spellings still work with a notice, and the multi-GPU command text
the Fine-tune page shows is built from the parser's own flags."""
import shlex

import pytest

from core.cli import ALIASES, COMMANDS, build_parser, main, reference
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
    assert not [argv for argv in readme_examples() for old in ALIASES if tuple(argv[:len(old)]) == old]


@pytest.mark.parametrize("old,new", [
    (["corpora"], "list corpora"), (["runs"], "list runs"), (["pairs", "list"], "list pairs"),
    (["export-model", "j1", "--zip", "m.zip"], "export model"),
    (["pairs", "export", "1", "--output", "p.jsonl"], "export pairs"),
    (["export", "--pairs", "1", "--beir", "out"], "export beir"),
    (["export", "--beir=out", "--pairs", "1"], "export beir"),
])
def test_old_spellings_run_the_new_command_with_a_one_line_notice(home, capsys, old, new):
    main(old)
    err = capsys.readouterr().err
    notice = err.splitlines()[0]
    assert notice.startswith("note: ") and f"is now '{new}" in notice, err


def test_old_beir_export_keeps_its_folder_and_pair_set(home, capsys):
    from core.cli import with_current_words
    assert with_current_words(["export", "--pairs", "4", "--beir", "out/"]) \
        == ["export", "beir", "out/", "--pairs", "4"]
    assert with_current_words(["export", "--help"]) == ["export", "--help"]
    assert with_current_words(["list", "runs"]) == ["list", "runs"]
    assert capsys.readouterr().err.count("\n") == 1


def test_the_distributed_commands_are_real_commands():
    text = distributed_commands(job_id=7, pair_set_id=3, processes=4)
    lines = text.splitlines()
    assert lines[2].startswith("torchrun --nproc_per_node 4 -m core train ")
    assert lines[3].startswith("# or: accelerate launch --num_processes 4 -m core train ")
    parsed = []
    for line in lines:
        argv = shlex.split(line.removeprefix("# or: "))
        parsed.append(build_parser().parse_args(argv[argv.index("core") + 1:]))
    export_test, export_train, train, _ = parsed
    assert export_test.run.__name__ == "run_export_beir" and export_test.pairs == 3
    assert (export_train.pair_set, export_train.split, export_train.output) == (3, "train", "train.jsonl")
    assert (train.config, train.pairs, train.eval) == ("job-7.json", "train.jsonl", export_test.folder)
