"""Keep only some output channels of a model (``--organs`` at predict time)."""

from __future__ import annotations

import torch
from torch import nn


class ChannelSelect(nn.Module):
    def __init__(self, model: nn.Module, channels: list[int]):
        super().__init__()
        self.model = model
        self.register_buffer("channels", torch.tensor(channels, dtype=torch.long), persistent=False)

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        return self.model(hu).index_select(1, self.channels)
