"""Rewrite the command reference in README.md from the parser (``make readme``).

The reference sits between two marker lines in the "Command line" section; everything else in
the README is left as it is. ``--check`` only reports whether the README is up to date.
"""
import sys
from pathlib import Path

from core.cli import reference

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- command reference: written by `make readme` from the parser; do not edit by hand -->"
END = "<!-- end of command reference -->"


def current(text: str) -> str:
    """The README with its reference block replaced by the parser's."""
    head, found, rest = text.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"{README.name} has no {BEGIN!r} … {END!r} block to fill")
    return f"{head}{BEGIN}\n```\n{reference()}```\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    fresh = current(text)
    if "--check" in argv:
        if fresh != text:
            print(f"{README.name}: the command reference is out of date; run `make readme`",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
