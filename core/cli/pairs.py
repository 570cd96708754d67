"""``pairs …``: question→passage pairs imported, generated, split, exported, listed and deleted."""
from __future__ import annotations

import argparse
import os
from dataclasses import asdict
from pathlib import Path

from core.cli.base import (PAIRS_FILE, command, corpus_ref, deleted, finish, group, input_file, pair_set_arg,
                           pair_set_ref, print_pair_sets, progress, say)
from core.documents.llm import LLMConfig, llm_pair_set_name
from core.documents.pairs import SPLIT_SEED, TEST_FRACTION
from core.documents.pseudo import BUILTIN_PAIR_SET, GENERATOR_STYLES, PseudoQueryConfig
from core.training import running
from core.workspace import ranges
from core.workspace.errors import WorkspaceError
from core.workspace.outputs import write_text
from core.workspace.store import Store

group("pairs", "question→passage pairs: import, generate, split, export, list, delete")


@command("pairs list", "pair sets with their split counts")
def _pairs_list_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", help="only the pair sets of this corpus")
    p.set_defaults(run=run_pairs_list)


def run_pairs_list(args) -> None:
    store = Store()
    pair_sets = store.pair_set_summaries(corpus_ref(store, args.corpus) if args.corpus else None)
    if not args.json:
        print_pair_sets(pair_sets)
    finish(args, f"{len(pair_sets)} pair sets", {"pair_sets": [asdict(s) for s in pair_sets]})


@command("pairs import", "import a CSV/JSONL/Parquet file of query/passage pairs")
def _pairs_import_parser(imp: argparse.ArgumentParser) -> None:
    imp.add_argument("file")
    imp.add_argument("--corpus", required=True, help="corpus name (created if missing)")
    imp.add_argument("--name", help="pair set name (default: the file name)")
    imp.add_argument("--query-column")
    imp.add_argument("--passage-column")
    imp.set_defaults(run=run_pairs_import)


def run_pairs_import(args) -> None:
    from core.documents.pairs import import_pairs, read_pairs_file
    path = input_file(args.file, PAIRS_FILE)
    rows = read_pairs_file(path.name, path.read_bytes(), args.query_column, args.passage_column)
    store = Store()
    with store.transaction():
        report = import_pairs(store, corpus_ref(store, args.corpus, create=True),
                              args.name or path.stem, rows)
    finish(args, report.summary(), asdict(report))


@command("pairs generate", "generate queries for every chunk of a corpus")
def _pairs_generate_parser(gen: argparse.ArgumentParser) -> None:
    gen.add_argument("--corpus", required=True)
    gen.add_argument("--name", help=f"pair set name (default: {BUILTIN_PAIR_SET!r}, or "
                     f"{llm_pair_set_name('MODEL')!r}; an existing LLM set is resumed)")
    gen.add_argument("--method", choices=["builtin", "llm"], default="builtin",
                     help="builtin (default): offline questions, filtered by the base model; "
                          "llm: an OpenAI-compatible endpoint")
    gen.add_argument("--style", choices=GENERATOR_STYLES, default=PseudoQueryConfig.style,
                     help="builtin: question-shaped queries (default) or plain Inverse Cloze sentences")
    gen.add_argument("--filter-top-k", type=ranges.arg(ranges.count), default=PseudoQueryConfig.filter_top_k,
                     help="builtin: keep a pair only if the base model ranks its passage in the "
                          "top K (0: keep all)")
    gen.add_argument("--per-chunk", type=ranges.arg(ranges.count), default=PseudoQueryConfig.per_chunk)
    gen.add_argument("--seed", type=ranges.arg(ranges.seed), default=PseudoQueryConfig.seed)
    gen.add_argument("--base-url", default=LLMConfig.base_url)
    gen.add_argument("--llm-model", default=LLMConfig.model)
    gen.add_argument("--concurrency", type=ranges.arg(ranges.count), default=LLMConfig.concurrency)
    gen.add_argument("--max-chunks", type=ranges.arg(ranges.count))
    gen.add_argument("--estimate", action="store_true", help="only print the cost/time estimate")
    gen.set_defaults(run=run_pairs_generate)


def run_pairs_generate(args) -> None:
    from core.documents.llm import estimate, generate_llm
    from core.documents.pseudo import generate_builtin
    store = Store()
    corpus_id = corpus_ref(store, args.corpus)
    if args.method == "builtin":
        pair_set_id = generate_builtin(store, corpus_id, args.name or BUILTIN_PAIR_SET,
                                       PseudoQueryConfig(per_chunk=args.per_chunk, seed=args.seed,
                                                         style=args.style,
                                                         filter_top_k=args.filter_top_k),
                                       lambda stage, f: progress(stage)(f))
    else:
        key = os.environ.get("RAGTUNE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY", "")
        config = LLMConfig(args.base_url, args.llm_model, args.per_chunk, args.concurrency,
                           max_chunks=args.max_chunks, api_key=key)
        config.validate()  # before the estimate, which divides by the concurrency
        name = args.name or llm_pair_set_name(args.llm_model)
        existing = {s.name: s.id for s in store.pair_sets(corpus_id)}
        guess = estimate(store, corpus_id, config, existing.get(name))
        if args.estimate:
            return finish(args, guess.summary(), guess.__dict__)
        say(guess.summary())
        report = generate_llm(store, corpus_id, name, config,
                              lambda d, t: progress("questions")(d / t))
        pair_set_id = report.pair_set_id
    n = len(store.pairs(pair_set_id))
    finish(args, f"pair set {pair_set_id}: {n} pairs", {"pair_set_id": pair_set_id, "pairs": n})
    if args.method == "llm" and report.failed:  # what was stored is kept, but it is no success
        raise WorkspaceError(report.summary())


@command("pairs split", "split a pair set into train and test without leakage")
def _pairs_split_parser(spl: argparse.ArgumentParser) -> None:
    spl.add_argument("pair_set", type=pair_set_arg, metavar="PAIR_SET", help="its id or name")
    spl.add_argument("--test-fraction", type=ranges.arg(ranges.share), default=TEST_FRACTION)
    spl.add_argument("--seed", type=ranges.arg(ranges.seed), default=SPLIT_SEED)
    spl.set_defaults(run=run_pairs_split)


def run_pairs_split(args) -> None:
    from core.documents.pairs import split
    store = Store()
    report = split(store, pair_set_ref(store, args.pair_set).id, args.test_fraction, args.seed)
    finish(args, f"train {report.train} pairs ({report.train_queries} queries), "
                 f"test {report.test} pairs ({report.test_queries} queries)", report.__dict__)


@command("pairs export", "a pair set as JSONL (--output), or with its corpus as a BEIR folder (--beir)")
def _pairs_export_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("pair_set", type=pair_set_arg, metavar="PAIR_SET", help="its id or name")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--output", metavar="FILE", help="the JSONL file to write")
    where.add_argument("--beir", metavar="DIR", help="the BEIR folder to write (corpus, queries, qrels)")
    p.add_argument("--split", choices=["train", "test"], help="--output: only this split")
    p.set_defaults(run=run_pairs_export)


def run_pairs_export(args) -> None:
    from core.documents.beir import export_beir
    from core.documents.pairs import export_jsonl
    store = Store()
    pair_set = pair_set_ref(store, args.pair_set)
    if args.beir:
        if args.split:
            raise WorkspaceError("--split is for --output; a BEIR folder holds the test split's "
                                 "queries and the whole corpus")
        counts = export_beir(store, pair_set.id, Path(args.beir))
        return finish(args, f"BEIR folder {args.beir}: {counts}", counts)
    text = export_jsonl(store, pair_set.id, args.split)
    if not text:
        which = f"{args.split} " if args.split else ""
        raise WorkspaceError(f"pair set {pair_set.id} has no {which}pairs, so nothing was "
                             "written" + ("; split it first (python -m core pairs split)"
                                          if args.split else ""))
    write_text(args.output, text, "pairs.jsonl")  # makes its folder, like the BEIR export
    finish(args, f"{text.count(chr(10))} pairs written to {args.output}",
           {"pairs": text.count("\n"), "output": args.output})


@command("pairs delete", "delete a pair set with its runs and labels")
def _pairs_delete_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("pair_set", type=pair_set_arg, metavar="PAIR_SET", help="its id or name")
    p.set_defaults(run=run_pairs_delete)


def run_pairs_delete(args) -> None:
    """The page's delete: refused, with the same reason, while a queued or running job uses it."""
    from core.using.runs import delete_pair_set
    store = running.open_workspace()
    deleted(args, delete_pair_set(store, pair_set_ref(store, args.pair_set).id))
