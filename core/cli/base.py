"""What every command shares: the registry its ``@command`` functions fill, the shared option sets,
the one-line summary or JSON ending, progress on a terminal, and the resolvers that turn what a
person types (a corpus's name or id, a pair set's id or name, a file) into what the core needs.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from core.documents.corpus import ChunkSettings
from core.training.config import LOSSES
from core.training.plan import MAX_EPOCHS, MAX_EPOCHS_SMALL_SET, budget_defaults
from core.workspace import ranges
from core.workspace.errors import WorkspaceError
from core.workspace.store import PairSet, Store

# Command words ("pairs export") -> help and the function that adds its arguments; None for a
# group, which only holds commands. In registration order, which is the order of --help.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None] | None]] = {}
JSON_FLAG = argparse.ArgumentParser(add_help=False)
JSON_FLAG.add_argument("--json", action="store_true", help="print a JSON object as the last line")


def command(words: str, help: str):
    """Register a command; its configuring function adds the arguments and sets ``run``."""
    def register(fn):
        COMMANDS[words] = (help, fn)
        return fn
    return register


def group(words: str, help: str) -> None:
    """Register a group of commands: ``pairs`` for ``pairs import``, ``pairs split``…"""
    COMMANDS[words] = (help, None)


def training_options(p: argparse.ArgumentParser) -> None:
    """The settings every training command takes (``train`` and ``finetune``), each left to the
    plan when not given (``core.training.plan``)."""
    p.add_argument("--model", help="base model (default: the bundled one)")
    p.add_argument("--epochs", type=ranges.arg(ranges.count), help="default: as many as the time "
                   f"budget allows, up to {MAX_EPOCHS} ({MAX_EPOCHS_SMALL_SET} for a small set)")
    p.add_argument("--batch-size", type=ranges.arg(ranges.count))
    p.add_argument("--learning-rate", type=ranges.arg(ranges.share))
    p.add_argument("--max-pairs", type=ranges.arg(ranges.count), help="default: as many as the time budget allows")
    p.add_argument("--max-seq-length", type=ranges.arg(ranges.count), help="default: fits 95%% of the passages")
    p.add_argument("--budget-minutes", type=ranges.arg(ranges.minutes), help="training time to plan for "
                   f"(default: {budget_defaults()})")
    p.add_argument("--dims", help="comma-separated, largest first (default: the model's size and its halvings)")
    p.add_argument("--loss", choices=LOSSES)


def training_settings(args) -> dict:
    """The training options a person gave, by ``TrainConfig`` name (the rest is the plan's)."""
    given = {"model": args.model, "epochs": args.epochs, "batch_size": args.batch_size,
             "learning_rate": args.learning_rate, "max_pairs": args.max_pairs,
             "max_seq_length": args.max_seq_length, "budget_minutes": args.budget_minutes,
             "dims": parse_dims(args.dims), "loss": args.loss}
    return {k: v for k, v in given.items() if v is not None}


def say(line: str) -> None:
    """A line for the person at the terminal, on stderr so a --json reader gets only JSON."""
    print(line, file=sys.stderr)


def finish(args, summary: str, payload: dict) -> None:
    print(json.dumps(payload) if getattr(args, "json", False) else summary)


def progress(label: str) -> Callable[[float], None]:
    def report(fraction: float) -> None:
        if sys.stderr.isatty():
            print(f"\r{label} {fraction:6.1%}", end="" if fraction < 1 else "\n", file=sys.stderr)
    return report


def corpus_ref(store: Store, ref: str, create: bool = False) -> int:
    """A corpus by name or id (``Store.find_corpus``); with ``create``, a new corpus named
    ``ref`` when none is, under the one name rule of ``Store.create_corpus``."""
    try:
        return store.find_corpus(ref).id
    except WorkspaceError:
        if not create:
            raise
    return store.create_corpus(ref, {"chunking": asdict(ChunkSettings())})


def pair_set_ref(store: Store, ref: str) -> PairSet:
    """A pair set by id, or by name where one pair set has it (names repeat across corpora)."""
    if ref.strip().isdigit():
        return store.pair_set(ranges.row_id(ref, "pair-set id"))
    named = [s for s in store.pair_set_summaries() if s.name == ref]
    if len(named) != 1:
        which = (f"{len(named)} pair sets are named {ref!r} (ids {', '.join(str(s.id) for s in named)}); "
                 "give the id" if named else f"no pair set is named {ref!r}")
        raise WorkspaceError(f"{which}; python -m core pairs list shows them")
    return store.pair_set(named[0].id)


def pair_set_arg(text: str) -> str:
    """argparse's check for a pair-set reference: resolved against the workspace when it runs."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a pair set's id or name")
    return text


def input_file(text: str, expected: str) -> Path:
    """A file named on the command line, checked: a folder or a missing path is one line that
    says which it is and what file is wanted."""
    path = Path(text)
    if path.is_dir():
        raise WorkspaceError(f"{path} is a folder; give the file itself: {expected}")
    if not path.is_file():
        raise WorkspaceError(f"{path} does not exist; check the path (expected {expected})")
    return path


PAIRS_FILE = "a CSV/JSONL/Parquet file of query/passage pairs"


def parse_dims(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(d) for d in text.split(",") if d.strip()]
    except ValueError:
        raise WorkspaceError(f"--dims {text!r} must be whole numbers separated by commas") from None


def print_pair_sets(pair_sets) -> None:
    for s in pair_sets:
        split = ", ".join(f"{n} {k}" for k, n in sorted(s.split.items()))
        print(f"pair set {s.id}\t{s.corpus}\t{s.name}\t{s.source}\t{split}")


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def deleted(args, report) -> None:
    """The ending of every ``delete``: what went, in words and as JSON."""
    finish(args, f"deleted {report.summary()}", {"deleted": report.summary(), "runs": report.runs,
                                                "questions": report.questions, "labels": report.labels})
