"""Built-in pseudo-queries: question→passage pairs from a corpus alone, with no LLM.

In the spirit of the Inverse Cloze Task (Lee et al., 2019, "Latent Retrieval for Weakly Supervised
Open Domain QA"), a sentence of a chunk is the query and the rest of the chunk is its positive, with
the sentence removed so the model must learn context rather than copy words; headings are queries
for the text below them. ``style="questions"`` turns sentences into question-shaped queries, and a
pair is kept only where the base model already ranks its passage in the top K (``filter_top_k``).

Example:
    >>> question_from("A set is an unordered collection of distinct items.")
    'What is a set of distinct items?'
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from core.documents.corpus import normalise, split_units
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store
from core.workspace.text import check_label


BUILTIN_PAIR_SET = "pseudo-queries"  # the default name of a generated set


GENERATOR_STYLES = ("questions", "sentences")


_AUX = {"is", "are", "was", "were", "has", "have", "had", "can", "will", "may", "must",
        "should", "does", "do", "did", "could", "would"}


_COPULAS = {"is", "are", "was", "were"}


_PREPOSITIONS = {"in", "for", "of", "during", "at", "on", "by", "from", "to", "with", "under",
                 "about", "between", "after", "before", "within", "without", "when", "if"}


_STOP = _AUX | _PREPOSITIONS | {
    "the", "a", "an", "and", "or", "but", "not", "no", "this", "that", "these", "those", "it",
    "its", "be", "been", "being", "as", "than", "then", "there", "their", "they", "them", "we",
    "our", "you", "your", "he", "she", "his", "her", "which", "who", "whom", "what", "also",
    "such", "so", "any", "all", "each", "other", "more", "most", "some", "into", "only", "may",
    "one", "two", "use", "used", "using", "see", "e", "g", "i", "etc"}


_BOILERPLATE = re.compile(r"copyright|all rights reserved|©|https?://|www\.|licen[cs]e|"
                          r"^[\W_]+$|[=\-_*#~]{4,}|\|.*\|", re.I)


# Page furniture: a running header or footer laid out in columns ("GNU coreutils 9.1     September
# 2022     MV(1)"), or a line that is only a manual reference or a page number.
_FURNITURE = re.compile(r"\S\s{3,}\S.*\s{3,}\S|^\s*[\w.+-]+\(\d\w*\)\s*$|^\s*(page\s+)?\d+(\s+of\s+\d+)?\s*$",
                        re.I)


# A word broken at the end of a line: "sys‐ tem" (U+2010 hyphen, soft hyphen or ASCII hyphen,
# then a space where the line break was, then the lower-case rest).
_BROKEN_WORD = re.compile(r"\b([A-Za-z]+)[\u2010\u00ad-] +([a-z]+)\b")


_LEADING_HEADING = re.compile(r"^(?:[A-Z][A-Z0-9_-]+ +){2,}(?=[A-Z][a-z])")  # "EXIT CODES There…"


_LEADING_MARK = re.compile(r"^[•·*▪◦‣-]\s+")  # a list bullet


# A question's subject must name something: these open a clause or point back, they name nothing.
_NOT_A_SUBJECT = {"if", "when", "while", "because", "although", "though", "since", "unless",
                  "whether", "this", "that", "these", "those", "it", "there", "here", "which",
                  "who", "what", "so", "and", "or", "but", "as", "thus", "then", "also", "otherwise",
                  "such", "each", "all", "any", "both", "either", "neither", "one", "some"}


def tidy(text: str, vocabulary: dict[str, int] | frozenset = frozenset()) -> str:
    """Text as a person would type it: words broken across lines joined again, tabs and runs of
    spaces (justified or columned layout) made single spaces.

    A break at a typographic hyphen (U+2010, as man pages render) or a soft hyphen is always
    line-break hyphenation; at an ASCII hyphen it may be a real compound ("pre- and post-"), so
    it is joined only when the joined word occurs in ``vocabulary`` (the corpus's own words).

    >>> tidy("the sys‐ tem\tclock,  re- set")
    'the system clock, re- set'
    """
    def join(match: re.Match) -> str:
        head, tail = match.group(1), match.group(2)
        typographic = match.group(0)[len(head)] != "-"
        return head + tail if typographic or (head + tail).lower() in vocabulary else match.group(0)

    return " ".join(_BROKEN_WORD.sub(join, text).split())


@dataclass
class PseudoQueryConfig:
    """How the offline generator makes (query, passage) pairs from a corpus.

    ``questions`` (the default) writes two kinds of query per chunk, both short like the ones
    people type: a question rebuilt from one of its sentences ("Total revenue was $5 bn in 2024"
    → "What was total revenue in 2024?"), or, where no question shape fits, the sentence's
    rarest words; and a sentence cut from the chunk (Inverse Cloze Task), whose positive is the
    chunk without it. ``sentences`` is the plain Inverse Cloze Task.
    """
    per_chunk: int = 2
    min_words: int = 5
    max_words: int = 40
    seed: int = 13
    style: str = "questions"
    filter_top_k: int = 10  # keep a pair only if the base model ranks its passage this high; 0: off
    model: str | None = None  # the base model that judges answerability
    # More chunks than a default training run can use: a seeded sample keeps the filter's
    # encoding (the slow part on a CPU) within minutes on large corpora.
    max_chunks: int = 8000

    def validate(self) -> None:
        if not 1 <= self.per_chunk <= 10:
            raise WorkspaceError(f"queries per chunk must be between 1 and 10, not {self.per_chunk}")
        if not 1 <= self.min_words <= self.max_words:
            raise WorkspaceError("min_words must be at least 1 and at most max_words")
        if self.style not in GENERATOR_STYLES:
            raise WorkspaceError(f"style must be one of {', '.join(GENERATOR_STYLES)}, not {self.style!r}")
        if self.filter_top_k < 0:
            raise WorkspaceError("filter_top_k must be 0 (off) or more")
        if self.max_chunks < 1:
            raise WorkspaceError("max_chunks must be at least 1")


def _heading(line: str) -> str | None:
    m = re.match(r"^#{1,6}\s+(.+)$", line.strip())
    return m.group(1).strip() if m else None


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9][\w'$%.-]*[\w%]|[A-Za-z0-9]", text)


def question_from(sentence: str) -> str | None:
    """A short question whose answer is the sentence, when its first clause has a
    'subject aux …' shape: the subject and a qualifier are kept, the answer is dropped.

    >>> question_from("Total revenue was $26.97 billion in fiscal 2024, up 126%.")
    'What was total revenue in fiscal 2024?'
    """
    if not sentence[:1].isalpha():
        return None  # "-W exec file …", "--happy-eyeballs …": an option's entry, not a statement
    words = _words(re.split(r"[,;:(]| - ", sentence)[0])
    for i, word in enumerate(words[1:9], start=1):
        if word.lower() not in _AUX:
            continue
        subject, rest = words[:i], words[i + 1:]
        if len(subject) == 1 and subject[0].lower() in _STOP:
            return None  # "It is …": the subject names nothing
        if any(w.lower() in _NOT_A_SUBJECT for w in subject):
            return None  # "If that string is …", "HTTPS-proxy This option is …"
        if sum(w.isupper() and len(w) > 1 for w in subject) >= 2:
            return None  # "PATTERNS PATTERN is …": placeholders from a synopsis, not a name
        # A copula's complement is the answer; another auxiliary's verb is part of the question.
        verb = [] if word.lower() in _COPULAS or not rest else rest[:1]
        qualifier = next((rest[j:j + 5] for j, w in enumerate(rest[:8])
                          if j and w.lower() in _PREPOSITIONS), [])
        cut = next((j for j, w in enumerate(qualifier) if w.lower() in ("and", "or", "but")), None)
        qualifier = qualifier[:cut]  # a second clause is another question
        while qualifier and qualifier[-1].lower() in _STOP:
            qualifier = qualifier[:-1]  # "… from a file and to?": a cut phrase ends on a word
        if len(qualifier) == 1:
            qualifier = []  # a lone preposition
        # Sentence case goes, but an acronym or a name like "iPhone" keeps its capitals.
        first = subject[0] if subject[0][1:].lower() != subject[0][1:] else subject[0].lower()
        return " ".join(["What", word.lower(), first, *subject[1:12], *verb, *qualifier]) + "?"
    return None


def keywords_from(sentence: str, document_frequency: dict[str, int]) -> str | None:
    """The sentence's rarest content words, in their order: how people type a search."""
    words = [w for w in _words(sentence) if w.lower() not in _STOP and len(w) > 2]
    if len(words) < 3:
        return None
    ranked = sorted(words, key=lambda w: document_frequency.get(w.lower(), 0))
    keep = set(ranked[:min(6, max(3, len(words) // 2))])
    picked = list(dict.fromkeys(w for w in words if w in keep))
    return " ".join(picked) if len(picked) >= 2 else None


def pseudo_queries(text: str, config: PseudoQueryConfig, rng: random.Random,
                   document_frequency: dict[str, int] | None = None,
                   boilerplate: set[str] = frozenset()) -> list[tuple[str, str]]:
    """(query, positive) pairs from one chunk: a heading over its section, then queries made
    from sentences of a useful length that are not boilerplate."""
    lines = text.splitlines()
    out: list[tuple[str, str]] = []
    heading = _heading(lines[0]) if lines else None
    if heading and len(heading.split()) >= 2:
        body = "\n".join(lines[1:]).strip()
        if len(body.split()) >= config.min_words:
            out.append((heading, body))
    units = [_LEADING_HEADING.sub("", _LEADING_MARK.sub("", tidy(u, document_frequency or {})))
             for u, _ in split_units(text) if not _heading(u) and not _FURNITURE.search(u)]
    candidates = [i for i, u in enumerate(units)
                  if config.min_words <= len(u.split()) <= config.max_words
                  and not _BOILERPLATE.search(u) and normalise(u) not in boilerplate]
    if len(units) < 2:
        return out[:config.per_chunk]
    for k, i in enumerate(rng.sample(candidates, min(len(candidates), config.per_chunk - len(out)))):
        rest = " ".join(u for j, u in enumerate(units) if j != i)
        if config.style == "sentences" or k % 2 == 1:
            out.append((units[i], rest))
            continue
        query = question_from(units[i]) or keywords_from(units[i], document_frequency or {})
        if query:
            out.append((query, text))
    return out


def answerable(store: Store | None, model_name: str | None, queries: list[str],
               chunk_texts: list[str], source: list[int], top_k: int,
               progress: Callable[[str, float], None] | None = None) -> list[bool]:
    """For each generated query, whether the base model ranks the chunk it came from within
    ``top_k`` of the whole corpus: a query nothing can find is noise, not a lesson. Corpus
    vectors come from (and stay in) the workspace cache the evaluator uses. ``progress`` gets
    (stage, fraction) with counts: encoding 1,600 passages is a minute on a busy CPU."""
    from core.measuring.evaluate import cache_key, counted, encode, encode_corpus_cached, unit_rows
    from core.measuring.evaluate import top_k as best
    from core.workspace import models
    model = models.load(model_name)
    corpus, _ = encode_corpus_cached(store, cache_key(model_name, model), model, chunk_texts,
                                     progress=counted(progress, "encoding passages"))
    found, _ = best(unit_rows(encode(model, queries, role="query",
                                     progress=counted(progress, "encoding queries"))),
                    corpus, top_k)
    return [src in row for src, row in zip(source, found.tolist())]


def keep_answerable(candidates: list, answerable: list[bool]) -> list:
    """The candidates the base model could answer, or all of them when it could answer none:
    an empty set would leave nothing to train or measure on, while a bad filter only costs the
    noise it would have removed."""
    return [c for c, good in zip(candidates, answerable) if good] or candidates


def generate_builtin(store: Store, corpus_id: int, name: str,
                     config: PseudoQueryConfig | None = None,
                     progress: Callable[[str, float], None] | None = None,
                     made_by: str | None = None) -> int:
    """Generate, filter and store pseudo-query pairs for every chunk of a corpus.

    Args:
        progress: gets (stage, fraction) of the filter's encoding, the part that takes time.
        made_by: the run that asked for them (e.g. "documents-only run"), when no person did:
            such a set never becomes the set a page shows first (``chosen_by_a_person``).
    """
    check_label(name, "pair set name")  # before the work, not when storing it
    config = config or PseudoQueryConfig()
    config.validate()
    rng = random.Random(config.seed)
    chunks = store.chunks(corpus_id)
    if len(chunks) > config.max_chunks:
        chunks = [chunks[i] for i in sorted(rng.sample(range(len(chunks)), config.max_chunks))]
    document_frequency: dict[str, int] = {}
    sentence_count: dict[str, int] = {}
    for chunk in chunks:
        for word in {w.lower() for w in _words(chunk["text"])}:
            document_frequency[word] = document_frequency.get(word, 0) + 1
        for unit, _ in split_units(chunk["text"]):
            key = normalise(unit)
            sentence_count[key] = sentence_count.get(key, 0) + 1
    # A sentence repeated across chunks (a footer, a disclaimer) identifies no passage.
    boilerplate = {s for s, n in sentence_count.items() if n > 1}
    candidates, seen = [], set()
    for index, chunk in enumerate(chunks):
        for query, positive in pseudo_queries(chunk["text"], config, rng, document_frequency,
                                              boilerplate):
            key = normalise(query)
            if key and key not in seen and key not in normalise(positive):
                seen.add(key)
                candidates.append((index, query, positive))
    if not candidates:
        raise WorkspaceError("no pseudo-queries could be made: chunks need at least two "
                             f"sentences of {config.min_words}+ words; use an LLM or import pairs")
    kept = candidates
    if config.filter_top_k:
        ok = answerable(store, config.model, [q for _, q, _ in candidates],
                        [c["text"] for c in chunks], [i for i, _, _ in candidates], config.filter_top_k,
                        progress)
        kept = keep_answerable(candidates, ok)
    with store.transaction():
        pair_set_id = store.create_pair_set(corpus_id, name, "builtin", {
            "config": asdict(config), "candidates": len(candidates), "kept": len(kept),
            **({"made_by": made_by} if made_by else {})})
        store.add_pairs(pair_set_id, [(f"c{chunks[i]['id']}-{n}", q, chunks[i]["id"], p)
                                      for n, (i, q, p) in enumerate(kept)])
    return pair_set_id
