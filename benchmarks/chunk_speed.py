"""How chunking time grows with the size of one unbroken text (no spaces, no sentence ends: a
log line, a minified file, a base64 blob), measured side by side at 1, 10 and 100 MB.

Linear time means about 10× the time per 10× the size; the issue's bar is 15×. Before the
one-pass ``cut_long`` the growth was quadratic (20 MB took 2.6 s, 40 MB 52 s).

    .venv/bin/python benchmarks/chunk_speed.py [--sizes 1,10,100]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from core.documents.corpus import ChunkSettings, chunk_text
from core.workspace import models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100", help="megabytes, comma-separated")
    args = parser.parse_args()
    count, settings = models.token_counter(), ChunkSettings()
    chunk_text("warm up the tokenizer", settings, count)
    seconds = {}
    for mb in (int(s) for s in args.sizes.split(",")):
        text = "a" * (mb * 10**6)
        start = time.perf_counter()
        chunks = chunk_text(text, settings, count)
        seconds[mb] = time.perf_counter() - start
        longest = max(len(c) for c, _ in chunks)
        print(f"{mb:>4} MB: {seconds[mb]:7.2f} s, {len(chunks):,} chunks, longest "
              f"{longest:,} characters, at most {max(n for _, n in chunks)} tokens counted")
        del text, chunks
    sizes = sorted(seconds)
    for small, big in itertools.pairwise(sizes):
        print(f"{small} → {big} MB ({big / small:.0f}× the size): {seconds[big] / seconds[small]:.1f}× "
              "the time")


if __name__ == "__main__":
    main()
