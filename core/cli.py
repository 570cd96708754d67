"""``python -m core``: every pipeline step from the shell, on the workspace named by RAGTUNE_HOME.

Each command ends with a one-line summary, or with ``--json`` a JSON object on the last line of
stdout; errors are one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .pairs import GENERATOR_STYLES, PseudoQueryConfig
from .store import (Store, WorkspaceError, default_home, explain_db_error, explain_out_of_room,
                    is_out_of_room)

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {}
JSON_FLAG = argparse.ArgumentParser(add_help=False)
JSON_FLAG.add_argument("--json", action="store_true", help="print a JSON object as the last line")


def command(name: str, help: str):
    def register(fn):
        COMMANDS[name] = (help, fn)
        return fn
    return register


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
    p.add_argument("--chunk-size", type=int, default=256, help="tokens per chunk")
    p.add_argument("--overlap", type=int, default=32, help="tokens shared by neighbouring chunks")
    p.add_argument("--model", help="model whose tokenizer measures chunks")
    p.set_defaults(run=run_ingest)


def run_ingest(args) -> None:
    from . import models
    from .beir import import_beir, parse_beir, zip_files
    from .corpus import ChunkSettings, folder_files, ingest, load_file
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
                       "pair_sets": pair_sets})
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
                    _progress("chunking"))
    finish(args, f"corpus {name!r}: {report.summary()}",
           {"corpus_id": report.corpus_id, "documents": report.documents,
            "chunks": report.chunks, "duplicates": report.duplicates})


@command("demo", "load the demo corpus: Python standard-library docstrings with their summaries")
def _demo_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, help="use only the first N docstrings")
    p.set_defaults(run=run_demo)


def run_demo(args) -> None:
    from . import models
    from .beir import load_demo
    if args.limit is not None and args.limit < 1:
        raise WorkspaceError(f"--limit {args.limit} would load no docstrings; use 1 or more, "
                             "or leave it out for all of them")
    store = Store()
    corpus_id, pair_set_id = load_demo(store, models.token_counter(), args.limit)
    counts = store.split_counts(pair_set_id)
    finish(args, f"demo corpus {corpus_id}, pair set {pair_set_id}: {counts}",
           {"corpus_id": corpus_id, "pair_set_id": pair_set_id, "split": counts})


@command("corpora", "list the corpora and their pair sets")
def _corpora_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_corpora)


@command("list", "list everything in the workspace: corpora, pair sets, jobs, evaluations")
def _list_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_list)


def run_list(args) -> None:
    from .disk import workspace_size
    from .jobs import all_jobs
    from .workflow import plural
    store = Store()
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
@command("pairs", "import, generate, split, list or export question→passage pairs")
def _pairs_parser(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", parents=[JSON_FLAG], help="import a CSV/JSONL/Parquet file of query/passage pairs")
    imp.add_argument("file")
    imp.add_argument("--corpus", required=True, help="corpus name (created if missing)")
    imp.add_argument("--name", help="pair set name (default: the file name)")
    imp.add_argument("--query-column")
    imp.add_argument("--passage-column")
    imp.set_defaults(run=run_pairs_import)
    gen = sub.add_parser("generate", parents=[JSON_FLAG], help="generate queries for every chunk of a corpus")
    gen.add_argument("--corpus", required=True)
    gen.add_argument("--name", help="pair set name (an existing LLM set is resumed)")
    gen.add_argument("--method", choices=["builtin", "llm"], default="builtin",
                     help="builtin (default): offline questions, filtered by the base model; "
                          "llm: an OpenAI-compatible endpoint")
    gen.add_argument("--style", choices=GENERATOR_STYLES, default=PseudoQueryConfig.style,
                     help="builtin: question-shaped queries (default) or plain Inverse Cloze sentences")
    gen.add_argument("--filter-top-k", type=int, default=PseudoQueryConfig.filter_top_k,
                     help="builtin: keep a pair only if the base model ranks its passage in the "
                          "top K (0: keep all)")
    gen.add_argument("--per-chunk", type=int, default=2)
    gen.add_argument("--seed", type=int, default=13)
    gen.add_argument("--base-url", default="http://localhost:11434/v1")
    gen.add_argument("--llm-model", default="llama3.2")
    gen.add_argument("--concurrency", type=int, default=4)
    gen.add_argument("--max-chunks", type=int)
    gen.add_argument("--estimate", action="store_true", help="only print the cost/time estimate")
    gen.set_defaults(run=run_pairs_generate)
    spl = sub.add_parser("split", parents=[JSON_FLAG], help="split a pair set into train and test without leakage")
    spl.add_argument("pair_set", type=int)
    spl.add_argument("--test-fraction", type=float, default=0.2)
    spl.add_argument("--seed", type=int, default=42)
    spl.set_defaults(run=run_pairs_split)
    lst = sub.add_parser("list", parents=[JSON_FLAG], help="list pair sets with their split counts")
    lst.add_argument("--corpus", help="only the pair sets of this corpus")
    lst.set_defaults(run=run_pairs_list)
    exp = sub.add_parser("export", parents=[JSON_FLAG], help="write a pair set as JSONL")
    exp.add_argument("pair_set", type=int)
    exp.add_argument("--split", choices=["train", "test"])
    exp.add_argument("--output", required=True)
    exp.set_defaults(run=run_pairs_export)


def _corpus_id(store: Store, name: str, create: bool = False) -> int:
    if create and name not in {c.name for c in store.corpora()}:
        return store.create_corpus(name, {"chunking": {"size": 256, "overlap": 32}})
    return store.corpus(name).id


def run_pairs_import(args) -> None:
    from .pairs import import_pairs, read_pairs_file
    path = Path(args.file)
    if not path.is_file():
        raise WorkspaceError(f"{path} does not exist; check the path")
    rows = read_pairs_file(path.name, path.read_bytes(), args.query_column, args.passage_column)
    store = Store()
    with store.transaction():
        report = import_pairs(store, _corpus_id(store, args.corpus, create=True),
                              args.name or path.stem, rows)
    finish(args, report.summary(), asdict(report))


def run_pairs_generate(args) -> None:
    from .pairs import LLMConfig, estimate, generate_builtin, generate_llm
    store = Store()
    corpus_id = _corpus_id(store, args.corpus)
    if args.method == "builtin":
        pair_set_id = generate_builtin(store, corpus_id, args.name or "pseudo-queries",
                                       PseudoQueryConfig(per_chunk=args.per_chunk, seed=args.seed,
                                                         style=args.style,
                                                         filter_top_k=args.filter_top_k))
    else:
        key = os.environ.get("RAGTUNE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY", "")
        config = LLMConfig(args.base_url, args.llm_model, args.per_chunk, args.concurrency,
                           max_chunks=args.max_chunks, api_key=key)
        config.validate()  # before the estimate, which divides by the concurrency
        name = args.name or f"llm {args.llm_model}"
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
    pair_sets = store.pair_set_summaries(store.corpus(args.corpus).id if args.corpus else None)
    if not args.json:
        _print_pair_sets(pair_sets)
    finish(args, f"{len(pair_sets)} pair sets", {"pair_sets": [asdict(s) for s in pair_sets]})


def run_pairs_split(args) -> None:
    from .pairs import split
    report = split(Store(), args.pair_set, args.test_fraction, args.seed)
    finish(args, f"train {report.train} pairs ({report.train_queries} queries), "
                 f"test {report.test} pairs ({report.test_queries} queries)", report.__dict__)


def run_pairs_export(args) -> None:
    from .pairs import export_jsonl
    text = export_jsonl(Store(), args.pair_set, args.split)
    if not text:
        which = f"{args.split} " if args.split else ""
        raise WorkspaceError(f"pair set {args.pair_set} has no {which}pairs, so nothing was "
                             "written" + ("; split it first (python -m core pairs split)"
                                          if args.split else ""))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)  # like export --beir, which makes its folder
    output.write_text(text, encoding="utf-8")
    finish(args, f"{text.count(chr(10))} pairs written to {args.output}",
           {"pairs": text.count("\n"), "output": args.output})


@command("export", "export a pair set with its corpus as a BEIR folder")
def _export_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beir", required=True, metavar="DIR")
    p.add_argument("--pairs", type=int, required=True, metavar="PAIR_SET_ID")
    p.set_defaults(run=run_export)


def run_export(args) -> None:
    from .beir import export_beir
    counts = export_beir(Store(), args.pairs, Path(args.beir))
    finish(args, f"BEIR folder {args.beir}: {counts}", counts)


@command("evaluate", "measure retrieval at every embedding dimension (encode once, score all)")
def _evaluate_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", nargs="?", metavar="DATA_DIR", help="a BEIR-layout folder")
    p.add_argument("--pairs", type=int, metavar="PAIR_SET_ID",
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
    from .compare import ceiling_note, trust_note
    from .evaluate import RetrievalSet, evaluate_named, save
    if (args.data_dir is None) == (args.pairs is None):
        raise WorkspaceError("give either a BEIR folder or --pairs PAIR_SET_ID")
    store = Store()
    if args.pairs is not None:
        data = RetrievalSet.from_pair_set(store, args.pairs)
    else:
        if not Path(args.data_dir).is_dir():
            raise WorkspaceError(f"{args.data_dir} is not a folder; give a BEIR-layout folder")
        data = RetrievalSet.from_beir(Path(args.data_dir), args.split)
    result = evaluate_named(args.model, data, parse_dims(args.dims), store,
                            lambda stage, f: _progress(stage)(f))
    note = ceiling = None
    if args.pairs is not None:
        save(store, result, args.pairs, "baseline" if not args.model else args.model)
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
    p.add_argument("--epochs", type=int, help="default: as many as the time budget allows, up to 4")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--max-pairs", type=int, help="default: as many as the time budget allows")
    p.add_argument("--max-seq-length", type=int, help="default: fits 95%% of the passages")
    p.add_argument("--budget-minutes", type=float, help="training time to plan for "
                   "(default: 10 on CPU, 5 on a GPU)")
    p.add_argument("--generated", action="store_true", help="the pairs were generated, not "
                   "written by people (a gentler default learning rate)")
    p.add_argument("--dims", help="comma-separated, largest first")
    p.add_argument("--loss", choices=["mnrl", "cached_mnrl"])
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
    from .evaluate import RetrievalSet
    from .finetune import held_out, run_experiment
    from .pairs import read_pairs_file
    from .train import NO_GAIN, TrainConfig, train
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
    config = TrainConfig.from_dict({**settings, **{k: v for k, v in overrides.items() if v is not None}})
    path = Path(args.pairs)
    if not path.is_file():
        raise WorkspaceError(f"{path} does not exist; check the path")
    pairs = read_pairs_file(path.name, path.read_bytes())
    if not Path(args.eval).is_dir():
        raise WorkspaceError(f"{args.eval} is not a folder; give a BEIR-layout folder")
    data = RetrievalSet.from_beir(Path(args.eval))
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
    from .decision import UnreadableAnswers, load, read_answers, recommend, summary, to_markdown, to_text
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
        Path(args.markdown).write_text(to_markdown(answers, result, questionnaire), encoding="utf-8")
    if not args.json:
        print(to_text(result))
    finish(args, summary(result), result.to_json())


# -- runs, export and foreground fine-tuning --------------------------------------------------
@command("runs", "list every evaluation and fine-tuning run with its metrics per dimension")
def _runs_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_runs)


def run_runs(args) -> None:
    from .runs import list_runs
    runs = list_runs(Store())
    if not args.json:
        for r in runs:
            scores = ", ".join(f"{d}d {v:.4f}" for d, v in r.ndcg().items()) or "no metrics yet"
            print(f"{r.id}\t{r.kind}\t{r.state}\t{r.name}\t{r.model}\t{r.pair_set}\tNDCG@10 {scores}")
    finish(args, f"{len(runs)} runs", {"runs": [r.to_json() for r in runs]})


@command("export-model", "write a fine-tuned model (sentence-transformers folder, card) as a zip")
def _export_model_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a fine-tune run id such as j3 (or the job id 3)")
    p.add_argument("--zip", required=True, metavar="FILE", help="the zip file to write")
    p.set_defaults(run=run_export_model)


def run_export_model(args) -> None:
    from .export import export_model
    output = Path(args.zip)
    files = export_model(Store(), args.run_id, output)
    finish(args, f"{files} files written to {output}", {"zip": str(output), "files": files})


@command("finetune", "fine-tune on a workspace pair set in the foreground, stored as a run")
def _finetune_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=int, required=True, metavar="PAIR_SET_ID")
    p.add_argument("--model", help="base model (default: the bundled one)")
    p.add_argument("--epochs", type=int, help="default: as many as the time budget allows")
    p.add_argument("--max-pairs", type=int, help="default: as many as the time budget allows")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-seq-length", type=int)
    p.set_defaults(run=run_finetune)


def run_finetune(args) -> None:
    """Submit the same job the Fine-tune page submits, then run it here; Ctrl-C asks it to
    stop at its next step, like the page's Cancel button."""
    import threading
    import time
    from . import jobs
    from .train import TrainConfig
    store = Store()
    settings = {"model": args.model, "pair_set_id": args.pairs, "epochs": args.epochs,
                "max_pairs": args.max_pairs, "batch_size": args.batch_size,
                "max_seq_length": args.max_seq_length}
    config = TrainConfig.from_dict({k: v for k, v in settings.items() if v is not None})
    job_id = jobs.submit(store, "train", json.loads(config.to_json()))
    # Claim it before a server's runner on the same workspace can.
    claimed = store.db.execute("UPDATE jobs SET state = 'running', started = ?, status = 'Starting' "
                               "WHERE id = ? AND state = 'queued'", (time.time(), job_id)).rowcount
    if not claimed:
        raise WorkspaceError(f"job {job_id} was taken by another runner; follow it on the "
                             "Fine-tune page")
    done = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            jobs.Runner(store, give_up_seconds=10).run_one(jobs.get(store, job_id))
        except BaseException as error:  # its end could not be recorded (a full disk): say why
            failure.append(error)
        finally:
            done.set()

    # Wait by sleeping, not Thread.join: a join interrupted by Ctrl-C can report a live thread
    # as finished (CPython gh-90882), and the process would then exit under the running job.
    threading.Thread(target=work, name=f"finetune-{job_id}").start()
    print(f"job {job_id} started; Ctrl-C cancels it", file=sys.stderr)
    shown = ""
    while not done.is_set():
        try:
            time.sleep(0.5)
        except KeyboardInterrupt:
            if jobs.get(store, job_id).state == "running":
                print(f"\ncanceling job {job_id} at its next step…", file=sys.stderr)
                jobs.cancel(store, job_id)
            continue
        status = jobs.get(store, job_id).status
        if status != shown and sys.stderr.isatty():
            print(status, file=sys.stderr)
            shown = status
    if failure:
        raise failure[0]
    job = jobs.get(store, job_id)
    if job.state == "failed":
        raise WorkspaceError(f"job {job_id} failed: {job.error}")
    if job.state == "canceled":
        error = WorkspaceError(f"job {job_id} canceled; what was saved is kept "
                               f"(python -m core runs shows it as j{job_id})")
        error.exit_code = 130
        raise error
    result = job.result
    gains = ", ".join(f"{d}d {result['baseline'][d]['ndcg@10']:.4f}→{m['ndcg@10']:.4f}"
                      for d, m in (result.get("finetuned") or {}).items())
    finish(args, f"run j{job_id}: NDCG@10 {gains}; model in {result.get('model_path')}",
           {"run": f"j{job_id}", "job_id": job_id, "state": job.state, **result})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, configure) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text,
                           parents=[] if name == "pairs" else [JSON_FLAG])
        configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
