"""``label …``: people's questions imported, labelled at the terminal (the Label page's twin) and
exported with their labels."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from core.cli.base import command, corpus_ref, finish, group, input_file, one_line, progress, say
from core.workspace.errors import WorkspaceError
from core.workspace.outputs import write_text
from core.workspace.store import Store

group("label", "import people's questions, label them against a corpus, export the labels")


@command("label import", "add questions (without answers) from a .txt (one per line) or a "
                         "CSV/JSONL/Parquet question column")
def _label_import_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.set_defaults(run=run_label_import)


def run_label_import(args) -> None:
    from core.using.label import add_questions, read_questions
    path = input_file(args.file, "a .txt of questions, one per line, or a CSV/JSONL/Parquet "
                                 "file with a question column")
    store = Store()
    corpus_id = corpus_ref(store, args.corpus)
    report = add_questions(store, corpus_id, read_questions(path.name, path.read_bytes()))
    finish(args, report.summary(), asdict(report))


@command("label start", "label the open questions here, one at a time, with the keyboard")
def _label_start_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.set_defaults(run=run_label_start)


LABEL_KEYS = ("numbers mark a passage (again: partly relevant, a third time: clear) · "
              "Enter: done, next · n: none of these · s: skip · u: undo · /words: search · q: quit")


def run_label_start(args) -> None:
    """The terminal twin of the Label page: the same questions, pool, keys and saved state."""
    from core.using import label
    store = Store()
    corpus_id = corpus_ref(store, args.corpus)
    fine_tuned = label.fine_tuned_model(store, corpus_id)
    if label.current(store, corpus_id) is not None:  # the slow part, once, with a count
        label.prepare(store, corpus_id, fine_tuned, lambda stage, f: progress(stage)(f))
    say(LABEL_KEYS)
    found: list = []
    while (question := label.current(store, corpus_id)) is not None:
        shown = label.candidates(store, corpus_id, question, fine_tuned)
        shown += [p for p in found if p.chunk_id not in {s.chunk_id for s in shown}]
        # What is shown goes back with each key: another session's change since is refused.
        marks, seen_action = label.labels_of(store, question.id), label.last_action(store, corpus_id)
        print(f"\n{label.progress(store, corpus_id).summary()}\nQ: {question.text}")
        for n, passage in enumerate(shown, start=1):
            mark = {label.RELEVANT: "[R]", label.PARTLY: "[p]"}.get(marks.get(passage.chunk_id), "[ ]")
            print(f"{n:>2} {mark} {passage.document}: {' '.join(passage.text.split())[:240]}")
        print("> ", end="", file=sys.stderr, flush=True)  # stdout keeps only the result
        line = sys.stdin.readline()
        if not line:  # end of input
            break
        line = line.strip()
        try:
            if line == "q":
                break
            if line.startswith("/"):
                found = label.find_passages(store, corpus_id, line[1:])
                continue
            if line in ("", "n", "s"):
                label.decide(store, question.id, {"": "labelled", "n": "none", "s": "skipped"}[line],
                             question.state, marks)
                found = []
            elif line == "u":
                label.undo(store, corpus_id, seen_action)
            else:
                for token in line.replace(",", " ").split():
                    if not token.isdigit() or not 1 <= int(token) <= len(shown):
                        raise WorkspaceError(f"{token!r} is not a passage number; {LABEL_KEYS}")
                    chunk_id = shown[int(token) - 1].chunk_id
                    marks[chunk_id] = label.cycle_label(store, question.id, chunk_id,
                                                        marks.get(chunk_id))
        except WorkspaceError as e:
            say(f"! {one_line(e)}")
    done = label.progress(store, corpus_id)
    finish(args, done.summary(), {**asdict(done), "done": done.done})


@command("label export", "write the labels as JSONL (query, passage, relevance: 2 relevant, "
                         "1 partly)")
def _label_export_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.add_argument("--output", required=True, metavar="FILE")
    p.set_defaults(run=run_label_export)


def run_label_export(args) -> None:
    from core.using.label import export_labels
    store = Store()
    rows = export_labels(store, corpus_ref(store, args.corpus))
    if not rows:
        raise WorkspaceError(f"corpus {args.corpus!r} has no labelled questions yet, so nothing "
                             "was written; label some with python -m core label start")
    output = Path(args.output)
    write_text(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
               "labels.jsonl")
    finish(args, f"{len(rows)} labels written to {output}", {"labels": len(rows),
                                                             "output": str(output)})
