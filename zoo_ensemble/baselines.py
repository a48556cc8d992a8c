"""Classical, non-learned segmentations: a reference point for learned models and the demo.

Lungs by thresholding are the textbook first step of chest CT analysis; no library in our
dependencies offers them, hence this short implementation.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .io import Volume


def body_mask(volume: Volume, threshold: float = -500.0) -> np.ndarray:
    """The patient's body: the largest connected region denser than ``threshold``, holes filled per slice."""
    dense = volume.array > threshold
    labels, n = ndimage.label(dense)
    if n == 0:
        return dense
    sizes = ndimage.sum_labels(dense, labels, index=np.arange(1, n + 1))
    body = labels == (int(np.argmax(sizes)) + 1)
    return np.stack([ndimage.binary_fill_holes(s) for s in body])


def threshold_lungs(volume: Volume, threshold: float = -400.0, min_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """Left and right lung masks: air inside the body, the two largest 3D components.

    When both lungs form one component (joined through the airways) it is split at the
    midline. The canonical orientation puts the patient's left at larger x.
    """
    air = (volume.array < threshold) & body_mask(volume)
    air = ndimage.binary_opening(air, structure=np.ones((1, 3, 3), dtype=bool))
    labels, n = ndimage.label(air)
    empty = np.zeros_like(air)
    if n == 0:
        return {"lung_left": empty, "lung_right": empty.copy()}
    sizes = ndimage.sum_labels(air, labels, index=np.arange(1, n + 1))
    order = np.argsort(sizes)[::-1]
    keep = [i + 1 for i in order[:2] if sizes[i] >= min_fraction * sizes[order[0]]]
    x_mid = air.shape[2] / 2
    if len(keep) == 1:
        lung = labels == keep[0]
        xs = np.arange(air.shape[2])[None, None, :]
        return {"lung_left": lung & (xs >= x_mid), "lung_right": lung & (xs < x_mid)}
    a, b = (labels == k for k in keep)
    if np.nonzero(a)[2].mean() < np.nonzero(b)[2].mean():
        a, b = b, a
    return {"lung_left": a, "lung_right": b}
