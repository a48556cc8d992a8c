"""A PNG of a few axial slices of a CT with organ contours, to see what data look like."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..volumes import Volume
from ..organs import Window

ORGAN_COLOURS = {
    "lung_left": "#1f77b4",
    "lung_right": "#17becf",
    "heart": "#d62728",
    "esophagus": "#2ca02c",
    "trachea": "#ff7f0e",
    "spinal_cord": "#e377c2",
    "aorta": "#9467bd",
}


def pick_slices(masks: Mapping[str, np.ndarray], n_z: int, count: int) -> list[int]:
    """Evenly spread slices over the labelled height (the whole volume when nothing is labelled)."""
    labelled = np.zeros(n_z, dtype=bool)
    for m in masks.values():
        labelled |= m.reshape(n_z, -1).any(axis=1)
    zs = np.nonzero(labelled)[0]
    lo, hi = (zs[0], zs[-1]) if zs.size else (0, n_z - 1)
    picks = np.linspace(lo, hi, count + 2)[1:-1] if hi > lo else np.full(count, lo)
    return sorted({int(round(p)) for p in picks})


def render_preview(
    volume: Volume,
    masks: Mapping[str, np.ndarray],
    out: str | Path,
    slices: int = 4,
    window: Window = Window(1600, -300),
    title: str | None = None,
) -> Path:
    """Write a PNG with ``slices`` axial slices, the CT in ``window`` and each organ's contour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    zs = pick_slices(masks, volume.shape[0], slices)
    sx, sy, sz = volume.spacing
    fig, axes = plt.subplots(1, len(zs), figsize=(3.2 * len(zs), 3.6), squeeze=False)
    for ax, k in zip(axes[0], zs):
        ax.imshow(volume.array[k], cmap="gray", vmin=window.low, vmax=window.high, aspect=sy / sx, interpolation="bilinear")
        for organ, m in masks.items():
            if m[k].any():
                ax.contour(m[k].astype(np.float32), levels=[0.5], colors=ORGAN_COLOURS.get(organ, "yellow"), linewidths=1.0)
        ax.set_title(f"slice {k} (z {k * sz:.0f} mm)", fontsize=9)
        ax.axis("off")
    present = [o for o in masks if masks[o].any()]
    handles = [Patch(color=ORGAN_COLOURS.get(o, "yellow"), label=o) for o in present]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 7), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07 if handles else 0, 1, 0.95 if title else 1))
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(out)
