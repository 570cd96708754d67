"""``corpus …``: documents in (files, folders, BEIR folders, the demo), listed and deleted; and ``list``,
the whole workspace at a glance."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.base import command, corpus_ref, deleted, finish, group, progress, say
from core.documents.corpus import ChunkSettings
from core.training import running
from core.workspace import ranges
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store

group("corpus", "documents in, listed, deleted: files, folders, BEIR folders, the demo")


@command("corpus ingest", "chunk files, folders, or a BEIR folder or its .zip into a corpus")
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
            say(f"skipped {len(skipped)} hidden files or links that lead outside {path}")
    documents = [d for f in files for d in load_file(f.name, f.read_bytes())]
    report = ingest(store, name, documents, models.token_counter(args.model), settings,
                    lambda done, total: progress("chunking")(done / total))
    finish(args, f"corpus {name!r}: {report.summary()}",
           {"corpus_id": report.corpus_id, "documents": report.documents,
            "chunks": report.chunks, "duplicates": report.duplicates})


@command("corpus demo", "load the demo corpus: Python standard-library docstrings with their summaries")
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


@command("corpus list", "the corpora and their pair sets")
def _corpora_parser(p: argparse.ArgumentParser) -> None:
    p.set_defaults(run=run_corpora)


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


@command("corpus delete", "delete a corpus with its pair sets, runs and labels")
def _corpus_delete_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("corpus", metavar="NAME_OR_ID")
    p.set_defaults(run=run_corpus_delete)


def run_corpus_delete(args) -> None:
    """The page's delete: refused, with the same reason, while a queued or running job uses it."""
    from core.using.runs import delete_corpus
    store = running.open_workspace()
    deleted(args, delete_corpus(store, corpus_ref(store, args.corpus)))
