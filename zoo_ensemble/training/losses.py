"""Dice + binary cross-entropy, equally weighted (MONAI's Dice), masked by partial labels.

An organ a sample's dataset does not annotate contributes nothing: its logits are pushed to
"absent" and its target zeroed before the batch Dice, and it is left out of the cross-entropy
mean. Dice is computed over the whole batch per channel (as nnU-Net does), so slices without
the organ do not make the Dice term noisy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedDiceBCELoss(nn.Module):
    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0):
        super().__init__()
        from monai.losses import DiceLoss

        self.dice = DiceLoss(sigmoid=True, batch=True, reduction="none", smooth_nr=1e-5, smooth_dr=1e-5)
        self.dice_weight, self.bce_weight = dice_weight, bce_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor | None = None) -> torch.Tensor:
        """``logits`` and ``target`` are ``(B, C, H, W)``; ``annotated`` is ``(B, C)`` bool."""
        logits = logits.float()
        if annotated is None:
            annotated = torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device)
        if not annotated.any():
            return logits.sum() * 0.0
        a = annotated[:, :, None, None]
        masked = torch.where(a, logits, torch.full_like(logits, -30.0))
        per_channel = self.dice(masked, target * a).reshape(-1)
        dice = per_channel[annotated.any(dim=0)].mean()
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        af = a.to(bce.dtype)
        bce = (bce * af).sum() / (af.sum() * logits.shape[-1] * logits.shape[-2])
        return self.dice_weight * dice + self.bce_weight * bce
