"""Question→passage pairs: brought by the user, generated, and split without leakage.

Three sources feed a pair set:

* **Import** — a CSV/JSONL/Parquet of (query, passage) rows. Passages are matched to corpus
  chunks by normalised text; passages that match nothing become new chunks, so a pairs file is
  enough on its own.
* **Built-in pseudo-queries** — no LLM. In the spirit of the Inverse Cloze Task (Lee et al.,
  2019, "Latent Retrieval for Weakly Supervised Open Domain QA"), a sentence of a chunk is the
  query and the rest of the chunk is its positive, with the sentence removed so the model must
  learn context rather than copy words. Headings are used as queries for the text below them.
* **An LLM** — any OpenAI-compatible chat endpoint (Ollama, vLLM, OpenAI) writes questions per
  chunk, concurrently, with retries; it resumes where it stopped, because chunks that already
  have questions in the set are skipped.

``split`` assigns train/test so that no passage, and no normalised-identical query, is on both
sides: pairs are grouped by connected components over shared chunks and shared queries.
"""
from __future__ import annotations

import json
import random
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field

from core.documents.corpus import normalise, pick_column, read_table, split_units
from core.workspace.errors import WorkspaceError
from core.workspace.store import Store
from core.workspace.text import check_label, question_text, text_hash

QUERY_COLUMNS = ("query", "question", "anchor", "queries", "questions", "q")
PASSAGE_COLUMNS = ("positive", "context", "passage", "answer", "document", "text", "pos",
                   "contexts")


GENERATED_SOURCES = ("builtin", "llm")


def chosen_by_a_person(pair_set) -> bool:
    """Whether a person made this pair set (imported, generated or labelled it), rather than a
    run making it for its own use: only those are the newest set a page shows first."""
    return not pair_set.settings.get("made_by")


def is_generated(pair_set) -> bool:
    """Whether a pair set's queries were generated rather than written by people."""
    return pair_set.source in GENERATED_SOURCES


# -- import --------------------------------------------------------------------------------
def guess_columns(columns: Iterable[str]) -> tuple[str | None, str | None]:
    columns = list(columns)
    return pick_column(columns, QUERY_COLUMNS), pick_column(columns, PASSAGE_COLUMNS)


def read_pairs_file(name: str, data: bytes, query_column: str | None = None,
                    passage_column: str | None = None) -> list[tuple[str, str]]:
    frame = read_table(name, data)
    guessed_q, guessed_p = guess_columns(frame.columns)
    query_column, passage_column = query_column or guessed_q, passage_column or guessed_p
    for role, column, names in (("query", query_column, QUERY_COLUMNS),
                                ("passage", passage_column, PASSAGE_COLUMNS)):
        if column is None or column not in frame.columns:
            raise WorkspaceError(f"{name}: no {role} column; name it {'/'.join(names[:4])} or "
                                 f"pick one of: {', '.join(frame.columns)}")
    if query_column == passage_column:
        raise WorkspaceError(f"{name}: the query and passage columns must differ")
    rows = [(str(q).strip(), str(p).strip())
            for q, p in zip(frame[query_column], frame[passage_column])]
    rows = [(q, p) for q, p in rows if q and p and q.lower() != "nan" and p.lower() != "nan"]
    if not rows:
        raise WorkspaceError(f"{name}: no rows with both a query and a passage")
    wordless = [q for q, _ in rows if question_text(q) is None]
    if wordless:  # the question rule of people's questions, for imported queries too
        raise WorkspaceError(f"{name}: {len(wordless)} of {len(rows)} queries have no letter or "
                             f"digit (e.g. {wordless[0]!r}: only emoji, punctuation or invisible "
                             "characters); remove those rows or write the questions in words")
    return rows


def file_is_generated(name: str, data: bytes) -> bool:
    """Whether a pairs file says (in a ``source`` column, as ``pairs export`` writes) that every
    one of its pairs was generated."""
    frame = read_table(name, data)
    return "source" in frame.columns and bool(len(frame)) and bool(
        frame["source"].astype(str).isin(GENERATED_SOURCES).all())


@dataclass
class ImportReport:
    pair_set_id: int
    pairs: int
    new_passages: int  # passages the corpus did not hold, added to it as chunks

    def summary(self) -> str:
        added = (f"; {self.new_passages} passages were not in the corpus and were added to it "
                 "as chunks" if self.new_passages else "")
        return f"Imported {self.pairs} pairs as pair set {self.pair_set_id}{added}"


def import_pairs(store: Store, corpus_id: int, name: str, rows: list[tuple[str, str]],
                 source: str = "imported") -> ImportReport:
    """Store (query, passage) rows as a pair set, linking each passage to its chunk; passages
    the corpus lacks become chunks of a new document, counted in the corpus stats."""
    with store.transaction():
        by_text = {text_hash(normalise(r["text"])): r["id"] for r in store.chunks(corpus_id)}
        new: dict[str, str] = {}
        for _, passage in rows:
            key = text_hash(normalise(passage))
            if key not in by_text:
                new.setdefault(key, passage)
        unique = list(new.values())
        if unique:
            document_id = store.add_document(corpus_id, f"passages of {name}", "pairs",
                                             sum(map(len, unique)))
            store.add_chunks(corpus_id, document_id,
                             [(i, None, p, len(p.split())) for i, p in enumerate(unique)])
            by_text = {text_hash(normalise(r["text"])): r["id"] for r in store.chunks(corpus_id)}
            stats = store.corpus(corpus_id).stats
            store.set_corpus_stats(corpus_id, {**stats,
                                               "documents": stats.get("documents", 0) + 1,
                                               "chunks": stats.get("chunks", 0) + len(unique)})
        pair_set_id = store.create_pair_set(corpus_id, name, source, {"new_passages": len(unique)})
        query_ids: dict[str, str] = {}
        store.add_pairs(pair_set_id, [
            (query_ids.setdefault(normalise(q), f"q{len(query_ids)}"), q,
             by_text[text_hash(normalise(p))], p) for q, p in rows])
    return ImportReport(pair_set_id, len(rows), len(unique))


def link_pairs(store: Store, corpus_id: int, name: str, source: str,
               labelled: list[tuple[str, str, str]], split: str | None = None) -> int:
    """A pair set from (query id, query, external chunk id) labels, e.g. BEIR qrels; every
    chunk cut from a labelled document counts as relevant."""
    with store.transaction():
        chunks_of: dict[str, list] = {}
        for row in store.chunks(corpus_id):
            if row["external_id"] is not None:
                chunks_of.setdefault(row["external_id"], []).append(row)
        pair_set_id = store.create_pair_set(corpus_id, name, source, {})
        rows, unknown = [], 0
        for query_id, query, external in labelled:
            found = chunks_of.get(external)
            if not found:
                unknown += 1
            rows.extend((query_id, query, c["id"], c["text"]) for c in found or [])
        if not rows:
            raise WorkspaceError(f"none of the {len(labelled)} labels names a passage in the "
                                 "corpus; check the ids in the labels")
        store.add_pairs(pair_set_id, rows)
        if split:
            store.set_splits(pair_set_id, {r["id"]: split for r in store.pairs(pair_set_id)})
        store.update_pair_set_settings(pair_set_id, {"skipped_unknown_passages": unknown})
    return pair_set_id


# -- built-in pseudo-queries ---------------------------------------------------------------
BUILTIN_PAIR_SET = "pseudo-queries"  # the default name of a generated set


def llm_pair_set_name(model: str) -> str:
    """The default name of an LLM-written set; generating under it again resumes the set."""
    return f"llm {model}"

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


# -- LLM-generated questions ---------------------------------------------------------------
PROMPT = (
    "Here is a passage from a document collection.\n\n---\n{passage}\n---\n\n"
    "Write {n} different questions that a person searching this collection might ask and that "
    "this passage answers. Each question must make sense without seeing the passage. Answer "
    "with the questions only, one per line, without numbering.")


@dataclass
class LLMConfig:
    base_url: str = "http://localhost:11434/v1"
    model: str = "llama3.2"
    questions_per_chunk: int = 2
    concurrency: int = 4
    max_retries: int = 3
    timeout: float = 60.0
    temperature: float = 0.7
    max_chunks: int | None = None
    price_in_per_million: float = 0.0
    price_out_per_million: float = 0.0
    api_key: str = field(default="", repr=False)  # never stored: see public()

    def public(self) -> dict:
        d = asdict(self)
        d.pop("api_key")
        return d

    def validate(self) -> None:
        if not re.match(r"^https?://", self.base_url):
            raise WorkspaceError(f"base URL {self.base_url!r} must start with http:// or https://")
        if not 1 <= self.questions_per_chunk <= 10:
            raise WorkspaceError("questions per chunk must be between 1 and 10")
        if not 1 <= self.concurrency <= 64:
            raise WorkspaceError("concurrency must be between 1 and 64")


@dataclass
class Estimate:
    calls: int
    tokens_in: int
    tokens_out: int
    cost: float
    seconds: float

    def summary(self) -> str:
        cost = f", about ${self.cost:.2f}" if self.cost else ""
        return (f"{self.calls} calls, ~{self.tokens_in:,} tokens in and ~{self.tokens_out:,} out"
                f"{cost}, roughly {self.seconds / 60:.1f} min at 3 s a call")


def estimate(store: Store, corpus_id: int, config: LLMConfig, pair_set_id: int | None = None) -> Estimate:
    chunks = _pending_chunks(store, corpus_id, config, pair_set_id)
    tokens_in = sum(c["tokens"] for c in chunks) + 80 * len(chunks)
    tokens_out = 25 * config.questions_per_chunk * len(chunks)
    cost = (tokens_in * config.price_in_per_million + tokens_out * config.price_out_per_million) / 1e6
    return Estimate(len(chunks), tokens_in, tokens_out, cost, 3.0 * len(chunks) / config.concurrency)


def _pending_chunks(store: Store, corpus_id: int, config: LLMConfig, pair_set_id: int | None):
    chunks = store.chunks(corpus_id)
    if config.max_chunks:
        chunks = chunks[:config.max_chunks]
    if pair_set_id is not None:
        done = {r["chunk_id"] for r in store.pairs(pair_set_id)}
        chunks = [c for c in chunks if c["id"] not in done]
    return chunks


class LLMError(WorkspaceError):
    pass


def chat(config: LLMConfig, prompt: str) -> str:
    """One chat completion, retried with exponential backoff on rate limits and server errors."""
    body = json.dumps({"model": config.model, "temperature": config.temperature,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    headers = {"Content-Type": "application/json"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    url = config.base_url.rstrip("/") + "/chat/completions"
    for attempt in range(config.max_retries + 1):
        try:
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=config.timeout) as response:
                payload = json.loads(response.read())
            return payload["choices"][0]["message"]["content"] or ""
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise LLMError(f"the endpoint refused the API key (HTTP {e.code}); check the key") from None
            if e.code == 404:
                raise LLMError(f"HTTP 404 from {url}: check the base URL (it usually ends in /v1) "
                               f"and that model {config.model!r} exists") from None
            if e.code not in (408, 409, 429) and e.code < 500:
                raise LLMError(f"the endpoint rejected the request (HTTP {e.code})") from None
            reason = f"HTTP {e.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            reason = str(getattr(e, "reason", e))
        except (json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise LLMError(f"{url} did not answer like an OpenAI-compatible chat API") from None
        if attempt < config.max_retries:
            time.sleep(min(8.0, 0.5 * 2 ** attempt))
    raise LLMError(f"no answer from {url} after {config.max_retries + 1} tries ({reason}); "
                   "is the server running?")


def parse_questions(reply: str, n: int) -> list[str]:
    questions = []
    for line in reply.splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.)]|Q\d*[:.])\s*", "", line).strip().strip('"')
        if len(line.split()) >= 3 and not line.lower().startswith(("here are", "sure")):
            questions.append(line)
    return list(dict.fromkeys(questions))[:n]


@dataclass
class LLMReport:
    """What an LLM run did: chunks answered, chunks whose requests failed, and why."""
    pair_set_id: int
    done: int
    failed: int
    first_error: str | None = None

    def summary(self) -> str:
        text = f"pair set {self.pair_set_id}: questions for {self.done} chunks"
        if self.failed:
            text += (f"; {self.failed} chunks failed ({self.first_error}); run the same command "
                     "again to retry only those")
        return text


def generate_llm(store: Store, corpus_id: int, name: str, config: LLMConfig,
                 progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> LLMReport:
    """Ask the LLM for questions on every chunk not yet covered by the pair set ``name``.

    Results are written chunk by chunk from this thread (workers only talk HTTP), so a stop,
    a crash or a cancel keeps everything already generated and a rerun continues from there.
    The pair set is created with its first questions: a run in which every request fails
    raises its first error and leaves nothing behind.
    """
    config.validate()
    existing = {p.name: p for p in store.pair_sets(corpus_id)}
    pair_set_id = existing[name].id if name in existing else None
    chunks = _pending_chunks(store, corpus_id, config, pair_set_id)
    done, failures, first_error = 0, 0, None
    stop = threading.Event()

    def ask(chunk):
        if stop.is_set():
            return chunk, None  # skipped, neither done nor failed: a rerun asks again
        prompt = PROMPT.format(passage=chunk["text"], n=config.questions_per_chunk)
        return chunk, parse_questions(chat(config, prompt), config.questions_per_chunk)

    with ThreadPoolExecutor(max_workers=config.concurrency) as pool:
        futures = [pool.submit(ask, c) for c in chunks]
        for future in as_completed(futures):
            try:
                chunk, questions = future.result()
            except LLMError as e:
                failures += 1
                first_error = first_error or e
                if failures >= 3 and done == 0:  # the endpoint is plainly not working
                    stop.set()
                continue
            if questions is None:
                continue
            if questions:
                with store.transaction():
                    if pair_set_id is None:
                        pair_set_id = store.create_pair_set(corpus_id, name, "llm",
                                                            {"config": config.public()})
                    store.add_pairs(pair_set_id, [(f"c{chunk['id']}-{k}", q, chunk["id"], chunk["text"])
                                                  for k, q in enumerate(questions)])
            done += 1
            if progress:
                progress(done, len(chunks))
            if should_stop and should_stop():
                stop.set()
    if first_error and done == 0:
        raise first_error
    if pair_set_id is None:
        raise WorkspaceError(f"the LLM answered {done} chunks but wrote no usable questions "
                             "(one per line, three words or more); try another model")
    return LLMReport(pair_set_id, done, failures, str(first_error) if first_error else None)


# -- split -----------------------------------------------------------------------------------
# The split's defaults, for the page, the CLI and the demo alike: a fifth of the pairs held out,
# as in the reference recipe's 80/20, with a fixed seed so a re-split lands the same way.
TEST_FRACTION = 0.2
SPLIT_SEED = 42


@dataclass
class SplitReport:
    train: int
    test: int
    train_queries: int
    test_queries: int
    groups: int


def connected_groups(keys: list[Iterable]) -> list[list[int]]:
    """Indices of items joined whenever two share a key (union-find), in order of first item.

    A pair keyed by its passage and its normalised query: two pairs of one group must land on
    the same side of any split, or the other side would hold an answer or question it has seen.

    Example::

        >>> connected_groups([("a", "x"), ("b", "y"), ("c", "x")])
        [[0, 2], [1]]
    """
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict = {}
    for i, item_keys in enumerate(keys):
        for key in item_keys:
            parent[find(i)] = find(first_with.setdefault(key, i))
    groups: dict[int, list[int]] = {}
    for i in range(len(keys)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def split(store: Store, pair_set_id: int, test_fraction: float = TEST_FRACTION,
          seed: int = SPLIT_SEED) -> SplitReport:
    """Assign whole connected groups (shared passage or same normalised query) to one side."""
    if not 0.0 < test_fraction < 1.0:
        raise WorkspaceError("test fraction must be between 0 and 1, e.g. 0.2")
    store.pair_set(pair_set_id)  # a missing set is named as such, not as "too few pairs"
    pairs = store.pairs(pair_set_id)
    if len(pairs) < 2:
        raise WorkspaceError("a split needs at least 2 pairs; add or generate more pairs first")
    groups = connected_groups([(("chunk", p["chunk_id"]), ("query", normalise(p["query"])))
                               for p in pairs])
    ordered = sorted(groups, key=lambda g: pairs[g[0]]["id"])
    random.Random(seed).shuffle(ordered)
    target = max(1, round(test_fraction * len(pairs)))
    assignment: dict[int, str] = {}
    test_count = 0
    for group in ordered:
        side = "test" if test_count < target else "train"
        if side == "test":
            test_count += len(group)
        for i in group:
            assignment[pairs[i]["id"]] = side
    if test_count == len(pairs) and len(ordered) > 1:
        raise WorkspaceError(f"a test fraction of {test_fraction} leaves none of the "
                             f"{len(pairs)} pairs for training; use a smaller one, e.g. 0.2")
    if test_count == len(pairs):
        raise WorkspaceError("all pairs share passages or queries, so no leakage-free split "
                             "exists; add pairs about other passages")
    store.set_splits(pair_set_id, assignment)
    settings = store.pair_set(pair_set_id).settings
    store.update_pair_set_settings(pair_set_id, {**settings, "split": {
        "test_fraction": test_fraction, "seed": seed}})
    queries = {side: len({pairs[i]["query_id"] for g in ordered for i in g
                          if assignment[pairs[i]["id"]] == side}) for side in ("train", "test")}
    return SplitReport(len(pairs) - test_count, test_count, queries["train"], queries["test"],
                       len(ordered))


def export_jsonl(store: Store, pair_set_id: int, split_name: str | None = None) -> str:
    """One JSON object per pair; ``source`` says where the pairs came from (builtin, llm,
    imported…), so training on the file plans for generated pairs without being told."""
    source = store.pair_set(pair_set_id).source  # an unknown id is an error, not an empty export
    return "".join(json.dumps({"query": r["query"], "positive": r["positive"],
                               "query_id": r["query_id"], "chunk_id": r["chunk_id"],
                               "split": r["split"], "source": source},
                              ensure_ascii=False) + "\n"
                   for r in store.pairs(pair_set_id, split_name))
