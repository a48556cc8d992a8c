"""Atomic, durable output: write to a temporary next to the target, fsync, then rename.

A crash or an interrupt never leaves a half-written result under the final name, and a result
that was reported written survives a power cut (the file and its folder are fsynced).
Temporaries carry the writing process's id; the next write to the same target removes those
of processes that no longer run (a killed run's leftovers), never a live writer's. Also the
sha256 of a file on disk, which models, checkpoints and downloads are checked by.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputWriteError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would have given; mkstemp makes 0600 files
DIR_MODE = 0o777 & ~_umask()


def temp_prefix(target: Path) -> str:
    """``.<name>.tmp<pid>.``: hidden, tied to the target and to this process."""
    return f".{target.name}.tmp{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: Path) -> None:
    """Remove temporaries that dead processes left next to ``target``."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.tmp(\d+)\.")
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for p in siblings:
        m = pattern.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's contents to disk (folders: their entries, after a rename).

    A file's fsync failing is an error (a full disk or an I/O error can first show there, on
    file systems that allocate late); a folder's is not (some file systems cannot fsync one,
    and the rename is atomic either way)."""
    if not path.is_dir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def cause(exc: BaseException) -> str:
    """What went wrong in a write, in a few words: an OS error's own text (``No space left on
    device``, ``File too large``), also where a Rust I/O error (safetensors) carries its number,
    or else the last line a library gave."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    found = re.search(r"os error (\d+)", text)  # Rust's io::Error, as safetensors passes it on
    if found:
        return os.strerror(int(found.group(1)))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else type(exc).__name__


def write_failed(target: str | os.PathLike[str], exc: BaseException | str) -> OutputWriteError:
    """The one-line error for a write of ``target`` that failed (nothing was left behind)."""
    if isinstance(exc, OutputWriteError):
        return OutputWriteError(target, exc.why)  # a file inside a folder being written: name the folder
    return OutputWriteError(target, exc if isinstance(exc, str) else cause(exc))


def short_write_cause(path: Path, otherwise: str = "the writer stopped before the end of the data") -> str:
    """Why a writer failed, or reported success but left ``path`` short: try to extend the file
    ourselves and name the error that gives (a full disk, a quota, a size limit); ``otherwise``
    where that works."""
    try:
        with open(path, "ab") as fh:
            fh.write(b"\0" * (1 << 16))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        return exc.strerror or str(exc)
    return otherwise


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; fsync it and rename it onto ``target`` on success.

    ``suffix`` defaults to the target's own (full) suffix so that writers that pick a format
    from the file name (SimpleITK, matplotlib) see the right one.
    """
    target = Path(target)
    if suffix is None:
        suffix = "".join(target.suffixes) or ".tmp"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(target)
        fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(target), suffix=suffix, dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise write_failed(target, exc) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        fsync_path(tmp)
        os.replace(tmp, target)
        fsync_path(target.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_failed(target, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike[str], errors: tuple[type[BaseException], ...] = ()) -> Iterator[Path]:
    """Yield a new empty folder next to ``target``; swap it in as ``target`` when the block
    succeeds, remove it when anything fails. An OS error, or one of ``errors`` (a library's own
    write error, such as safetensors'), becomes one :class:`OutputWriteError` naming ``target``."""
    target = Path(target)
    try:
        tmp = temp_folder(target)
    except OSError as exc:
        raise write_failed(target, exc) from None
    try:
        yield tmp
        swap_in_folder(tmp, target)
    except (OSError, OutputWriteError, *errors) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise write_failed(target, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def temp_folder(target: Path) -> Path:
    """A new empty temporary folder next to ``target`` (for :func:`swap_in_folder`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    return Path(tempfile.mkdtemp(prefix=temp_prefix(target), dir=target.parent))


def swap_in_folder(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` at ``target``, replacing any folder there.

    The files are fsynced first. Where the kernel can exchange two names atomically (Linux's
    ``renameat2(RENAME_EXCHANGE)``, which Python does not expose, hence ctypes), a reader sees
    the old folder or the new one, never none; elsewhere the old folder is moved aside and the
    new one renamed in, a gap of two renames.
    """
    for p in new.rglob("*"):
        if p.is_file():
            fsync_path(p)
    os.chmod(new, DIR_MODE)
    fsync_path(new)
    if not target.exists():
        os.replace(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old folder
    else:
        old = target.with_name(f"{temp_prefix(target)}old")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    fsync_path(target.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux 3.15+ with glibc 2.28+); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not hasattr(os, "O_DIRECTORY"):
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing) for a read-modify-write."""
    import fcntl

    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
