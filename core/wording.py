"""Counts in words, shared by core's messages, the CLI and the pages."""
from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 corpus", "3 corpora": a count with its noun in the right number.

    Example::

        >>> plural(1, "document"), plural(2, "corpus", "corpora")
        ('1 document', '2 corpora')
    """
    return f"{n} {word if n == 1 else many or word + 's'}"
