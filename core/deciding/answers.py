"""Answers to the questionnaire from the command line: JSON files, ``-`` for stdin, and
``question=option`` words, read into one ``{question id: option id}`` with one-line errors.

Example::

    read_answers(["answers.json", "jargon=seen"], sys.stdin.buffer)   # {"knowledge": "large", "jargon": "seen"}
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

from core.deciding.decision import UnreadableAnswers


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
