"""``python -m core``: every pipeline step from the shell, on the workspace named by RAGTUNE_HOME.

Each command ends with a one-line summary, or with ``--json`` a JSON object on the last line of
stdout; errors are one line on stderr and a non-zero exit.

Commands are grouped by noun where a verb applies to several things (``list corpora|pairs|runs``,
``export beir|pairs|model``, ``pairs import|generate|split``). A command is one ``@command``
function next to the code that runs it; its words place it in the tree, so adding one is a
local change::

    group("label", "label questions with the passages that answer them")

    @command("label import", "read a file of labelled questions")
    def _label_import_parser(p: argparse.ArgumentParser) -> None:
        p.add_argument("file")
        p.set_defaults(run=run_label_import)
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from core.documents.corpus import ChunkSettings
from core.documents.pairs import (
    BUILTIN_PAIR_SET,
    GENERATOR_STYLES,
    SPLIT_SEED,
    TEST_FRACTION,
    LLMConfig,
    PseudoQueryConfig,
    llm_pair_set_name,
)
from core.training import running
from core.training.config import LOSSES
from core.training.plan import MAX_EPOCHS, MAX_EPOCHS_SMALL_SET, PEOPLE_TEST_MIN, budget_defaults
from core.workspace import ranges
from core.workspace.errors import WorkspaceError, explain_db_error, explain_out_of_room, is_out_of_room
from core.workspace.outputs import write_text
from core.workspace.store import Store, default_home

# Command words ("export beir") -> help and the function that adds its arguments; None for a
# group, which only holds commands. In registration order, which is the order of --help.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None] | None]] = {}
JSON_FLAG = argparse.ArgumentParser(add_help=False)
JSON_FLAG.add_argument("--json", action="store_true", help="print a JSON object as the last line")
# Old spellings, accepted for one release with a notice: old words -> new words.
ALIASES = {("corpora",): ("list", "corpora"), ("runs",): ("list", "runs"),
           ("pairs", "list"): ("list", "pairs"), ("pairs", "export"): ("export", "pairs"),
           ("export-model",): ("export", "model")}


def command(words: str, help: str):
    """Register a command; its configuring function adds the arguments and sets ``run``."""
    def register(fn):
        COMMANDS[words] = (help, fn)
        return fn
    return register


def group(words: str, help: str) -> None:
    """Register a group of commands: ``pairs`` for ``pairs import``, ``pairs split``…"""
    COMMANDS[words] = (help, None)


def say(line: str) -> None:
    """A line for the person at the terminal, on stderr so a --json reader gets only JSON."""
    print(line, file=sys.stderr)


def finish(args, summary: str, payload: dict) -> None:
    print(json.dumps(payload) if getattr(args, "json", False) else summary)


def _progress(label: str) -> Callable[[float], None]:
    def report(fraction: float) -> None:
        if sys.stderr.isatty():
            print(f"\r{label} {fraction:6.1%}", end="" if fraction < 1 else "\n", file=sys.stderr)
    return report


# -- corpus --------------------------------------------------------------------------------
@command("ingest", "chunk files, folders, or a BEIR folder or its .zip into a corpus")
def _ingest_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("--corpus", help="corpus name (default: the first file or folder name)")
    p.add_argument("--chunk-size", type=ranges.arg(ranges.count), default=ChunkSettings.size,
                   help="tokens per chunk")
    p.add_argument("--overlap", type=ranges.arg(ranges.count), default=ChunkSettings.overlap,
                   help="tokens shared by neighbouring chunks")
    p.add_argument("--model", help="model whose tokenizer measures chunks")
    p.set_defaults(run=run_ingest)


def run_ingest(args) -> None:
    from core.documents.beir import import_beir, parse_beir, zip_files
    from core.documents.corpus import ChunkSettings, folder_files, ingest, load_file
    from core.workspace import models
    store = Store()
    settings = ChunkSettings(args.chunk_size, args.overlap)
    settings.validate()
    paths = [Path(p) for p in args.paths]
    for path in paths:
        if not path.exists():
            raise WorkspaceError(f"{path} does not exist; check the path")
    name = args.corpus or paths[0].stem or "corpus"
    beir_zip = paths[0].suffix.lower() == ".zip" and paths[0].is_file()
    if len(paths) == 1 and (beir_zip or (paths[0] / "corpus.jsonl").is_file()):
        source = (parse_beir(zip_files(paths[0].name, paths[0].read_bytes()), paths[0].name)
                  if beir_zip else paths[0])
        report, pair_sets = import_beir(store, source, name, models.token_counter(args.model),
                                        settings)
        return finish(args, f"corpus {name!r}: {report.summary()}; pair sets {pair_sets}",
                      {"corpus_id": report.corpus_id, "documents": report.documents,
                       "chunks": report.chunks, "duplicates": report.duplicates,
                       "pair_sets": pair_sets, **report.label_counts()})
    files = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found, skipped = folder_files(path)
        files += found
        if skipped:
            print(f"skipped {len(skipped)} hidden files or links that lead outside {path}",
                  file=sys.stderr)
    documents = [d for f in files for d in load_file(f.name, f.read_bytes())]
    report = ingest(store, name, documents, models.token_counter(args.model), settings,
                    lambda done, total: _progress("chunking")(done / total))
    finish(args, f"corpus {name!r}: {report.summary()}",
           {"corpus_id": report.corpus_id, "documents": report.documents,
            "chunks": report.chunks, "duplicates": report.duplicates})


@command("demo", "load the demo corpus: Python standard-library docstrings with their summaries")
def _demo_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=ranges.arg(ranges.count), help="use only the first N docstrings")
    p.set_defaults(run=run_demo)


def run_demo(args) -> None:
    from core.documents.beir import load_demo
    from core.workspace import models
    if args.limit is not None and args.limit < 1:
        raise WorkspaceError(f"--limit {args.limit} would load no docstrings; use 1 or more, "
                             "or leave it out for all of them")
    store = Store()
    corpus_id, pair_set_id = load_demo(store, models.token_counter(), args.limit)
    counts = store.split_counts(pair_set_id)
    finish(args, f"demo corpus {corpus_id}, pair set {pair_set_id}: {counts}",
           {"corpus_id": corpus_id, "pair_set_id": pair_set_id, "split": counts})


@command("list", "list everything in the workspace: corpora, pair sets, jobs, evaluations")
def _list_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_list)


@command("list corpora", "the corpora and their pair sets")
def _corpora_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_corpora)


@command("list pairs", "pair sets with their split counts")
def _pairs_list_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", help="only the pair sets of this corpus")
    p.set_defaults(run=run_pairs_list)


@command("list runs", "every evaluation and fine-tuning run with its metrics per dimension")
def _runs_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_runs)


def run_list(args) -> None:
    from core.training.jobs import all_jobs
    from core.workspace.disk import workspace_size
    from core.workspace.wording import plural
    store = running.open_workspace()
    corpora = store.corpora()
    pair_sets = store.pair_set_summaries()
    jobs = all_jobs(store)
    evaluations = store.evaluation_summaries()
    size = workspace_size(store)
    if not args.json:
        for c in corpora:
            print(f"corpus {c.id}\t{c.name}\t{c.stats.get('documents', 0)} documents\t"
                  f"{c.stats.get('chunks', 0)} chunks")
        _print_pair_sets(pair_sets)
        for j in jobs:
            print(f"job {j.id}\t{j.kind}\t{j.state}\tpair set {j.config.get('pair_set_id')}\t"
                  f"{j.error or j.status}")
        for e in evaluations:
            print(f"evaluation {e.id}\tpair set {e.pair_set_id}\t{e.label}\t{e.model}")
        print(f"workspace {store.home}\t{size.summary()}")
    finish(args, ", ".join((plural(len(corpora), "corpus", "corpora"),
                            plural(len(pair_sets), "pair set"), plural(len(jobs), "job"),
                            plural(len(evaluations), "evaluation"))),
           {"corpora": [asdict(c) for c in corpora], "pair_sets": [asdict(s) for s in pair_sets],
            "jobs": [{"id": j.id, "kind": j.kind, "state": j.state, "progress": j.progress,
                      "pair_set_id": j.config.get("pair_set_id"), "error": j.error}
                     for j in jobs],
            "evaluations": [asdict(e) for e in evaluations],
            "size": size.to_json()})


def _print_pair_sets(pair_sets) -> None:
    for s in pair_sets:
        split = ", ".join(f"{n} {k}" for k, n in sorted(s.split.items()))
        print(f"pair set {s.id}\t{s.corpus}\t{s.name}\t{s.source}\t{split}")


def run_corpora(args) -> None:
    store = Store()
    listing = []
    for c in store.corpora():
        sets = [{"id": s.id, "name": s.name, "source": s.source, "split": store.split_counts(s.id)}
                for s in store.pair_sets(c.id)]
        listing.append({"id": c.id, "name": c.name, **c.stats, "pair_sets": sets})
        if not args.json:
            print(f"{c.id}\t{c.name}\t{c.stats.get('chunks', 0)} chunks")
            for s in sets:
                print(f"  pair set {s['id']}\t{s['name']}\t{s['source']}\t{s['split']}")
    finish(args, f"{len(listing)} corpora", {"corpora": listing})


# -- pairs ---------------------------------------------------------------------------------
group("pairs", "import, generate or split question→passage pairs")


@command("pairs import", "import a CSV/JSONL/Parquet file of query/passage pairs")
def _pairs_import_parser(imp: argparse.ArgumentParser) -> None:
    imp.add_argument("file")
    imp.add_argument("--corpus", required=True, help="corpus name (created if missing)")
    imp.add_argument("--name", help="pair set name (default: the file name)")
    imp.add_argument("--query-column")
    imp.add_argument("--passage-column")
    imp.set_defaults(run=run_pairs_import)


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


@command("pairs split", "split a pair set into train and test without leakage")
def _pairs_split_parser(spl: argparse.ArgumentParser) -> None:
    spl.add_argument("pair_set", type=ranges.arg(ranges.row_id))
    spl.add_argument("--test-fraction", type=ranges.arg(ranges.share), default=TEST_FRACTION)
    spl.add_argument("--seed", type=ranges.arg(ranges.seed), default=SPLIT_SEED)
    spl.set_defaults(run=run_pairs_split)


def _corpus_id(store: Store, ref: str, create: bool = False) -> int:
    """``--corpus`` by name or id (``Store.find_corpus``); with ``create``, a new corpus named
    ``ref`` when none is, under the one name rule of ``Store.create_corpus``."""
    try:
        return store.find_corpus(ref).id
    except WorkspaceError:
        if not create:
            raise
    return store.create_corpus(ref, {"chunking": asdict(ChunkSettings())})


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


def run_pairs_import(args) -> None:
    from core.documents.pairs import import_pairs, read_pairs_file
    path = input_file(args.file, PAIRS_FILE)
    rows = read_pairs_file(path.name, path.read_bytes(), args.query_column, args.passage_column)
    store = Store()
    with store.transaction():
        report = import_pairs(store, _corpus_id(store, args.corpus, create=True),
                              args.name or path.stem, rows)
    finish(args, report.summary(), asdict(report))


def run_pairs_generate(args) -> None:
    from core.documents.pairs import estimate, generate_builtin, generate_llm
    store = Store()
    corpus_id = _corpus_id(store, args.corpus)
    if args.method == "builtin":
        pair_set_id = generate_builtin(store, corpus_id, args.name or BUILTIN_PAIR_SET,
                                       PseudoQueryConfig(per_chunk=args.per_chunk, seed=args.seed,
                                                         style=args.style,
                                                         filter_top_k=args.filter_top_k),
                                       lambda stage, f: _progress(stage)(f))
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
        print(guess.summary(), file=sys.stderr)
        report = generate_llm(store, corpus_id, name, config,
                              lambda d, t: _progress("questions")(d / t))
        pair_set_id = report.pair_set_id
    n = len(store.pairs(pair_set_id))
    finish(args, f"pair set {pair_set_id}: {n} pairs", {"pair_set_id": pair_set_id, "pairs": n})
    if args.method == "llm" and report.failed:  # what was stored is kept, but it is no success
        raise WorkspaceError(report.summary())


def run_pairs_list(args) -> None:
    store = Store()
    pair_sets = store.pair_set_summaries(_corpus_id(store, args.corpus) if args.corpus else None)
    if not args.json:
        _print_pair_sets(pair_sets)
    finish(args, f"{len(pair_sets)} pair sets", {"pair_sets": [asdict(s) for s in pair_sets]})


def run_pairs_split(args) -> None:
    from core.documents.pairs import split
    report = split(Store(), args.pair_set, args.test_fraction, args.seed)
    finish(args, f"train {report.train} pairs ({report.train_queries} queries), "
                 f"test {report.test} pairs ({report.test_queries} queries)", report.__dict__)


def run_pairs_export(args) -> None:
    from core.documents.pairs import export_jsonl
    text = export_jsonl(Store(), args.pair_set, args.split)
    if not text:
        which = f"{args.split} " if args.split else ""
        raise WorkspaceError(f"pair set {args.pair_set} has no {which}pairs, so nothing was "
                             "written" + ("; split it first (python -m core pairs split)"
                                          if args.split else ""))
    write_text(args.output, text, "pairs.jsonl")  # makes its folder, like export beir
    finish(args, f"{text.count(chr(10))} pairs written to {args.output}",
           {"pairs": text.count("\n"), "output": args.output})


group("export", "write workspace data as files: a BEIR folder, pairs as JSONL, a model as a zip")


@command("export beir", "a pair set with its corpus as a BEIR folder")
def _export_beir_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="DIR")
    p.add_argument("--pairs", type=ranges.arg(ranges.row_id), required=True, metavar="PAIR_SET_ID")
    p.set_defaults(run=run_export_beir)


def run_export_beir(args) -> None:
    from core.documents.beir import export_beir
    counts = export_beir(Store(), args.pairs, Path(args.folder))
    finish(args, f"BEIR folder {args.folder}: {counts}", counts)


@command("export pairs", "a pair set as JSONL")
def _export_pairs_parser(exp: argparse.ArgumentParser) -> None:
    exp.add_argument("pair_set", type=ranges.arg(ranges.row_id))
    exp.add_argument("--split", choices=["train", "test"])
    exp.add_argument("--output", required=True)
    exp.set_defaults(run=run_pairs_export)


@command("export model", "a fine-tuned model (sentence-transformers folder, card) as a zip")
def _export_model_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a fine-tune run id such as j3 (or the job id 3)")
    p.add_argument("--zip", required=True, metavar="FILE", help="the zip file to write")
    p.set_defaults(run=run_export_model)


@command("evaluate", "measure retrieval at every embedding dimension (encode once, score all)")
def _evaluate_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", nargs="?", metavar="DATA_DIR", help="a BEIR-layout folder")
    p.add_argument("--pairs", type=ranges.arg(ranges.row_id), metavar="PAIR_SET_ID",
                   help="instead of DATA_DIR: the test split of a workspace pair set (stored)")
    p.add_argument("--model", help="bundled name, model folder or hub ID")
    p.add_argument("--dims", help="comma-separated, e.g. 384,256,128,64,32 (default: halvings)")
    p.add_argument("--split", default="test", help="qrels split of DATA_DIR (default: test)")
    p.set_defaults(run=run_evaluate)


def parse_dims(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(d) for d in text.split(",") if d.strip()]
    except ValueError:
        raise WorkspaceError(f"--dims {text!r} must be whole numbers separated by commas") from None


def run_evaluate(args) -> None:
    from core.deciding.compare import ceiling_note, trust_note
    from core.documents.beir import retrieval_set
    from core.measuring.evaluate import RetrievalSet, evaluate_named, evaluation_label, save
    if (args.data_dir is None) == (args.pairs is None):
        raise WorkspaceError("give either a BEIR folder or --pairs PAIR_SET_ID")
    store = Store()
    if args.pairs is not None:
        data = RetrievalSet.from_pair_set(store, args.pairs)
    else:
        if not Path(args.data_dir).is_dir():
            raise WorkspaceError(f"{args.data_dir} is not a folder; give a BEIR-layout folder")
        data = retrieval_set(Path(args.data_dir), args.split)
    result = evaluate_named(args.model, data, parse_dims(args.dims), store,
                            lambda stage, f: _progress(stage)(f))
    note = ceiling = None
    if args.pairs is not None:
        save(store, result, args.pairs, evaluation_label(args.model))
        note = trust_note(store.pair_set(args.pairs))
        ceiling = ceiling_note(store.pair_set(args.pairs), result.metrics)
        for line in (note, ceiling):
            if line:
                print(line, file=sys.stderr)
    for reason, n in result.skipped.items():
        print(f"skipped {n} {reason}", file=sys.stderr)
    if not args.json:
        print("dim\t" + "\t".join(("ndcg@10", "mrr@10", "map@100", "recall@10")))
        for dim, m in result.metrics.items():
            print(f"{dim}\t" + "\t".join(f"{m[k]:.4f}" for k in ("ndcg@10", "mrr@10", "map@100", "recall@10")))
    best = result.metrics[result.dims[0]]["ndcg@10"]
    finish(args, f"{result.queries} queries over {result.corpus} passages in {result.seconds:.1f} s; "
                 f"NDCG@10 {best:.4f} at {result.dims[0]} dims", {**result.to_json(), "note": note, "ceiling": ceiling})


@command("train", "baseline eval, Matryoshka fine-tuning and final eval (works under torchrun)")
def _train_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", required=True, metavar="FILE", help="JSONL/CSV/Parquet of query/positive pairs")
    p.add_argument("--eval", required=True, metavar="DATA_DIR", help="BEIR folder with the test queries")
    p.add_argument("--config", metavar="JSON", help="a job config exported from the app")
    p.add_argument("--model")
    p.add_argument("--epochs", type=ranges.arg(ranges.count), help="default: as many as the time "
                   f"budget allows, up to {MAX_EPOCHS} ({MAX_EPOCHS_SMALL_SET} for a small set)")
    p.add_argument("--batch-size", type=ranges.arg(ranges.count))
    p.add_argument("--learning-rate", type=ranges.arg(ranges.share))
    p.add_argument("--max-pairs", type=ranges.arg(ranges.count), help="default: as many as the time budget allows")
    p.add_argument("--max-seq-length", type=ranges.arg(ranges.count), help="default: fits 95%% of the passages")
    p.add_argument("--budget-minutes", type=ranges.arg(ranges.minutes), help="training time to plan for "
                   f"(default: {budget_defaults()})")
    p.add_argument("--generated", action="store_true", help="the pairs were generated, not "
                   "written by people (a gentler default learning rate)")
    p.add_argument("--dims", help="comma-separated, largest first")
    p.add_argument("--loss", choices=LOSSES)
    p.add_argument("--output", default="ragtune-model", help="folder for checkpoints and the model")
    p.set_defaults(run=run_train)


class TerminalReporter:
    """Progress for a person at a terminal (stderr), quiet on every rank but the first."""

    def __init__(self):
        self.quiet = int(os.environ.get("RANK", "0")) != 0

    def status(self, text: str) -> None:
        self.log(text)

    def progress(self, fraction: float) -> None:
        _progress("training")(fraction)

    def log(self, line: str) -> None:
        if not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def point(self, series: str, step: int, value: float, epoch: float | None = None) -> None:
        if series == "loss":
            self.log(f"step {step}: loss {value:.4f}")

    def should_stop(self) -> bool:
        return False


def run_train(args) -> None:
    from core.training.device import end_distributed
    try:
        train_from_files(args)
    finally:
        end_distributed()


def train_from_files(args) -> None:
    from core.documents.beir import retrieval_set
    from core.documents.pairs import file_is_generated, read_pairs_file
    from core.training.config import TrainConfig
    from core.training.finetune import held_out, run_experiment
    from core.training.train import NO_GAIN, train
    settings = {}
    if args.config:
        try:
            settings = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise WorkspaceError(f"{args.config}: not a JSON training config; download one from "
                                 "the Fine-tune page") from None
        if not isinstance(settings, dict):
            raise WorkspaceError(f"{args.config}: a training config is a JSON object")
        settings["pair_set_id"] = None
    overrides = {"model": args.model, "epochs": args.epochs, "batch_size": args.batch_size,
                 "learning_rate": args.learning_rate, "max_pairs": args.max_pairs,
                 "max_seq_length": args.max_seq_length, "budget_minutes": args.budget_minutes,
                 "generated_pairs": args.generated or None,
                 "dims": parse_dims(args.dims), "loss": args.loss}
    path = input_file(args.pairs, PAIRS_FILE)
    raw = path.read_bytes()
    pairs = read_pairs_file(path.name, raw)
    if "generated_pairs" not in settings and file_is_generated(path.name, raw):
        overrides["generated_pairs"] = True  # pairs export wrote where the pairs came from
    config = TrainConfig.from_dict({**settings, **{k: v for k, v in overrides.items() if v is not None}})
    if not Path(args.eval).is_dir():
        raise WorkspaceError(f"{args.eval} is not a folder; give a BEIR-layout folder")
    data = retrieval_set(Path(args.eval))
    reporter, output = TerminalReporter(), Path(args.output)
    if reporter.quiet:  # other ranks of a distributed run only train, on rank 0's split
        held, validation = held_out(config, pairs, data)
        train(config, held.train, validation, output, reporter, data.corpus)
        return
    result = run_experiment(config, pairs, data, output, reporter, None, data.corpus)
    summary = result.to_json()
    gains = ", ".join(f"{d}d {summary['baseline'][d]['ndcg@10']:.4f}→{m['ndcg@10']:.4f}"
                      for d, m in (summary["finetuned"] or {}).items())
    if result.kept_base:
        print(f"{NO_GAIN}: the base model is kept", file=sys.stderr)
    if result.general:  # beside the gain: what it cost outside the corpus, and the α kept
        say(result.general.headline())
    finish(args, f"NDCG@10 {gains}; model in {result.training.model_path}", summary)


@command("decide", "the RAG-or-fine-tuning questionnaire: print it, or score answers")
def _decide_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("answers", nargs="*", metavar="ANSWERS",
                   help='a JSON file of question id → option id (e.g. {"knowledge": "large"}), '
                        "- to read it from stdin, and/or question=option arguments")
    p.add_argument("--questions", action="store_true", help="print the questions and options")
    p.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown")
    p.set_defaults(run=run_decide)


def run_decide(args) -> None:
    from core.deciding.decision import UnreadableAnswers, load, read_answers, recommend, summary, to_markdown, to_text
    questionnaire = load()
    if args.questions and args.answers:
        raise UnreadableAnswers("--questions prints the questionnaire and scores nothing; "
                                "drop --questions to score the answers, or drop the answers")
    if not args.answers:
        if not args.json:
            for q in questionnaire.questions:
                print(f"{q.id}: {q.text}")
                for o in q.options:
                    print(f"    {o.id}: {o.label}")
        return finish(args, f"{len(questionnaire.questions)} questions", questionnaire.to_json())
    answers = read_answers(args.answers, sys.stdin.buffer)
    result = recommend(answers, questionnaire)
    if args.markdown:
        write_text(args.markdown, to_markdown(answers, result, questionnaire), "report.md")
    if not args.json:
        print(to_text(result))
    finish(args, summary(result), result.to_json())


# -- runs, export and foreground fine-tuning --------------------------------------------------
def run_runs(args) -> None:
    from core.deciding.compare import comparison
    from core.using.runs import list_runs
    store = running.open_workspace()
    runs = list_runs(store)
    matters = comparison(store, runs=runs)
    if not args.json:
        for r in runs:
            scores = ", ".join(f"{d}d {v:.4f}" for d, v in r.ndcg().items()) or "no metrics yet"
            print(f"{r.id}\t{r.kind}\t{r.state}\t{r.shown_name}\t{r.model}\t{r.pair_set}\t"
                  f"NDCG@10 {scores}")
        if matters.pair_set_id is not None:
            print(matters.headline())
    finish(args, f"{len(runs)} runs", {"runs": [r.to_json() for r in runs],
                                       "comparison": matters.to_json()})


def run_export_model(args) -> None:
    from core.using.export import export_model
    output = Path(args.zip)
    files = export_model(Store(), args.run_id, output)
    finish(args, f"{files} files written to {output}", {"zip": str(output), "files": files})


@command("delete", "delete a run, pair set or corpus with everything only it used")
def _delete_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["run", "pair-set", "corpus"])
    p.add_argument("ref", metavar="ID", help="a run id such as j3 or e5, a pair set's id, or "
                                              "a corpus's name or id")
    p.set_defaults(run=run_delete)


def run_delete(args) -> None:
    """The pages' delete: refused, with the same reason, while a queued or running job uses
    what it would remove."""
    from core.using import runs
    store = running.open_workspace()
    if args.what == "run":
        report = runs.delete_run(store, args.ref)
    else:
        report = (runs.delete_pair_set(store, ranges.row_id(args.ref, "pair-set id"))
                  if args.what == "pair-set" else
                  runs.delete_corpus(store, store.find_corpus(args.ref).id))
    finish(args, f"deleted {report.summary()}", {"deleted": report.summary(), "runs": report.runs,
                                                "questions": report.questions,
                                                "labels": report.labels})


@command("finetune", "fine-tune on a workspace pair set in the foreground, stored as a run")
def _finetune_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=ranges.arg(ranges.row_id), required=True, metavar="PAIR_SET_ID")
    p.add_argument("--model", help="base model (default: the bundled one)")
    p.add_argument("--epochs", type=ranges.arg(ranges.count), help="default: as many as the time budget allows")
    p.add_argument("--max-pairs", type=ranges.arg(ranges.count), help="default: as many as the time budget allows")
    p.add_argument("--batch-size", type=ranges.arg(ranges.count))
    p.add_argument("--max-seq-length", type=ranges.arg(ranges.count))
    p.set_defaults(run=run_finetune)


def run_finetune(args) -> None:
    """Submit the same job the Fine-tune page submits, then run it here; Ctrl-C asks it to
    stop at its next step, like the page's Cancel button."""
    from core.documents.pairs import is_generated
    from core.training.config import TrainConfig
    store = running.open_workspace()
    settings = {"model": args.model, "pair_set_id": args.pairs, "epochs": args.epochs,
                "max_pairs": args.max_pairs, "batch_size": args.batch_size,
                "max_seq_length": args.max_seq_length,
                # as the page does: generated pairs get the gentler plan
                "generated_pairs": is_generated(store.pair_set(args.pairs))}
    config = TrainConfig.from_dict({k: v for k, v in settings.items() if v is not None})
    job_id, result = running.run_here(store, "train", json.loads(config.to_json()), say, sys.stderr.isatty())
    gains = ", ".join(f"{d}d {result['baseline'][d]['ndcg@10']:.4f}→{m['ndcg@10']:.4f}"
                      for d, m in (result.get("finetuned") or {}).items())
    if result.get("general"):  # beside the gain: what it cost outside the corpus, and the α kept
        say(result["general"]["headline"])
    finish(args, f"run j{job_id}: NDCG@10 {gains}; model in {result.get('model_path')}",
           {"run": f"j{job_id}", "job_id": job_id, "state": "succeeded", **result})


@command("resume", "continue an interrupted, failed or canceled fine-tune or documents-only run "
                   "here, from its last checkpoint")
def _resume_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a run id such as j3 (or the job id 3)")
    p.set_defaults(run=run_resume)


def run_resume(args) -> None:
    """The Fine-tune page's Resume, run in the foreground like ``finetune``."""
    from core.training import jobs
    from core.using.runs import MODEL_RUNS, get_run
    store = running.open_workspace()
    run = get_run(store, args.run_id)
    if run.kind not in MODEL_RUNS or run.job_id is None:
        raise WorkspaceError(f"run {run.id} is an evaluation, not a job; only fine-tune and "
                             "documents-only runs can be resumed")
    with store.transaction():  # queued and claimed at once: no server's runner takes it between
        jobs.resume(store, run.job_id)
        if jobs.claim(store, run.job_id) is None:
            raise WorkspaceError(f"job {run.job_id} is held by another process; follow it on "
                                 "the Fine-tune page")
    result = running.run_claimed(store, run.job_id, say, sys.stderr.isatty())
    finish(args, f"run {run.id}: succeeded; model in {result.get('model_path')}",
           {"run": run.id, "job_id": run.job_id, "state": "succeeded", **result})


@command("tune", "documents only: the best rotation or model a corpus alone can justify")
def _tune_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.add_argument("--model", help="base model (default: the bundled one)")
    p.add_argument("--budget-minutes", type=ranges.arg(ranges.minutes), help="training time for the fine-tuned "
                   "candidate, tried only with --questions (default: the plan's)")
    p.add_argument("--questions", type=ranges.arg(ranges.row_id), metavar="PAIR_SET_ID", help="a pair set of people's "
                   f"questions on the corpus ({PEOPLE_TEST_MIN} or more) to judge every candidate "
                   "on (default: the corpus's people's questions once they make a test set)")
    p.add_argument("--no-questions", action="store_true", help="documents only, even where "
                   "people's questions could judge")
    p.set_defaults(run=run_tune)


def run_tune(args) -> None:
    from core.training.tune import DOCUMENTS_ONLY_NOTE, hubness_line, score_note
    from core.using.label import ready_people_set
    store = running.open_workspace()
    corpus = store.find_corpus(args.corpus)
    if args.questions is not None and args.no_questions:
        raise WorkspaceError("give --questions or --no-questions, not both")
    people = None if args.no_questions else ready_people_set(store, corpus.id)
    questions = args.questions if args.questions is not None else people.id if people else None
    config = {"corpus_id": corpus.id, "model": args.model, "budget_minutes": args.budget_minutes,
              "questions": questions}
    job_id, result = running.run_here(store, "tune", {k: v for k, v in config.items() if v is not None}, say,
                                        sys.stderr.isatty())
    if not args.json:
        for line in (DOCUMENTS_ONLY_NOTE, score_note(result["judged_by"]),
                     hubness_line(result.get("hubness", {}))):
            if line:
                print(line, file=sys.stderr)
        for c in result["candidates"]:
            scores = ", ".join(f"{d}d {v:.3f}" for d, v in c["scores"].items()) or "–"
            print(f"{c['name']}\t{scores}\t{c['reason'] or 'eligible'}", file=sys.stderr)
    finish(args, f"run j{job_id}: kept {result['kept']} (judged by {result['judged_by']}); "
                 f"model in {result['model_path']}",
           {"run": f"j{job_id}", "job_id": job_id, **result})


@command("rotate", "save the model rotated by a corpus's principal axes (no training)")
def _rotate_parser(p: argparse.ArgumentParser) -> None:
    from core.training.rotate import DEFAULT_KIND, KINDS
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.add_argument("--model", help="base model (default: the bundled one)")
    p.add_argument("--kind", choices=KINDS, default=DEFAULT_KIND,
                   help="rotation (default): full size kept exactly; pca: centred; whitened")
    p.add_argument("--output", metavar="DIR", help="model folder (default: in the workspace)")
    p.set_defaults(run=run_rotate)


def run_rotate(args) -> None:
    from core.training.rotate import rotate_corpus
    store = Store()
    path, rotation = rotate_corpus(store, store.find_corpus(args.corpus).id,
                                   args.model, args.kind, Path(args.output) if args.output else None)
    finish(args, f"{rotation.summary()}; model in {path}",
           {"model_path": str(path), "kind": rotation.kind,
            "variance": [round(float(v), 6) for v in rotation.variance[:128]]})


# -- people's questions and significance -----------------------------------------------------
group("label", "import people's questions, label them against a corpus, export the labels")


@command("label import", "add questions (without answers) from a .txt (one per line) or a "
                         "CSV/JSONL/Parquet question column")
def _label_import_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.set_defaults(run=run_label_import)


@command("label export", "write the labels as JSONL (query, passage, relevance: 2 relevant, "
                         "1 partly)")
def _label_export_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.add_argument("--output", required=True, metavar="FILE")
    p.set_defaults(run=run_label_export)


@command("label start", "label the open questions here, one at a time, with the keyboard")
def _label_start_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.set_defaults(run=run_label_start)


def run_label_import(args) -> None:
    from core.using.label import add_questions, read_questions
    path = input_file(args.file, "a .txt of questions, one per line, or a CSV/JSONL/Parquet "
                                 "file with a question column")
    store = Store()
    corpus_id = store.find_corpus(args.corpus).id
    report = add_questions(store, corpus_id, read_questions(path.name, path.read_bytes()))
    finish(args, report.summary(), asdict(report))


def run_label_export(args) -> None:
    from core.using.label import export_labels
    store = Store()
    rows = export_labels(store, store.find_corpus(args.corpus).id)
    if not rows:
        raise WorkspaceError(f"corpus {args.corpus!r} has no labelled questions yet, so nothing "
                             "was written; label some with python -m core label start")
    output = Path(args.output)
    write_text(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
               "labels.jsonl")
    finish(args, f"{len(rows)} labels written to {output}", {"labels": len(rows),
                                                             "output": str(output)})


LABEL_KEYS = ("numbers mark a passage (again: partly relevant, a third time: clear) · "
              "Enter: done, next · n: none of these · s: skip · u: undo · /words: search · q: quit")


def run_label_start(args) -> None:
    """The terminal twin of the Label page: the same questions, pool, keys and saved state."""
    from core.using import label
    store = Store()
    corpus_id = store.find_corpus(args.corpus).id
    fine_tuned = label.fine_tuned_model(store, corpus_id)
    if label.current(store, corpus_id) is not None:  # the slow part, once, with a count
        label.prepare(store, corpus_id, fine_tuned, lambda stage, f: _progress(stage)(f))
    print(LABEL_KEYS, file=sys.stderr)
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
            print(f"! {_one_line(e)}", file=sys.stderr)
    done = label.progress(store, corpus_id)
    finish(args, done.summary(), {**asdict(done), "done": done.done})


@command("compare", "compare two runs question by question: NDCG@10 difference, its "
                    "bootstrap interval, wins and losses at every dimension")
def _compare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", nargs="?", help="a run id from python -m core list "
                   "runs (e3, j2); without both: the base model against the best other model on "
                   "the best test set")
    p.add_argument("run_b", metavar="RUN_B", nargs="?")
    p.add_argument("--corpus", metavar="NAME_OR_ID", help="without runs: this corpus's "
                   "comparison (default: the corpus of the newest measured run)")
    p.set_defaults(run=run_compare)


def run_compare(args) -> None:
    from core.deciding.compare import compare_evaluations, comparison
    from core.using.runs import evaluation_of, get_run
    store = Store()
    matters = None
    if args.run_a and args.run_b:
        a, b = get_run(store, args.run_a), get_run(store, args.run_b)
    elif args.run_a or args.run_b:
        raise WorkspaceError("name two runs to compare (python -m core compare e1 j2), or none "
                             "for the base model against the best other model")
    else:
        corpus_id = store.find_corpus(args.corpus).id if args.corpus else None
        matters = comparison(store, corpus_id)
        if matters.base is None or matters.best is None:
            raise WorkspaceError(f"{matters.headline()} Measure the base model and another model "
                                 "on one test set first (python -m core evaluate --pairs ID)")
        a, b = matters.base, matters.best
        if not args.json:
            print(matters.headline())
    found = compare_evaluations(evaluation_of(store, a), evaluation_of(store, b))
    if not args.json:
        for dim, d in found.items():
            print(f"{dim}d\t{d.summary()}")
    full, d = next(iter(found.items()))
    finish(args, f"{b.id} vs {a.id} at {full}d: NDCG@10 {d.summary()}",
           {"a": a.id, "b": b.id, "metric": "ndcg@10",
            "dims": {str(dim): d.to_json() for dim, d in found.items()},
            **({"comparison": matters.to_json()} if matters else {})})


@command("merge", "interpolate a fine-tuned run with its base, (1 - α)·base + α·tuned, "
                  "into a model folder")
def _merge_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a fine-tuning run (j3)")
    p.add_argument("--alpha", required=True, metavar="A",
                   help="from 0 (the base model) to 1 (the fine-tuned one)")
    p.add_argument("--base", metavar="MODEL_OR_RUN",
                   help="the model at α = 0 (default: the one the run was trained from)")
    p.add_argument("--out", metavar="DIR", help="folder to write (default: merged-<α> beside "
                   "the run's model)")
    p.set_defaults(run=run_merge)


def run_merge(args) -> None:
    from core.training.merge import check_alpha
    from core.using.runs import merge_run
    path, base = merge_run(Store(), args.run_id, args.alpha, args.base, args.out)
    alpha = check_alpha(args.alpha)
    finish(args, f"saved the merge at α = {alpha:g} of {base} and run {args.run_id} to {path}",
           {"run": args.run_id, "alpha": alpha, "base": base, "path": str(path)})


# -- the parser ------------------------------------------------------------------------------
class OneLineParser(argparse.ArgumentParser):
    """Argument mistakes (a number out of range, a missing flag) as one line on stderr, like
    every other error of the CLI, instead of the usage block."""

    def error(self, message: str):
        print(f"error: {message}; see {self.prog} --help", file=sys.stderr)
        raise SystemExit(2)


def build_parser(prog: str = "python -m core") -> argparse.ArgumentParser:
    """The whole command tree from COMMANDS; ``parser.commands`` maps each command's words to
    its own parser (for help texts and argv_for)."""
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


def with_current_words(argv: list[str]) -> list[str]:
    """``argv`` with an old spelling replaced by today's, and a one-line notice on stderr.
    ``export --beir DIR --pairs N`` becomes ``export beir DIR --pairs N``."""
    for old, new in ALIASES.items():
        if tuple(argv[:len(old)]) == old:
            return _renamed(" ".join(old), " ".join(new), [*new, *argv[len(old):]])
    if argv[:1] == ["export"] and argv[1:2] and argv[1].startswith("-"):
        rest = argv[1:]
        for i, word in enumerate(rest):
            if word == "--beir" and i + 1 < len(rest):
                folder, rest = rest[i + 1], rest[:i] + rest[i + 2:]
            elif word.startswith("--beir="):
                folder, rest = word.partition("=")[2], rest[:i] + rest[i + 1:]
            else:
                continue
            return _renamed("export --beir DIR", "export beir DIR", ["export", "beir", folder, *rest])
    return argv


def _renamed(old: str, new: str, argv: list[str]) -> list[str]:
    print(f"note: '{old}' is now '{new}'; the old spelling goes in the next release", file=sys.stderr)
    return argv


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
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return getattr(e, "exit_code", 1)  # decide: unreadable answers exit 2
    except sqlite3.Error as e:  # locked, disk full, I/O error: the user's to fix, not a bug
        print(f"error: {explain_db_error(e, default_home() / 'ragtune.db')}", file=sys.stderr)
        return 1
    except (OSError, MemoryError) as e:
        if is_out_of_room(e):  # an export or a copy: say where, and what to do
            where = Path(getattr(e, "filename", None) or ".").resolve()
            print(f"error: {explain_out_of_room(where.name, where.parent)}", file=sys.stderr)
        else:
            print(f"error: {_one_line(e) or type(e).__name__}", file=sys.stderr)
        return 1
    return 0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
