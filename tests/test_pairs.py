"""Pairs from a file, from the built-in pseudo-query method and from an LLM, and the split."""
import json
import random

import pandas as pd
import pytest

from core.documents.corpus import ChunkSettings, Document, ingest, normalise
from core.documents.llm import LLMConfig, estimate, generate_llm, parse_questions
from core.documents.pairs import export_jsonl, import_pairs, read_pairs_file, split
from core.documents.pseudo import PseudoQueryConfig, answerable, generate_builtin, pseudo_queries, question_from
from core.workspace.store import WorkspaceError
from tests.conftest import PARAGRAPHS
from tests.llm_server import FakeLLM


@pytest.fixture
def corpus_id(store, count):
    docs = [Document(f"d{i}.txt", "text", p) for i, p in enumerate(PARAGRAPHS)]
    return ingest(store, "plants", docs, count, ChunkSettings(64, 0)).corpus_id


def test_import_recognises_usual_column_names_and_links_passages(store, corpus_id):
    frame = pd.DataFrame({"question": ["What do stomata do?", "What is new?"],
                          "context": [PARAGRAPHS[2], "A passage the corpus does not hold yet."]})
    rows = read_pairs_file("qa.csv", frame.to_csv(index=False).encode())
    pair_set_id = import_pairs(store, corpus_id, "qa", rows).pair_set_id
    pairs = store.pairs(pair_set_id)
    chunk_texts = {c["id"]: c["text"] for c in store.chunks(corpus_id)}
    assert chunk_texts[pairs[0]["chunk_id"]] == PARAGRAPHS[2]
    assert chunk_texts[pairs[1]["chunk_id"]] == "A passage the corpus does not hold yet."
    assert len(chunk_texts) == 4


def test_import_without_the_needed_columns_names_them(store):
    data = pd.DataFrame({"a": ["x"], "b": ["y"]}).to_csv(index=False).encode()
    with pytest.raises(WorkspaceError, match=r"no query column.*pick one of: a, b"):
        read_pairs_file("qa.csv", data)
    assert read_pairs_file("qa.csv", data, "a", "b") == [("x", "y")]


def test_sentence_queries_remove_the_query_sentence_from_its_positive():
    rng = random.Random(0)
    text = "# Leaf pores\n\n" + PARAGRAPHS[2] + " " + PARAGRAPHS[1]
    pairs = pseudo_queries(text, PseudoQueryConfig(per_chunk=3, style="sentences"), rng)
    assert pairs[0][0] == "Leaf pores" and "Stomata" in pairs[0][1]
    for query, positive in pairs[1:]:
        assert query in text and query not in positive


@pytest.mark.parametrize("sentence, question", [
    ("Total revenue was $26.97 billion in fiscal 2024, up 126% from a year ago.",
     "What was total revenue in fiscal 2024?"),
    ("Stomata are small pores on leaves.", "What are stomata on leaves?"),
    ("The Calvin cycle fixes carbon dioxide into sugars.", None),
    ("NVIDIA has expanded its data center business with new products.",
     "What has NVIDIA expanded with new products?"),
    ("It is especially useful for editing programs.", None),
])
def test_questions_are_rebuilt_from_a_sentence_without_its_answer(sentence, question):
    assert question_from(sentence) == question


def test_default_queries_are_short_questions_or_keywords_never_boilerplate():
    rng = random.Random(1)
    footer = "Copyright 2024 Example Corp. All rights reserved worldwide."
    text = f"{PARAGRAPHS[2]} {PARAGRAPHS[0]}\n\n{footer}\n\n==============================="
    queries = [q for _ in range(20) for q, _ in pseudo_queries(text, PseudoQueryConfig(), rng)]
    assert queries and not any("Copyright" in q or "====" in q for q in queries)
    shaped = [q for q in queries if q.endswith("?") or q not in text]
    assert shaped and all(len(q.split()) <= 14 for q in shaped)


def test_builtin_generation_covers_every_chunk_and_drops_repeated_sentences(store, count):
    footer = "This page is part of the Plant Handbook published by Example Press."
    docs = [Document(f"d{i}.txt", "text", f"{p}\n\n{footer}") for i, p in enumerate(PARAGRAPHS)]
    corpus_id = ingest(store, "plants", docs, count, ChunkSettings(64, 0)).corpus_id
    stages = []
    pair_set_id = generate_builtin(store, corpus_id, "pseudo", PseudoQueryConfig(per_chunk=2),
                                   lambda stage, fraction: stages.append(stage))
    pairs = store.pairs(pair_set_id)
    assert {p["chunk_id"] for p in pairs} == {c["id"] for c in store.chunks(corpus_id)
                                              if c["text"] != footer}
    assert not any("Handbook" in p["query"] for p in pairs)
    settings = store.pair_set(pair_set_id).settings
    assert settings["kept"] == len(pairs) <= settings["candidates"]
    chunks, queries = len(store.chunks(corpus_id)), settings["candidates"]  # the wait, counted
    assert stages == [f"encoding passages: 0 of {chunks}", f"encoding passages: {chunks} of {chunks}",
                      f"encoding queries: 0 of {queries}", f"encoding queries: {queries} of {queries}"]


def test_the_filter_keeps_only_queries_the_base_model_can_answer(store, corpus_id):
    chunks = [c["text"] for c in store.chunks(corpus_id)]
    calvin, stomata = chunks.index(PARAGRAPHS[1]), chunks.index(PARAGRAPHS[2])
    queries = ["Which pores on leaves close on hot days?", "Which pores on leaves close on hot days?"]
    assert answerable(store, None, queries, chunks, [stomata, calvin], 1) == [True, False]


def test_split_never_puts_a_passage_or_a_query_on_both_sides(store, count):
    docs = [Document(f"d{i}", "text", f"Passage number {i} talks about topic {i} at length.")
            for i in range(60)]
    corpus_id = ingest(store, "many", docs, count).corpus_id
    chunks = store.chunks(corpus_id)
    rows = []
    for i, c in enumerate(chunks):
        rows.append((f"Question about topic {i}?", c["text"]))
        rows.append((f"Another question about topic {i}?", c["text"]))  # same passage
    rows.append(("question about topic 3", chunks[40]["text"]))  # near-identical to a query of 3
    pair_set_id = import_pairs(store, corpus_id, "qa", rows).pair_set_id
    report = split(store, pair_set_id, test_fraction=0.25, seed=1)
    pairs = store.pairs(pair_set_id)
    sides = {}
    for p in pairs:
        for key in (p["chunk_id"], normalise(p["query"]).replace("question about", "")):
            sides.setdefault(key, set()).add(p["split"])
    assert all(len(s) == 1 for s in sides.values())
    assert report.train + report.test == len(pairs) and 25 <= report.test <= 40
    assert split(store, pair_set_id, 0.25, seed=1) == report  # the seed makes it repeatable


def test_split_of_too_few_pairs_says_so(store, corpus_id):
    pair_set_id = import_pairs(store, corpus_id, "one", [("q?", PARAGRAPHS[0])]).pair_set_id
    with pytest.raises(WorkspaceError, match="at least 2 pairs"):
        split(store, pair_set_id)


def test_export_writes_one_json_object_per_pair(store, corpus_id):
    pair_set_id = generate_builtin(store, corpus_id, "pseudo")
    split(store, pair_set_id, 0.3)
    lines = export_jsonl(store, pair_set_id, "test").splitlines()
    assert lines and all(json.loads(line)["split"] == "test" for line in lines)


def test_parse_questions_strips_numbering_and_chatter():
    reply = "Sure, here are two questions:\n1. What is a stoma?\n- Why do leaves close pores?\n"
    assert parse_questions(reply, 5) == ["What is a stoma?", "Why do leaves close pores?"]


def test_llm_generation_over_http_with_retries_and_resume(store, corpus_id):
    server = FakeLLM(fail_first=2, status=503, required_key="sk-test")
    try:
        config = LLMConfig(server.url, "tiny", questions_per_chunk=2, concurrency=2,
                           max_retries=3, api_key="sk-test", max_chunks=2)
        assert estimate(store, corpus_id, config).calls == 2
        seen = []
        pair_set_id = generate_llm(store, corpus_id, "llm", config,
                                   progress=lambda d, t: seen.append((d, t))).pair_set_id
        assert len(store.pairs(pair_set_id)) == 4 and seen[-1] == (2, 2)
        assert server.headers[-1]["Authorization"] == "Bearer sk-test"
        # Resume: the remaining chunk only; the two done before are not asked again.
        config.max_chunks = None
        assert estimate(store, corpus_id, config, pair_set_id).calls == 1
        before = len(server.requests)
        generate_llm(store, corpus_id, "llm", config)
        assert len(server.requests) == before + 1
        assert len(store.pairs(pair_set_id)) == 6
        # The key is never written to the workspace.
        assert b"sk-test" not in store.path.read_bytes()
        assert "sk-test" not in json.dumps(store.pair_set(pair_set_id).settings)
    finally:
        server.close()


def test_llm_errors_are_one_clear_line(store, corpus_id):
    server = FakeLLM(required_key="right")
    try:
        with pytest.raises(WorkspaceError, match="refused the API key"):
            generate_llm(store, corpus_id, "llm", LLMConfig(server.url, "m", api_key="wrong"))
        with pytest.raises(WorkspaceError, match=r"404.*base URL"):
            generate_llm(store, corpus_id, "llm2", LLMConfig(server.url[:-3], "m", api_key="right"))
    finally:
        server.close()
    with pytest.raises(WorkspaceError, match="is the server running"):
        generate_llm(store, corpus_id, "llm3", LLMConfig(server.url, "m", max_retries=0))


def test_a_large_corpus_is_sampled_before_generating(store, corpus_id):
    pair_set_id = generate_builtin(store, corpus_id, "sampled", PseudoQueryConfig(max_chunks=2))
    assert len({p["chunk_id"] for p in store.pairs(pair_set_id)}) <= 2
    with pytest.raises(WorkspaceError, match="between 1 and 10"):
        generate_builtin(store, corpus_id, "bad", PseudoQueryConfig(per_chunk=-1))
    assert [s.name for s in store.pair_sets(corpus_id)] == ["sampled"]


MAN_CHUNK = ("MV(1)                            User Commands                           MV(1)\n\n"
             "The mv command renames files and moves them between direc\u2010 tories on the same "
             "file\tsystem.\n\nMandatory arguments to long options are mandatory for short options "
             "too.\n\n-W exec file Program text is read from file and this is the last option."
             "\n\nPATTERNS PATTERN is one or more patterns separated by newline characters.\n\n"
             "If that string is empty, nothing happens to the destination at all.\n\n"
             "GNU coreutils 9.1               September 2022                           MV(1)")


@pytest.mark.parametrize("seed", range(6))
def test_page_furniture_and_junk_never_become_queries_and_broken_words_are_joined(seed):
    from core.documents.pseudo import PseudoQueryConfig, pseudo_queries
    config = PseudoQueryConfig(per_chunk=10)
    queries = [q for q, _ in pseudo_queries(MAN_CHUNK, config, random.Random(seed))]
    assert queries and not any("coreutils" in q or "MV(1)" in q for q in queries)
    assert not any("\t" in q or "  " in q or "\u2010" in q or "direc tories" in q for q in queries)
    assert not any(q.startswith(("What is w exec", "What is PATTERNS", "What is if")) for q in queries)
    as_sentences = PseudoQueryConfig(per_chunk=10, style="sentences")
    sentences = [q for q, _ in pseudo_queries(MAN_CHUNK, as_sentences, random.Random(seed))]
    assert any("between directories on the same file system" in q for q in sentences)


def test_tidy_joins_line_break_hyphens_and_keeps_real_compounds():
    from core.documents.pseudo import tidy
    assert tidy("the sys\u2010 tem\tclock") == "the system clock"
    assert tidy("pre- and post-processing", {"system": 1}) == "pre- and post-processing"
    assert tidy("the sys- tem clock", {"system": 3}) == "the system clock"
