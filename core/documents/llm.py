"""Questions written by an LLM: any OpenAI-compatible chat endpoint (Ollama, vLLM, OpenAI) writes
questions per chunk, concurrently, with retries; a run resumes where it stopped, because chunks
that already have questions in the set are skipped. ``estimate`` says the cost and time first.

Example::

    config = LLMConfig("http://localhost:11434/v1", "llama3.2", per_chunk=2)
    estimate(store, corpus_id, config).summary()   # what it will send, and about how long
    report = generate_llm(store, corpus_id, llm_pair_set_name(config.model), config)
"""
from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field

from core.workspace.errors import WorkspaceError
from core.workspace.store import Store


def llm_pair_set_name(model: str) -> str:
    """The default name of an LLM-written set; generating under it again resumes the set."""
    return f"llm {model}"


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
