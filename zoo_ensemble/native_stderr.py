"""Hold back what C libraries print on the process's stderr while they work.

ITK's NIfTI writer reports a short write only as a line of its own on file descriptor 2 (and
still returns success); its MetaImage reader prints its parse errors there before it raises.
Python cannot catch either, so a failed write or read would show that line beside ours. While
such a call runs, file descriptor 2 goes to a temporary file: on success what was printed
(also by other threads meanwhile) is passed on unchanged; on failure it is returned to the
caller, which names the cause in its own one line. Python's ``contextlib.redirect_stderr``
only swaps ``sys.stderr`` and cannot see C's writes, hence this module.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

_LOCK = threading.RLock()  # one redirection at a time: nested or concurrent ones would lose output


class Held:
    """What was printed while held; ``text`` is filled when the block ends."""

    text: str = ""


@contextlib.contextmanager
def held_stderr() -> Iterator[Held]:
    """Send fd 2 to a temporary file for the block; pass it on if the block succeeds."""
    held = Held()
    try:
        sink = tempfile.TemporaryFile()
    except OSError:  # no room for even that: the library's lines show as they are
        yield held
        return
    with _LOCK, sink:
        _flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        ok = False
        try:
            yield held
            ok = True
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            data = sink.read()
            held.text = data.decode("utf-8", "replace")
            if ok and data:
                os.write(2, data)


def _flush() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
