"""Soft 2D shapes for the phantom generator.

Each function returns a membership in ``[0, 1]`` on a grid of physical coordinates: 1 inside,
0 outside, a linear ramp one pixel wide across the border. That ramp is the in-plane partial
volume effect; averaging sub-slices gives the through-plane one.

Hand-written because no imaging library draws anatomy-like soft shapes on a physical grid;
the signed distance uses the first-order estimate ``(f - 1) / |grad f|`` of an implicit
function ``f``, exact on the border and good enough a few pixels away from it.
"""

from __future__ import annotations

import numpy as np


class Grid:
    """Pixel-centre coordinates of one axial slice in mm (x to the patient's left, y posterior)."""

    def __init__(self, nx: int, ny: int, spacing: tuple[float, float], centre: tuple[float, float] = (0.0, 0.0)):
        self.nx, self.ny = nx, ny
        self.spacing = spacing
        xs = (np.arange(nx) - (nx - 1) / 2) * spacing[0] + centre[0]
        ys = (np.arange(ny) - (ny - 1) / 2) * spacing[1] + centre[1]
        self.x = xs[None, :].astype(np.float32)
        self.y = ys[:, None].astype(np.float32)
        self.ramp = float(max(spacing))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ny, self.nx)

    def zeros(self) -> np.ndarray:
        return np.zeros(self.shape, dtype=np.float32)

    def soft(self, signed_distance: np.ndarray) -> np.ndarray:
        """Membership from a signed distance (negative inside)."""
        return np.clip(0.5 - signed_distance / self.ramp, 0.0, 1.0).astype(np.float32, copy=False)


def _box(grid: Grid, cx: float, cy: float, half: float) -> tuple[slice, slice]:
    """Index window of the pixels within ``half`` mm (plus the ramp) of a centre."""
    m = half + 2 * grid.ramp
    xs, ys = grid.x[0], grid.y[:, 0]
    ix = np.searchsorted(xs, [cx - m, cx + m])
    iy = np.searchsorted(ys, [cy - m, cy + m])
    return slice(int(iy[0]), int(iy[1])), slice(int(ix[0]), int(ix[1]))


def ellipse(grid: Grid, cx: float, cy: float, a: float, b: float, angle: float = 0.0, power: float = 2.0) -> np.ndarray:
    """A (super)ellipse with semi-axes ``a`` (along x after rotation) and ``b``; ``power`` > 2 is boxier.

    Only the shape's bounding box is computed; the rest of the slice stays 0.
    """
    out = grid.zeros()
    if a <= 0 or b <= 0:
        return out
    half = max(a, b) * (1.42 if power > 2 else 1.0)
    sy, sx = _box(grid, cx, cy, half)
    if sy.start >= sy.stop or sx.start >= sx.stop:
        return out
    dx = grid.x[:, sx] - cx
    dy = grid.y[sy, :] - cy
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        u, v = c * dx + s * dy, -s * dx + c * dy
    else:
        u, v = dx + 0 * dy, dy + 0 * dx
    au, av = np.abs(u) / a, np.abs(v) / b
    f = au**power + av**power
    gu = power * au ** (power - 1) / a
    gv = power * av ** (power - 1) / b
    grad = np.sqrt(gu * gu + gv * gv) + 1e-6
    out[sy, sx] = grid.soft((f - 1.0) / grad)
    return out


def capsule(grid: Grid, p0: tuple[float, float], p1: tuple[float, float], radius: float) -> np.ndarray:
    """All points within ``radius`` of the segment p0-p1 (a tube seen from its side)."""
    ax, ay = p0
    dx, dy = p1[0] - ax, p1[1] - ay
    length2 = dx * dx + dy * dy
    px, py = grid.x - ax, grid.y - ay
    t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
    dist = np.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2)
    return grid.soft(dist - radius)


def tube_into(out: np.ndarray, grid: Grid, p0: np.ndarray, p1: np.ndarray, radius: float, z: float) -> None:
    """Add (by maximum) the cross-section at height ``z`` of a 3D cylinder of ``radius`` around
    segment p0-p1 into ``out``; only the segment's bounding box is computed."""
    if z < min(p0[2], p1[2]) - radius or z > max(p0[2], p1[2]) + radius:
        return
    d = p1 - p0
    length2 = float(d @ d)
    # Only the part of the segment within `radius` of this slice can touch it.
    if abs(d[2]) > 1e-6:
        t0 = np.clip(((z - radius) - p0[2]) / d[2], 0.0, 1.0)
        t1 = np.clip(((z + radius) - p0[2]) / d[2], 0.0, 1.0)
        ta, tb = min(t0, t1), max(t0, t1)
    else:
        ta, tb = 0.0, 1.0
    margin = radius + 2 * grid.ramp
    xa, xb = sorted((p0[0] + ta * d[0], p0[0] + tb * d[0]))
    ya, yb = sorted((p0[1] + ta * d[1], p0[1] + tb * d[1]))
    xs, ys = grid.x[0], grid.y[:, 0]
    ix = np.searchsorted(xs, [xa - margin, xb + margin])
    iy = np.searchsorted(ys, [ya - margin, yb + margin])
    if ix[0] >= ix[1] or iy[0] >= iy[1]:
        return
    px = xs[ix[0] : ix[1]][None, :] - p0[0]
    py = ys[iy[0] : iy[1]][:, None] - p0[1]
    pz = z - p0[2]
    t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / length2, 0.0, 1.0)
    dist = np.sqrt((px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2)
    window = out[iy[0] : iy[1], ix[0] : ix[1]]
    np.maximum(window, grid.soft(dist - radius), out=window)


def paint(image: np.ndarray, membership: np.ndarray, value: float | np.ndarray) -> None:
    """Blend ``value`` into ``image`` in proportion to ``membership`` (in place)."""
    image += membership * (value - image)
