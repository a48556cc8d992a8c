"""An imported nnU-Net v2 model as a zoo member: built from its plans by nnU-Net's own code,
weights from safetensors, predicted by nnU-Net's own predictor (sliding window, Gaussian
weighting, mirroring, resampling back to the input grid), its class probabilities turned into
per-organ logits on the CT's grid.

nnU-Net (``nnunetv2``, ``dynamic-network-architectures``) is the optional extra
``zoo-ensemble[nnunet]``; it is imported only when such a member is built.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

from ...architectures.volume import VolumeNetwork, log_odds
from ...errors import ZooError
from ...volumes import CANONICAL
from . import plans as checks

log = logging.getLogger("zoo_ensemble")

EXTRA = "zoo-ensemble[nnunet]"


class NnUNetMissing(ZooError):
    """nnU-Net is not installed."""


def nnunet() -> Any:
    """The ``nnunetv2`` package, or a one-line error naming the extra that brings it."""
    try:
        with warnings.catch_warnings():  # torch.jit deprecations raised by its imports, not ours to fix
            warnings.simplefilter("ignore", FutureWarning)
            import dynamic_network_architectures  # noqa: F401
            import nnunetv2
    except ImportError:
        raise NnUNetMissing(f"this model runs on nnU-Net v2, which is not installed: pip install '{EXTRA}'") from None
    return nnunetv2


def build_network(architecture: dict[str, Any], classes: int) -> nn.Module:
    """One fold's network, as nnU-Net builds it from the plans' (checked) architecture, without
    deep supervision."""
    nnunet()
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    a = architecture
    return get_network_from_plans(
        a["network_class_name"], a["arch_kwargs"], a.get("_kw_requires_import", []), 1, classes, allow_init=False, deep_supervision=False,
    )


class NnUNetMember(VolumeNetwork):
    """Every fold's network (``folds.N``), predicted together as nnU-Net averages folds."""

    def __init__(self, config: dict[str, Any]):
        architecture = checks.check_config(config)["architecture"]
        super().__init__(config["organs"])
        self.config = config
        classes = len(config["dataset"]["labels"])
        self.folds = nn.ModuleList(build_network(architecture, classes) for _ in config["folds"])
        self._predictor: Any = None

    def _nnunet_predictor(self) -> Any:
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        device = next(self.parameters()).device
        if self._predictor is not None and self._predictor.device == device:
            return self._predictor
        plans = PlansManager(self.config["plans"])
        dataset = self.config["dataset"]
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a notice for every CPU predictor
            predictor = nnUNetPredictor(
                tile_step_size=0.5, use_gaussian=True, use_mirroring=bool(self.config.get("mirroring", True)),
                perform_everything_on_device=device.type == "cuda", device=device, verbose=False, allow_tqdm=False,
            )
        # nnU-Net loads each fold's weights into one network in turn: it gets a copy, so that
        # the folds held here (what save_pretrained writes) never change
        work = copy.deepcopy(self.folds[0]).eval()
        axes = self.config.get("mirroring_axes")
        predictor.manual_initialization(
            work, plans, plans.get_configuration(self.config["configuration"]), [f.state_dict() for f in self.folds], dataset,
            self.config.get("trainer", "nnUNetTrainer"), tuple(axes) if axes is not None else None,
        )
        self._predictor = predictor
        return predictor

    def class_probabilities(self, hu: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
        """nnU-Net's ``(classes, Z, Y, X)`` probabilities of ``hu`` read as nnU-Net reads a file:
        the array in the file's axis order, spacing ``(z, y, x)``."""
        predictor = self._nnunet_predictor()
        with torch.inference_mode():
            _, probs = predictor.predict_single_npy_array(
                np.ascontiguousarray(hu, dtype=np.float32)[None], {"spacing": [float(s) for s in spacing_zyx]}, None, None, True,
            )
        return np.asarray(probs, dtype=np.float32)

    def predict_volume(self, hu: np.ndarray, spacing_zyx: tuple[float, float, float], source: Any = None) -> np.ndarray:
        # A whole CT reaches nnU-Net as its reader would read the file (SimpleITKIO, NibabelIO:
        # as stored; NibabelIOWithReorient: RAS), prepared slices (held in the canonical LPS)
        # likewise reoriented; the logits come back in the canonical orientation.
        image = source.to_sitk() if source is not None else _image(hu, spacing_zyx)
        orientation = checks.READERS[self.config["plans"].get("image_reader_writer", "SimpleITKIO")]
        seen = sitk.DICOMOrient(image, orientation) if orientation else image
        probs = self.class_probabilities(sitk.GetArrayFromImage(seen), tuple(reversed(seen.GetSpacing())))
        logits = log_odds(np.stack([probs[values].sum(axis=0) for values in self.config["organ_labels"].values()]))
        if source is None and orientation is None:
            return logits  # already canonical
        return np.stack([_canonical(channel, seen) for channel in logits])


def _image(hu: np.ndarray, spacing_zyx: tuple[float, float, float]) -> sitk.Image:
    """Canonical ``(Z, Y, X)`` HU as an image (identity direction: LPS)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(hu, dtype=np.float32))
    image.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx)))
    return image


def _canonical(array: np.ndarray, like: sitk.Image) -> np.ndarray:
    """``array`` on ``like``'s grid, in the zoo's canonical orientation."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.CopyInformation(like)
    return sitk.GetArrayFromImage(sitk.DICOMOrient(image, CANONICAL))
