"""Pictures of an experiment: mean scores with error bars (and the paper's value beside them),
per-organ Dice box plots, and one test patient's slices with every method's outline.
Matplotlib with the Agg backend: files only, no display needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..atomic import atomic_path

#: One colour per organ, shared by every figure (tab10 is readable for colour-blind viewers).
_PALETTE = plt.get_cmap("tab10").colors


def organ_colour(organ: str, organs: Sequence[str]) -> tuple[float, float, float]:
    return _PALETTE[list(organs).index(organ) % len(_PALETTE)]


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def scores_figure(path: Path, title: str, rows: Sequence[tuple[str, Mapping[str, Any]]], paper: Mapping[str, Sequence[float]]) -> Path:
    """Bars of mean Dice and HD95 in voxels (± std over test patients); diamonds mark the paper's
    means (its HD95 values are in voxels: the authors' code passed no spacing)."""
    fig, axes = plt.subplots(1, 2, figsize=(2.2 + 1.3 * len(rows), 3.4))
    names = [n for n, _ in rows]
    x = np.arange(len(rows))
    for ax, metric, label, col in ((axes[0], "dice", "Dice", 0), (axes[1], "hd95_voxels", "HD95 (voxels)", 3)):
        means = [r["mean"][metric]["mean"] for _, r in rows]
        stds = [r["mean"][metric]["std"] for _, r in rows]
        ax.bar(x, means, yerr=stds, capsize=4, color="#7aa6c2", edgecolor="#2f5d7c", label="this run")
        px = [i for i, n in enumerate(names) if n in paper]
        if px:
            ax.scatter(px, [paper[names[i]][col] for i in px], marker="D", color="black", zorder=3, label="paper")
        ax.set_xticks(x, names, rotation=20, ha="right")
        ax.set_ylabel(label)
        if metric == "dice":
            ax.set_ylim(0, 1.05)
        else:
            ax.set_yscale("log")  # the paper's ~2 voxels and a missed organ's grid diagonal on one axis
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def organ_boxes(path: Path, title: str, rows: Sequence[tuple[str, Mapping[str, Any]]], organs: Sequence[str]) -> Path:
    """Per-organ Dice over test patients: one box per method, grouped by organ."""
    fig, ax = plt.subplots(figsize=(1.2 + 1.25 * len(organs) * max(1, len(rows)) / 3, 3.6))
    width = 0.8 / max(len(rows), 1)
    cmap = plt.get_cmap("Set2")
    for j, (name, report) in enumerate(rows):
        data, pos = [], []
        for i, organ in enumerate(organs):
            vals = [c["dice"] for c in report["cases"] if c["organ"] == organ]
            if vals:
                data.append(vals)
                pos.append(i - 0.4 + width * (j + 0.5))
        if data:
            bp = ax.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, manage_ticks=False)
            for box in bp["boxes"]:
                box.set_facecolor(cmap(j % 8))
            ax.plot([], [], color=cmap(j % 8), linewidth=8, label=name)
    ax.set_xticks(range(len(organs)), [o.replace("_", " ") for o in organs], rotation=15)
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1.02)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(len(rows), 4), loc="lower left")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _ct_gray(ct: np.ndarray) -> np.ndarray:
    """A soft-tissue-and-lung display window (W 1500, L -400) for the background."""
    return np.clip((ct.astype(np.float32) + 1150.0) / 1500.0, 0.0, 1.0)


def _outline(ax: Any, mask: np.ndarray, colour: Any) -> None:
    if mask.any():
        ax.contour(mask.astype(np.float32), levels=[0.5], colors=[colour], linewidths=1.0)


def overlay_figure(path: Path, title: str, reference: Mapping[str, np.ndarray], predictions: Sequence[tuple[str, Mapping[str, np.ndarray]]]) -> Path:
    """Rows: the overlay case's slices; columns: reference, then each method's prediction."""
    organs = [str(o) for o in reference["organs"]]
    slices = list(reference["slices"])
    spacing = reference["spacing"]
    aspect = float(spacing[1] / spacing[2])
    cols = 1 + len(predictions)
    fig, axes = plt.subplots(len(slices), cols, figsize=(2.1 * cols, 2.2 * len(slices) + 0.4), squeeze=False)
    for r in range(len(slices)):
        panels = [("reference", {o: reference["ref"][i][r] for i, o in enumerate(organs)})]
        for name, pred in predictions:
            pred_organs = [str(o) for o in pred["organs"]]
            panels.append((name, {o: pred["labels"][r] == pred_organs.index(o) + 1 for o in organs if o in pred_organs}))
        for c, (name, masks) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(_ct_gray(reference["ct"][r]), cmap="gray", aspect=aspect, interpolation="nearest")
            for organ, mask in masks.items():
                _outline(ax, mask, organ_colour(organ, organs))
            ax.set_axis_off()
            if r == 0:
                ax.set_title(name, fontsize=8)
    handles = [plt.Line2D([], [], color=organ_colour(o, organs), label=o) for o in organs]
    fig.legend(handles=handles, loc="lower center", ncol=len(organs), fontsize=7, frameon=False)
    fig.suptitle(f"{title}: test patient {reference['case']}, slices {', '.join(str(int(s)) for s in slices)}", fontsize=9)
    fig.subplots_adjust(bottom=0.08, wspace=0.02, hspace=0.05)
    return _save(fig, path)
