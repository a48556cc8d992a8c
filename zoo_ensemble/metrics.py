"""Overlap and distance metrics on 3D masks with voxel spacing: Dice, precision, recall, HD95 (mm).

HD95 is also given in voxels (``hd95_voxels``: the same distance on a grid of unit spacing), the
unit the paper's published HD95 values were computed in by the authors' code, so that our
numbers can be set beside theirs.

Conventions for empty masks (stated here because papers differ and results depend on them):

* both masks empty: the organ is correctly absent; Dice, precision and recall are 1, HD95 is 0;
* prediction empty, reference not: Dice 0, recall 0, precision undefined (NaN);
* reference empty, prediction not: Dice 0, precision 0, recall undefined (NaN);
* exactly one mask empty: HD95 is undefined; we return the diagonal of the voxel grid in mm (the
  largest distance the grid holds), as BraTS does, so that a missed organ is penalised in a mean
  instead of silently dropped. :attr:`OrganScore.hd95_empty` marks such values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import MetricError


def _check(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if pred.shape != ref.shape:
        raise MetricError(f"prediction shape {pred.shape} differs from reference shape {ref.shape}")
    return pred.astype(bool, copy=False), ref.astype(bool, copy=False)


def confusion(pred: np.ndarray, ref: np.ndarray) -> tuple[int, int, int]:
    """True positives, false positives and false negatives (voxel counts)."""
    pred, ref = _check(pred, ref)
    tp = int(np.count_nonzero(pred & ref))
    return tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(ref)) - tp


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    tp, fp, fn = confusion(pred, ref)
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def precision(pred: np.ndarray, ref: np.ndarray) -> float:
    tp, fp, fn = confusion(pred, ref)
    if tp + fp == 0:
        return 1.0 if fn == 0 else math.nan
    return tp / (tp + fp)


def recall(pred: np.ndarray, ref: np.ndarray) -> float:
    tp, fp, fn = confusion(pred, ref)
    if tp + fn == 0:
        return 1.0 if fp == 0 else math.nan
    return tp / (tp + fn)


def _bbox(mask: np.ndarray, margin: int = 1) -> tuple[slice, ...]:
    """Bounding box of ``mask`` grown by ``margin`` voxels (clipped to the array)."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        idx = np.nonzero(mask.any(axis=other))[0]
        box.append(slice(max(int(idx[0]) - margin, 0), min(int(idx[-1]) + 1 + margin, mask.shape[axis])))
    return tuple(box)


def surface_points(mask: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Physical coordinates (mm) of a mask's surface voxels: voxels removed by one binary erosion
    with the face-connected structuring element (MONAI's and DeepMind's voxel surface)."""
    edge = mask & ~ndimage.binary_erosion(mask)
    return np.argwhere(edge) * np.asarray(spacing, dtype=np.float64)


def _tree(points: np.ndarray) -> cKDTree:
    # unbalanced, uncompacted nodes: the same nearest distances, about 5 % faster to build and
    # search on an organ's surface (21,000 points, one core)
    return cKDTree(points, balanced_tree=False, compact_nodes=False)


def directed_hd95(from_points: np.ndarray, to_points: np.ndarray) -> float:
    """95th percentile of the distances from each point of one surface to the other surface."""
    distances, _ = _tree(to_points).query(from_points, k=1)
    return float(np.percentile(distances, 95))


class Surface:
    """A non-empty mask's surface voxels, as whole-grid indices, and a KD-tree of their positions
    per spacing, built when first asked for. Extracted on the mask's own bounding box (one voxel
    wider): the voxels an erosion removes there are those it removes on any box holding the
    mask. An evaluation of many models scores each reference organ against every prediction:
    its surface and trees are made once (:func:`score` takes them)."""

    def __init__(self, mask: np.ndarray):
        mask = np.asarray(mask, dtype=bool)
        box = _bbox(mask)
        inner = mask[box]
        self.edge = inner & ~ndimage.binary_erosion(inner)
        self.start = np.array([b.start for b in box])
        self.indices = np.argwhere(self.edge) + self.start
        self._trees: dict[tuple[float, ...], cKDTree] = {}

    def points(self, spacing: tuple[float, ...]) -> np.ndarray:
        return self.indices * np.asarray(spacing, dtype=np.float64)

    def tree(self, spacing: tuple[float, ...]) -> cKDTree:
        key = tuple(float(s) for s in spacing)
        if key not in self._trees:
            self._trees[key] = _tree(self.points(key))
        return self._trees[key]

    def holds(self, indices: np.ndarray) -> np.ndarray:
        """Which of these whole-grid voxel indices are surface voxels of this mask."""
        local = indices - self.start
        inside = np.all((local >= 0) & (local < self.edge.shape), axis=1)
        out = np.zeros(len(indices), dtype=bool)
        out[inside] = self.edge[tuple(local[inside].T)]
        return out

    def distances_from(self, other: Surface, spacing: tuple[float, ...]) -> np.ndarray:
        """Each of ``other``'s surface points' distance to this surface. A point on both surfaces
        is at 0 without a search: a good prediction shares most of its surface with the
        reference, and the KD-tree searches are most of the cost of scoring."""
        out = np.zeros(len(other.indices))
        far = ~self.holds(other.indices)
        if far.any():
            out[far], _ = self.tree(spacing).query(other.points(spacing)[far], k=1)
        return out


def hd95(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...], surfaces: tuple[Surface | None, Surface | None] = (None, None)) -> float:
    """95th-percentile Hausdorff distance in mm (``spacing`` in array axis order).

    The larger of the two directed 95th-percentile surface distances (prediction to reference,
    reference to prediction), as MONAI's ``compute_hausdorff_distance(percentile=95)`` and
    DeepMind's surface-distance compute it. Surfaces are extracted on bounding boxes only, and
    nearest surface points are found with a KD-tree rather than a dense distance transform: the
    same distances, at a fraction of the cost on full CT grids. ``surfaces``: the prediction's
    and the reference's, where already made. Empty masks: see the module docstring.
    """
    pred, ref = _check(pred, ref)
    if len(spacing) != pred.ndim:
        raise MetricError(f"spacing {spacing} does not match a {pred.ndim}D mask")
    has_p, has_r = pred.any(), ref.any()
    if not has_p and not has_r:
        return 0.0
    if not has_p or not has_r:
        return grid_diagonal(pred.shape, spacing)
    sp = surfaces[0] or Surface(pred)
    sr = surfaces[1] or Surface(ref)
    return max(float(np.percentile(sr.distances_from(sp, spacing), 95)), float(np.percentile(sp.distances_from(sr, spacing), 95)))


def grid_diagonal(shape: tuple[int, ...], spacing: tuple[float, ...]) -> float:
    """Length in mm of the diagonal of a voxel grid: the HD95 given when one mask is empty."""
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing))))


@dataclass
class OrganScore:
    case: str
    organ: str
    dice: float
    precision: float
    recall: float
    hd95: float
    hd95_empty: bool
    voxels_pred: int
    voxels_ref: int
    hd95_voxels: float = math.nan  # HD95 on a unit grid, as the paper's code measured it

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def score(
    pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...], case: str = "", organ: str = "", reference: Surface | None = None,
) -> OrganScore:
    """All metrics for one organ of one case, from a single pass over the voxel counts.
    ``reference``: the surface of ``ref``, where the caller scores several predictions against it."""
    pred, ref = _check(pred, ref)
    tp, fp, fn = confusion(pred, ref)
    empty_one = (tp + fp == 0) != (tp + fn == 0)
    # both HD95s (mm and voxels) read one surface of each mask
    both = bool(tp + fp and tp + fn)
    surfaces = (Surface(pred), reference or Surface(ref)) if both else (None, None)
    if tp + fp + fn == 0:
        d = p = r = 1.0
    else:
        d = 2 * tp / (2 * tp + fp + fn)
        p = tp / (tp + fp) if tp + fp else math.nan
        r = tp / (tp + fn) if tp + fn else math.nan
    return OrganScore(
        case=case,
        organ=organ,
        dice=d,
        precision=p,
        recall=r,
        hd95=hd95(pred, ref, spacing, surfaces),
        hd95_empty=empty_one,
        voxels_pred=tp + fp,
        voxels_ref=tp + fn,
        hd95_voxels=hd95(pred, ref, (1.0,) * pred.ndim, surfaces),
    )
