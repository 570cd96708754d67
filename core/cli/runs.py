"""``runs …`` and ``compare``: every evaluation and fine-tune in one table, a run's model exported
or deleted, and two runs compared question by question with the paired bootstrap."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.base import command, corpus_ref, deleted, finish, group
from core.training import running
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store

group("runs", "every run in one table: list, export a model, delete")


@command("runs list", "every evaluation and fine-tuning run with its metrics per dimension")
def _runs_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_runs)


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


@command("compare", "compare two runs question by question: NDCG@10 difference, its "
                    "bootstrap interval, wins and losses at every dimension")
def _compare_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", metavar="RUN_A", nargs="?", help="a run id from python -m core runs "
                   "list (e3, j2); without both: the base model against the best other model on "
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
        corpus_id = corpus_ref(store, args.corpus) if args.corpus else None
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


@command("runs export", "a run's model (sentence-transformers folder, card) as a zip")
def _export_model_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a fine-tune run id such as j3 (or the job id 3)")
    p.add_argument("--zip", required=True, metavar="FILE", help="the zip file to write")
    p.set_defaults(run=run_export_model)


def run_export_model(args) -> None:
    from core.using.export import export_model
    output = Path(args.zip)
    files = export_model(Store(), args.run_id, output)
    finish(args, f"{files} files written to {output}", {"zip": str(output), "files": files})


@command("runs delete", "delete a run with everything only it used")
def _runs_delete_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", metavar="RUN", help="a run id such as j3 or e5")
    p.set_defaults(run=run_runs_delete)


def run_runs_delete(args) -> None:
    """The page's delete: refused, with the same reason, while its job is queued or running."""
    from core.using.runs import delete_run
    deleted(args, delete_run(running.open_workspace(), args.run_id))
