"""``list``: the whole workspace at a glance (corpora, pair sets, jobs, evaluations, disk use)."""
from __future__ import annotations

import argparse
from dataclasses import asdict

from core.cli.base import command, finish, print_pair_sets
from core.training import running


@command("list", "everything in the workspace: corpora, pair sets, jobs, evaluations, disk use")
def _list_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_list)


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
        print_pair_sets(pair_sets)
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
