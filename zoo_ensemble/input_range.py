"""The grids a model was trained on, and how far a new input lies from them.

A model resamples every slice to its own in-plane spacing, so a finer or coarser scan still
reaches it at the pixel size it learned. What resampling cannot undo is missing detail (an input
much coarser than the training scans), other partial-volume blur (much thicker slices) or other
anatomy in view (a much smaller or larger field of view). The card records the ranges of the
training scans (``zoo.input.trained_on``), and prediction names an input that lies far outside.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ImageSpacingError, ModelFormatError

#: A thorax is about 300 mm wide; a model that sees less cannot hold an organ and its context.
MIN_FIELD_OF_VIEW_MM = 200.0
#: "Far outside": beyond the trained range by more than this factor (either way).
SPACING_FACTOR = 2.0
THICKNESS_FACTOR = 2.0
FOV_FACTOR = 1.5
#: Bounds of any value a card may state, mm (outside them it is not a CT grid).
_BOUNDS = {"spacing": (0.01, 50.0), "thickness": (0.01, 100.0), "fov": (1.0, 5000.0)}
_FACTORS = {"spacing": SPACING_FACTOR, "thickness": THICKNESS_FACTOR, "fov": FOV_FACTOR}
_NAMES = {"spacing": "in-plane spacing", "thickness": "slice thickness", "fov": "field of view"}


#: In-plane pixel spacings (mm) outside these no CT has: below, a micro-CT or a unit mistake;
#: above, a header that lies. Prediction resamples every slice to the model's spacing, so such
#: a claim would also set what it allocates.
CT_PIXEL_SPACING = (0.05, 10.0)
#: Slices thicker than this (mm) are no CT either.
CT_MAX_THICKNESS = 50.0


def check_scan_spacing(spacing_xyz: Sequence[float], where: str) -> None:
    """Refuse a volume whose voxel spacing (x, y, z, mm) no CT has, naming the value."""
    sx, sy, sz = (float(s) for s in spacing_xyz)
    lo, hi = CT_PIXEL_SPACING
    for axis, value in (("x", sx), ("y", sy)):
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ImageSpacingError(
                f"{where}: in-plane pixel spacing {value:g} mm along {axis}; no CT has pixels outside {lo:g}-{hi:g} mm "
                "(is the header's spacing in another unit, or wrong?)"
            )
    if not (math.isfinite(sz) and 0 < sz <= CT_MAX_THICKNESS):
        raise ImageSpacingError(
            f"{where}: slice spacing {sz:g} mm; no CT has slices more than {CT_MAX_THICKNESS:g} mm apart "
            "(is the header's spacing in another unit, or wrong?)"
        )


@dataclass(frozen=True)
class ScanGrid:
    """What matters about one scan's grid: in-plane spacing (x, y), slice thickness, field of view, mm."""

    spacing: tuple[float, float]
    thickness: float
    fov: float

    @classmethod
    def of(cls, shape_zyx: Sequence[int], spacing_xyz: Sequence[float]) -> ScanGrid:
        """From an array shape ``(z, y, x)`` and a spacing ``(x, y, z)`` as SimpleITK gives them."""
        sx, sy, sz = (float(s) for s in spacing_xyz)
        return cls((sx, sy), sz, max(shape_zyx[2] * sx, shape_zyx[1] * sy))


@dataclass(frozen=True)
class InputRange:
    """Ranges ``(low, high)`` in mm of the training scans' spacing, thickness and field of view."""

    spacing: tuple[float, float]
    thickness: tuple[float, float]
    fov: tuple[float, float]

    @classmethod
    def of_grids(cls, grids: Iterable[ScanGrid]) -> InputRange | None:
        grids = list(grids)
        if not grids:
            return None
        sp = [s for g in grids for s in g.spacing]
        th = [g.thickness for g in grids]
        fv = [g.fov for g in grids]
        return cls((min(sp), max(sp)), (min(th), max(th)), (min(fv), max(fv)))

    def union(self, other: InputRange | None) -> InputRange:
        if other is None:
            return self
        return InputRange(*((min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(self._ranges(), other._ranges())))

    def _ranges(self) -> tuple[tuple[float, float], ...]:
        return (self.spacing, self.thickness, self.fov)

    def to_dict(self) -> dict[str, list[float]]:
        return {k: [round(v[0], 3), round(v[1], 3)] for k, v in zip(_BOUNDS, self._ranges())}

    @classmethod
    def from_dict(cls, data: Any, where: str = "card: field 'zoo.input.trained_on'") -> InputRange:
        """Parse and bound-check a recorded range; a bad value is an error naming the field."""
        if not isinstance(data, dict):
            raise ModelFormatError(f"{where} must be a mapping of spacing, thickness and fov")
        out = []
        for key, (lo_bound, hi_bound) in _BOUNDS.items():
            pair = data.get(key)
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_is_number(v) for v in pair)):
                raise ModelFormatError(f"{where}.{key} must be [low, high] in mm, got {pair!r}")
            lo, hi = float(pair[0]), float(pair[1])
            if not lo_bound <= lo <= hi <= hi_bound:
                raise ModelFormatError(f"{where}.{key} must satisfy {lo_bound} <= low <= high <= {hi_bound} mm, got {pair!r}")
            out.append((lo, hi))
        return cls(*out)

    def outside(self, grid: ScanGrid) -> list[str]:
        """One phrase per quantity of ``grid`` that lies far outside this range."""
        values = {"spacing": (min(grid.spacing), max(grid.spacing)), "thickness": (grid.thickness,) * 2, "fov": (grid.fov,) * 2}
        out = []
        for key, (lo, hi) in zip(_BOUNDS, self._ranges()):
            vlo, vhi = values[key]
            f = _FACTORS[key]
            if vlo < lo / f or vhi > hi * f:
                shown = f"{vlo:.3g}" if vlo == vhi else f"{vlo:.3g}-{vhi:.3g}"
                out.append(f"{_NAMES[key]} {shown} mm (trained on {lo:.3g}-{hi:.3g} mm)")
        return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_spacing(value: Any, where: str, error: type[Exception] = ModelFormatError) -> tuple[float, float]:
    """An in-plane spacing ``[x, y]``: two finite numbers in mm, each within the CT bounds."""
    lo, hi = _BOUNDS["spacing"]
    if isinstance(value, str):
        parts = [p for p in value.replace("x", ",").split(",") if p.strip()]
        try:
            value = [float(p) for p in parts]
        except ValueError:
            raise error(f"{where}: expected two numbers X,Y in mm, got {value!r}") from None
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value)):
        raise error(f"{where}: expected two numbers [x, y] in mm, got {value!r}")
    if not all(lo <= float(v) <= hi for v in value):
        raise error(f"{where}: each spacing must lie in [{lo}, {hi}] mm, got {list(value)}")
    return float(value[0]), float(value[1])


def field_of_view(input_size: Sequence[int], spacing: Sequence[float]) -> tuple[float, float]:
    """The (height, width) in mm that ``input_size`` pixels at ``spacing`` (x, y) cover."""
    return input_size[0] * spacing[1], input_size[1] * spacing[0]


def check_field_of_view(input_size: Sequence[int], spacing: Sequence[float], crop: str, where: str) -> None:
    """A centre-cropping model must see at least :data:`MIN_FIELD_OF_VIEW_MM` each way."""
    if crop != "center":
        return
    fov = min(field_of_view(input_size, spacing))
    if fov < MIN_FIELD_OF_VIEW_MM:
        raise ModelFormatError(
            f"{where}: input {input_size[0]} x {input_size[1]} at {spacing[0]:g} x {spacing[1]:g} mm covers only {fov:.0f} mm; "
            f"a model needs a field of view of at least {MIN_FIELD_OF_VIEW_MM:.0f} mm (raise the size or the spacing)"
        )
