"""The spellings of earlier releases, rewritten to today's with a one-line notice on stderr, for
one release. Each rule names the old words, the new ones, and how the rest of the line moves.

Example:
    >>> current_words(["export", "beir", "out/", "--pairs", "4"])
    (['pairs', 'export', '4', '--beir', 'out/'], 'export beir DIR --pairs N', 'pairs export N --beir DIR')
    >>> current_words(["runs", "list"])
    (['runs', 'list'], None, None)
"""
from __future__ import annotations

import sys

# Old words -> new words, where the rest of the line stays as it is.
RENAMED = {
    ("ingest",): ("corpus", "ingest"), ("demo",): ("corpus", "demo"),
    ("list", "corpora"): ("corpus", "list"), ("corpora",): ("corpus", "list"),
    ("list", "pairs"): ("pairs", "list"), ("list", "runs"): ("runs", "list"),
    ("export", "pairs"): ("pairs", "export"), ("export", "model"): ("runs", "export"),
    ("export-model",): ("runs", "export"),
    ("delete", "run"): ("runs", "delete"), ("delete", "pair-set"): ("pairs", "delete"),
    ("delete", "corpus"): ("corpus", "delete"), ("compare-models",): ("models", "compare"),
}
RUNS_VERBS = ("list", "export", "delete", "-h", "--help")


def take_option(words: list[str], flag: str) -> tuple[str | None, list[str]]:
    """The value of ``flag`` (``--flag V`` or ``--flag=V``) and the words without it."""
    for i, word in enumerate(words):
        if word == flag and i + 1 < len(words):
            return words[i + 1], words[:i] + words[i + 2:]
        if word.startswith(flag + "="):
            return word.partition("=")[2], words[:i] + words[i + 1:]
    return None, words


def beir_export(rest: list[str]) -> list[str] | None:
    """``export beir DIR --pairs N`` (and the first release's ``export --beir DIR --pairs N``)
    as ``pairs export N --beir DIR``; None where the line does not have both."""
    folder, rest = take_option(rest, "--beir")
    pair_set, rest = take_option(rest, "--pairs")
    if folder is None:
        at = next((i for i, w in enumerate(rest) if not w.startswith("-")), None)
        if at is None:
            return None
        folder, rest = rest[at], rest[:at] + rest[at + 1:]
    if pair_set is None:
        return None
    return ["pairs", "export", pair_set, "--beir", folder, *rest]


def current_words(argv: list[str]) -> tuple[list[str], str | None, str | None]:
    """``argv`` in today's spelling, with the old and new spelling to tell (None: it was current)."""
    if argv[:2] == ["export", "beir"] or (argv[:1] == ["export"] and any(w.startswith("--beir") for w in argv)):
        new = beir_export(argv[2:] if argv[1:2] == ["beir"] else argv[1:])
        if new is not None:
            return new, "export beir DIR --pairs N", "pairs export N --beir DIR"
    if argv[:1] == ["runs"] and (len(argv) == 1 or argv[1] not in RUNS_VERBS):  # the first release's `runs`
        return ["runs", "list", *argv[1:]], "runs", "runs list"
    if argv[:1] == ["train"] and any(w == "--pairs" or w.startswith("--pairs=") for w in argv):
        return ([w.replace("--pairs", "--pairs-file", 1) if w == "--pairs" or w.startswith("--pairs=") else w
                 for w in argv], "train --pairs FILE", "train --pairs-file FILE")
    for old, new in RENAMED.items():
        if tuple(argv[:len(old)]) == old:
            return [*new, *argv[len(old):]], " ".join(old), " ".join(new)
    return argv, None, None


def with_current_words(argv: list[str]) -> list[str]:
    """``argv`` with an old spelling replaced by today's, and a one-line notice on stderr."""
    new, old_words, new_words = current_words(argv)
    if old_words is not None:
        print(f"note: '{old_words}' is now '{new_words}'; the old spelling goes in the next release",
              file=sys.stderr)
    return new
