"""Files and folders an export writes where a person points it: whole or not at all.

Everything is written beside the target under a temporary name and renamed onto it only when
complete, so a failure (a full disk, a file-size limit, a killed process) leaves no half-written
file or folder that looks finished. The target must be a regular file (or folder, for a folder
export) or not exist yet: a rename onto ``/dev/full`` replaced the device node with a zip while
reporting success, and writing to a pipe blocks. A write that fails for lack of room says which
file could not be written, not the working directory.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.workspace.errors import WorkspaceError, explain_out_of_room, is_out_of_room


def _kind(path: Path) -> str:
    return "a folder" if path.is_dir() else "a device, pipe or socket, not a regular file"


def check_file_target(path: Path, example: str) -> Path:
    """``path`` as a place to write a file: new, or a regular file (a link to one counts as
    its target). Anything else is refused with one line, before anything is written."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if path.exists() and not path.is_file():
        raise WorkspaceError(f"{path} is {_kind(path)}; give a file name such as {example}")
    return path


def check_folder_target(path: Path, example: str) -> Path:
    """``path`` as a folder to write into: new, or an existing folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        kind = "a file" if path.is_file() else "a device, pipe or socket"
        raise WorkspaceError(f"{path} is {kind}, not a folder; give a folder name such as {example}")
    return path


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


@contextmanager
def _room_for(path: Path) -> Iterator[None]:
    """A write that failed for lack of room, as one line naming ``path``."""
    try:
        yield
    except OSError as error:
        if is_out_of_room(error):
            raise WorkspaceError(explain_out_of_room(path.name, path.parent)) from None
        raise


@contextmanager
def output_file(path: Path | str, example: str) -> Iterator[Path]:
    """Yield a temporary path beside the checked target ``path``; once the caller has written
    it, rename it onto ``path``. On any failure the temporary file is removed and the target
    is left as it was."""
    target = check_file_target(Path(path), example)
    partial = _partial(target)
    with _room_for(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            yield partial
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)


def write_text(path: Path | str, text: str, example: str) -> None:
    """Write ``text`` (UTF-8) to a file as ``output_file`` does."""
    with output_file(path, example) as partial:
        partial.write_text(text, encoding="utf-8")


@contextmanager
def output_folder(path: Path | str, example: str) -> Iterator[Path]:
    """Yield a temporary folder beside the checked target ``path``; once the caller has
    written it, move it into place: renamed when ``path`` is new, else each file moved into
    the existing folder (files already there and not rewritten are kept). On any failure the
    temporary folder is removed and nothing of it is left at ``path``."""
    target = check_folder_target(Path(path), example)
    partial = _partial(target)
    with _room_for(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial.mkdir()
            yield partial
            if not target.exists():
                partial.rename(target)
            else:
                for written in sorted(p for p in partial.rglob("*") if p.is_file()):
                    place = target / written.relative_to(partial)
                    place.parent.mkdir(parents=True, exist_ok=True)
                    check_file_target(place, written.name)
                    written.replace(place)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
