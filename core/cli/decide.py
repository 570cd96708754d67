"""``decide``: the RAG-or-fine-tuning questionnaire, printed or scored."""
from __future__ import annotations

import argparse
import sys

from core.cli.base import command, finish
from core.workspace.outputs import write_text


@command("decide", "the RAG-or-fine-tuning questionnaire: print it, or score answers")
def _decide_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("answers", nargs="*", metavar="ANSWERS",
                   help='a JSON file of question id → option id (e.g. {"knowledge": "large"}), '
                        "- to read it from stdin, and/or question=option arguments")
    p.add_argument("--questions", action="store_true", help="print the questions and options")
    p.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown")
    p.set_defaults(run=run_decide)


def run_decide(args) -> None:
    from core.deciding.answers import read_answers
    from core.deciding.decision import UnreadableAnswers, load, recommend
    from core.deciding.report import summary, to_markdown, to_text
    questionnaire = load()
    if args.questions and args.answers:
        raise UnreadableAnswers("--questions prints the questionnaire and scores nothing; "
                                "drop --questions to score the answers, or drop the answers")
    if not args.answers:
        if not args.json:
            for q in questionnaire.questions:
                print(f"{q.id}: {q.text}")
                for o in q.options:
                    print(f"    {o.id}: {o.label}")
        return finish(args, f"{len(questionnaire.questions)} questions", questionnaire.to_json())
    answers = read_answers(args.answers, sys.stdin.buffer)
    result = recommend(answers, questionnaire)
    if args.markdown:
        write_text(args.markdown, to_markdown(answers, result, questionnaire), "report.md")
    if not args.json:
        print(to_text(result))
    finish(args, summary(result), result.to_json())
