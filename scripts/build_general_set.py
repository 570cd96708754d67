"""Build ragtune's general reference set (core/documents/data/general_set.json.gz) from a Wikipedia excerpt.

The source is the shortened English Wikipedia dump (April 2016, about 100 articles from
"Anarchism" to "Ada") that gensim ships as test data in its wheel: a file on the package index,
the same bytes for anyone who downloads gensim 4.3.3. Wikipedia's text is CC BY-SA 3.0 (see
core/documents/data/GENERAL_SET_LICENSE.md).

Queries follow TREC Complex Answer Retrieval (Dietz et al., TREC 2017): a query is an article's
title with one of its section headings ("Alchemy: Etymology"), written by Wikipedia's editors, never
generated; the passages relevant to it are the paragraphs of that section. Every paragraph of
every article is a passage, so each query is searched against a few thousand passages on
subjects (history, countries, people, film, science) unlike a team's documents.

    python scripts/build_general_set.py                 # downloads the gensim wheel with pip
    python scripts/build_general_set.py --wheel PATH    # or reads one already downloaded

The output is deterministic (sorted JSON, gzip without a timestamp); the script prints its
SHA256, which core/documents/general.py checks at every load.
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import html
import json
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from xml.etree import ElementTree

GENSIM = "gensim==4.3.3"
WHEEL_PLATFORM = ["--only-binary", ":all:", "--python-version", "3.11",
                  "--platform", "manylinux2014_x86_64"]
DUMP = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
OUT = Path(__file__).resolve().parent.parent / "core" / "documents" / "data" / "general_set.json.gz"
# Headings whose sections hold lists of links or references, not prose a query could be about.
SKIP_HEADINGS = {"see also", "references", "external links", "notes", "further reading", "bibliography",
                 "sources", "footnotes", "citations", "notes and references", "gallery", "links",
                 "references and notes", "primary sources", "secondary sources", "works cited",
                 "filmography", "discography", "awards", "list", "other", "general", "overview",
                 "works", "publications", "selected works", "books", "articles"}
MIN_WORDS, MAX_WORDS = 25, 100     # shorter is a caption or a list stub; longer is cut, as chunks are
MAX_QUERIES = 400
MAX_QUERIES_PER_ARTICLE = 8         # spread the queries over the articles' subjects
SEED = 29
SOURCE = ("English Wikipedia as of April 2016 (the excerpt in gensim 4.3.3's test data), by "
          "Wikipedia's contributors, CC BY-SA 3.0; each article's history: "
          "https://en.wikipedia.org/?curid=<page id>&action=history")


def _wheel(path: str | None) -> Path:
    if path:
        return Path(path)
    folder = Path(tempfile.mkdtemp())
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *WHEEL_PLATFORM,
                    "-d", str(folder), GENSIM], check=True)
    return next(folder.glob("gensim-*.whl"))


def _strip_nested(text: str, start: str, end: str) -> str:
    """Remove every (possibly nested) start…end block, such as {{templates}} and {| tables |}."""
    out, depth, i = [], 0, 0
    while i < len(text):
        if text.startswith(start, i):
            depth, i = depth + 1, i + len(start)
        elif depth and text.startswith(end, i):
            depth, i = depth - 1, i + len(end)
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


def _link(m: re.Match) -> str:
    target = m.group(1)
    if re.match(r"(?i)(file|image|category|media|[a-z]{2,3}(-[a-z]+)?):", target):
        return ""
    return target.split("|")[-1]


def plain(wikitext: str) -> str:
    """Readable text from wikitext: templates, tables, references, files and markup removed."""
    text = re.sub(r"<!--.*?-->", "", wikitext, flags=re.S)
    text = re.sub(r"<gallery[^>]*>.*?</gallery>", "", text, flags=re.S | re.I)
    text = re.sub(r"<ref[^>]*/>", "", text)
    text = re.sub(r"<ref[^>]*>.*?</ref>", "", text, flags=re.S)
    text = _strip_nested(text, "{{", "}}")
    text = _strip_nested(text, "{|", "|}")
    text = re.sub(r"\[\[(?:File|Image):(?:[^\[\]]|\[\[[^\]]*\]\])*\]\]", "", text, flags=re.I)
    text = re.sub(r"\[\[([^\[\]]*)\]\]", _link, text)
    text = re.sub(r"\[https?://\S+\s([^\]]*)\]", r"\1", text)
    text = re.sub(r"\[https?://\S+\]", "", text)
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text).replace("\xa0", " ")


def _paragraphs(body: str) -> list[str]:
    """Prose paragraphs of a section: list items, indents and short lines left out, long ones cut."""
    out = []
    for block in re.split(r"\n\s*\n", plain(body)):
        lines = [ln.strip() for ln in block.splitlines()
                 if ln.strip() and not ln.lstrip().startswith(("*", "#", ":", ";", "|", "!"))]
        words = " ".join(lines).split()
        if re.search(r"\[\[|\]\]|\bthumb\||^File:", " ".join(words)):
            continue    # what is left of an image caption the markup stripping could not undo
        while len(words) >= MIN_WORDS:
            out.append(" ".join(words[:MAX_WORDS]))
            words = words[MAX_WORDS:]
    return out


def sections(title: str, wikitext: str) -> list[tuple[str, list[str]]]:
    """(heading path, paragraphs) for the lead ("" heading) and each level-2/3 section."""
    parts = re.split(r"^(={2,3})\s*([^=\n]+?)\s*\1\s*$", wikitext, flags=re.M)
    out = [("", _paragraphs(parts[0]))]
    for i in range(1, len(parts) - 2, 3):
        heading = plain(parts[i + 1]).strip()
        out.append((heading, _paragraphs(parts[i + 2])))
    return out


def articles(dump: bytes) -> list[tuple[str, str, str]]:
    """(page id, title, wikitext) of every article in the dump that is not a redirect."""
    root = ElementTree.fromstring(bz2.decompress(dump))
    ns = {"m": root.tag.split("}")[0].strip("{")}
    out = []
    for page in root.iterfind("m:page", ns):
        text = page.findtext("m:revision/m:text", "", ns)
        if page.findtext("m:ns", "", ns) != "0" or page.find("m:redirect", ns) is not None \
                or text.lstrip().upper().startswith("#REDIRECT"):
            continue
        out.append((page.findtext("m:id", "", ns), page.findtext("m:title", "", ns), text))
    return out


def build(dump: bytes) -> dict:
    passages: dict[str, str] = {}
    titles: dict[str, str] = {}  # page id -> title: the attribution CC BY-SA asks for
    candidates: list[tuple[str, str, list[str]]] = []   # (article, query, relevant passage ids)
    for page_id, title, wikitext in articles(dump):
        titles[page_id] = title
        n = 0
        for heading, paragraphs in sections(title, wikitext):
            ids = []
            for paragraph in paragraphs:
                n += 1
                ids.append(f"{page_id}-{n}")
                passages[ids[-1]] = paragraph
            if heading and ids and heading.lower() not in SKIP_HEADINGS:
                candidates.append((title, f"{title}: {heading}", ids))
    rng = random.Random(SEED)
    rng.shuffle(candidates)
    queries, relevant, per_article, seen = {}, {}, {}, set()
    for title, query, ids in candidates:
        if query.lower() in seen or per_article.get(title, 0) >= MAX_QUERIES_PER_ARTICLE:
            continue
        seen.add(query.lower())
        per_article[title] = per_article.get(title, 0) + 1
        qid = f"q{len(queries) + 1:03d}"  # zero-padded: sorted ids keep the shuffled order
        queries[qid], relevant[qid] = query, ids
        if len(queries) == MAX_QUERIES:
            break
    used = {pid.split("-")[0] for pid in passages}
    return {"source": SOURCE, "articles": {p: t for p, t in titles.items() if p in used},
            "passages": passages, "queries": queries, "relevant": relevant}


def write(data: dict, path: Path = OUT) -> str:
    """Write the set; returns the SHA256 of its JSON, which the loader checks. The JSON's, not
    the file's: another zlib may pack the same JSON into other bytes."""
    raw = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
    return hashlib.sha256(raw).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="a gensim 4.3.3 wheel already downloaded")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    with zipfile.ZipFile(_wheel(args.wheel)) as wheel:
        data = build(wheel.read(DUMP))
    digest = write(data, Path(args.out))
    print(f"{len(data['queries'])} queries, {len(data['passages'])} passages, "
          f"{Path(args.out).stat().st_size / 1e6:.2f} MB, sha256 {digest}")


if __name__ == "__main__":
    main()
