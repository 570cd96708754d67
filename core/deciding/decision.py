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

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import yaml

from core.workspace.errors import WorkspaceError

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
MIN_ANSWERS = 3
CLOSE = 0.7  # "close in score": within 70% of the top score, as in the hybrid rule
MEASURE_HINT = ("Measure it in ragtune: load your documents as a corpus, generate or import "
                "question→passage pairs, and compare base and fine-tuned embeddings on the results "
                "page (CLI: ingest → pairs → evaluate).")


# -- the rules, as data ----------------------------------------------------------------------
@dataclass(frozen=True)
class Hybrid:
    """Rule 3: when a plain recommendation becomes a hybrid. The first rule that fires wins.

    Args:
        recommendation: the hybrid's id in NAMES.
        flag: the flag whose answer decides it (shown first, with the flag's text as the rule).
        bases: the plain approaches (P, R, F) it builds on; it never replaces prompting.
        also: further flags that must be raised.
        ready_to_fine_tune: it fine-tunes the LLM, so fine-tuning's prerequisites must be met.
        close_flag: it also fires when RAG and fine-tuning both score close to the top; this
            flag's answer then decides it.
        note: added whenever it fires, or only when ``note_flag`` is raised.
    """
    recommendation: str
    flag: str
    bases: tuple[str, ...]
    also: tuple[str, ...] = ()
    ready_to_fine_tune: bool = False
    close_flag: str = ""
    note: str = ""
    note_flag: str = ""


HYBRIDS = (
    Hybrid("rag_tools", "TOOLS", ("R", "F")),
    Hybrid("rag_ft_llm", "HYBRID", ("R", "F"), ready_to_fine_tune=True, close_flag="LABELS50",
           note="With general knowledge only, retrieval can hurt a tuned model: in OpenAI's "
                "Icelandic example, adding RAG to a fine-tuned GPT-4 lowered BLEU from 87 to 83.",
           note_flag="GENERAL"),
    Hybrid("raft", "RAFT", ("R",), also=("LABELS50",),
           note="RAFT gains were large on Llama-2 7B but a replication found none on newer 8B "
                "models: measure on your own data."),
    Hybrid("rag_ft_embeddings", "EMB", ("R",)),
)


@dataclass(frozen=True)
class Prerequisite:
    """Rule 2: what fine-tuning the LLM needs before it can be recommended. It is met when the
    answer to ``question`` raises ``met_flag``, or, for an ``unmet_flag`` prerequisite, when the
    question is answered and no answer raises that flag."""
    question: str
    todo: str  # for "Missing before going further"
    needs: str  # for "first ... " in the gated note
    needs_after: str  # the same after another need: "collect ≥ 50 examples and an evaluation set"
    met_flag: str = ""
    unmet_flag: str = ""

    def missing(self, flags: set[str], answered: set[str]) -> bool:
        if self.met_flag:
            return self.met_flag not in flags
        return self.unmet_flag in flags or self.question not in answered

    def blocked_by(self, question: Question, option: Option) -> bool:
        """Whether this answer is one that leaves the prerequisite missing."""
        if self.met_flag:
            return question.id == self.question and self.met_flag not in option.flags
        return self.unmet_flag in option.flags


PREREQUISITES = (
    Prerequisite("examples", "collect at least 50 curated input→output examples",
                 "collect ≥ 50 examples", "collect ≥ 50 examples", met_flag="LABELS50"),
    Prerequisite("eval_set", "build an evaluation set with expected answers, without which no "
                 "change can be shown to help", "build an evaluation set", "an evaluation set",
                 unmet_flag="NO_EVAL"),
)
# Raised flags that add to "Missing before going further" and to the notes, whatever is recommended.
FLAG_MISSING = {"MEASURE": "Measure retrieval first: 50–100 real questions with the passages that "
                           "answer them (hit rate, recall@k)."}
FLAG_NOTES = {"EVAL": "Wrong answers are costly: agree on an accuracy bar from a cost model before "
                      "launch, and add fact-checks on the output."}
# What the rules read from the data file; parse() checks each exists, so an edited
# questionnaire fails at load instead of a rule silently never firing.
RULE_FLAGS = tuple(dict.fromkeys(
    [f for h in HYBRIDS for f in (h.flag, *h.also, h.close_flag, h.note_flag) if f]
    + [f for p in PREREQUISITES for f in (p.met_flag, p.unmet_flag) if f]
    + [*FLAG_MISSING, *FLAG_NOTES]))
RULE_QUESTIONS = tuple(p.question for p in PREREQUISITES)


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


OPTION_KEYS = ("id", "label", "weights", "rationale", "source")  # required
TEXT_KEYS = ("id", "label", "rationale", "source", "find_out")
WEIGHT_RANGE = range(-3, 4)


def parse(data: dict, where: str = "questionnaire") -> Questionnaire:
    """Build and validate; every problem names its location in the file."""
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise WorkspaceError(f"{where}: needs a 'questions' list")
    sources, flags = data.get("sources") or {}, data.get("flags") or {}
    questions: list[Question] = []
    for i, q in enumerate(data["questions"]):
        question = _parse_question(q, f"{where}: question {q.get('id', i + 1)!r}", sources, flags)
        if question.id in {seen.id for seen in questions}:
            raise WorkspaceError(f"{where}: question {question.id!r}: duplicate question id")
        questions.append(question)
    _check_rules_are_reachable(questions, where)
    return Questionnaire(questions, dict(sources), dict(flags))


def _parse_question(q: dict, here: str, sources: dict, flags: dict) -> Question:
    _require(q, ("id", "text", "options"), here)
    options: list[Option] = []
    for o in q["options"]:
        option = _parse_option(o, f"{here}, option {o.get('id')!r}", sources, flags)
        if option.id in {seen.id for seen in options}:
            raise WorkspaceError(f"{here}, option {option.id!r}: duplicate option id")
        options.append(option)
    if all(o.find_out for o in options):
        raise WorkspaceError(f"{here}: every option has find_out; keep at least one real answer")
    return Question(q["id"], q["text"], options)


def _parse_option(o: dict, there: str, sources: dict, flags: dict) -> Option:
    _require(o, OPTION_KEYS, there)
    wrong_type = [key for key in TEXT_KEYS if key in o and not isinstance(o[key], str)]
    if wrong_type:
        raise WorkspaceError(f"{there}: {wrong_type[0]} must be text; quote values like "
                             f"'yes' and 'no', which YAML reads as true/false")
    _check_weights(o["weights"], there)
    unknown_flags = [flag for flag in o.get("flags") or [] if flag not in flags]
    if unknown_flags:
        raise WorkspaceError(f"{there}: unknown flag {unknown_flags[0]!r}; declare it under 'flags'")
    if o["source"] not in sources:
        raise WorkspaceError(f"{there}: unknown source {o['source']!r}; declare it under 'sources'")
    return Option(o["id"], o["label"], dict(o["weights"]), list(o.get("flags") or []),
                  o["rationale"], o["source"], o.get("find_out", ""))


def _require(item: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [key for key in keys if key not in item]
    if missing:
        raise WorkspaceError(f"{where} is missing {missing[0]!r}")


def _check_weights(weights: dict, there: str) -> None:
    missing = [a for a in APPROACHES if a not in weights]
    if missing:
        raise WorkspaceError(f"{there}: missing weight {missing[0]} (give P, R and F)")
    unknown = sorted(set(weights) - set(APPROACHES))
    if unknown:
        raise WorkspaceError(f"{there}: unknown weight {unknown[0]!r} (use P, R, F)")
    for a, w in weights.items():
        if not isinstance(w, int) or w not in WEIGHT_RANGE:
            raise WorkspaceError(f"{there}: weight {a}={w!r} must be a whole number from "
                                 f"{WEIGHT_RANGE[0]} to {WEIGHT_RANGE[-1]}")


def _check_rules_are_reachable(questions: list[Question], where: str) -> None:
    raised = {f for question in questions for o in question.options for f in o.flags}
    for flag in RULE_FLAGS:
        if flag not in raised:
            raise WorkspaceError(f"{where}: the rules use flag {flag!r} but no option raises it; "
                                 f"add it to an option's flags")
    ids = {question.id for question in questions}
    for question_id in RULE_QUESTIONS:
        if question_id not in ids:
            raise WorkspaceError(f"{where}: the rules use question {question_id!r} but the file has "
                                 f"none; restore a question with that id")


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
    # A runner-up that fine-tunes the LLM before its prerequisites are met says so, as the
    # recommendation would: "not yet: first collect ≥ 50 examples".
    runner_up_gate: str = ""

    @property
    def title(self) -> str:
        return NAMES[self.recommendation]

    @property
    def runner_up_title(self) -> str:
        return NAMES[self.runner_up]

    @property
    def runner_up_line(self) -> str:
        """"Runner-up: Fine-tune the LLM (not yet: first collect ≥ 50 examples)", the same in
        every view."""
        gate = f" ({self.runner_up_gate})" if self.runner_up_gate else ""
        return f"Runner-up: {self.runner_up_title}{gate}"

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
                   runner_up_line=self.runner_up_line,
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


@dataclass
class _Facts:
    """What one answer set says, as the rules read it."""
    chosen: list[tuple[Question, Option]]
    scores: dict[str, int]
    flags: set[str]
    answered: set[str]

    @classmethod
    def of(cls, q: Questionnaire, answers: dict[str, str]) -> _Facts:
        chosen = [(question, question.option(answers[question.id])) for question in q.questions
                  if question.id in answers]
        return cls(chosen, {a: sum(o.weights[a] for _, o in chosen) for a in APPROACHES},
                   {f for _, o in chosen for f in o.flags}, {question.id for question, _ in chosen})

    @property
    def missing(self) -> list[Prerequisite]:
        return [p for p in PREREQUISITES if p.missing(self.flags, self.answered)]

    @property
    def top(self) -> str:
        return _pick(self.scores)

    @property
    def base(self) -> str:
        """The plain approach: the top score, except fine-tuning before its prerequisites."""
        return self.top if self.top != "F" or not self.missing else _pick(self.scores, ("P", "R"))

    def close_to_top(self, approach: str) -> bool:
        return self.scores[approach] > 0 and self.scores[approach] >= CLOSE * max(self.scores[self.top], 1)

    def raised_by(self, flag: str) -> list[tuple[Question, Option]]:
        return [(question, o) for question, o in self.chosen if flag in o.flags]


def _fires(rule: Hybrid, facts: _Facts) -> str | None:
    """The flag that decides ``rule`` on these answers, or None when it does not fire."""
    if facts.base not in rule.bases or any(f not in facts.flags for f in rule.also):
        return None
    if rule.ready_to_fine_tune and facts.missing:
        return None
    if rule.flag in facts.flags:
        return rule.flag
    if rule.close_flag and all(facts.close_to_top(a) for a in ("R", "F")):
        return rule.close_flag
    return None


def _decide(q: Questionnaire, facts: _Facts) -> tuple[str, list[tuple[Question, Option]], str, list[str]]:
    """The recommendation, the answers that decided it, the rule that fired, and its notes."""
    for rule in HYBRIDS:
        flag = _fires(rule, facts)
        if flag is None:
            continue
        text = (f"Decides it: {q.flags[flag]}, and RAG and fine-tuning both score at least "
                f"{CLOSE:.0%} of the top score, so each can fix a part." if flag == rule.close_flag
                else f"Decides it: {q.flags[flag]}.")
        notes = [rule.note] if rule.note and (not rule.note_flag or rule.note_flag in facts.flags) else []
        return rule.recommendation, facts.raised_by(flag), text, notes
    if facts.top == "F" and facts.missing:  # gated: the answers that block fine-tuning decide
        blocking = [(question, o) for question, o in facts.chosen
                    if any(p.blocked_by(question, o) for p in facts.missing)]
        return (BASE[facts.base], blocking,
                f"Decides it: fine-tuning scored highest, but cannot start until you {_needs(facts)}.", [])
    return BASE[facts.base], [], "", []


def _needs(facts: _Facts) -> str:
    missing = facts.missing
    return " and ".join([missing[0].needs] + [p.needs_after for p in missing[1:]])


def _missing(recommendation: str, runner_up: str, facts: _Facts) -> list[str]:
    """Fine-tuning's missing prerequisites while fine-tuning is in reach (recommended, runner-up,
    or scoring near the top), then what any raised flag asks for."""
    in_reach = (recommendation in FINE_TUNES_LLM or runner_up in FINE_TUNES_LLM
                or facts.top == "F" or facts.close_to_top("F"))
    todo = [p.todo + ("" if p.question in facts.answered else " (not answered yet)")
            for p in facts.missing] if in_reach else []
    return ([f"Before fine-tuning the LLM, {t}." for t in todo]
            + [text for flag, text in FLAG_MISSING.items() if flag in facts.flags])


def _reasons(q: Questionnaire, facts: _Facts, recommendation: str,
             decided_by: list[tuple[Question, Option]], rule: str) -> list[Reason]:
    """The deciding answers first, with the rule; then the answers that pushed hardest toward
    the recommendation and against none of its parts, up to three reasons."""
    lean = LEAN[recommendation]
    reasons = [Reason(question.text, o.label, max(o.weights[a] for a in lean), o.rationale,
                      q.sources[o.source], rule) for question, o in decided_by]
    ranked = sorted(((max(o.weights[a] for a in lean), question, o) for question, o in facts.chosen
                     if (question, o) not in decided_by and min(o.weights[a] for a in lean) >= 0),
                    key=lambda t: -t[0])
    return reasons + [Reason(question.text, o.label, w, o.rationale, q.sources[o.source])
                      for w, question, o in ranked if w > 0][:max(0, 3 - len(reasons))]


def _evaluate(q: Questionnaire, answers: dict[str, str]) -> Recommendation:
    """The rules on one answer set, without look-ahead."""
    facts = _Facts.of(q, answers)
    recommendation, decided_by, rule, notes = _decide(q, facts)
    if facts.top == "F" and facts.missing:
        notes.append(f"Fine-tuning scored highest, but its prerequisites are missing: "
                     f"{BASE[facts.base].replace('rag', 'RAG')} now, fine-tuning later — first "
                     f"{_needs(facts)}.")
    notes += [text for flag, text in FLAG_NOTES.items() if flag in facts.flags]
    runner_up = _runner_up(recommendation, facts.base, facts.scores)
    gate = f"not yet: first {_needs(facts)}" if runner_up in FINE_TUNES_LLM and facts.missing else ""
    return Recommendation(recommendation, runner_up, facts.scores,
                          _reasons(q, facts, recommendation, decided_by, rule),
                          _missing(recommendation, runner_up, facts), notes,
                          answered=len(facts.answered), total=len(q.questions),
                          runner_up_gate=gate)


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


def reads_the_curve(result: Recommendation) -> bool:
    """Whether a measured learning curve (``core.training.curve.measured_need``) speaks to this
    result: fine-tuning waits on the examples prerequisite (the guides' fixed 50, where the
    team's own curve says how many of its questions add how much), or fine-tuned embeddings are
    recommended or the runner-up."""
    return PREREQUISITES[0].todo in result.missing or "rag_ft_embeddings" in (
        result.recommendation, result.runner_up)
