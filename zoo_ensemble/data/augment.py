"""The paper's augmentation: random rotation, grid distortion and elastic deformation (MONAI),
applied identically to a slice and its masks.

Randomness comes from a seed per sample (run seed, epoch, slice index), not from a stream
shared by workers, so a resumed run or a different number of data-loader workers draws the
same augmentations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..preprocess import AIR_HU


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and strengths. The transforms are the paper's (Section III-B), each with
    p = 0.5 and the rotation limit of 10 degrees as in the authors' code; the grid and elastic
    strengths are ours: the authors used albumentations (elastic alpha 30, sigma 6; grid
    distortion limit 0.3), which MONAI parameterises differently, and these milder values keep
    the thin organs intact on the coarse grids of the CPU presets."""

    rotate_degrees: float = 10.0
    rotate_p: float = 0.5
    grid_p: float = 0.5
    grid_cells: int = 5
    grid_limit: float = 0.03
    elastic_p: float = 0.5
    elastic_spacing: int = 24
    elastic_magnitude: tuple[float, float] = (1.0, 2.0)


class Augmenter:
    """Callable ``(image, mask, sample_seed) -> (image, mask)`` on ``(1, H, W)`` HU and ``(C, H, W)`` masks."""

    def __init__(self, config: AugmentConfig = AugmentConfig()):
        # MONAI is imported here, not at module import: it is slow to import and only training needs it.
        from monai.transforms import Compose, Rand2DElasticd, RandGridDistortiond, RandRotated

        keys = ("image", "mask")
        modes = ("bilinear", "nearest")
        self.transform = Compose(
            [
                RandRotated(keys, range_x=math.radians(config.rotate_degrees), prob=config.rotate_p, mode=modes, padding_mode="zeros"),
                RandGridDistortiond(keys, num_cells=config.grid_cells, prob=config.grid_p, distort_limit=config.grid_limit, mode=modes, padding_mode="zeros"),
                Rand2DElasticd(
                    keys,
                    spacing=(config.elastic_spacing, config.elastic_spacing),
                    magnitude_range=config.elastic_magnitude,
                    prob=config.elastic_p,
                    mode=modes,
                    padding_mode="zeros",
                ),
            ]
        )

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, sample_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        from monai.data import get_track_meta, set_track_meta

        self.transform.set_random_state(seed=int(sample_seed) % (2**32))
        # MONAI's metadata tracking halves the speed and nothing here reads the metadata;
        # the switch is global, so it is restored after the call.
        tracking = get_track_meta()
        set_track_meta(False)
        try:
            # Shift HU so that air is 0: the transforms pad with zeros, which must mean air, not water.
            out = self.transform({"image": image - AIR_HU, "mask": mask})
        finally:
            set_track_meta(tracking)
        img = torch.as_tensor(np.asarray(out["image"]), dtype=torch.float32) + AIR_HU
        msk = torch.as_tensor(np.asarray(out["mask"]), dtype=torch.float32).round_()
        return img, msk
