"""``python -m core``: every pipeline step from the shell, on the workspace named by RAGTUNE_HOME.

Each command ends with a one-line summary, or with ``--json`` a JSON object on the last line of
stdout; errors are one line on stderr and a non-zero exit.

One grammar: a noun, then its verb (``corpus ingest``, ``pairs export``, ``label start``, ``runs
list``), and the pipeline's own verbs alone (``evaluate``, ``train``, ``finetune``, ``tune``,
``rotate``, ``resume``, ``compare``, ``decide``). A command is one ``@command`` function in the
module of its noun (``core/cli/pairs.py`` …); its words place it in the tree, so adding one is a
local change::

    @command("label import", "read a file of labelled questions")
    def _label_import_parser(p: argparse.ArgumentParser) -> None:
        p.add_argument("file")
        p.set_defaults(run=run_label_import)

Old spellings (``ingest``, ``list runs``, ``export beir``, ``delete run``, ``train --pairs`` …) still
work for one release: ``with_current_words`` rewrites them and says the new one on stderr.
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

# The command modules register their commands on import, in the order --help lists them.
from core.cli import corpus, pairs, label, training, runs, models, decide, overview  # noqa: F401
from core.cli.base import COMMANDS, JSON_FLAG, one_line
from core.cli.aliases import with_current_words
from core.workspace.errors import WorkspaceError, explain_db_error, explain_out_of_room, is_out_of_room
from core.workspace.store import default_home


class OneLineParser(argparse.ArgumentParser):
    """Argument mistakes (a number out of range, a missing flag) as one line on stderr, like
    every other error of the CLI, instead of the usage block."""

    def error(self, message: str):
        print(f"error: {message}; see {self.prog} --help", file=sys.stderr)
        raise SystemExit(2)


def build_parser(prog: str = "python -m core") -> argparse.ArgumentParser:
    """The whole command tree from COMMANDS; ``parser.commands`` maps each command's words to
    its own parser (for help texts and the README's reference)."""
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0].partition(": ")[2])
    parser.commands = {(): parser}
    subparsers: dict[tuple[str, ...], argparse._SubParsersAction] = {}
    # Parents before their commands; otherwise in registration order.
    for words, (help_text, configure) in sorted(((tuple(w.split()), entry) for w, entry in COMMANDS.items()),
                                                key=lambda item: len(item[0])):
        parent = words[:-1]
        if parent not in subparsers:  # a runnable parent ("list") takes its commands optionally
            runnable = parser.commands[parent].get_default("run") is not None
            subparsers[parent] = parser.commands[parent].add_subparsers(
                dest=" ".join(("command", *parent)), metavar="COMMAND", required=not runnable)
        p = subparsers[parent].add_parser(words[-1], help=help_text, description=help_text,
                                          parents=[JSON_FLAG] if configure else [])
        if configure:
            configure(p)
        parser.commands[words] = p
    return parser


def reference(prog: str = "python -m core", width: int = 100) -> str:
    """Every command's usage line and purpose, in the order of --help: README's "Command line"
    section is this text (``make readme`` writes it; a test compares)."""
    parser = build_parser(prog)
    lines = []
    for words, (help_text, configure) in COMMANDS.items():
        p = parser.commands[tuple(words.split())]
        if configure is None:  # a group: its commands follow
            continue
        # Leave out -h and --json, which every command has, and the commands under this one,
        # which follow it.
        shown = [a for a in p._actions if a.dest not in ("help", "json")
                 and not isinstance(a, argparse._SubParsersAction)]
        usage = argparse.HelpFormatter(p.prog, width=width)
        usage.add_usage(None, shown, [], prefix="")
        lines += [usage.format_help().rstrip(), f"    {help_text}", ""]
    return "\n".join(lines)


def console() -> int:
    """The ``ragtune`` command that ``pip install`` puts on the PATH: the same as ``python -m core``."""
    return main(prog="ragtune")


def main(argv: list[str] | None = None, prog: str = "python -m core") -> int:
    argv = with_current_words(list(sys.argv[1:] if argv is None else argv))
    try:
        args = build_parser(prog).parse_args(argv)
    except SystemExit as exit:  # --help, or a mistake already told in one line
        return exit.code if isinstance(exit.code, int) else 1
    try:
        args.run(args)
    except WorkspaceError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return getattr(e, "exit_code", 1)  # decide: unreadable answers exit 2
    except sqlite3.Error as e:  # locked, disk full, I/O error: the user's to fix, not a bug
        print(f"error: {explain_db_error(e, default_home() / 'ragtune.db')}", file=sys.stderr)
        return 1
    except (OSError, MemoryError) as e:
        if is_out_of_room(e):  # an export or a copy: say where, and what to do
            where = Path(getattr(e, "filename", None) or ".").resolve()
            print(f"error: {explain_out_of_room(where.name, where.parent)}", file=sys.stderr)
        else:
            print(f"error: {one_line(e) or type(e).__name__}", file=sys.stderr)
        return 1
    return 0
