"""Benchmark corpora built from material every Debian machine has offline, each with queries
written by people, in the same (id, query, passage) shape as ``core.documents.demo.stdlib_pairs``:

* ``stdlib``: Python docstrings, summary → body (the demo corpus; code documentation).
* ``manpages``: man pages, the NAME one-liner ("list directory contents") → the DESCRIPTION
  section (command-line tools; prose full of flags and jargon).
* ``packages``: Debian package descriptions, the short description → the long one (software
  catalogue; short, marketing-like passages).
* ``libapi``: library man pages (section 3: C functions, Perl modules), NAME → DESCRIPTION
  (API reference; a fourth corpus to check that a rule fitted on three holds on another).

Three kinds of writing, so a change that only suits one of them shows up as a loss on another.
"""
from __future__ import annotations

import gzip
import re
from pathlib import Path

from core.documents.beir import link_pairs
from core.documents.corpus import ChunkSettings, Document, ingest
from core.documents.demo import stdlib_pairs
from core.documents.pairs import split
from core.workspace.store import Store

MAN_DIR = Path("/usr/share/man/man1")
LIBRARY_MAN_DIR = Path("/usr/share/man/man3")
DPKG_STATUS = Path("/var/lib/dpkg/status")
_ESCAPES = [(r"\\f[BIRPC]|\\f\(..|\\f\[[^]]*\]", ""), (r"\\-", "-"), (r"\\\(em|\\\(en", "-"),
            (r"\\\((?:lq|rq|dq)", '"'), (r"\\[&|^ ]", " "), (r"\\e", r"\\\\"), (r'\\".*', ""),
            (r"\\\*\(..|\\\*.", ""), (r"\\s[-+]?\d", ""), (r"\\.", "")]


def _roff_text(lines: list[str]) -> str:
    """Plain text from roff source: macros dropped, their text arguments kept."""
    out = []
    for line in lines:
        if line.startswith((".\\\"", "'\\\"")):
            continue
        if line.startswith("."):
            m = re.match(r"^\.(?:B|I|BR|BI|IB|IR|RB|RI|SM|SB)\s+(.*)", line)
            if not m:
                if re.match(r"^\.(?:PP|P|LP|sp|br)\b", line):
                    out.append("\n")
                continue
            line = m.group(1).replace('"', "")
        for pattern, repl in _ESCAPES:
            line = re.sub(pattern, repl, line)
        out.append(line)
    text = " ".join(out)
    return re.sub(r"[ \t]+", " ", re.sub(r"\s*\n\s*", "\n\n", text)).strip()


def _man_page(path: Path) -> tuple[str, str] | None:
    try:
        source = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
    except (OSError, EOFError):
        return None
    sections: dict[str, list[str]] = {}
    current = None
    for line in source.splitlines():
        m = re.match(r'^\.SH\s+"?([A-Z ]+)"?', line)
        if m:
            current = m.group(1).strip()
            continue
        if current:
            sections.setdefault(current, []).append(line)
    name, description = _roff_text(sections.get("NAME", [])), _roff_text(sections.get("DESCRIPTION", []))
    if " - " not in name:
        return None
    summary = name.split(" - ", 1)[1].strip().rstrip(".")
    words = description.split()
    if not 3 <= len(summary.split()) <= 20 or len(words) < 30:
        return None
    return summary, " ".join(words[:180])


def manpage_pairs(limit: int = 1500, directory: Path = MAN_DIR) -> list[tuple[str, str, str]]:
    """Every k-th usable man page (a NAME line and a DESCRIPTION), so the set spans the alphabet."""
    triples, seen = [], set()
    for path in sorted(directory.glob("*.gz")):
        page = _man_page(path)
        if page and page[0].lower() not in seen and page[1] not in seen:
            seen.update((page[0].lower(), page[1]))
            triples.append((path.name.split(".")[0], *page))
    return triples[::max(1, len(triples) // limit)][:limit]


def package_pairs(limit: int = 1500) -> list[tuple[str, str, str]]:
    triples, seen = [], set()
    for block in DPKG_STATUS.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        name = re.search(r"^Package: (.+)$", block, re.M)
        m = re.search(r"^Description: (.+)\n((?: .*\n?)*)", block, re.M)
        if not (name and m):
            continue
        summary = m.group(1).strip()
        body = " ".join(line.strip() for line in m.group(2).splitlines() if line.strip() != ".")
        if len(body.split()) < 20 or summary.lower() in seen or body in seen:
            continue
        seen.update((summary.lower(), body))
        triples.append((name.group(1), summary, body))
    return triples[:limit]


CORPORA = {"stdlib": lambda: stdlib_pairs(), "manpages": manpage_pairs, "packages": package_pairs,
           "libapi": lambda: manpage_pairs(directory=LIBRARY_MAN_DIR)}


def load(store: Store, name: str, count_tokens) -> tuple[int, int]:
    """The corpus (one document per passage) and its people's pairs split 80/20; returns
    (corpus id, pair set id)."""
    triples = CORPORA[name]()
    documents = [Document(ident, "text", passage, ident) for ident, _, passage in triples]
    with store.transaction():
        report = ingest(store, name, documents, count_tokens, ChunkSettings(256, 32))
        pair_set_id = link_pairs(store, report.corpus_id, "people's queries", "benchmark",
                                 [(ident, query, ident) for ident, query, _ in triples])
        split(store, pair_set_id, 0.2, seed=42)
    return report.corpus_id, pair_set_id
