"""2D axial slice datasets for training, cached so that epochs never re-read volumes.

Each case is read once, cropped/padded in-plane to the training size, and kept as int16 HU
slices plus one uint8 mask per requested organ and a per-organ "annotated" flag (partial
labels: an organ a dataset does not annotate is masked out of the loss, not treated as
background). With ``cache_dir`` the prepared arrays are also stored on disk (``.npz``, written
atomically, keyed by the files' size and mtime and the preparation settings) for later runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import Sampler

from ..atomic import atomic_path
from ..errors import DatasetError
from ..input_range import ScanGrid
from ..organs import get_organ
from ..preprocess import AIR_HU, ResampleInPlane, centre_box, crop_or_pad
from .dataset import Case, Dataset

CACHE_VERSION = 2


@dataclass
class CaseSlices:
    """One case, prepared: ``image`` (Z, H, W) int16 HU (or, for a combiner trained on its
    members' outputs, those outputs ``(Z, K, H, W)`` float16), ``masks`` (Z, C, H, W) uint8."""

    dataset: str
    case_id: str
    image: np.ndarray
    masks: np.ndarray
    annotated: np.ndarray  # (C,) bool
    spacing: tuple[float, float, float]  # (x, y, z) after any resampling
    grid: ScanGrid | None = None  # the scan's own grid, before resampling


def _fingerprint(dataset: Dataset, case: Case, organs: Sequence[str], size: tuple[int, int], spacing: tuple[float, float] | None) -> str:
    parts: dict[str, object] = {
        "v": CACHE_VERSION,
        "dataset": dataset.name,
        "case": case.case_id,
        "organs": list(organs),
        "annotated": [dataset.annotates(o) for o in organs],
        "map": dataset.label_map.as_dict(),
        "size": list(size),
        "spacing": list(spacing) if spacing else None,
    }
    for key, path in (("image", case.image), ("labels", case.labels)):
        if path is not None:
            st = os.stat(path)
            parts[key] = [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def prepare_case(
    dataset: Dataset,
    case: Case,
    organs: Sequence[str],
    size: tuple[int, int],
    spacing: tuple[float, float] | None = None,
) -> CaseSlices:
    """Read one case and make its training slices (optionally resampled to ``spacing`` (x, y) mm)."""
    if case.labels is None:
        raise DatasetError(f"case {case.case_id!r} of {dataset.name!r} has no label map")
    volume, found = dataset.load(case, list(organs))
    image = torch.from_numpy(volume.array.astype(np.float32))[:, None]
    masks = torch.zeros((image.shape[0], len(organs), *image.shape[-2:]), dtype=torch.float32)
    for c, organ in enumerate(organs):
        if organ in found:
            masks[:, c] = torch.from_numpy(found[organ])
    sx, sy, sz = volume.spacing
    grid = ScanGrid.of(volume.shape, volume.spacing)
    if spacing is not None:
        image = ResampleInPlane((spacing[1], spacing[0]))(image, (sy, sx))
        masks = ResampleInPlane((spacing[1], spacing[0]), mode="nearest")(masks, (sy, sx))
        sx, sy = spacing
    box = centre_box(*image.shape[-2:], size)
    image = crop_or_pad(image, box, AIR_HU)[:, 0]
    masks = crop_or_pad(masks, box, 0.0)
    return CaseSlices(
        dataset=dataset.name,
        case_id=case.case_id,
        image=image.round().to(torch.int16).numpy(),
        masks=masks.to(torch.uint8).numpy(),
        annotated=np.array([dataset.annotates(o) for o in organs], dtype=bool),
        spacing=(sx, sy, sz),
        grid=grid,
    )


def load_cases(
    dataset: Dataset,
    cases: Sequence[Case],
    organs: Sequence[str],
    size: tuple[int, int] | int,
    spacing: tuple[float, float] | None = None,
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[CaseSlices]:
    """Prepare many cases, reusing (and filling) the on-disk cache when ``cache_dir`` is given."""
    for organ in organs:
        get_organ(organ)
    size = (size, size) if isinstance(size, int) else tuple(size)
    out = []
    for i, case in enumerate(cases):
        out.append(_cached(dataset, case, organs, size, spacing, cache_dir))
        if progress:
            progress(i + 1, len(cases))
    return out


def _cached(dataset: Dataset, case: Case, organs: Sequence[str], size: tuple[int, int], spacing: tuple[float, float] | None, cache_dir: str | Path | None) -> CaseSlices:
    if cache_dir is None:
        return prepare_case(dataset, case, organs, size, spacing)
    path = Path(cache_dir) / f"{_fingerprint(dataset, case, organs, size, spacing)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                g = z["grid"].tolist()
                grid = ScanGrid((g[0], g[1]), g[2], g[3])
                return CaseSlices(dataset.name, case.case_id, z["image"], z["masks"], z["annotated"], tuple(z["spacing"].tolist()), grid)
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a damaged cache entry is rebuilt, never trusted
    prepared = prepare_case(dataset, case, organs, size, spacing)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            g = prepared.grid
            assert g is not None
            grid = np.array([g.spacing[0], g.spacing[1], g.thickness, g.fov])
            np.savez(fh, image=prepared.image, masks=prepared.masks, annotated=prepared.annotated, spacing=np.array(prepared.spacing), grid=grid)
    return prepared


class SliceDataset(TorchDataset):
    """All slices of prepared cases; item ``i`` is a dict of ``image`` (1, H, W) HU float32,
    ``mask`` (C, H, W) float32, ``annotated`` (C,) bool, the case id, the slice's index in its
    case and ``index`` (``i``, which seeds its augmentation: data/augment.py). Items do not
    change between epochs, so data-loader workers can live across epochs."""

    def __init__(self, cases: Sequence[CaseSlices]):
        if not cases:
            raise DatasetError("no cases to make slices from")
        channels = {c.masks.shape[1] for c in cases}
        if len(channels) != 1:
            raise DatasetError("cases were prepared for different organ lists")
        self.cases = list(cases)
        self.index = np.concatenate(
            [np.stack([np.full(c.image.shape[0], k), np.arange(c.image.shape[0])], axis=1) for k, c in enumerate(self.cases)]
        )

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, object]:
        k, z = (int(v) for v in self.index[i])
        case = self.cases[k]
        image = np.asarray(case.image[z], dtype=np.float32)  # (H, W) HU, or (C, H, W) member outputs
        return {
            "image": torch.from_numpy(image if image.ndim == 3 else image[None]),
            "mask": torch.from_numpy(case.masks[z].astype(np.float32)),
            "annotated": torch.from_numpy(case.annotated.copy()),
            "case": f"{case.dataset}/{case.case_id}",
            "slice": z,
            "index": int(i),
        }


def slice_weights(cases: Sequence[CaseSlices], organs: Sequence[str], small_boost: float = 3.0, empty_weight: float = 0.3) -> np.ndarray:
    """Sampling weight per slice: slices with a small organ (trachea, esophagus, spinal cord)
    are ``small_boost`` times likelier, slices with no annotated organ ``empty_weight`` times."""
    small = np.array([get_organ(o).small for o in organs], dtype=bool)
    out = []
    for c in cases:
        present = c.masks.reshape(c.masks.shape[0], c.masks.shape[1], -1).any(axis=2) & c.annotated[None]
        w = np.ones(c.masks.shape[0], dtype=np.float64)
        w[~present.any(axis=1)] = empty_weight
        w[(present & small[None]).any(axis=1)] *= small_boost
        out.append(w)
    return np.concatenate(out)


class EpochSampler(Sampler[int]):
    """Weighted sampling with replacement, reproducible per (seed, epoch): a resumed run draws
    exactly the slices the uninterrupted run would have drawn. With ``world_size`` > 1 every
    process draws the same sequence and keeps every ``world_size``-th index from ``rank`` on,
    as data-parallel training needs."""

    def __init__(self, weights: np.ndarray, num_samples: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        self.num_samples = int(num_samples)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(range(self.rank, self.num_samples, self.world_size))

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        drawn = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g).tolist()
        yield from drawn[self.rank :: self.world_size]
