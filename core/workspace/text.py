"""The rules for text a person types: names (of a corpus, pair set or run) and questions.

They live here, below the database layer, so ``Store`` can apply the name rule where every
corpus is created and every importer the question rule where every question enters: one rule,
whichever page or command the text came through.

Example:
    >>> question_text("  What is\\u200b a  set? ")
    'What is\\u200b a set?'
    >>> question_text("\\u200b\\u200b") is None, question_text("🙂🙂") is None, question_text("?!") is None
    (True, True, True)
"""
from __future__ import annotations

import hashlib
import unicodedata

from core.workspace.errors import WorkspaceError

def text_hash(text: str) -> str:
    """The key a text is known by: in the encoding cache, the deduper and a pair set's fingerprint."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# Embeddings, overrides and isolates (not the joiners that Persian or emoji names need).
DIRECTION_OVERRIDES = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def unprintable(name: str) -> bool:
    """Control and direction-override characters: shown in a terminal or a table they could
    clear the screen, break a line or make ``exe.pdf`` read as ``fdp.exe``."""
    return any(unicodedata.category(c) == "Cc" or c in DIRECTION_OVERRIDES for c in name)


def check_label(name: str, what: str = "name") -> str:
    """The one rule for every name a person gives (a new corpus, a rename of a corpus, pair
    set or run): not blank, and nothing unprintable (see ``corpus.check_name`` for file names)."""
    if not name.strip() or unprintable(name):
        raise WorkspaceError(f"{what} {name!r} is blank or holds control or direction-override "
                             "characters; name it in plain words, e.g. support-articles")
    return name


def has_words(text: str) -> bool:
    """Whether ``text`` holds a letter or a digit once NFKC-normalised with its zero-width and
    other format characters (Unicode category Cf) removed: a line of only emoji, punctuation or
    invisible characters asks nothing a passage could answer."""
    visible = "".join(c for c in unicodedata.normalize("NFKC", text)
                      if unicodedata.category(c) != "Cf")
    return any(c.isalnum() for c in visible)


def question_text(line: str) -> str | None:
    """A question as stored (runs of white space made one space), or None for a line that is
    not one: blank, or without a letter or digit (``has_words``). Every importer of questions
    (people's questions, query→passage pairs) keeps only what this returns."""
    text = " ".join(line.split())
    return text if text and has_words(text) else None
