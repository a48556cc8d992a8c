"""Bounds on everything a ``config.json`` may ask a network to be.

A config comes from a stranger's repository: each field is checked for its type and range
before anything is built, encoders come from an allow-list (a timm name such as
``hf-hub:org/x`` would make timm fetch another, unpinned repository), and the whole network is
then built on the ``meta`` device and its size checked before any memory is allocated.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import ModelFormatError

#: timm encoders our architectures are built and tested with (no hub or local-path names).
ENCODERS = ("resnet10t", "resnet18", "resnet26", "resnet34", "resnet50", "seresnet18", "seresnet34", "seresnet50")
MAX_INPUT_SIZE = 2048
MAX_WINDOWS = 16
#: A paper-size member has 26 M parameters; 200 M (800 MB of float32) leaves room for larger ones.
MAX_PARAMETERS = 200_000_000
#: field -> (most entries, smallest value, largest value)
INT_LISTS = {
    "widths": (8, 1, 4096),
    "encoder_layers": (8, 1, 64),
    "decoder_widths": (8, 1, 4096),
    "aspp_rates": (8, 1, 128),
}
NAME_LENGTH = 64


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_int_list(name: str, value: Any, where: str = "config.json") -> list[int]:
    most, lo, hi = INT_LISTS[name]
    if not (isinstance(value, list) and len(value) <= most and all(is_int(v) and lo <= v <= hi for v in value)):
        raise ModelFormatError(f"{where}: field {name!r} must be a list of at most {most} whole numbers in [{lo}, {hi}], got {_short(value)}")
    return value


def check_name(name: str, value: Any, where: str = "config.json", allowed: tuple[str, ...] | None = None) -> str:
    if not (isinstance(value, str) and 0 < len(value) <= NAME_LENGTH):
        raise ModelFormatError(f"{where}: field {name!r} must be a name of 1 to {NAME_LENGTH} characters, got {_short(value)}")
    if allowed is not None and value not in allowed:
        raise ModelFormatError(f"{where}: field {name!r} {value!r} is not an allowed encoder ({', '.join(allowed)})")
    return value


def check_window(value: Any, where: str) -> tuple[float, float]:
    """``{width, level}`` in HU: width in (0, 10000], level in [-3000, 5000]."""
    if not (isinstance(value, dict) and is_number(value.get("width")) and is_number(value.get("level"))):
        raise ModelFormatError(f"{where} must be {{width, level}} numbers in HU, got {_short(value)}")
    width, level = float(value["width"]), float(value["level"])
    if not (0 < width <= 10000 and -3000 <= level <= 5000):
        raise ModelFormatError(f"{where}: width must be in (0, 10000] and level in [-3000, 5000] HU, got {width:g} / {level:g}")
    return width, level


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
