"""A recommendation as people read it: the page, the CLI's text, the Markdown and the printable
HTML report are all built from the same pieces (``headline``, ``sections``), so they cannot drift
apart.

Example::

    result = recommend({"knowledge": "large", "freshness": "weekly", "jargon": "seen"})
    print(to_text(result))   # Recommendation: … / Why: … / Missing before going further: …
"""
from __future__ import annotations

import datetime as dt
import html

from core.deciding.decision import Questionnaire, Reason, Recommendation, load


# The page, both reports and the CLI render these same pieces, so they cannot drift apart.
def _answer_rows(answers: dict[str, str], q: Questionnaire) -> list[tuple[str, str]]:
    return [(question.text, question.option(answers[question.id]).label if question.id in answers
             else "(not answered)") for question in q.questions]


def headline(result: Recommendation) -> list[str]:
    return [f"Recommendation: {result.title} ({result.status})",
            result.runner_up_line,
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
    gate = f" ({result.runner_up_gate})" if result.runner_up_gate else ""
    return (f"{result.title} ({result.status}; runner-up: {result.runner_up_title}{gate}; "
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
{e(result.runner_up_line)}</div>
<table class="scores">{bars}</table>{''.join(parts)}
<h2>Answers</h2><table>{rows}</table></body></html>"""
