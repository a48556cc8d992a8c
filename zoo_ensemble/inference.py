"""Whole-volume prediction: slices in batches, crop/pad and paste back, one label map.

Memory stays bounded: the CT (int16), the label map (uint8) and, only when asked for, one
float32 probability volume per output channel; everything else lives one batch of slices at a
time. One interface serves binary, multiclass and ensemble models: anything that maps raw HU
slices to per-organ logits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from .architectures.volume import ABSENT_LOGIT, VolumeNetwork, volume_networks
from .ensembles.shared import volume_output
from .input_range import InputRange, ScanGrid
from .volumes import Volume
from .preprocess import AIR_HU, ResampleInPlane, centre_box, crop_or_pad, model_window, paste_back, resize

log = logging.getLogger("zoo_ensemble")


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 3D connected component (face-connected) of a boolean mask."""
    components, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(np.argmax(sizes))


def keep_largest_components(labels: np.ndarray, organs: Sequence[str], which: Sequence[str]) -> np.ndarray:
    """In place: for each organ of ``which``, only its largest connected component keeps its
    label (``labels`` holds ``i + 1`` for ``organs[i]``)."""
    for organ in which:
        mask = labels == list(organs).index(organ) + 1
        labels[mask & ~keep_largest_component(mask)] = 0
    return labels


def labels_from_probabilities(probs: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, int]:
    """One label per pixel from multi-label probabilities ``(B, C, H, W)``, as uint8.

    0 (background) where no channel passes ``threshold``; otherwise ``1 + argmax`` over the
    channels that pass, i.e. the most confident organ. Also returns how many pixels were
    contested (more than one channel passed). Runs on the input's full grid, so it stays to a
    few passes over uint8 and bool data.
    """
    passing = probs > threshold
    label = passing[:, 0].to(torch.uint8)
    if probs.shape[1] == 1:
        return label, 0
    count = passing.sum(dim=1, dtype=torch.uint8)
    # argmax over the channels as a loop of elementwise passes, one per organ: torch's CPU argmax
    # over dim 1 (a strided reduction) was 85 % of a tiny ensemble's time on 512 x 512 slices.
    # Strictly greater keeps the first of equal channels, as argmax does.
    best = probs[:, 0].masked_fill(~passing[:, 0], -1.0)
    for c in range(1, probs.shape[1]):
        p = probs[:, c].masked_fill(~passing[:, c], -1.0)
        better = p > best
        best = torch.where(better, p, best)
        label.masked_fill_(better, c + 1)
    return label, int((count > 1).sum())


#: What one batch's full-size slices may take (input HU, probabilities, labels): a batch of a
#: huge slice shrinks to fewer slices rather than growing with the input.
BATCH_BYTES = 512 << 20

#: Tissue, the couch and anything solid lie above this; air (about -1000 HU) and noise below.
BODY_HU = -500


def body_slices(array: np.ndarray, body_hu: float = BODY_HU) -> np.ndarray:
    """Indices of the axial slices holding any voxel above ``body_hu`` (found once per volume,
    shared by every member of an ensemble, which runs inside one forward pass)."""
    flat = array.reshape(array.shape[0], -1)
    chunks = [(flat[z : z + 32] > body_hu).any(axis=1) for z in range(0, flat.shape[0], 32)]  # bounded memory
    return np.flatnonzero(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)


class ChannelSelect(nn.Module):
    """Only some output channels of a model (``--organs`` at prediction time)."""

    def __init__(self, model: nn.Module, channels: list[int]):
        super().__init__()
        self.model = model
        self.register_buffer("channels", torch.tensor(channels, dtype=torch.long), persistent=False)

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        return self.model(hu).index_select(1, self.channels)


@dataclass
class Prediction:
    labels: np.ndarray  # (Z, Y, X) uint8: 0 background, i + 1 for organs[i]
    organs: list[str]
    probabilities: dict[str, np.ndarray] | None = None  # organ -> (Z, Y, X) float32
    contested: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def masks(self) -> OrganMasks:
        return OrganMasks(self.labels, self.organs)


class OrganMasks(Mapping[str, np.ndarray]):
    """Each organ's boolean mask, computed from the label map when it is looked up: writing six
    organs of a 512 x 512 x 300 CT then holds one 79 MB mask at a time, not all six (470 MB).
    A caller that reads each mask several times should take ``dict(masks)``."""

    def __init__(self, labels: np.ndarray, organs: Sequence[str]):
        self._labels, self._organs = labels, list(organs)

    def __getitem__(self, organ: str) -> np.ndarray:
        if organ not in self._organs:
            raise KeyError(organ)
        return self._labels == self._organs.index(organ) + 1

    def __iter__(self) -> Iterator[str]:
        return iter(self._organs)

    def __len__(self) -> int:
        return len(self._organs)


@dataclass(frozen=True)
class InferenceConfig:
    """What running a model over a volume needs to know about it, as its card says, frozen.

    ``input_size`` and ``crop``: ``crop="center"`` centre-crops (or pads) every slice to
    ``input_size`` as in training and pastes the output back (outside the crop is background);
    ``crop="none"`` feeds whole slices. ``spacing`` (x, y mm), when the model records one,
    resamples slices in-plane before the model, and the probabilities back onto the input's grid
    after it, where the labels are decided; a model without one (an old or foreign card) runs on
    the input's own grid, and says so once. ``largest_component``: the organs of which only the
    largest connected component is kept. ``trained_on``: the range of grids the model was trained
    on; an input far outside it is named in one warning, and still predicted."""

    organs: tuple[str, ...]
    input_size: tuple[int, int] = (160, 160)
    crop: str = "center"
    spacing: tuple[float, float] | None = None
    threshold: float = 0.5
    largest_component: tuple[str, ...] = ()
    name: str = "the model"
    trained_on: InputRange | None = None

    def __post_init__(self) -> None:
        organs = tuple(self.organs)
        object.__setattr__(self, "organs", organs)
        object.__setattr__(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))
        object.__setattr__(self, "spacing", (float(self.spacing[0]), float(self.spacing[1])) if self.spacing else None)
        object.__setattr__(self, "largest_component", tuple(o for o in self.largest_component if o in organs))

    def only(self, organs: Sequence[str]) -> InferenceConfig:
        """The same model producing only ``organs`` (their post-processing kept)."""
        return replace(self, organs=tuple(organs), largest_component=self.largest_component)


class Predictor:
    """Run a model over a whole volume as its :class:`InferenceConfig` says, on ``device`` in
    ``precision`` (an autocast dtype, or None for fp32), ``batch_size`` slices at a time."""

    def __init__(
        self, model: nn.Module, config: InferenceConfig, device: str | torch.device = "cpu", precision: torch.dtype | None = None,
        batch_size: int = 16, channels_last: bool = True, skip_air: bool = True,
    ):
        self.model = model.eval()
        self.config = config
        self.batch_size = max(1, int(batch_size))
        self.device = torch.device(device)
        self._warned = False
        self.precision = precision
        # channels-last lets oneDNN (CPU) and cuDNN pick their fastest convolutions; the
        # weights are only re-laid out, not changed (not with a whole-volume member inside: a 3D
        # network's 5-D weights have no such layout)
        channels_last = channels_last and next(volume_networks(model), None) is None
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=self.memory_format)
        inner = model.model if isinstance(model, ChannelSelect) else model
        #: the model is one whole-volume member (an imported nnU-Net): it runs on the CT's own
        #: grid and sees every slice, as its framework would run it
        self.whole_volume = isinstance(inner, VolumeNetwork)
        self.skip_air = skip_air and not self.whole_volume

    @property
    def organs(self) -> list[str]:
        return list(self.config.organs)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.config.input_size

    @property
    def crop(self) -> str:
        return self.config.crop

    @property
    def spacing(self) -> tuple[float, float] | None:
        return self.config.spacing

    @property
    def threshold(self) -> float:
        return self.config.threshold

    @property
    def largest_component(self) -> list[str]:
        return list(self.config.largest_component)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def trained_on(self) -> InputRange | None:
        return self.config.trained_on

    def check_input(self, volume: Volume) -> str | None:
        """The one warning line about ``volume``'s grid for this model, logged the first time only."""
        grid = ScanGrid.of(volume.shape, volume.spacing)
        message = None
        if self.spacing is None and not self.whole_volume:
            message = (
                f"{self.name} records no pixel spacing; it runs on the input's own grid "
                f"({grid.spacing[0]:.3g} x {grid.spacing[1]:.3g} mm), which may not be the grid it was trained on"
            )
        elif self.trained_on is not None:
            far = self.trained_on.outside(grid)
            if far:
                message = f"{self.name}: input lies far outside its training scans: " + "; ".join(far) + "; predicting anyway"
        if message and not self._warned:
            self._warned = True
            log.warning(message)
        return message

    def _window(self, hw: tuple[int, int], volume_spacing: tuple[float, float]) -> tuple[slice, slice]:
        """The part of each slice the model sees (rows, columns), before any resampling."""
        if self.crop != "center" or self.spacing is None:
            return slice(0, hw[0]), slice(0, hw[1])
        return (
            model_window(hw[0], volume_spacing[1], self.spacing[1], self.input_size[0]),
            model_window(hw[1], volume_spacing[0], self.spacing[0], self.input_size[1]),
        )

    def slices_per_batch(self, hw: tuple[int, int], volume_spacing: tuple[float, float]) -> int:
        """``batch_size``, fewer where a batch's slices at full size (the input's, or what
        a model without a crop resamples them to) would pass :data:`BATCH_BYTES`."""
        rows, cols = self._window(hw, volume_spacing)
        fed = (rows.stop - rows.start, cols.stop - cols.start)
        if self.spacing is not None:
            fed = ResampleInPlane((self.spacing[1], self.spacing[0])).output_size(fed, (volume_spacing[1], volume_spacing[0]))
        per_slice = 4 * (len(self.organs) + 2) * max(hw[0] * hw[1], fed[0] * fed[1])
        return max(1, min(self.batch_size, BATCH_BYTES // per_slice))

    def _to_model_grid(self, x: torch.Tensor, volume_spacing: tuple[float, float], pad: float) -> tuple[torch.Tensor, object]:
        """Slices of the input grid (HU or a whole-volume member's logits) resampled to the
        model's spacing and cropped or padded to its input, as the model sees them."""
        if self.spacing is not None:
            x = ResampleInPlane((self.spacing[1], self.spacing[0]))(x, (volume_spacing[1], volume_spacing[0]))
        box = centre_box(*x.shape[-2:], self.input_size) if self.crop == "center" else None
        if box is not None:
            x = crop_or_pad(x, box, pad)
        return x, box

    def _forward_batch(
        self, hu: torch.Tensor, hw: tuple[int, int], window: tuple[slice, slice], volume_spacing: tuple[float, float],
        fed: Sequence[tuple[VolumeNetwork, torch.Tensor]] = (),
    ) -> torch.Tensor:
        """``(b, 1, h, w)`` HU of each slice's ``window`` -> ``(b, C, H, W)`` probabilities on
        the input slice grid ``hw``, on the model's device: on a GPU the resampling both ways
        and the labelling run there too, and only labels come back (full-grid probabilities of
        six organs are 200 MB a batch). ``fed``: whole-volume members with their logits of the
        same slices and window, given the same way to the model's grid."""
        h, w = hw
        rows, cols = window
        x = hu.to(self.device)
        seen = tuple(x.shape[-2:])
        x, box = self._to_model_grid(x, volume_spacing, AIR_HU)
        for member, logits in fed:
            member.feed(self._to_model_grid(logits.to(self.device), volume_spacing, ABSENT_LOGIT)[0])
        x = x.contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=self.precision or torch.float32, enabled=self.precision is not None):
            logits = self.model(x)
        logits = logits.float()
        probs = torch.sigmoid(logits)
        if box is not None:
            probs = paste_back(probs, box, 0.0)
        probs = resize(probs, seen)
        if seen == (h, w):
            return probs
        out = probs.new_zeros((*probs.shape[:2], h, w))
        out[..., rows, cols] = probs
        return out

    def _whole_volume_logits(self, volume: Volume) -> list[tuple[VolumeNetwork, np.ndarray]]:
        """Each whole-volume member's ``(C, Z, Y, X)`` logits of ``volume``, run once per CT (and
        once for all the ensembles evaluated together that hold it, ``ensembles.shared``)."""
        run = getattr(self.model, "members_run", None)  # an ensemble restricted to some organs runs only the members they need
        members = volume_networks(self.model) if run is None else (m for i in run for m in volume_networks(self.model.ensemble.members[i]))

        def predict(member: VolumeNetwork) -> np.ndarray:
            return member.predict_volume(volume.array.astype(np.float32), volume.spacing_zyx, volume)

        return [(m, volume_output(m, volume.array, lambda m=m: predict(m))) for m in members]

    @torch.inference_mode()
    def predict(self, volume: Volume, probabilities: bool = False, progress: Callable[[int, int], None] | None = None) -> Prediction:
        """Label every slice; slices without body (no voxel above ``BODY_HU``) are background
        without running the model, unless ``skip_air`` is off."""
        self.check_input(volume)
        z_count = volume.shape[0]
        labels = np.zeros(volume.shape, dtype=np.uint8)
        probs_out = {o: np.zeros(volume.shape, dtype=np.float32) for o in self.organs} if probabilities else None
        contested = 0
        todo = body_slices(volume.array) if self.skip_air else np.arange(z_count)
        hw, spacing = volume.shape[1:], (volume.spacing[0], volume.spacing[1])
        step, window = self.slices_per_batch(hw, spacing), self._window(hw, spacing)
        whole = self._whole_volume_logits(volume) if len(todo) else []
        for start in range(0, len(todo), step):
            zs = todo[start : start + step]
            hu = torch.from_numpy(volume.array[zs, window[0], window[1]].astype(np.float32))[:, None]
            fed = [(m, torch.from_numpy(np.ascontiguousarray(out[:, zs][:, :, window[0], window[1]].swapaxes(0, 1)))) for m, out in whole]
            probs = self._forward_batch(hu, hw, window, spacing, fed)
            lab, n = labels_from_probabilities(probs, self.threshold)
            labels[zs] = lab.cpu().numpy()
            contested += n
            if probs_out is not None:
                for c, organ in enumerate(self.organs):
                    probs_out[organ][zs] = probs[:, c].cpu().numpy()
            if progress and int(zs[-1]) + 1 < z_count:
                progress(int(zs[-1]) + 1, z_count)
        if progress:
            progress(z_count, z_count)
        keep_largest_components(labels, self.organs, self.largest_component)
        for member, _ in whole:
            member.feed(None)
        return Prediction(labels, self.organs, probs_out, contested, {"slices_run": int(len(todo))})
