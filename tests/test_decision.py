"""The questionnaire's rules, its data-file validation, realistic team profiles, and the CLI."""
import copy
import datetime as dt
import html
import io
import json
import time

import pytest
import yaml

from core.cli import main
from core.deciding.decision import DATA, MEASURE_HINT, MIN_ANSWERS, NAMES, load, parse, recommend
from core.deciding.report import to_html, to_markdown
from core.workspace.store import WorkspaceError


def team(**answers: str) -> dict[str, str]:
    """A complete answer set: a data-engineering team over a weekly-changing document collection
    that has an evaluation set and nothing unusual, overridden by what the profile says."""
    return {"knowledge": "large", "freshness": "periodic", "failure": "facts", "format": "no",
            "citations": "nice", "error_cost": "medium", "examples": "under50", "latency": "no",
            "jargon": "no", "right_docs_wrong_answer": "no", "access": "no", "team": "weeks",
            "eval_set": "yes", **answers}


NO_RETRIEVAL = {"jargon": "na", "right_docs_wrong_answer": "na"}
SUPPORT_BOT = team(format="fewshot", citations="required")
CONTRACTS = team(knowledge="general", freshness="rarely", failure="form", format="hard",
                 citations="no", error_cost="high", examples="thousands", team="mlops", **NO_RETRIEVAL)
JARGON_SEARCH = team(jargon="yes", access="yes")

# (name, answers, recommendation, runner-up, the question whose answer decides it); each profile
# follows a case in /work/shared/decision-research.md.
PROFILES = [
    # Hotz: external, dynamic knowledge with citations is the case for RAG.
    ("support bot over weekly docs", SUPPORT_BOT, "rag", "prompting", "knowledge"),
    # Ovadia et al.: post-cutoff current events, where RAG beat fine-tuning by far.
    ("current-events QA", team(citations="required", error_cost="high"), "rag", "prompting", "knowledge"),
    # Soudani et al.: long-tail facts; RAG wins even with a few hundred examples for fine-tuning.
    ("long-tail entity QA", team(examples="hundreds"), "rag", "finetune", "failure"),
    # Azure readiness checklist: house style beyond what a prompt holds, thousands of examples.
    ("contract drafting in house style", CONTRACTS, "finetune", "prompting", "format"),
    # Anyscale: SQL generation, form not facts, at high volume.
    ("text-to-SQL at high volume", team(knowledge="general", freshness="na", failure="form",
                                        format="hard", citations="no", examples="thousands",
                                        latency="yes", team="mlops", **NO_RETRIEVAL),
     "finetune", "prompting", "failure"),
    # LlamaIndex / Databricks: retrieval misses internal jargon on an evaluation set.
    ("search over internal jargon", JARGON_SEARCH, "rag_ft_embeddings", "rag", "jargon"),
    # AWS decision tree: real-time data needs an agent with live look-ups.
    ("inventory assistant", team(freshness="realtime", citations="no", error_cost="high"),
     "rag_tools", "rag", "freshness"),
    # Balaguer et al.: agriculture advice where facts and form both fail and the gains add up.
    ("agriculture advisory", team(failure="both", format="hard", examples="thousands", team="mlops"),
     "rag_ft_llm", "rag", "failure"),
    # OpenAI's Icelandic case: form-heavy translation with general knowledge, citations asked for.
    ("Icelandic grammar correction", team(knowledge="general", freshness="na", failure="both",
                                          format="hard", citations="required", examples="thousands",
                                          team="mlops", **NO_RETRIEVAL),
     "rag_ft_llm", "finetune", "failure"),
    # RAFT paper: PubMed QA over a fixed corpus, right passages retrieved, answers still wrong.
    ("PubMed QA", team(freshness="rarely", right_docs_wrong_answer="yes", examples="hundreds",
                       team="mlops"), "raft", "rag", "right_docs_wrong_answer"),
    # Azure: not ready to fine-tune if prompting was never tried; a small FAQ fits in the prompt.
    ("FAQ prototype in days", team(knowledge="small", freshness="rarely", failure="untested",
                                   format="fewshot", citations="no", error_cost="low", team="days",
                                   eval_set="no", **NO_RETRIEVAL), "prompting", "rag", "failure"),
    # Hotz/Azure: tone is a fine-tuning case, but 30 examples and no benchmark block it.
    ("brand tone with 30 examples", team(knowledge="general", freshness="na", failure="form",
                                         format="hard", citations="no", error_cost="low",
                                         eval_set="no", team="mlops", **NO_RETRIEVAL),
     "prompting", "finetune", "examples"),
    # OpenAI: when a prompt with evals meets the bar, stop there.
    ("prompt already works", team(knowledge="general", freshness="na", failure="works",
                                  format="fewshot", citations="no", error_cost="low", team="days",
                                  **NO_RETRIEVAL), "prompting", "rag", "failure"),
]


@pytest.mark.parametrize("answers,expected,runner_up,deciding",
                         [p[1:] for p in PROFILES], ids=[p[0] for p in PROFILES])
def test_team_profiles(answers, expected, runner_up, deciding):
    result = recommend(answers)
    assert result.recommendation == expected
    assert result.runner_up == runner_up and result.runner_up_title == NAMES[runner_up]
    decided = load().question(deciding)
    assert any(r.question == decided.text and r.answer == decided.option(answers[deciding]).label
               for r in result.reasons)
    # No shown reason pushes against a part of the recommendation.
    options = {(q.text, o.label): o for q in load().questions for o in q.options}
    parts = {"P"} if expected == "prompting" else {"F"} if expected == "finetune" else \
        {"R", "F"} if expected in ("rag_ft_llm", "raft") else {"R"}
    assert all(options[r.question, r.answer].weights[a] >= 0 for r in result.reasons for a in parts)


def test_every_recommendation_is_reached_by_a_profile():
    assert {p[2] for p in PROFILES} == set(NAMES)


@pytest.mark.parametrize("answers", [p[1] for p in PROFILES if p[2] not in ("prompting", "rag", "finetune")],
                         ids=[p[0] for p in PROFILES if p[2] not in ("prompting", "rag", "finetune")])
def test_the_answer_that_picks_a_hybrid_comes_first_with_its_rule(answers):
    first = recommend(answers).reasons[0]
    assert first.rule.startswith("Decides it:")


def test_raft_reasons_do_not_say_the_problem_is_not_the_model():
    result = recommend(team(right_docs_wrong_answer="yes", examples="hundreds"))
    assert result.recommendation == "raft"
    assert not any("not a model-behaviour problem" in r.rationale for r in result.reasons)
    assert any("replication" in n for n in result.notes)


def test_prerequisites_are_counted_once_and_read_prompting_now_fine_tuning_later():
    tone = dict(PROFILES[11][1])
    result = recommend(tone)
    assert result.scores["F"] > result.scores["P"]  # too few examples did not also lower the score
    assert any("prompting now, fine-tuning later — first collect ≥ 50 examples and an evaluation set"
               in n for n in result.notes)
    assert len(result.missing) == 2
    only_eval = recommend({**tone, "examples": "thousands"})
    assert any("first build an evaluation set" in n for n in only_eval.notes)


def test_fine_tuning_prerequisites_are_missing_only_when_fine_tuning_is_within_reach():
    assert not any("fine-tuning" in m for m in recommend(SUPPORT_BOT).missing)  # F is negative
    raft = recommend(team(right_docs_wrong_answer="yes", examples="hundreds", eval_set="no"))
    assert raft.recommendation == "raft" and any("evaluation set" in m for m in raft.missing)


def test_costly_errors_and_general_knowledge_add_notes():
    assert any("accuracy bar" in n for n in recommend(CONTRACTS).notes)
    icelandic = recommend(PROFILES[8][1])
    assert any("87 to 83" in n for n in icelandic.notes)


def test_dont_know_keeps_the_result_provisional_and_says_what_to_find_out():
    unknown = recommend({**SUPPORT_BOT, "jargon": "unknown"})
    assert unknown.provisional and unknown.answered == unknown.total
    assert any("measure retrieval on 50–100 real questions" in w for w in unknown.would_change)
    assert any("Measure retrieval first" in m for m in unknown.missing)
    # A "don't know" that no real answer could change leaves the result final.
    settled = recommend(PROFILES[11][1])
    assert not settled.provisional and "covers every case" in settled.checked


def test_too_few_answers_asks_for_more_instead_of_recommending():
    with pytest.raises(WorkspaceError, match=f"answer at least {MIN_ANSWERS} questions"):
        recommend({})


def test_look_ahead_finds_pairs_that_flip_it_together():
    answers = {"knowledge": "large", "failure": "facts", "team": "weeks"}
    result = recommend(answers)
    assert result.recommendation == "rag" and result.provisional
    assert "What does a wrong answer cost?" not in result.would_change
    assert "Does retrieval miss documents because of domain terms or jargon?" in result.would_change
    together = [w for w in result.would_change if w.endswith("(only together)")]
    assert together and "three or more were not checked" in result.checked
    # Each named pair really flips it, though neither answer alone does.
    texts = {q.text: q for q in load().questions}
    first, second = together[0].removesuffix(" (only together)").split(" + ")
    a, b = texts[first], texts[second]
    assert any(recommend({**answers, a.id: x.id, b.id: y.id}).recommendation != "rag"
               for x in a.options for y in b.options)


def test_look_ahead_with_at_most_two_open_questions_is_exact():
    answers = {**SUPPORT_BOT}
    del answers["latency"], answers["eval_set"]
    result = recommend(answers)
    assert "covers every case" in result.checked
    flips = {recommend({**answers, "latency": x, "eval_set": y}).recommendation
             for x in ("yes", "no") for y in ("yes", "no")} != {"rag"}
    assert result.provisional == flips


def test_look_ahead_is_fast_enough_for_every_click():
    start = time.perf_counter()
    recommend({"knowledge": "large", "failure": "both", "examples": "hundreds"})
    assert time.perf_counter() - start < 0.5


def test_bad_answers_name_the_offending_key():
    with pytest.raises(WorkspaceError, match="unknown question 'colour'"):
        recommend({"colour": "blue"})
    with pytest.raises(WorkspaceError, match="question 'knowledge' has no option 'huge'"):
        recommend({"knowledge": "huge"})
    with pytest.raises(WorkspaceError, match="answer to 'knowledge' must be an option id"):
        recommend({"knowledge": 5})


def _drop_flag(flag):
    def mutate(d):
        for q in d["questions"]:
            for o in q["options"]:
                if flag in (o.get("flags") or []):
                    o["flags"].remove(flag)
    return mutate


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["questions"][0]["options"][0]["flags"].append("SHINY"), "unknown flag 'SHINY'"),
    (lambda d: d["questions"][0]["options"][0]["weights"].pop("F"), "missing weight F"),
    (lambda d: d["questions"].append(copy.deepcopy(d["questions"][0])), "duplicate question id"),
    (lambda d: d["questions"][1]["options"][0].update(weights={"P": 9, "R": 0, "F": 0}), "from -3 to 3"),
    (lambda d: d["questions"][2]["options"][0].update(source="blog"), "unknown source 'blog'"),
    (lambda d: d["questions"][3]["options"][0].update(id=False), "quote values like 'yes' and 'no'"),
    (_drop_flag("RAFT"), "rules use flag 'RAFT' but no option raises it"),
    (lambda d: d["questions"][-1].update(id="benchmark"), "rules use question 'eval_set'"),
])
def test_the_data_file_is_validated_with_the_location_of_each_problem(mutate, message):
    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    mutate(data)
    with pytest.raises(WorkspaceError, match=message):
        parse(data)


def test_the_shipped_file_covers_every_criterion():
    q = load()
    assert 10 <= len(q.questions) <= 15
    assert {"TOOLS", "HYBRID", "EMB", "MEASURE", "RAFT", "EVAL"} <= set(q.flags)
    assert "works" in {o.id for o in q.question("failure").options}
    assert all("na" in {o.id for o in q.question(i).options}
               for i in ("freshness", "jargon", "right_docs_wrong_answer"))


def test_reports_hold_the_answers_recommendation_reasons_and_sources():
    result = recommend(JARGON_SEARCH)
    md = to_markdown(JARGON_SEARCH, result, today=dt.date(2026, 11, 22))
    assert md.startswith("# RAG or fine-tuning? Assessment of 2026-11-22")
    assert "**Recommendation: RAG + fine-tuned embeddings (final, 13 of 13 answered)**" in md
    assert "| Does retrieval miss documents because of domain terms or jargon? | Yes, we have seen it" in md
    assert "LlamaIndex" in md
    page = to_html(JARGON_SEARCH, result)
    assert "<b>RAG + fine-tuned embeddings</b>" in page and page.count("<tr>") == 3 + 13


def _shown_items(result) -> list[str]:
    """What every view must show."""
    return ([r.answer for r in result.reasons] + [r.question for r in result.reasons]
            + [r.rule for r in result.reasons if r.rule] + result.missing + result.notes
            + result.would_change + [result.runner_up_title, result.title, result.status]
            + ([result.checked] if result.checked else []) + ([MEASURE_HINT] if result.measurable else []))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["decide", *argv])
    out, err = capsys.readouterr()
    return code, out, err


CONTENT_CASES = {"jargon": JARGON_SEARCH, "tone": PROFILES[11][1],
                 "partial": {"knowledge": "large", "failure": "facts", "jargon": "unknown"},
                 "raft": team(right_docs_wrong_answer="yes", examples="hundreds", eval_set="no")}


@pytest.mark.parametrize("answers", CONTENT_CASES.values(), ids=CONTENT_CASES.keys())
def test_markdown_html_and_cli_show_the_same_content(answers, tmp_path, capsys):
    result = recommend(answers)
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers), encoding="utf-8")
    code, out, _ = run_cli(capsys, str(path))
    assert code == 0
    md, page = to_markdown(answers, result), html.unescape(to_html(answers, result))
    for item in _shown_items(result):
        assert item in md and item in page and item in out, item
    assert (MEASURE_HINT in out) == (result.recommendation != "prompting")


def test_cli_summary_and_json_contract(tmp_path, capsys):
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(JARGON_SEARCH), encoding="utf-8")
    code, out, _ = run_cli(capsys, str(path))
    last = out.strip().splitlines()[-1]
    assert code == 0 and "{" not in last and "runner-up: Retrieval-augmented generation (RAG)" in last
    code, out, _ = run_cli(capsys, str(path), "--json")
    data = json.loads(out.strip().splitlines()[-1])
    assert data["recommendation"] == "rag_ft_embeddings" and data["runner_up"] == "rag"
    assert data["runner_up_title"] == NAMES["rag"] and data["measure_hint"] == MEASURE_HINT
    assert data["reasons"][0]["question"] == load().question("jargon").text
    assert all(isinstance(x, str) for x in data["notes"] + data["missing"])


def test_cli_reads_answers_from_stdin_and_key_value_arguments(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(json.dumps(JARGON_SEARCH).encode())))
    code, out, _ = run_cli(capsys, "-", "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["recommendation"] == "rag_ft_embeddings"
    code, out, _ = run_cli(capsys, *(f"{k}={v}" for k, v in JARGON_SEARCH.items()), "--json")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["recommendation"] == "rag_ft_embeddings"
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(JARGON_SEARCH), encoding="utf-8")
    code, out, _ = run_cli(capsys, str(path), "jargon=no", "--json")  # arguments override the file
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["recommendation"] == "rag"


def test_cli_prints_the_questionnaire(capsys):
    code, out, _ = run_cli(capsys, "--questions", "--json")
    assert code == 0 and len(json.loads(out.strip().splitlines()[-1])["questions"]) == 13


def _file(content: bytes):
    def make(tmp_path):
        path = tmp_path / "answers.json"
        path.write_bytes(content)
        return [str(path)]
    return make


BAD_INPUT = {
    "non-UTF-8 file": (_file(b'{"knowledge": "gro\xdf"}'), "not UTF-8"),
    "deeply nested JSON": (_file(b"[" * 100_000 + b"]" * 100_000), "nested too deeply"),
    "JSON string where a path is expected": (lambda tmp: ['{"knowledge": "large"}'], "looks like JSON"),
    "duplicate keys": (_file(b'{"knowledge": "large", "knowledge": "small"}'), "'knowledge' appears twice"),
    "duplicate key=value": (lambda tmp: ["knowledge=large", "knowledge=small"], "answered twice"),
    "invalid JSON": (_file(b"{knowledge: large}"), "not valid JSON"),
    "a JSON list": (_file(b'["large"]'), "not an object"),
    "a nested answer": (_file(b'{"knowledge": {"a": 1}}'), "option id in quotes"),
    "missing file": (lambda tmp: [str(tmp / "nowhere.json")], "does not exist"),
    "a folder": (lambda tmp: [str(tmp)], "cannot read"),
    "empty key=value": (lambda tmp: ["knowledge="], "question=option"),
    "--questions with answers": (lambda tmp: ["knowledge=large", "--questions"], "--questions"),
}


@pytest.mark.parametrize("make,message", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_unreadable_input_is_a_one_line_error_with_exit_code_2(make, message, tmp_path, capsys):
    code, _, err = run_cli(capsys, *make(tmp_path))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_wrong_answers_and_too_few_answers_exit_1(capsys):
    code, _, err = run_cli(capsys, "knowledge=enormous", "failure=facts", "team=weeks")
    assert code == 1 and "'knowledge' has no option 'enormous'" in err
    code, _, err = run_cli(capsys, "knowledge=large")
    assert code == 1 and f"answer at least {MIN_ANSWERS} questions" in err


def test_a_dont_know_is_not_counted_as_answered_and_the_open_questions_add_up():
    # Two "don't know yet" answers, of which only one could change the recommendation: the
    # status must not read "13 of 13 answered", nor the look-ahead "the 2 open questions"
    # beside a single listed one without saying why.
    result = recommend({**SUPPORT_BOT, "jargon": "unknown", "right_docs_wrong_answer": "na"})
    assert result.status == "provisional, 11 of 13 answered, 2 not known yet"
    assert len(result.would_change) == 1
    assert result.checked.startswith("Tried every answer to the 2 open questions (unanswered or "
                                     "not known yet), alone and in pairs: 1 of them could change it")


@pytest.mark.parametrize("examples,gated", [("under50", True), ("hundreds", False)])
def test_a_fine_tuning_runner_up_carries_the_prerequisite_gate_in_every_view(tmp_path, capsys,
                                                                             examples, gated):
    answers = team(examples=examples)  # RAG first, fine-tuning the LLM second
    result = recommend(answers)
    assert (result.recommendation, result.runner_up) == ("rag", "finetune")
    line = "Runner-up: Fine-tune the LLM (not yet: first collect ≥ 50 examples)"
    assert (result.runner_up_line == line) == gated
    assert (result.runner_up_gate == "not yet: first collect ≥ 50 examples") == gated
    before = "Before fine-tuning the LLM, collect at least 50 curated input→output examples."
    assert (before in result.missing) == gated
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers), encoding="utf-8")
    _, out, _ = run_cli(capsys, str(path))
    _, as_json, _ = run_cli(capsys, str(path), "--json")
    md, page = to_markdown(answers, result), html.unescape(to_html(answers, result))
    for view in (out, md, page, json.loads(as_json.strip().splitlines()[-1])["runner_up_line"]):
        assert ("not yet: first collect ≥ 50 examples" in view) == gated
    assert result.runner_up_line in out and result.runner_up_line in md and result.runner_up_line in page
    summary_line = out.strip().splitlines()[-1]
    assert ("runner-up: Fine-tune the LLM (not yet: first collect ≥ 50 examples)" in summary_line) == gated
