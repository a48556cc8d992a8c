"""Output paths are checked before any work starts, and never replace what a user owns unasked.

A command that would write onto one of its inputs, into a folder that is not its own kind of
output, under a file, into a read-only folder or with a suffix it cannot write is refused with
one line before it reads a model or trains, so a typo costs nothing and loses nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import ZooError


class OutputError(ZooError):
    """An output path that cannot or must not be written."""


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _check_writable_parent(path: Path) -> None:
    """The nearest existing ancestor of ``path`` must be a folder this process can write into."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: cannot be written, {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot be written, the folder {parent} is not writable")


def check_output_file(path: Path, inputs: Iterable[Path | None] = (), suffixes: Sequence[str] = ()) -> Path:
    """A file about to be written: not an input, not a folder, a writable place, a known suffix."""
    path = Path(path)
    for source in inputs:
        if source is not None and _same(path, Path(source)):
            raise OutputError(f"{path}: is also an input of this command; choose another output name")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if suffixes and not path.name.lower().endswith(tuple(suffixes)):
        raise OutputError(f"{path}: unsupported file type (use one of {', '.join(suffixes)})")
    _check_writable_parent(path)
    return path


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def is_model_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "README.md").is_file()


def check_output_folder(path: Path, kind: str, owned: bool, force: bool = False, inputs: Iterable[Path | None] = ()) -> Path:
    """A folder about to be (re)written as a ``kind`` output.

    ``owned`` says whether an existing ``path`` is already such an output (a model folder, a
    dataset this command made): those are replaced; any other non-empty folder only with
    ``force``. A file, a folder under a file, or a folder holding an input is refused.
    """
    path = Path(path)
    for source in inputs:
        if source is not None and (_same(path, Path(source)) or _inside(Path(source), path)):
            raise OutputError(f"{path}: holds an input of this command ({source}); choose another output folder")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not owned and not force:
        raise OutputError(f"{path}: is a folder that is not a {kind} and is not empty; choose another, or pass --force to replace it")
    _check_writable_parent(path)
    return path


def clear_folder(path: Path) -> None:
    """Empty ``path`` (after the user passed --force for it)."""
    if path.is_dir():
        shutil.rmtree(path)
