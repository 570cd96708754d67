"""Score a use case on evidence-backed criteria and recommend prompting, RAG, fine-tuning or a
hybrid, with the reasons and what is missing.

The questions, options, weights, flags, rationales and sources live in
``data/questionnaire.yaml`` so a consultant can change them without touching code; this module
only holds the rules:

1. Add up the weights toward prompting (P), RAG (R) and fine-tuning the LLM (F). Ties go to the
   cheaper approach: P, then R, then F.
2. Fine-tuning cannot be recommended without at least 50 curated examples and an evaluation set
   (OpenAI's "start with 50+ examples", Azure's readiness checklist); it is then offered as
   "later", with the missing prerequisites. The prerequisites only gate: they carry no negative
   weight, so a missing one is not counted twice.
3. Hybrids: real-time data → RAG + tools; facts and form both failing with enough examples →
   RAG + a fine-tuned LLM; right documents but wrong answers → RAFT; retrieval missing domain
   terms → RAG + fine-tuned embeddings, the cheapest of the hybrids and the one ragtune measures.
   The answer that raised the deciding flag is always the first reason, with the rule; so are
   the answers that blocked fine-tuning when it scored highest.
4. The answers that pushed hardest toward the recommendation, and against none of its parts,
   fill up the reasons to three.
5. Look-ahead: every answer and every pair of answers to the open questions (unanswered or
   "don't know yet") is tried; the result is final only when none of them changes it and no
   combination of three or more was left unchecked.
"""
from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import BinaryIO

import yaml

from .store import WorkspaceError

DATA = Path(__file__).with_name("data") / "questionnaire.yaml"
APPROACHES = ("P", "R", "F")
NAMES = {
    "prompting": "Prompt engineering",
    "rag": "Retrieval-augmented generation (RAG)",
    "finetune": "Fine-tune the LLM",
    "rag_tools": "RAG + live tools / an agent",
    "rag_ft_llm": "RAG + a fine-tuned LLM",
    "raft": "RAFT: fine-tune the LLM to read retrieved documents",
    "rag_ft_embeddings": "RAG + fine-tuned embeddings",
}
BASE = {"P": "prompting", "R": "rag", "F": "finetune"}
# The approaches each recommendation is made of: reasons must push toward one of them and
# against none.
LEAN = {"prompting": ("P",), "rag": ("R",), "finetune": ("F",), "rag_tools": ("R",),
        "rag_ft_llm": ("R", "F"), "raft": ("R", "F"), "rag_ft_embeddings": ("R",)}
FINE_TUNES_LLM = ("finetune", "rag_ft_llm", "raft")
# What the rules below read from the data file; parse() checks each exists, so an edited
# questionnaire fails at load instead of a rule silently never firing.
RULE_FLAGS = ("TOOLS", "HYBRID", "EVAL", "EMB", "MEASURE", "RAFT", "LABELS50", "NO_EVAL", "GENERAL")
RULE_QUESTIONS = ("examples", "eval_set")
MIN_ANSWERS = 3
CLOSE = 0.7  # "close in score": within 70% of the top score, as in the hybrid rule
MEASURE_HINT = ("Measure it in ragtune: load your documents as a corpus, generate or import "
                "question→passage pairs, and compare base and fine-tuned embeddings on the results "
                "page (CLI: ingest → pairs → evaluate).")


class UnreadableAnswers(WorkspaceError):
    """Answers that cannot be read at all (as opposed to answers that name a wrong option)."""
    exit_code = 2


@dataclass
class Option:
    id: str
    label: str
    weights: dict[str, int]
    flags: list[str]
    rationale: str
    source: str
    find_out: str = ""  # set on "don't know yet" options: what to find out


@dataclass
class Question:
    id: str
    text: str
    options: list[Option]

    def option(self, option_id: str) -> Option:
        for o in self.options:
            if o.id == option_id:
                return o
        raise WorkspaceError(f"question {self.id!r} has no option {option_id!r}; choose one of "
                             + ", ".join(o.id for o in self.options))


@dataclass
class Questionnaire:
    questions: list[Question]
    sources: dict[str, str]
    flags: dict[str, str]

    def question(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise WorkspaceError(f"unknown question {question_id!r}; known: "
                             + ", ".join(q.id for q in self.questions))

    def to_json(self) -> dict:
        return {"questions": [asdict(q) for q in self.questions], "sources": self.sources,
                "flags": self.flags}


def parse(data: dict, where: str = "questionnaire") -> Questionnaire:
    """Build and validate; every problem names its location in the file."""
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise WorkspaceError(f"{where}: needs a 'questions' list")
    sources, flags = data.get("sources") or {}, data.get("flags") or {}
    questions, seen = [], set()
    for i, q in enumerate(data["questions"]):
        here = f"{where}: question {q.get('id', i + 1)!r}"
        for key in ("id", "text", "options"):
            if key not in q:
                raise WorkspaceError(f"{here} is missing {key!r}")
        if q["id"] in seen:
            raise WorkspaceError(f"{here}: duplicate question id")
        seen.add(q["id"])
        options, option_ids = [], set()
        for o in q["options"]:
            there = f"{here}, option {o.get('id')!r}"
            for key in ("id", "label", "weights", "rationale", "source"):
                if key not in o:
                    raise WorkspaceError(f"{there} is missing {key!r}")
            for key in ("id", "label", "rationale", "source", "find_out"):
                if key in o and not isinstance(o[key], str):
                    raise WorkspaceError(f"{there}: {key} must be text; quote values like "
                                         f"'yes' and 'no', which YAML reads as true/false")
            if o["id"] in option_ids:
                raise WorkspaceError(f"{there}: duplicate option id")
            option_ids.add(o["id"])
            missing = [a for a in APPROACHES if a not in o["weights"]]
            if missing:
                raise WorkspaceError(f"{there}: missing weight {missing[0]} (give P, R and F)")
            unknown_weight = sorted(set(o["weights"]) - set(APPROACHES))
            if unknown_weight:
                raise WorkspaceError(f"{there}: unknown weight {unknown_weight[0]!r} (use P, R, F)")
            for a, w in o["weights"].items():
                if not isinstance(w, int) or not -3 <= w <= 3:
                    raise WorkspaceError(f"{there}: weight {a}={w!r} must be a whole number from -3 to 3")
            for flag in o.get("flags") or []:
                if flag not in flags:
                    raise WorkspaceError(f"{there}: unknown flag {flag!r}; declare it under 'flags'")
            if o["source"] not in sources:
                raise WorkspaceError(f"{there}: unknown source {o['source']!r}; declare it under 'sources'")
            options.append(Option(o["id"], o["label"], dict(o["weights"]), list(o.get("flags") or []),
                                  o["rationale"], o["source"], o.get("find_out", "")))
        if all(o.find_out for o in options):
            raise WorkspaceError(f"{here}: every option has find_out; keep at least one real answer")
        questions.append(Question(q["id"], q["text"], options))
    raised = {f for question in questions for o in question.options for f in o.flags}
    for flag in RULE_FLAGS:
        if flag not in raised:
            raise WorkspaceError(f"{where}: the rules use flag {flag!r} but no option raises it; "
                                 f"add it to an option's flags")
    for question_id in RULE_QUESTIONS:
        if question_id not in seen:
            raise WorkspaceError(f"{where}: the rules use question {question_id!r} but the file has "
                                 f"none; restore a question with that id")
    return Questionnaire(questions, dict(sources), dict(flags))


@lru_cache(maxsize=4)
def load(path: Path = DATA) -> Questionnaire:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise WorkspaceError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse(data, Path(path).name)


@dataclass
class Reason:
    question: str
    answer: str
    weight: int
    rationale: str
    source: str
    rule: str = ""  # set on the answer that decided a hybrid: the rule that fired, in plain words

    @property
    def text(self) -> str:
        """One plain sentence, the same in every view."""
        return " ".join(filter(None, [f"{self.answer} ({self.question}) —", self.rule,
                                      self.rationale, f"({self.source})"]))


@dataclass
class Recommendation:
    recommendation: str
    runner_up: str
    scores: dict[str, int]
    reasons: list[Reason]
    missing: list[str]
    notes: list[str] = field(default_factory=list)
    provisional: bool = False
    would_change: list[str] = field(default_factory=list)  # open questions (or pairs) that matter
    checked: str = ""  # what the look-ahead tried, so its bound is stated
    answered: int = 0  # questions with an answer, "don't know yet" included
    total: int = 0
    unknown: int = 0  # of the answered, those answered "don't know yet"

    @property
    def title(self) -> str:
        return NAMES[self.recommendation]

    @property
    def runner_up_title(self) -> str:
        return NAMES[self.runner_up]

    @property
    def measurable(self) -> bool:
        """Retrieval is part of it, so ragtune can measure it."""
        return "R" in LEAN[self.recommendation]

    @property
    def measure_hint(self) -> str:
        return MEASURE_HINT if self.measurable else ""

    @property
    def status(self) -> str:
        """How settled the result is; "don't know yet" answers are counted apart from real ones,
        since they leave a question as open as no answer does."""
        done = f"{self.answered - self.unknown} of {self.total} answered"
        if self.unknown:
            done += f", {self.unknown} not known yet"
        return f"provisional, {done}" if self.provisional else f"final, {done}"

    def to_json(self) -> dict:
        out = asdict(self)
        out.update(title=self.title, runner_up_title=self.runner_up_title,
                   measurable=self.measurable, measure_hint=self.measure_hint, status=self.status)
        return out


def check_answers(questionnaire: Questionnaire, answers: dict[str, str]) -> dict[str, str]:
    if not isinstance(answers, dict):
        raise WorkspaceError("answers must be a JSON object of question id → option id")
    for question_id, option_id in answers.items():
        if not isinstance(option_id, str):
            raise WorkspaceError(f"answer to {question_id!r} must be an option id (a string), "
                                 f"not {option_id!r}")
        questionnaire.question(question_id).option(option_id)
    return answers


def too_few(answers: dict[str, str], questionnaire: Questionnaire) -> str:
    """Why there is no recommendation yet, or "" when there are enough answers."""
    if len(answers) >= MIN_ANSWERS:
        return ""
    return (f"answer at least {MIN_ANSWERS} questions for a recommendation "
            f"({len(answers)} of {len(questionnaire.questions)} answered)")


def _pick(scores: dict[str, int], allowed: Iterable[str] = APPROACHES) -> str:
    allowed = tuple(allowed)
    return max((a for a in APPROACHES if a in allowed), key=lambda a: (scores[a], -APPROACHES.index(a)))


def _runner_up(recommendation: str, base: str, scores: dict[str, int]) -> str:
    """A hybrid's runner-up is its plain base approach unless another scores higher; a plain
    approach's is the best of the others. Never a negative score while a positive one exists."""
    others = [a for a in APPROACHES if BASE[a] != recommendation]
    best = _pick(scores, others)
    pick = base if recommendation != BASE[base] and scores[best] <= scores[base] else best
    positive = [a for a in others if scores[a] > 0]
    if scores[pick] < 0 and positive:
        pick = _pick(scores, positive)
    return BASE[pick]


def _evaluate(q: Questionnaire, answers: dict[str, str]) -> Recommendation:
    """The rules on one answer set, without look-ahead."""
    chosen = [(question, question.option(answers[question.id])) for question in q.questions
              if question.id in answers]
    scores = {a: sum(o.weights[a] for _, o in chosen) for a in APPROACHES}
    flags = {f for _, o in chosen for f in o.flags}
    answered = {question.id for question, _ in chosen}
    ft_ready = "LABELS50" in flags and "eval_set" in answered and "NO_EVAL" not in flags
    notes: list[str] = []

    top = _pick(scores)
    base = top if top != "F" or ft_ready else _pick(scores, ("P", "R"))
    best = max(scores[top], 1)
    both_strong = all(scores[a] > 0 and scores[a] >= CLOSE * best for a in ("R", "F"))
    recommendation, deciding, rule = BASE[base], None, ""
    if "TOOLS" in flags and base != "P":
        recommendation, deciding = "rag_tools", "TOOLS"
    elif ("HYBRID" in flags or both_strong) and base != "P" and ft_ready:
        recommendation, deciding = "rag_ft_llm", "HYBRID" if "HYBRID" in flags else "LABELS50"
        if deciding == "LABELS50":
            rule = (f"Decides it: {q.flags['LABELS50']}, and RAG and fine-tuning both score at "
                    f"least {CLOSE:.0%} of the top score, so each can fix a part.")
        if "GENERAL" in flags:
            notes.append("With general knowledge only, retrieval can hurt a tuned model: in "
                         "OpenAI's Icelandic example, adding RAG to a fine-tuned GPT-4 lowered BLEU "
                         "from 87 to 83.")
    elif base == "R" and "RAFT" in flags and "LABELS50" in flags:
        recommendation, deciding = "raft", "RAFT"
        notes.append("RAFT gains were large on Llama-2 7B but a replication found none on newer "
                     "8B models: measure on your own data.")
    elif base == "R" and "EMB" in flags:
        recommendation, deciding = "rag_ft_embeddings", "EMB"
    rule = rule or (f"Decides it: {q.flags[deciding]}." if deciding else "")
    decided_by = [(question, o) for question, o in chosen if deciding in o.flags]

    no_examples = "LABELS50" not in flags
    no_eval = "NO_EVAL" in flags or "eval_set" not in answered
    missing_ft = []
    if no_examples:
        missing_ft.append("collect at least 50 curated input→output examples"
                          + ("" if "examples" in answered else " (not answered yet)"))
    if no_eval:
        missing_ft.append("build an evaluation set with expected answers, without which no change "
                          "can be shown to help" + ("" if "eval_set" in answered else " (not answered yet)"))
    if top == "F" and not ft_ready:
        needs = " and ".join((["collect ≥ 50 examples"] if no_examples else [])
                             + (["an evaluation set" if no_examples else "build an evaluation set"]
                                if no_eval else []))
        notes.append(f"Fine-tuning scored highest, but its prerequisites are missing: "
                     f"{BASE[base].replace('rag', 'RAG')} now, fine-tuning later — first {needs}.")
        if not decided_by:
            decided_by = [(question, o) for question, o in chosen if "NO_EVAL" in o.flags
                          or question.id == "examples" and "LABELS50" not in o.flags]
            rule = f"Decides it: fine-tuning scored highest, but cannot start until you {needs}."
    ft_in_reach = (recommendation in FINE_TUNES_LLM or top == "F"
                   or (scores["F"] > 0 and scores["F"] >= CLOSE * best))
    missing = [f"Before fine-tuning the LLM, {m}." for m in missing_ft] if ft_in_reach else []
    if "MEASURE" in flags:
        missing.append("Measure retrieval first: 50–100 real questions with the passages that "
                       "answer them (hit rate, recall@k).")
    if "EVAL" in flags:
        notes.append("Wrong answers are costly: agree on an accuracy bar from a cost model "
                     "before launch, and add fact-checks on the output.")

    lean = LEAN[recommendation]
    reasons = [Reason(question.text, o.label, max(o.weights[a] for a in lean), o.rationale,
                      q.sources[o.source], rule) for question, o in decided_by]
    ranked = sorted(((max(o.weights[a] for a in lean), question, o) for question, o in chosen
                     if (question, o) not in decided_by and min(o.weights[a] for a in lean) >= 0),
                    key=lambda t: -t[0])
    reasons += [Reason(question.text, o.label, w, o.rationale, q.sources[o.source])
                for w, question, o in ranked if w > 0][:max(0, 3 - len(reasons))]
    return Recommendation(recommendation, _runner_up(recommendation, base, scores), scores, reasons,
                          missing, notes, answered=len(answered), total=len(q.questions))


def _open_questions(q: Questionnaire, answers: dict[str, str]) -> list[tuple[Question, list[Option]]]:
    """Unanswered or "don't know yet" questions, each with the real answers it could still get."""
    return [(question, [o for o in question.options if not o.find_out]) for question in q.questions
            if question.id not in answers or question.option(answers[question.id]).find_out]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("s" if n != 1 else "")


def _describe(question: Question, answers: dict[str, str]) -> str:
    if question.id in answers:  # a "don't know yet" answer: say what to find out
        return f"{question.text} (you don't know yet: {question.option(answers[question.id]).find_out})"
    return question.text


def recommend(answers: dict[str, str], questionnaire: Questionnaire | None = None) -> Recommendation:
    q = questionnaire or load()
    check_answers(q, answers)
    if too_few(answers, q):
        raise WorkspaceError(too_few(answers, q))
    result = _evaluate(q, answers)
    open_ = _open_questions(q, answers)

    def flips(extra: dict[str, str]) -> bool:
        return _evaluate(q, {**answers, **extra}).recommendation != result.recommendation

    singles = [question for question, options in open_ if any(flips({question.id: o.id}) for o in options)]
    # Pairs only of questions that cannot flip it alone, since those are already named.
    steady = [(question, options) for question, options in open_ if question not in singles]
    pairs = [(a, b) for (a, a_options), (b, b_options) in combinations(steady, 2)
             if any(flips({a.id: x.id, b.id: y.id}) for x in a_options for y in b_options)]
    result.would_change = ([_describe(question, answers) for question in singles]
                           + [f"{_describe(a, answers)} + {_describe(b, answers)} (only together)"
                              for a, b in pairs])
    result.unknown = sum(question.id in answers for question, _ in open_)
    if open_:
        mattering = len({question.id for question in singles}
                        | {question.id for pair in pairs for question in pair})
        if len(open_) == 1:
            verdict = "it could change it (above)" if mattering else "it does not change it"
        else:
            verdict = (f"{mattering} of them could change it (listed above)" if mattering
                       else "none of them changes it")
        result.checked = (f"Tried every answer to the {_count(len(open_), 'open question')} "
                          "(unanswered or not known yet)"
                          + (", alone and in pairs" if len(open_) > 1 else "") + f": {verdict}"
                          + ("; combinations of three or more were not checked." if len(open_) > 2
                             else "; that covers every case."))
    result.provisional = bool(result.would_change) or len(open_) > 2
    return result


# -- reports -------------------------------------------------------------------------------
# The page, both reports and the CLI render these same pieces, so they cannot drift apart.
def _answer_rows(answers: dict[str, str], q: Questionnaire) -> list[tuple[str, str]]:
    return [(question.text, question.option(answers[question.id]).label if question.id in answers
             else "(not answered)") for question in q.questions]


def headline(result: Recommendation) -> list[str]:
    return [f"Recommendation: {result.title} ({result.status})",
            f"Runner-up: {result.runner_up_title}",
            f"Scores: prompting {result.scores['P']}, RAG {result.scores['R']}, "
            f"fine-tuning {result.scores['F']}"]


def sections(result: Recommendation) -> list[tuple[str, list[str]]]:
    """Every list a view shows after the reasons, with its heading, skipping empty ones."""
    return [(heading, items) for heading, items in (
        ("Missing before going further", result.missing),
        ("Notes", result.notes),
        ("What could change this", result.would_change + ([result.checked] if result.checked else [])),
        ("Measure it", [result.measure_hint] if result.measure_hint else []),
    ) if items]


def summary(result: Recommendation) -> str:
    return (f"{result.title} ({result.status}; runner-up: {result.runner_up_title}; "
            f"scores P {result.scores['P']}, R {result.scores['R']}, F {result.scores['F']})")


def to_text(result: Recommendation) -> str:
    lines = headline(result) + ["", "Why:"] + [f"  {i}. {r.text}" for i, r in enumerate(result.reasons, 1)]
    for heading, items in sections(result):
        lines += ["", f"{heading}:"] + [f"  - {item}" for item in items]
    return "\n".join(lines)


def _reason_markdown(r: Reason) -> str:
    return (f"**{r.answer}** ({r.question}) — " + (f"{r.rule} " if r.rule else "")
            + f"{r.rationale} *({r.source})*")


def reasons_markdown(result: Recommendation) -> str:
    return "\n".join(f"{i}. {_reason_markdown(r)}" for i, r in enumerate(result.reasons, 1))


def to_markdown(answers: dict[str, str], result: Recommendation,
                questionnaire: Questionnaire | None = None, today: dt.date | None = None) -> str:
    q = questionnaire or load()
    today = today or dt.date.today()
    recommendation, runner_up, scores = headline(result)
    lines = [f"# RAG or fine-tuning? Assessment of {today.isoformat()}", "",
             f"**{recommendation}**  ", f"{runner_up}. {scores}.", "", "## Why", reasons_markdown(result)]
    for heading, items in sections(result):
        lines += ["", f"## {heading}"] + [f"- {item}" for item in items]
    lines += ["", "## Answers", "", "| Question | Answer |", "|---|---|"]
    lines += [f"| {question} | {answer} |" for question, answer in _answer_rows(answers, q)]
    used = sorted({question.option(answers[question.id]).source for question in q.questions
                   if question.id in answers})
    lines += ["", "## Sources"] + [f"- {q.sources[s]}" for s in used]
    return "\n".join(lines) + "\n"


def to_html(answers: dict[str, str], result: Recommendation,
            questionnaire: Questionnaire | None = None, today: dt.date | None = None) -> str:
    """A one-page, printable report (the browser's Print → Save as PDF gives the PDF)."""
    q = questionnaire or load()
    today = today or dt.date.today()
    e = html.escape
    total = max(1, *(abs(v) for v in result.scores.values()))
    bars = "".join(
        f"<tr><td>{label}</td><td><div class='bar' style='width:{max(0, v) / total * 100:.0f}%'></div></td>"
        f"<td>{v}</td></tr>" for label, v in (("Prompting", result.scores["P"]), ("RAG", result.scores["R"]),
                                               ("Fine-tuning", result.scores["F"])))
    reasons = "".join(f"<li><b>{e(r.answer)}</b> ({e(r.question)}) — "
                      + (f"<b>{e(r.rule)}</b> " if r.rule else "")
                      + f"{e(r.rationale)} <i>({e(r.source)})</i></li>" for r in result.reasons)
    rows = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>" for a, b in _answer_rows(answers, q))
    parts = [f"<h2>Why</h2><ol>{reasons}</ol>"] + [
        f"<h2>{e(heading)}</h2><ul>{''.join(f'<li>{e(item)}</li>' for item in items)}</ul>"
        for heading, items in sections(result)]
    status = f" ({e(result.status)})"
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>RAG or fine-tuning? Assessment {today.isoformat()}</title>
<style>body{{font:13px/1.45 system-ui,sans-serif;max-width:780px;margin:24px auto;color:#222}}
h1{{font-size:20px;margin:0}}h2{{font-size:15px;margin:16px 0 4px}}.rec{{font-size:18px;margin:10px 0;
padding:10px;background:#eef6ee;border-left:4px solid #2e7d32}}table{{border-collapse:collapse;width:100%}}
td{{padding:2px 6px;border-bottom:1px solid #eee;vertical-align:top}}.bar{{height:12px;background:#1976d2}}
.scores td:nth-child(2){{width:60%}}@media print{{body{{margin:0}}}}</style></head><body>
<h1>RAG or fine-tuning? Assessment</h1><div>{today.strftime('%d %B %Y')} · ragtune</div>
<div class="rec"><b>{e(result.title)}</b>{status}<br>
Runner-up: {e(result.runner_up_title)}</div>
<table class="scores">{bars}</table>{''.join(parts)}
<h2>Answers</h2><table>{rows}</table></body></html>"""


# -- reading answers from the command line ---------------------------------------------------
EXAMPLE = '{"knowledge": "large"}'


def _parse_json(text: bytes, where: str) -> dict[str, str]:
    def no_duplicates(pairs: list[tuple[str, object]]) -> dict:
        keys = [k for k, _ in pairs]
        for k in keys:
            if keys.count(k) > 1:
                raise UnreadableAnswers(f"{where}: {k!r} appears twice; keep one answer per question")
        return dict(pairs)
    try:
        data = json.loads(text.decode("utf-8"), object_pairs_hook=no_duplicates)
    except UnicodeDecodeError:
        raise UnreadableAnswers(f"{where}: not UTF-8 text; save it as UTF-8") from None
    except json.JSONDecodeError as e:
        raise UnreadableAnswers(f"{where}: not valid JSON (line {e.lineno}); write an object like "
                                f"{EXAMPLE}") from None
    except RecursionError:
        raise UnreadableAnswers(f"{where}: JSON nested too deeply; write a flat object like "
                                f"{EXAMPLE}") from None
    if not isinstance(data, dict):
        raise UnreadableAnswers(f"{where}: holds a JSON {type(data).__name__}, not an object; write "
                                f"an object like {EXAMPLE}")
    for k, v in data.items():
        if not isinstance(v, str):
            raise UnreadableAnswers(f"{where}: the answer to {k!r} is a JSON {type(v).__name__}; "
                                    f"give an option id in quotes, like {EXAMPLE}")
    return data


def _read_source(item: str, stdin: BinaryIO) -> dict[str, str]:
    if item == "-":
        return _parse_json(stdin.read(), "stdin")
    if item.lstrip().startswith(("{", "[", '"')):
        raise UnreadableAnswers(f"{item[:30]!r} looks like JSON, not a file path; save it to a file, "
                                "pipe it in with -, or pass question=option arguments")
    try:
        return _parse_json(Path(item).read_bytes(), item)
    except FileNotFoundError:
        raise UnreadableAnswers(f"{item} does not exist; check the path, or use - to read stdin") from None
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise UnreadableAnswers(f"cannot read {item[:60]!r} ({reason}); give a JSON file, -, or "
                                "question=option arguments") from None


def read_answers(items: list[str], stdin: BinaryIO) -> dict[str, str]:
    """Answers from command-line arguments: a JSON file or - (stdin), then or instead any
    question=option pairs, which override the file."""
    answers: dict[str, str] = {}
    given: set[str] = set()
    for n, item in enumerate(items):
        if "=" in item and not item.lstrip().startswith(("{", "[", '"')) and not Path(item).is_file():
            key, _, value = item.partition("=")
            if not key.strip() or not value.strip():
                raise UnreadableAnswers(f"{item!r}: write an answer as question=option, e.g. knowledge=large")
            if key.strip() in given:
                raise UnreadableAnswers(f"{key.strip()!r} is answered twice; keep one")
            given.add(key.strip())
            answers[key.strip()] = value.strip()
        elif n == 0:
            answers = _read_source(item, stdin)
        else:
            raise UnreadableAnswers(f"{item!r}: give one answers file (or -) first, then only "
                                    "question=option arguments")
    return answers
