"""URLs as they may be shown: credentials in ``user:password@host`` never reach a message or a log."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?<=//)[^/@\s]*@")


def redact(text: str) -> str:
    """``https://user:secret@host/x`` -> ``https://***@host/x`` (anywhere in ``text``)."""
    return _USERINFO.sub("***@", str(text))
