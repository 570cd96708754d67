"""The numbers a person types, each kind checked where it is parsed by one function.

Python parses ``nan``, ``inf`` and 30-digit integers without complaint; SQLite then refuses
integers beyond 64 bits (``OverflowError``), ``int(nan)`` raises deep inside a plan, and NumPy
refuses seeds outside 0..2**32-1. So every kind of value has its range here, and the CLI (as
argparse types), the job config (``TrainConfig``) and the pages' widgets (as bounds) use it.

Example:
    >>> seed("42", "--seed")
    42
    >>> minutes("nan", "--budget-minutes")
    Traceback (most recent call last):
    ...
    core.workspace.errors.WorkspaceError: --budget-minutes nan is not a number of minutes; give a positive number such as 10 (at most 1440)
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from core.workspace.errors import WorkspaceError

MAX_ID = 2**63 - 1  # SQLite's largest integer
MAX_SEED = 2**32 - 1  # NumPy's and PyTorch's seeds
MAX_MINUTES = 24 * 60.0


def _number(value: object, what: str, whole: bool, example: str) -> float:
    """``value`` (text from a shell or a field, or a number from JSON) as a number."""
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise WorkspaceError(f"{what} must be {kind}, not {value!r}; e.g. {example}")
    if isinstance(value, str):
        try:
            value = int(value.strip()) if whole else float(value)
        except ValueError:
            raise WorkspaceError(f"{what} {value!r} is not {kind}; e.g. {example}") from None
    if whole and isinstance(value, float):
        if not value.is_integer():  # nan and inf are not either
            raise WorkspaceError(f"{what} {value} is not {kind}; e.g. {example}")
        value = int(value)
    return value


def _within(number: float, low: float, high: float, what: str, example: str) -> None:
    if not low <= number <= high:
        high_text = f"{high:,}" if high < 1e12 else f"2**{round(math.log2(high + 1))}-1"
        raise WorkspaceError(f"{what} {number} is out of range; use {low:g} to {high_text}, "
                             f"e.g. {example}")


def row_id(value: object, what: str = "id") -> int:
    """An id of a stored row (pair set, corpus, job): 1 up to SQLite's largest integer."""
    number = _number(value, what, True, "3")
    _within(number, 1, MAX_ID, what, "3")
    return int(number)


def count(value: object, what: str, low: int = 0, high: int = MAX_ID) -> int:
    """A count or size (pairs, tokens, epochs, a batch): a whole number in ``low..high``."""
    number = _number(value, what, True, str(max(low, 1)))
    _within(number, low, high, what, str(max(low, min(high, 8))))
    return int(number)


def seed(value: object, what: str = "seed") -> int:
    """A random seed: 0 to 2**32-1, what every random generator here accepts."""
    number = _number(value, what, True, "42")
    _within(number, 0, MAX_SEED, what, "42")
    return int(number)


def minutes(value: object, what: str = "budget_minutes") -> float:
    """A time budget in minutes: finite, above 0, at most a day."""
    number = _number(value, what, False, "10")
    if not math.isfinite(number) or not 0 < number <= MAX_MINUTES:
        raise WorkspaceError(f"{what} {value} is not a number of minutes; give a positive "
                             f"number such as 10 (at most {MAX_MINUTES:g})")
    return float(number)


def share(value: object, what: str, low: float = 0.0, high: float = 1.0, closed: bool = False) -> float:
    """A fraction or rate strictly between ``low`` and ``high`` (``closed``: ``low`` allowed),
    such as a test share, a warmup share or a learning rate."""
    number = _number(value, what, False, "0.2")
    if not math.isfinite(number) or not (low <= number if closed else low < number) or not number < high:
        raise WorkspaceError(f"{what} {value} must be between {low:g} and {high:g}, e.g. 0.2"
                             if high == 1 else f"{what} {value} must be between {low:g} and "
                             f"{high:g}")
    return float(number)


def arg(check: Callable[..., object], *bounds) -> Callable[[str], object]:
    """``check`` as an argparse ``type``: the flag's text checked by the same function."""
    def parse(text: str):
        try:
            return check(text, "the value", *bounds)
        except WorkspaceError as e:
            raise argparse.ArgumentTypeError(str(e).replace("the value ", "", 1)) from None
    parse.__name__ = check.__name__
    return parse
