"""Counts in words, shared by core's messages, the CLI and the pages."""
from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """"1 corpus", "3 corpora": a count with its noun in the right number.

    Example::

        >>> plural(1, "document"), plural(2, "corpus", "corpora")
        ('1 document', '2 corpora')
    """
    return f"{n} {word if n == 1 else many or word + 's'}"


def trimmed(x: float, places: int = 1) -> str:
    """``x`` to at most ``places`` decimals with thousands separators and no trailing zeros, so
    a column of sizes or ratios reads "1.5", "4", "1,536" rather than "1.5", "4.0", "1536.0",
    and a whole number is never rounded away from a fraction it has ("1.5", not "2").

    Example::

        >>> trimmed(1.5), trimmed(4.0), trimmed(1536), trimmed(2 / 3, 2)
        ('1.5', '4', '1,536', '0.67')
    """
    text = f"{x:,.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def sentence(text: str) -> str:
    """``text`` with its first letter capitalised and nothing else touched: ``str.capitalize``
    lowercases the rest, turning "NDCG@10" into "ndcg@10" and a model "BAAI/bge" into "Baai/bge".

    Example::

        >>> sentence("rotation kept: +0.1 NDCG@10"), "rotation kept: +0.1 NDCG@10".capitalize()
        ('Rotation kept: +0.1 NDCG@10', 'Rotation kept: +0.1 ndcg@10')
    """
    return text[:1].upper() + text[1:]


def duration(seconds: float) -> str:
    """Seconds as people read a run's time: "45 s", "1 min 30 s", the one format every plan,
    log line and page uses, so a promise and the summary of it are the same number (a plan
    rounded to "≈ 2 min" read as a different promise from the "1 min 30 s" it summed to).

    Example::

        >>> duration(44.6), duration(90), duration(3725)
        ('45 s', '1 min 30 s', '62 min 05 s')
    """
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def percent_span(low: float, high: float) -> str:
    """A range of shares as a forecast states it: "2.1–4.3%" when neither end is below zero,
    signed with "to" otherwise ("-0.5% to +3.2%": a dash there would read as a minus).

    Example::

        >>> percent_span(0.021, 0.043), percent_span(-0.005, 0.032)
        ('2.1–4.3%', '-0.5% to +3.2%')
    """
    if low < 0:
        return f"{low:+.1%} to {high:+.1%}"
    return f"{low * 100:.1f}–{high:.1%}"
