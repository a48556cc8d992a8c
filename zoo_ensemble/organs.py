"""The organ vocabulary and each organ's default CT window.

Windows are (width, level) in HU from Table I of Crespi et al.; the aorta, absent from the
table, gets the usual mediastinal window. The registry is the one vocabulary: the core plugin
registers these organs and plugins add theirs through the ``register_organs`` hook.
"""

from __future__ import annotations

import colorsys
import zlib

from .errors import UnknownOrganError
from .specs import Organ, Window
from .registry import lookup

__all__ = ["BUILTIN_ORGANS", "THORACIC_ORGANS", "Organ", "Window", "check_organ_list", "default_window", "get_organ", "organ_color", "parse_organs"]

#: The core's organs; plugins add theirs through the ``register_organs`` hook.
BUILTIN_ORGANS: tuple[Organ, ...] = (
    Organ("lung_left", Window(1500, -600), "left lung", snomed=("44029006", "Left lung"),
          totalsegmentator=("lung_upper_lobe_left", "lung_lower_lobe_left"), color=(0, 151, 206)),
    Organ("lung_right", Window(1500, -600), "right lung", snomed=("3341006", "Right lung"),
          totalsegmentator=("lung_upper_lobe_right", "lung_middle_lobe_right", "lung_lower_lobe_right"), color=(95, 190, 240)),
    Organ("heart", Window(350, 50), "heart", snomed=("80891009", "Heart"), totalsegmentator=("heart",), color=(206, 110, 84)),
    Organ("esophagus", Window(300, 80), "esophagus", small=True, snomed=("32849002", "Esophagus"),
          totalsegmentator=("esophagus",), color=(220, 160, 60)),
    Organ("trachea", Window(1200, -440), "trachea", small=True, snomed=("44567001", "Trachea"),
          totalsegmentator=("trachea",), color=(150, 230, 120)),
    Organ("spinal_cord", Window(600, 0), "spinal cord", small=True, snomed=("2748008", "Spinal cord"),
          totalsegmentator=("spinal_cord",), color=(244, 214, 49)),
    Organ("aorta", Window(400, 40), "aorta", snomed=("15825003", "Aorta"), totalsegmentator=("aorta",), color=(224, 47, 36)),
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
    return lookup("organs", name, "organ", UnknownOrganError)


def organ_color(name: str) -> tuple[int, int, int]:
    """The organ's RGB colour; an organ registered without one gets a fixed colour derived from
    its name, so that it looks the same in every file and every run."""
    organ = get_organ(name)
    if organ.color is not None:
        return organ.color
    hue = zlib.crc32(name.encode()) % 360 / 360.0
    return tuple(int(round(255 * v)) for v in colorsys.hsv_to_rgb(hue, 0.65, 0.9))  # type: ignore[return-value]


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
