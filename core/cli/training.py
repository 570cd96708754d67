"""The pipeline's verbs: ``evaluate`` a model, ``train`` from files (under torchrun too),
``finetune`` a workspace pair set, ``tune`` and ``rotate`` on documents only, ``resume`` a stopped
run, ``merge`` a fine-tune back with its base. ``train`` and ``finetune`` share one option set (``base.training_options``)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.cli.base import (PAIRS_FILE, command, corpus_ref, finish, input_file, pair_set_arg, pair_set_ref, parse_dims,
                           progress, say, training_options, training_settings)
from core.training import running
from core.training.plan import PEOPLE_TEST_MIN
from core.workspace import ranges
from core.workspace.errors import WorkspaceError
from core.workspace.wording import sentence
from core.workspace.store import Store


@command("evaluate", "measure retrieval at every embedding dimension (encode once, score all)")
def _evaluate_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", nargs="?", metavar="DATA_DIR", help="a BEIR-layout folder")
    p.add_argument("--pairs", type=pair_set_arg, metavar="PAIR_SET",
                   help="instead of DATA_DIR: the test split of a workspace pair set, by id or name (stored)")
    p.add_argument("--model", help="bundled name, model folder or hub ID")
    p.add_argument("--dims", help="comma-separated, e.g. 384,256,128,64,32 (default: halvings)")
    p.add_argument("--split", default="test", help="qrels split of DATA_DIR (default: test)")
    p.set_defaults(run=run_evaluate)


def run_evaluate(args) -> None:
    from core.deciding.compare import ceiling_note, trust_note
    from core.documents.beir import retrieval_set
    from core.measuring.evaluate import RetrievalSet, evaluate_named, evaluation_label, save
    if (args.data_dir is None) == (args.pairs is None):
        raise WorkspaceError("give either a BEIR folder or --pairs PAIR_SET")
    store = Store()
    pair_set_id = pair_set_ref(store, args.pairs).id if args.pairs is not None else None
    if pair_set_id is not None:
        data = RetrievalSet.from_pair_set(store, pair_set_id)
    else:
        if not Path(args.data_dir).is_dir():
            raise WorkspaceError(f"{args.data_dir} is not a folder; give a BEIR-layout folder")
        data = retrieval_set(Path(args.data_dir), args.split)
    result = evaluate_named(args.model, data, parse_dims(args.dims), store,
                            lambda stage, f: progress(stage)(f))
    note = ceiling = None
    if pair_set_id is not None:
        save(store, result, pair_set_id, evaluation_label(args.model))
        note = trust_note(store.pair_set(pair_set_id))
        ceiling = ceiling_note(store.pair_set(pair_set_id), result.metrics)
        for line in (note, ceiling):
            if line:
                say(line)
    for reason, n in result.skipped.items():
        say(f"skipped {n} {reason}")
    if not args.json:
        print("dim\t" + "\t".join(("ndcg@10", "mrr@10", "map@100", "recall@10")))
        for dim, m in result.metrics.items():
            print(f"{dim}\t" + "\t".join(f"{m[k]:.4f}" for k in ("ndcg@10", "mrr@10", "map@100", "recall@10")))
    best = result.metrics[result.dims[0]]["ndcg@10"]
    finish(args, f"{result.queries} queries over {result.corpus} passages in {result.seconds:.1f} s; "
                 f"NDCG@10 {best:.4f} at {result.dims[0]} dims", {**result.to_json(), "note": note, "ceiling": ceiling})


@command("train", "baseline eval, Matryoshka fine-tuning and final eval from files (works under torchrun)")
def _train_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs-file", required=True, metavar="FILE", help="JSONL/CSV/Parquet of query/positive pairs")
    p.add_argument("--eval", required=True, metavar="DATA_DIR", help="BEIR folder with the test queries")
    p.add_argument("--config", metavar="JSON", help="a job config downloaded from the Fine-tune page")
    training_options(p)
    p.add_argument("--generated", action="store_true", help="the pairs were generated, not "
                   "written by people (a gentler default learning rate)")
    p.add_argument("--output", default="ragtune-model", help="folder for checkpoints and the model")
    p.set_defaults(run=run_train)


class TerminalReporter:
    """Progress for a person at a terminal (stderr), quiet on every rank but the first."""

    def __init__(self):
        self.quiet = int(os.environ.get("RANK", "0")) != 0

    def status(self, text: str) -> None:
        self.log(text)

    def progress(self, fraction: float) -> None:
        progress("training")(fraction)

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
    overrides = {**training_settings(args), **({"generated_pairs": True} if args.generated else {})}
    path = input_file(args.pairs_file, PAIRS_FILE)
    raw = path.read_bytes()
    pairs = read_pairs_file(path.name, raw)
    if "generated_pairs" not in settings and file_is_generated(path.name, raw):
        overrides["generated_pairs"] = True  # pairs export wrote where the pairs came from
    config = TrainConfig.from_dict({**settings, **overrides})
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
        say(f"{NO_GAIN}: the base model is kept")
    if result.general:  # beside the gain: what it cost outside the corpus, and the α kept
        say(result.general.headline())
    finish(args, f"NDCG@10 {gains}; model in {result.training.model_path}", summary)


@command("finetune", "fine-tune on a workspace pair set in the foreground, stored as a run")
def _finetune_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=pair_set_arg, required=True, metavar="PAIR_SET", help="its id or name")
    training_options(p)
    p.set_defaults(run=run_finetune)


def run_finetune(args) -> None:
    """Submit the same job the Fine-tune page submits, then run it here; Ctrl-C asks it to
    stop at its next step, like the page's Cancel button."""
    from core.documents.pairs import is_generated
    from core.training.config import TrainConfig
    store = running.open_workspace()
    pair_set = pair_set_ref(store, args.pairs)
    # as the page does: generated pairs get the gentler plan
    config = TrainConfig.from_dict({**training_settings(args), "pair_set_id": pair_set.id,
                                    "generated_pairs": is_generated(pair_set)})
    job_id, result = running.run_here(store, "train", json.loads(config.to_json()), say, sys.stderr.isatty())
    gains = ", ".join(f"{d}d {result['baseline'][d]['ndcg@10']:.4f}→{m['ndcg@10']:.4f}"
                      for d, m in (result.get("finetuned") or {}).items())
    if result.get("general"):  # beside the gain: what it cost outside the corpus, and the α kept
        say(result["general"]["headline"])
    finish(args, f"run j{job_id}: NDCG@10 {gains}; model in {result.get('model_path')}",
           {"run": f"j{job_id}", "job_id": job_id, "state": "succeeded", **result})


@command("curve", "how many questions do we need? fine-tune nested shares of a pair set's training "
                  "questions under one budget and forecast what more would add")
def _curve_parser(p: argparse.ArgumentParser) -> None:
    from core.training.plan import CURVE_FRACTIONS, curve_budget_minutes
    p.add_argument("--pair-set", type=pair_set_arg, required=True, metavar="PAIR_SET",
                   help="its id or name; it must be split into train and test")
    p.add_argument("--model", help="base model (default: the bundled one)")
    p.add_argument("--budget-minutes", type=ranges.arg(ranges.minutes), help="the whole curve's "
                   f"time, split between its {len(CURVE_FRACTIONS)} fine-tunes in proportion to their "
                   f"questions (default: {curve_budget_minutes('cpu'):g} min on CPU, "
                   f"{curve_budget_minutes('cuda'):g} on a GPU)")
    p.set_defaults(run=run_curve)


def run_curve(args) -> None:
    """Submit the curve job the Results page submits, then run it here."""
    from core.training.curve import Curve
    store = running.open_workspace()
    pair_set = pair_set_ref(store, args.pair_set)
    config = {"pair_set_id": pair_set.id, "model": args.model, "budget_minutes": args.budget_minutes}
    job_id, result = running.run_here(store, "curve", {k: v for k, v in config.items() if v is not None},
                                      say, sys.stderr.isatty())
    curve = Curve.from_json(result)
    if not args.json:
        print_curve(curve)
    finish(args, curve.outlook().sentence() + ".", {"job_id": job_id, **result})


def print_curve(curve) -> None:
    """The curve as a table: a row per point, NDCG@10 at every size and the gain at the
    forecast's size with its interval; the time against the budget on stderr."""
    dim = curve.outlook().dim
    print("questions\tpairs\t" + "\t".join(f"{d}d" for d in curve.dims) +
          f"\tgain at {dim}d (95% interval)\tkept")
    for point in curve.points:
        gain = point.differences.get(dim)
        print(f"{point.questions}\t{point.pairs}\t" + "\t".join(f"{point.ndcg[d]:.4f}" for d in curve.dims)
              + (f"\t{gain.change()} ({gain.interval()})\t{point.kept}" if gain else "\t–\tuntrained"))
    say(sentence(curve.budget_line()) + ".")


@command("tune", "documents only: the best rotation or model a corpus alone can justify")
def _tune_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.add_argument("--model", help="base model (default: the bundled one)")
    p.add_argument("--budget-minutes", type=ranges.arg(ranges.minutes), help="training time for the fine-tuned "
                   "candidate, tried only with --questions (default: the plan's)")
    p.add_argument("--questions", type=pair_set_arg, metavar="PAIR_SET", help="a pair set of people's "
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
    questions = pair_set_ref(store, args.questions).id if args.questions is not None else \
        people.id if people else None
    config = {"corpus_id": corpus.id, "model": args.model, "budget_minutes": args.budget_minutes,
              "questions": questions}
    job_id, result = running.run_here(store, "tune", {k: v for k, v in config.items() if v is not None}, say,
                                        sys.stderr.isatty())
    if not args.json:
        for line in (DOCUMENTS_ONLY_NOTE, score_note(result["judged_by"]),
                     hubness_line(result.get("hubness", {}))):
            if line:
                say(line)
        for c in result["candidates"]:
            scores = ", ".join(f"{d}d {v:.3f}" for d, v in c["scores"].items()) or "–"
            say(f"{c['name']}\t{scores}\t{c['reason'] or 'eligible'}")
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
    path, rotation = rotate_corpus(store, corpus_ref(store, args.corpus),
                                   args.model, args.kind, Path(args.output) if args.output else None)
    finish(args, f"{rotation.summary()}; model in {path}",
           {"model_path": str(path), "kind": rotation.kind,
            "variance": [round(float(v), 6) for v in rotation.variance[:128]]})


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
