"""Score a use case on evidence-backed criteria and recommend prompting, RAG, fine-tuning or a
hybrid, with the reasons and what is missing.

The questions, options, weights, flags, rationales and sources live in
``data/questionnaire.yaml`` so a consultant can change them without touching code; this module
only holds the rules:

1. Add up the weights toward prompting (P), RAG (R) and fine-tuning the LLM (F). Ties go to the
   cheaper approach: P, then R, then F.
2. Fine-tuning cannot be recommended without at least 50 curated examples and an evaluation set
   (OpenAI's "start with 50+ examples", Azure's readiness checklist); it is then offered as
   "later", with the missing prerequisites.
3. Hybrids: real-time data → RAG + tools; facts and form both failing with enough examples →
   RAG + a fine-tuned LLM; right documents but wrong answers → RAFT; retrieval missing domain
   terms → RAG + fine-tuned embeddings, the cheapest of the hybrids and the one ragtune measures.
4. The three answers that pushed hardest toward the recommendation are its reasons.
"""
from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

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


@dataclass
class Option:
    id: str
    label: str
    weights: dict[str, int]
    flags: list[str]
    rationale: str
    source: str


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
            for key in ("id", "label", "rationale", "source"):
                if not isinstance(o[key], str):
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
                                  o["rationale"], o["source"]))
        questions.append(Question(q["id"], q["text"], options))
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


@dataclass
class Recommendation:
    recommendation: str
    runner_up: str
    scores: dict[str, int]
    reasons: list[Reason]
    missing: list[str]
    notes: list[str] = field(default_factory=list)
    provisional: bool = False
    would_change: list[str] = field(default_factory=list)  # unanswered questions that matter
    measurable: bool = False  # retrieval quality decides it: ragtune can measure it

    @property
    def title(self) -> str:
        return NAMES[self.recommendation]

    def to_json(self) -> dict:
        out = asdict(self)
        out["title"] = self.title
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


def _pick(scores: dict[str, int], allowed=APPROACHES) -> str:
    return max((a for a in APPROACHES if a in allowed), key=lambda a: (scores[a], -APPROACHES.index(a)))


def recommend(answers: dict[str, str], questionnaire: Questionnaire | None = None,
              look_ahead: bool = True) -> Recommendation:
    q = questionnaire or load()
    check_answers(q, answers)
    chosen = [(question, question.option(answers[question.id])) for question in q.questions
              if question.id in answers]
    scores = {a: sum(o.weights[a] for _, o in chosen) for a in APPROACHES}
    flags = {f for _, o in chosen for f in o.flags}
    answered = {question.id for question, _ in chosen}

    missing: list[str] = []
    notes: list[str] = []
    ft_ready = "LABELS50" in flags and "eval_set" in answered and "NO_EVAL" not in flags
    if "LABELS50" not in flags:
        missing.append("Fine-tuning the LLM needs at least 50 curated input→output examples"
                       + ("" if "examples" in answered else " (not answered yet)") + ".")
    if "NO_EVAL" in flags or "eval_set" not in answered:
        missing.append("Build an evaluation set with expected answers before any fine-tuning: "
                       "without it, no change can be shown to help.")
    if "MEASURE" in flags:
        missing.append("Measure retrieval first: 50–100 real questions with the passages that "
                       "answer them (hit rate, recall@k) — ragtune's corpus and results pages do this.")
    if "EVAL" in flags:
        notes.append("Wrong answers are costly: agree on an accuracy bar from a cost model "
                     "before launch, and add fact-checks on the output.")

    top = _pick(scores)
    base = top
    if top == "F" and not ft_ready:
        base = _pick(scores, ("P", "R"))
        notes.append("Fine-tuning scored highest, but its prerequisites are missing: "
                     f"{BASE[base].replace('rag', 'RAG')} now, fine-tuning later.")
    best = scores[top] if scores[top] > 0 else 1
    both_strong = scores["R"] >= 0.7 * best and scores["F"] >= 0.7 * best and scores["R"] > 0 < scores["F"]
    recommendation = BASE[base]
    if "TOOLS" in flags and base != "P":
        recommendation = "rag_tools"
    elif ("HYBRID" in flags or both_strong) and "LABELS50" in flags and base != "P" and ft_ready:
        recommendation = "rag_ft_llm"
        if "GENERAL" in flags:
            notes.append("With general knowledge only, retrieval can hurt a tuned model: in "
                         "OpenAI's Icelandic example, adding RAG to a fine-tuned GPT-4 lowered BLEU from 87 to 83.")
    elif base == "R" and "RAFT" in flags and "LABELS50" in flags:
        recommendation = "raft"
        notes.append("RAFT gains were large on Llama-2 7B but a replication found none on newer "
                     "8B models: measure on your own data.")
    elif base == "R" and "EMB" in flags:
        recommendation = "rag_ft_embeddings"

    lean = {"prompting": ("P",), "rag": ("R",), "finetune": ("F",), "rag_tools": ("R",),
            "rag_ft_llm": ("R", "F"), "raft": ("R", "F"), "rag_ft_embeddings": ("R",)}[recommendation]
    ranked = sorted(((max(o.weights[a] for a in lean), question, o) for question, o in chosen),
                    key=lambda t: -t[0])
    reasons = [Reason(question.text, o.label, w, o.rationale, q.sources[o.source])
               for w, question, o in ranked[:3] if w > 0]
    runner_up = BASE[_pick(scores, [a for a in APPROACHES if a not in lean] or APPROACHES)]

    result = Recommendation(recommendation, runner_up, scores, reasons, missing, notes,
                            provisional=len(answered) < len(q.questions),
                            measurable=recommendation in ("rag", "rag_ft_embeddings")
                            or "EMB" in flags or "MEASURE" in flags)
    if look_ahead and result.provisional:
        result.would_change = [
            question.text for question in q.questions if question.id not in answered
            and any(recommend({**answers, question.id: o.id}, q, False).recommendation != recommendation
                    for o in question.options)]
    return result


# -- reports -------------------------------------------------------------------------------
def _answer_rows(answers: dict[str, str], q: Questionnaire) -> list[tuple[str, str]]:
    return [(question.text, question.option(answers[question.id]).label if question.id in answers
             else "(not answered)") for question in q.questions]


def to_markdown(answers: dict[str, str], result: Recommendation,
                questionnaire: Questionnaire | None = None, today: dt.date | None = None) -> str:
    q = questionnaire or load()
    today = today or dt.date.today()
    lines = [f"# RAG or fine-tuning? Assessment of {today.isoformat()}", "",
             f"**Recommendation: {result.title}**" + (" (provisional)" if result.provisional else ""),
             f"Runner-up: {NAMES[result.runner_up]}. Scores: prompting {result.scores['P']}, "
             f"RAG {result.scores['R']}, fine-tuning {result.scores['F']}.", "", "## Why"]
    lines += [f"{i}. **{r.answer}** — {r.rationale} *({r.source})*" for i, r in enumerate(result.reasons, 1)]
    if result.missing:
        lines += ["", "## Missing before going further"] + [f"- {m}" for m in result.missing]
    if result.notes:
        lines += ["", "## Notes"] + [f"- {n}" for n in result.notes]
    if result.would_change:
        lines += ["", "## Unanswered questions that could change this"] + [f"- {w}" for w in result.would_change]
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

    def items(values):
        return "".join(f"<li>{e(v)}</li>" for v in values)
    reasons = "".join(f"<li><b>{e(r.answer)}</b> — {e(r.rationale)} <i>({e(r.source)})</i></li>"
                      for r in result.reasons)
    rows = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>" for a, b in _answer_rows(answers, q))
    sections = [f"<h2>Why</h2><ol>{reasons}</ol>"]
    if result.missing:
        sections.append(f"<h2>Missing before going further</h2><ul>{items(result.missing)}</ul>")
    if result.notes:
        sections.append(f"<h2>Notes</h2><ul>{items(result.notes)}</ul>")
    if result.would_change:
        sections.append(f"<h2>Unanswered questions that could change this</h2><ul>{items(result.would_change)}</ul>")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>RAG or fine-tuning? Assessment {today.isoformat()}</title>
<style>body{{font:13px/1.45 system-ui,sans-serif;max-width:780px;margin:24px auto;color:#222}}
h1{{font-size:20px;margin:0}}h2{{font-size:15px;margin:16px 0 4px}}.rec{{font-size:18px;margin:10px 0;
padding:10px;background:#eef6ee;border-left:4px solid #2e7d32}}table{{border-collapse:collapse;width:100%}}
td{{padding:2px 6px;border-bottom:1px solid #eee;vertical-align:top}}.bar{{height:12px;background:#1976d2}}
.scores td:nth-child(2){{width:60%}}@media print{{body{{margin:0}}}}</style></head><body>
<h1>RAG or fine-tuning? Assessment</h1><div>{today.strftime('%d %B %Y')} · ragtune</div>
<div class="rec"><b>{e(result.title)}</b>{' (provisional)' if result.provisional else ''}<br>
Runner-up: {e(NAMES[result.runner_up])}</div>
<table class="scores">{bars}</table>{''.join(sections)}
<h2>Answers</h2><table>{rows}</table></body></html>"""


def read_answers_file(path: Path) -> dict[str, str]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise WorkspaceError(f"{path}: not valid JSON (line {e.lineno}); write an object like "
                             '{"knowledge": "large"}') from None
