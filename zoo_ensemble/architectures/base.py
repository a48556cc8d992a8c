"""What every zoo model is: raw HU in, its own window(s) inside, logits out.

``features(x)`` is the last feature map before the final 1 x 1 convolution (``head``), at full
input resolution: what layer fusion concatenates across members.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from ..errors import ModelFormatError
from ..input_range import check_field_of_view, parse_spacing
from ..registry import define
from ..specs import ArchitectureSpec
from .limits import ENCODERS, INT_LISTS, MAX_INPUT_SIZE, MAX_WINDOWS, check_int_list, check_name, check_window, is_int, is_number
from ..organs import Window, check_organ_list, default_window
from ..preprocess import WindowLayer

CONFIG_FORMAT = 1
PRIOR = 0.01


def register_architecture(name: str, presets: dict[str, dict[str, Any]], description: str = "") -> Callable[[Callable[[ModelConfig], SegmentationModel]], Callable[[ModelConfig], SegmentationModel]]:
    """Decorate an architecture family's ``build(config)`` to define it under ``name``."""

    def decorate(build: Callable[[ModelConfig], SegmentationModel]) -> Callable[[ModelConfig], SegmentationModel]:
        define("architectures", ArchitectureSpec(name, build, presets, description))
        return build

    return decorate


@dataclass
class ModelConfig:
    """Constructor arguments of a zoo model, stored as ``config.json``."""

    architecture: str
    organs: list[str]
    windows: list[Window]
    variant: str = "tiny"
    widths: list[int] = field(default_factory=list)
    encoder: str | None = None
    encoder_layers: list[int] = field(default_factory=list)
    decoder_widths: list[int] = field(default_factory=list)
    aspp_rates: list[int] = field(default_factory=list)
    output_stride: int = 8
    input_size: list[int] = field(default_factory=lambda: [160, 160])
    crop: str = "center"  # "center": centre crop/pad to input_size; "none": the whole slice
    spacing: list[float] | None = None  # in-plane (x, y) mm the model expects; None = native
    threshold: float = 0.5
    format: int = CONFIG_FORMAT

    @property
    def out_channels(self) -> int:
        return len(self.organs)

    @property
    def kind(self) -> str:
        return "binary" if len(self.organs) == 1 else "multiclass"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = [w.as_dict() for w in self.windows]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Parse and validate ``config.json``; a bad field is an error that names it."""
        if not isinstance(data, dict):
            raise ModelFormatError("config.json: expected a JSON object")
        known = {f.name for f in fields(cls)}
        for required in ("architecture", "organs", "windows"):
            if required not in data:
                raise ModelFormatError(f"config.json: missing field {required!r}")
        unknown = set(data) - known
        if unknown:
            raise ModelFormatError(f"config.json: unknown field(s) {', '.join(sorted(unknown))}")
        args = dict(data)
        windows = data["windows"]
        if not (isinstance(windows, list) and 0 < len(windows) <= MAX_WINDOWS):
            raise ModelFormatError(f"config.json: field 'windows' must list 1 to {MAX_WINDOWS} windows")
        args["windows"] = [Window(*check_window(w, f"config.json: field 'windows'[{i}]")) for i, w in enumerate(windows)]
        cfg = cls(**args)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Types and bounds of every field (a config is untrusted input); a bad one is named."""
        check_name("architecture", self.architecture)
        check_name("variant", self.variant)
        if not isinstance(self.organs, list):
            raise ModelFormatError("config.json: field 'organs' must be a list of organ names")
        check_organ_list(self.organs, "config.json: field 'organs'", ModelFormatError)
        if not self.windows:
            raise ModelFormatError("config.json: field 'windows' must name at least one window")
        for name in INT_LISTS:
            check_int_list(name, getattr(self, name))
        if self.encoder is not None:
            check_name("encoder", self.encoder, allowed=ENCODERS)
        if not (is_int(self.output_stride) and self.output_stride in (8, 16, 32)):
            raise ModelFormatError(f"config.json: field 'output_stride' must be 8, 16 or 32, got {self.output_stride!r}")
        if self.format != CONFIG_FORMAT:
            raise ModelFormatError(f"config.json: field 'format' must be {CONFIG_FORMAT}, got {self.format!r}")
        size = self.input_size
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= MAX_INPUT_SIZE for v in size)):
            raise ModelFormatError(f"config.json: field 'input_size' must be [height, width], whole numbers in [16, {MAX_INPUT_SIZE}], got {size!r}")
        if self.crop not in ("center", "none"):
            raise ModelFormatError(f"config.json: field 'crop' must be 'center' or 'none', got {self.crop!r}")
        if self.spacing is not None:
            self.spacing = list(parse_spacing(self.spacing, "config.json: field 'spacing'"))
            check_field_of_view(self.input_size, self.spacing, self.crop, "config.json")
        if not (is_number(self.threshold) and 0 < self.threshold < 1):
            raise ModelFormatError(f"config.json: field 'threshold' must be a number in (0, 1), got {self.threshold!r}")


def default_windows(organs: list[str]) -> list[Window]:
    """One window per distinct default window of the organs (a multiclass model stacks them)."""
    out: list[Window] = []
    for organ in organs:
        w = default_window(organ)
        if w not in out:
            out.append(w)
    return out


class WindowStack(nn.Module):
    """Raw HU ``(B, 1, H, W)`` -> one windowed channel per window ``(B, K, H, W)``."""

    def __init__(self, windows: list[Window]):
        super().__init__()
        self.layers = nn.ModuleList(WindowLayer.of(w) for w in windows)

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        if hu.ndim != 4 or hu.shape[1] != 1:
            raise ValueError(f"expected raw HU slices shaped (B, 1, H, W), got {tuple(hu.shape)}")
        return torch.cat([layer(hu) for layer in self.layers], dim=1)


class SegmentationModel(nn.Module):
    """Base of every zoo model: ``forward(hu) = head(features(hu))``."""

    def __init__(self, config: ModelConfig, feature_channels: int):
        super().__init__()
        self.config = config
        self.window = WindowStack(config.windows)
        self.feature_channels = feature_channels
        self.head = nn.Conv2d(feature_channels, config.out_channels, kernel_size=1)
        # Organs are small next to the background: start every pixel at a prior probability of
        # PRIOR (bias = its log-odds, as RetinaNet does) rather than 0.5. Otherwise Adam moves the
        # bias about lr per step, the soft Dice is swamped by background probability for
        # hundreds of steps, and short CPU runs learn little.
        nn.init.constant_(self.head.bias, math.log(PRIOR / (1 - PRIOR)))

    @property
    def organs(self) -> list[str]:
        return list(self.config.organs)

    @property
    def in_channels(self) -> int:
        return len(self.config.windows)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Windowed input ``(B, K, H, W)`` -> full-resolution features ``(B, F, H, W)``."""
        return self.finish(self.trunk(x), tuple(x.shape[-2:]))

    def trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Windowed input -> what :meth:`last_layer` reads: everything layer fusion leaves frozen,
        so that ensembles of the same member can compute it once. An architecture that does not
        split itself returns its input (and then computes everything in :meth:`finish`)."""
        return (x,)

    def finish(self, trunk: tuple[torch.Tensor, ...], size: tuple[int, int]) -> torch.Tensor:
        """:meth:`trunk`'s output -> the features at ``size``, through :meth:`last_layer`."""
        if type(self).decode is SegmentationModel.decode:
            raise NotImplementedError(f"{type(self).__name__}: implement decode, or trunk and finish")
        return self.decode(trunk[0])  # an architecture that only implements decode

    def trunk_of(self, hu: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.trunk(self.window(hu))

    def last_layer(self) -> nn.Module:
        """The block that produces ``features`` (what layer fusion keeps trainable)."""
        raise NotImplementedError

    def features(self, hu: torch.Tensor) -> torch.Tensor:
        return self.decode(self.window(hu))

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(hu))


class PointwiseConv(nn.Conv2d):
    """A 1 x 1 convolution whose one-channel case runs as the per-channel scale it is: oneDNN
    runs a one-channel 1 x 1 convolution at about 0.3 GFLOP/s (99 ms of the paper SE-ResUNet's
    1.8 s for 4 slices of 320 x 320). Same parameters as ``nn.Conv2d``, so weights load as before."""

    def __init__(self, cin: int, cout: int, bias: bool = False):
        super().__init__(cin, cout, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels != 1:
            return super().forward(x)
        y = x * self.weight.view(1, -1, 1, 1)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> nn.Sequential:
    pad = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def upsample_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return nn.functional.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)
