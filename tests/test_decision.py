"""The questionnaire's rules, its data-file validation, and realistic profiles."""
import copy

import pytest
import yaml

from core.decision import DATA, load, parse, recommend, to_html, to_markdown
from core.store import WorkspaceError

SUPPORT_BOT = {  # a support bot over docs that change every week
    "knowledge": "large", "freshness": "periodic", "failure": "facts", "format": "fewshot",
    "citations": "required", "error_cost": "medium", "examples": "under50", "latency": "no",
    "jargon": "no", "right_docs_wrong_answer": "no", "access": "no", "team": "weeks",
    "eval_set": "yes"}
CONTRACTS = {  # drafting contracts in a house style, with thousands of reviewed examples
    "knowledge": "general", "freshness": "rarely", "failure": "form", "format": "hard",
    "citations": "no", "error_cost": "high", "examples": "thousands", "latency": "no",
    "jargon": "no", "right_docs_wrong_answer": "no", "access": "no", "team": "mlops",
    "eval_set": "yes"}
JARGON_SEARCH = {  # search over internal jargon, with a small evaluation set
    "knowledge": "large", "freshness": "periodic", "failure": "facts", "format": "no",
    "citations": "nice", "error_cost": "medium", "examples": "under50", "latency": "no",
    "jargon": "yes", "right_docs_wrong_answer": "no", "access": "yes", "team": "weeks",
    "eval_set": "yes"}


def test_support_bot_over_changing_docs_gets_rag():
    result = recommend(SUPPORT_BOT)
    assert result.recommendation == "rag" and not result.provisional
    assert result.scores["R"] > result.scores["P"] > result.scores["F"]
    assert len(result.reasons) == 3 and all(r.weight == 3 for r in result.reasons)
    assert any("50 curated" in m for m in result.missing)


def test_house_style_drafting_with_many_examples_gets_fine_tuning():
    result = recommend(CONTRACTS)
    assert result.recommendation == "finetune"
    assert {r.answer for r in result.reasons} >= {"Wrong format, tone or behaviour", "1,000 or more"}
    assert any("accuracy bar" in n for n in result.notes)  # costly errors


def test_jargon_search_gets_fine_tuned_embeddings_and_can_be_measured():
    result = recommend(JARGON_SEARCH)
    assert result.recommendation == "rag_ft_embeddings"
    assert result.measurable


def test_fine_tuning_is_gated_on_examples_and_an_evaluation_set():
    no_eval = {**CONTRACTS, "eval_set": "no"}
    result = recommend(no_eval)
    assert result.recommendation != "finetune"
    assert any("fine-tuning later" in n for n in result.notes)
    assert any("evaluation set" in m for m in result.missing)
    few = recommend({**CONTRACTS, "examples": "under50"})
    assert few.recommendation != "finetune"


def test_hybrid_rules():
    realtime = recommend({**SUPPORT_BOT, "freshness": "realtime"})
    assert realtime.recommendation == "rag_tools"
    both = recommend({**SUPPORT_BOT, "failure": "both", "examples": "thousands", "format": "hard"})
    assert both.recommendation == "rag_ft_llm"
    raft = recommend({**SUPPORT_BOT, "right_docs_wrong_answer": "yes", "examples": "hundreds"})
    assert raft.recommendation == "raft"
    assert any("replication" in n for n in raft.notes)
    general = recommend({**CONTRACTS, "failure": "both", "citations": "required"})
    assert general.recommendation == "rag_ft_llm"
    assert any("87 to 83" in n for n in general.notes)
    measure = recommend({**SUPPORT_BOT, "jargon": "unknown"})
    assert any("Measure retrieval first" in m for m in measure.missing) and measure.measurable


def test_ties_go_to_the_cheaper_approach():
    assert recommend({}).recommendation == "prompting"
    assert recommend({"freshness": "periodic", "latency": "yes"}).scores == {"P": 0, "R": 1, "F": 2}


def test_partial_answers_are_provisional_and_name_what_would_change_them():
    result = recommend({"knowledge": "large"})
    assert result.provisional and result.recommendation == "rag"
    assert "What does a wrong answer cost?" not in result.would_change
    assert "Does retrieval miss documents because of domain terms or jargon?" in result.would_change


def test_bad_answers_name_the_offending_key():
    with pytest.raises(WorkspaceError, match="unknown question 'colour'"):
        recommend({"colour": "blue"})
    with pytest.raises(WorkspaceError, match="question 'knowledge' has no option 'huge'"):
        recommend({"knowledge": "huge"})
    with pytest.raises(WorkspaceError, match="answer to 'knowledge' must be an option id"):
        recommend({"knowledge": 5})


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["questions"][0]["options"][0]["flags"].append("SHINY"), "unknown flag 'SHINY'"),
    (lambda d: d["questions"][0]["options"][0]["weights"].pop("F"), "missing weight F"),
    (lambda d: d["questions"].append(copy.deepcopy(d["questions"][0])), "duplicate question id"),
    (lambda d: d["questions"][1]["options"][0].update(weights={"P": 9, "R": 0, "F": 0}), "from -3 to 3"),
    (lambda d: d["questions"][2]["options"][0].update(source="blog"), "unknown source 'blog'"),
    (lambda d: d["questions"][3]["options"][0].update(id=False), "quote values like 'yes' and 'no'"),
])
def test_the_data_file_is_validated_with_the_location_of_each_problem(mutate, message):
    data = yaml.safe_load(DATA.read_text())
    mutate(data)
    with pytest.raises(WorkspaceError, match=message):
        parse(data)


def test_the_shipped_file_covers_every_criterion():
    q = load()
    assert 10 <= len(q.questions) <= 15
    assert {"TOOLS", "HYBRID", "EMB", "MEASURE", "RAFT", "EVAL"} <= set(q.flags)


def test_reports_hold_the_answers_recommendation_reasons_and_sources():
    import datetime as dt
    result = recommend(JARGON_SEARCH)
    md = to_markdown(JARGON_SEARCH, result, today=dt.date(2026, 11, 22))
    assert md.startswith("# RAG or fine-tuning? Assessment of 2026-11-22")
    assert "**Recommendation: RAG + fine-tuned embeddings**" in md
    assert "| Does retrieval miss documents because of domain terms or jargon? | Yes, we have seen it" in md
    assert "LlamaIndex" in md
    page = to_html(JARGON_SEARCH, result)
    assert "<b>RAG + fine-tuned embeddings</b>" in page and page.count("<tr>") == 3 + 13


def test_cli_prints_the_questionnaire_and_scores_an_answers_file(tmp_path):
    import json
    from tests.test_cli import cli, last_json
    questions = last_json(cli(tmp_path, "decide", "--questions", "--json"))
    assert len(questions["questions"]) == 13
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(JARGON_SEARCH))
    out = last_json(cli(tmp_path, "decide", str(answers), "--json"))
    assert out["recommendation"] == "rag_ft_embeddings" and out["runner_up"] in ("prompting", "finetune")
    assert set(out) >= {"recommendation", "runner_up", "scores", "reasons", "missing"}
    answers.write_text(json.dumps({"knowledge": "enormous"}))
    bad = cli(tmp_path, "decide", str(answers))
    assert bad.returncode == 1 and "'knowledge' has no option 'enormous'" in bad.stderr
