
import streamlit as st

from core.documents.corpus import read_table
from core.documents.llm import LLMConfig, estimate, generate_llm, llm_pair_set_name
from core.documents.pairs import SPLIT_SEED, TEST_FRACTION, export_jsonl, guess_columns, import_pairs, read_pairs_file, split
from core.documents.pseudo import BUILTIN_PAIR_SET, GENERATOR_STYLES, PseudoQueryConfig, generate_builtin
from core.workspace import ranges
from views.common import (
    CURRENT_PAIR_SET,
    confirm_delete,
    escape,
    explained,
    pick_corpus,
    pick_pair_set,
    show_flash,
    show_progress,
    store,
)

st.title("Question → passage pairs")
workspace = store()
corpus = pick_corpus()

show_flash()


def done(message: str, pair_set_id: int | None = None) -> None:
    """Flash ``message`` on the next run; a pair set just made becomes the session's current one."""
    st.session_state["flash"] = message
    if pair_set_id is not None:
        st.session_state[CURRENT_PAIR_SET] = pair_set_id
    st.rerun()


tab_import, tab_builtin, tab_llm = st.tabs(["Import your pairs", "Built-in (no LLM)", "With an LLM"])

with tab_import:
    upload = st.file_uploader("Pairs file (CSV, JSONL or Parquet)", type=["csv", "jsonl", "parquet"],
                              key="pairs_upload")
    if upload is not None:
        with explained():
            data = upload.getvalue()
            frame = read_table(upload.name, data)
            columns = list(frame.columns)
            guess_q, guess_p = guess_columns(columns)
            c1, c2 = st.columns(2)
            q_col = c1.selectbox("Query column", columns,
                                 index=columns.index(guess_q) if guess_q else 0)
            p_col = c2.selectbox("Passage column", columns,
                                 index=columns.index(guess_p) if guess_p else min(1, len(columns) - 1))
            if not (guess_q and guess_p):
                st.info("Check the columns: the file does not use the usual names "
                        "(query/question/anchor and positive/context/passage).")
            st.dataframe(frame.head(5), hide_index=True, width="stretch")
            name = st.text_input("Pair set name", value=upload.name.rsplit(".", 1)[0])
            if st.button("Import pairs", type="primary"):
                rows = read_pairs_file(upload.name, data, q_col, p_col)
                report = import_pairs(workspace, corpus.id, name, rows)
                done(f"{report.summary()}.", report.pair_set_id)

with tab_builtin:
    st.markdown(
        "Short queries of the kinds people type, made from your chunks with no LLM: a question "
        "rebuilt from a sentence with its answer left out, the sentence's rarest words, and a "
        "sentence cut out of the chunk (**Inverse Cloze Task**, Lee et al., 2019); headings become "
        "queries for the text below them. Footers, copyright lines and other repeated sentences "
        "are skipped, and a pair is kept only if the base model already ranks its passage in the "
        f"top {PseudoQueryConfig.filter_top_k}. No cost, a minute or two — but weaker than real or LLM-written questions.")
    c1, c2, c3 = st.columns(3)
    per_chunk = c1.number_input("Queries per chunk", 1, 5, PseudoQueryConfig.per_chunk)
    style = c2.selectbox("Style", GENERATOR_STYLES, GENERATOR_STYLES.index(PseudoQueryConfig.style), help="questions: the mix above (default); "
                         "sentences: the plain Inverse Cloze Task.")
    seed = c3.number_input("Seed", 0, ranges.MAX_SEED, PseudoQueryConfig.seed)
    name = st.text_input("Pair set name", value=BUILTIN_PAIR_SET, key="builtin_name")
    if st.button("Generate", type="primary", key="builtin_go"):
        with explained():
            config = PseudoQueryConfig(per_chunk=int(per_chunk), seed=int(seed), style=style)
            pair_set_id = show_progress(lambda progress: generate_builtin(
                workspace, corpus.id, name, config, progress), "Making queries from the chunks…")
            done(f"Generated {len(workspace.pairs(pair_set_id))} pairs in '{escape(name)}'.",
                 pair_set_id)

with tab_llm:
    st.markdown(f"Any **OpenAI-compatible** endpoint: Ollama (`{LLMConfig.base_url}`), vLLM, "
                "OpenAI. The API key stays in this browser session; it is never stored.")
    with st.form("llm"):
        c1, c2 = st.columns(2)
        base_url = c1.text_input("Base URL", value=LLMConfig.base_url)
        model = c2.text_input("Model", value=LLMConfig.model)
        api_key = st.text_input("API key (if the endpoint needs one)", type="password")
        c3, c4, c5 = st.columns(3)
        n = c3.number_input("Questions per chunk", 1, 10, LLMConfig.questions_per_chunk)
        concurrency = c4.number_input("Parallel requests", 1, 64, LLMConfig.concurrency)
        max_chunks = c5.number_input("Chunks to use (0 = all)", 0, 1_000_000, 0)
        c6, c7 = st.columns(2)
        price_in = c6.number_input("Price per 1M input tokens ($)", 0.0, 100.0, 0.0)
        price_out = c7.number_input("Price per 1M output tokens ($)", 0.0, 100.0, 0.0)
        name = st.text_input("Pair set name (an existing one is resumed)", value=llm_pair_set_name(model))
        estimate_clicked = st.form_submit_button("Estimate")
        go = st.form_submit_button("Generate", type="primary")
    config = LLMConfig(base_url, model, int(n), int(concurrency), max_chunks=int(max_chunks) or None,
                       price_in_per_million=price_in, price_out_per_million=price_out,
                       api_key=api_key)
    existing = {p.name: p.id for p in workspace.pair_sets(corpus.id)}
    if estimate_clicked or go:
        st.info("Estimate: " + estimate(workspace, corpus.id, config, existing.get(name)).summary())
    if go:
        bar = st.progress(0.0, text="Asking the LLM…")
        with explained():
            report = generate_llm(
                workspace, corpus.id, name, config,
                progress=lambda d, t: bar.progress(d / t, text=f"{d} of {t} chunks"))
            held = f"'{escape(name)}' now holds {len(workspace.pairs(report.pair_set_id))} pairs"
            if report.failed:  # what was stored is kept, but this is not a success
                st.warning(f"{held}, but {escape(report.summary())}.")
            else:
                done(f"{held}.", report.pair_set_id)

st.divider()
st.subheader("Pair sets of this corpus")
pair_sets = workspace.pair_sets(corpus.id)
if not pair_sets:
    st.info("No pairs yet: import, or generate them above.")
    st.stop()
chosen = pick_pair_set(pair_sets)
rows = workspace.pairs(chosen.id)
st.dataframe([{"query": r["query"], "passage": r["positive"][:200], "split": r["split"]}
              for r in rows[:500]], hide_index=True, height=250, width="stretch")

c1, c2, c3 = st.columns([1, 1, 2])
fraction = c1.slider("Test share", 0.05, 0.5, TEST_FRACTION, 0.05)
split_seed = c2.number_input("Split seed", 0, ranges.MAX_SEED, SPLIT_SEED)
if c3.button("Split train/test", type="primary"):
    with explained():
        report = split(workspace, chosen.id, fraction, int(split_seed))
        done(f"Split: {report.train} train pairs ({report.train_queries} queries), {report.test} "
             f"test pairs ({report.test_queries} queries). No passage or query is on both sides.")
counts = workspace.split_counts(chosen.id)
st.caption("Counts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
slug = chosen.name.replace(" ", "_")
d1, d2, d3, d4 = st.columns(4)
d1.download_button("All pairs (JSONL)", export_jsonl(workspace, chosen.id), f"{slug}.jsonl")
if "train" in counts:
    d2.download_button("Train (JSONL)", export_jsonl(workspace, chosen.id, "train"), f"{slug}.train.jsonl")
if "test" in counts:
    d3.download_button("Test (JSONL)", export_jsonl(workspace, chosen.id, "test"), f"{slug}.test.jsonl")
if d4.button("Delete this pair set"):
    st.session_state["confirm_delete_pairs"] = chosen.id
if st.session_state.get("confirm_delete_pairs") == chosen.id:
    confirm_delete(workspace, "pair set", chosen.id, chosen.name, "confirm_delete_pairs")
