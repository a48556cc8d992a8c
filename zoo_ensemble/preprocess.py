"""Preprocessing as torch modules: windowing, centre crop/pad, in-plane resampling.

Models own their preprocessing: each applies its own :class:`WindowLayer` inside ``forward``,
so one raw-HU batch can feed members trained with different windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .organs import Window

AIR_HU = -1024.0


class WindowLayer(nn.Module):
    """Map HU in ``[level - width/2, level + width/2]`` linearly onto ``[0, 1]``, clamping outside.

    Level and width are buffers, so they travel with the weights and a loaded model cannot drift
    from the window it was trained with.
    """

    def __init__(self, width: float, level: float):
        super().__init__()
        if not width > 0:
            raise ValueError(f"window width must be > 0, got {width}")
        self.register_buffer("level", torch.tensor(float(level)))
        self.register_buffer("width", torch.tensor(float(width)))

    @classmethod
    def of(cls, window: Window) -> WindowLayer:
        return cls(window.width, window.level)

    @property
    def window(self) -> Window:
        return Window(float(self.width), float(self.level))

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        low = self.level - self.width / 2
        return ((hu - low) / self.width).clamp_(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"width={float(self.width):g}, level={float(self.level):g}"


@dataclass(frozen=True)
class CropBox:
    """Where a crop of ``size`` sits in an ``(h, w)`` slice; negative offsets mean padding."""

    top: int
    left: int
    size: tuple[int, int]
    source: tuple[int, int]


def centre_box(h: int, w: int, size: tuple[int, int]) -> CropBox:
    """The centred crop (or pad) window of ``size`` in an ``h x w`` slice."""
    return CropBox((h - size[0]) // 2, (w - size[1]) // 2, size, (h, w))


def _spans(offset: int, length: int, size: int) -> tuple[slice, slice]:
    """Source and destination slices along one axis for a window at ``offset``."""
    src0, src1 = max(offset, 0), min(offset + size, length)
    return slice(src0, max(src1, src0)), slice(src0 - offset, src0 - offset + max(src1 - src0, 0))


def crop_or_pad(x: torch.Tensor, box: CropBox, fill: float) -> torch.Tensor:
    """Cut ``box`` out of the last two axes of ``x``, filling outside the slice with ``fill``."""
    h, w = x.shape[-2:]
    if (h, w) != box.source:
        raise ValueError(f"slice is {h}x{w}, box was made for {box.source}")
    if box.top >= 0 and box.left >= 0 and box.top + box.size[0] <= h and box.left + box.size[1] <= w:
        return x[..., box.top : box.top + box.size[0], box.left : box.left + box.size[1]]
    out = x.new_full((*x.shape[:-2], *box.size), fill)
    sy, dy = _spans(box.top, h, box.size[0])
    sx, dx = _spans(box.left, w, box.size[1])
    out[..., dy, dx] = x[..., sy, sx]
    return out


def paste_back(y: torch.Tensor, box: CropBox, fill: float) -> torch.Tensor:
    """Inverse of :func:`crop_or_pad`: put a crop back into a slice of the source size."""
    h, w = box.source
    out = y.new_full((*y.shape[:-2], h, w), fill)
    sy, dy = _spans(box.top, h, box.size[0])
    sx, dx = _spans(box.left, w, box.size[1])
    out[..., sy, sx] = y[..., dy, dx]
    return out


def model_window(length: int, spacing: float, model_spacing: float, size: int) -> slice:
    """The centred part of an axis of ``length`` pixels at ``spacing`` mm that a centre-cropping
    model of ``size`` pixels at ``model_spacing`` mm sees, with the interpolation's margin.

    Prediction cuts this out before resampling, so that what it allocates is set by the
    model's field of view, not by the field of view an input's header claims (512 pixels said
    to be 10 mm each are 2.3 thousand pixels at 2.2 mm before a crop to 160). The window has the
    length's parity, so its centre is the axis' centre and the crop that follows the
    resampling falls where it would fall on the whole slice."""
    support = math.ceil(max(1.0, model_spacing / spacing)) + 1  # an antialiased shrink reads this far
    want = math.ceil(size * model_spacing / spacing) + 2 * support
    if want >= length:
        return slice(0, length)
    want += (length - want) % 2
    # of a few window lengths, the one whose resampled length is closest to a whole number of
    # pixels: the model then sees its own spacing, not one a rounding stretched
    ratio = spacing / model_spacing
    choices = range(want, min(length, want + 2 * _WINDOW_CHOICES) + 1, 2)
    want = min(choices, key=lambda n: abs(n * ratio - math.floor(n * ratio + 0.5)))
    start = (length - want) // 2
    return slice(start, start + want)


#: How many window lengths :func:`model_window` tries.
_WINDOW_CHOICES = 8


class CenterCropPad(nn.Module):
    """Centre crop or pad the last two axes to ``size`` (the paper: 320 x 320 at native resolution)."""

    def __init__(self, size: tuple[int, int] | int, fill: float = AIR_HU):
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.fill = fill

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return crop_or_pad(x, centre_box(h, w, self.size), self.fill)


class ResampleInPlane(nn.Module):
    """Resample slices from one in-plane spacing to another (bilinear for images, nearest for masks)."""

    def __init__(self, target_spacing: tuple[float, float], mode: str = "bilinear"):
        super().__init__()
        self.target = tuple(float(s) for s in target_spacing)
        self.mode = mode

    def output_size(self, hw: tuple[int, int], spacing: tuple[float, float]) -> tuple[int, int]:
        return (
            max(1, int(math.floor(hw[0] * spacing[0] / self.target[0] + 0.5))),
            max(1, int(math.floor(hw[1] * spacing[1] / self.target[1] + 0.5))),
        )

    def forward(self, x: torch.Tensor, spacing: tuple[float, float]) -> torch.Tensor:
        """``x`` is ``(B, C, H, W)``; ``spacing`` is the (row, column) spacing of ``x`` in mm."""
        return resize(x, self.output_size(tuple(x.shape[-2:]), spacing), self.mode)


def resize(x: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize the last two axes of ``(B, C, H, W)`` to ``size``, pixel centres mapped as ITK does
    (``align_corners=False``). Shrinking an image averages (antialias), so a 0.7 mm scan brought
    to 2 mm has the noise of a 2 mm scan, not the aliased noise of every third pixel; masks
    take the nearest pixel."""
    size = (int(size[0]), int(size[1]))
    if size == tuple(x.shape[-2:]):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest-exact")
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=shrink and mode in ("bilinear", "bicubic"))
