"""The organ vocabulary and each organ's default CT window.

Windows are (width, level) in HU from Table I of Crespi et al.; the aorta, absent from the
table, gets the usual mediastinal window. The registry is the one vocabulary: the core plugin
registers these organs and plugins add theirs through the ``register_organs`` hook.
"""

from __future__ import annotations

import difflib

from .errors import UnknownOrganError
from .specs import Organ, Window
from .zoo.plugins import get_registry

__all__ = ["BUILTIN_ORGANS", "THORACIC_ORGANS", "Organ", "Window", "check_organ_list", "default_window", "get_organ", "parse_organs"]

#: The core's organs; plugins add theirs through the ``register_organs`` hook.
BUILTIN_ORGANS: tuple[Organ, ...] = (
    Organ("lung_left", Window(1500, -600), "left lung"),
    Organ("lung_right", Window(1500, -600), "right lung"),
    Organ("heart", Window(350, 50), "heart"),
    Organ("esophagus", Window(300, 80), "esophagus", small=True),
    Organ("trachea", Window(1200, -440), "trachea", small=True),
    Organ("spinal_cord", Window(600, 0), "spinal cord", small=True),
    Organ("aorta", Window(400, 40), "aorta"),
)

#: The organs of the paper, in the channel order its multi-organ models use.
THORACIC_ORGANS: tuple[str, ...] = (
    "lung_left",
    "lung_right",
    "heart",
    "esophagus",
    "trachea",
    "spinal_cord",
)


def get_organ(name: str) -> Organ:
    """Look an organ up in the registry (the one vocabulary); an unknown name is an error that
    suggests close matches."""
    reg = get_registry()
    organ = reg.get("organs", name) if isinstance(name, str) else None
    if organ is None:
        known = reg.names("organs")
        close = difflib.get_close_matches(str(name), known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownOrganError(f"unknown organ {name!r}{hint} (known: {', '.join(known)})")
    return organ


def default_window(name: str) -> Window:
    """The default CT window of an organ."""
    return get_organ(name).window


def check_organ_list(organs: object, field: str, error: type[Exception]) -> None:
    """A non-empty list of known, distinct organ names, or ``error`` naming ``field``."""
    if not organs or not isinstance(organs, list):
        raise error(f"{field} must be a non-empty list")
    for organ in organs:
        if not isinstance(organ, str):
            raise error(f"{field} must hold organ names, got {type(organ).__name__}")
        try:
            get_organ(organ)
        except UnknownOrganError as exc:
            raise error(f"{field}: {exc}") from None
    if len(set(organs)) != len(organs):
        raise error(f"{field} repeats an organ")


def parse_organs(text: str | list[str]) -> list[str]:
    """Parse ``"heart,aorta"`` (or a list of names) into validated organ names, order kept."""
    names = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if name and name not in out:
            get_organ(name)
            out.append(name)
    if not out:
        raise UnknownOrganError("no organ given")
    return out
