"""The organ vocabulary and each organ's default CT window.

Windows are (width, level) in HU from Table I of Crespi et al.; the aorta, absent from the
table, gets the usual mediastinal window. Plugins may add organs through :func:`register_organ`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from .errors import UnknownOrganError


@dataclass(frozen=True)
class Window:
    """A CT display window: HU in ``[level - width/2, level + width/2]`` maps onto ``[0, 1]``."""

    width: float
    level: float

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ValueError(f"window width must be > 0, got {self.width}")

    @property
    def low(self) -> float:
        return self.level - self.width / 2

    @property
    def high(self) -> float:
        return self.level + self.width / 2

    def as_dict(self) -> dict[str, float]:
        return {"width": self.width, "level": self.level}


@dataclass(frozen=True)
class Organ:
    name: str
    window: Window
    description: str
    small: bool = False  # thin or small structures: oversampled when training


_ORGANS: dict[str, Organ] = {}


def register_organ(organ: Organ) -> None:
    """Add an organ to the vocabulary; a second, different definition of one name is an error."""
    existing = _ORGANS.get(organ.name)
    if existing is not None and existing != organ:
        raise UnknownOrganError(f"organ {organ.name!r} is already defined differently")
    _ORGANS[organ.name] = organ


_BUILTIN_ORGANS = (
    Organ("lung_left", Window(1500, -600), "left lung"),
    Organ("lung_right", Window(1500, -600), "right lung"),
    Organ("heart", Window(350, 50), "heart"),
    Organ("esophagus", Window(300, 80), "esophagus", small=True),
    Organ("trachea", Window(1200, -440), "trachea", small=True),
    Organ("spinal_cord", Window(600, 0), "spinal cord", small=True),
    Organ("aorta", Window(400, 40), "aorta"),
)
for _organ in _BUILTIN_ORGANS:
    register_organ(_organ)


def builtin_organs() -> tuple[Organ, ...]:
    return _BUILTIN_ORGANS

#: The organs of the paper, in the channel order its multi-organ models use.
THORACIC_ORGANS: tuple[str, ...] = (
    "lung_left",
    "lung_right",
    "heart",
    "esophagus",
    "trachea",
    "spinal_cord",
)


def organ_names() -> list[str]:
    """All known organ names (plugins' included), in registration order."""
    from .plugins import ensure_loaded

    ensure_loaded()
    return list(_ORGANS)


def get_organ(name: str) -> Organ:
    """Look an organ up by name; an unknown name is an error that suggests close matches."""
    if name not in _ORGANS:
        from .plugins import ensure_loaded

        ensure_loaded()  # a plugin may define it
    try:
        return _ORGANS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _ORGANS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownOrganError(
            f"unknown organ {name!r}{hint} (known: {', '.join(_ORGANS)})"
        ) from None


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
