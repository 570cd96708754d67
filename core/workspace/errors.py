"""What a user can fix: ``WorkspaceError`` and the one-line explanations of the failures that
become one (a locked or unreadable database, a full disk).

Every module raises ``WorkspaceError`` with a message that says what went wrong and how to fix
it; the pages show it as one line and the CLI prints it on stderr with a non-zero exit. It lives
here, below every other module, so raising it never means importing the database layer.
"""
from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path


class WorkspaceError(Exception):
    """A problem the user can fix; the message is one line that says what and how."""


class Canceled(Exception):
    """A job stopped on request before it had anything to keep; its end is "canceled"."""


# What to do about the SQLite failures a user can meet, by words of the message.
_DB_HINTS = (
    ("locked", "another ragtune process is writing to the workspace; retry when it has finished"),
    ("busy", "another ragtune process is writing to the workspace; retry when it has finished"),
    ("disk is full", "free some disk space and retry"),
    ("disk i/o", "it could not be written: the disk may be full (or a file-size limit reached) "
                 "or failing; free some disk space, check the disk is mounted, and retry"),
    ("readonly", "make the workspace folder writable, or point RAGTUNE_HOME elsewhere"),
    ("not a database", "RAGTUNE_HOME holds a ragtune.db that is not a ragtune workspace; "
                       "point RAGTUNE_HOME elsewhere"),
    ("unable to open", "check that RAGTUNE_HOME names a folder you can write to"),
)


def explain_db_error(error: sqlite3.Error, path: Path | str) -> str:
    """One line for a database failure: what SQLite said and what the user can do about it."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    hint = next((h for words, h in _DB_HINTS if words in text.lower()), "retry, and check the disk")
    return f"workspace database {path}: {text}; {hint}"


# How a failed write for lack of room reads: OSError texts, safetensors' and torch.save's.
_NO_ROOM = ("no space left", "file too large", "disk quota", "disk is full", "file write failed",
            "os error 27", "os error 28")


def is_out_of_room(error: BaseException) -> bool:
    """Whether ``error`` means a file could not be written for lack of room: a full disk, a
    quota, or a file-size limit (safetensors and torch report these as their own errors)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    return any(words in str(error).lower() for words in _NO_ROOM)


def explain_out_of_room(what: str, folder: Path) -> str:
    """One line for a write that failed for lack of room, with the free space where it failed.

    Args:
        what: what could not be written, e.g. "the fine-tuned model".
        folder: where it was being written.
    """
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(existing).free / 1e6
    return (f"could not write {what} to {folder}: the disk is full or a file-size limit was "
            f"reached ({free:,.0f} MB free there); free some disk space and retry")
