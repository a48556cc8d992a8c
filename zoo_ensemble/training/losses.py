"""Dice + binary cross-entropy, equally weighted (MONAI's Dice formula), masked by partial labels.

An organ a sample's dataset does not annotate contributes nothing: its prediction and target
are left out of the batch Dice and its pixels out of the cross-entropy mean. Dice is computed
over the whole batch per channel (as nnU-Net does), so slices without the organ do not make the
Dice term noisy.

The loss is built from sums over the batch (Dice's intersection and volumes, the cross-entropy
total, the annotated count) so that a data-parallel run can add them up across processes first
(``across``) and every process gets the loss of the global batch: the same loss, and after
DistributedDataParallel's gradient averaging the same gradients, as one process. MONAI's
DiceLoss reduces inside and has no such hook, hence the formula here (checked against it in the
tests).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

SMOOTH = 1e-5  # MONAI DiceLoss's smooth_nr and smooth_dr as we configured it


def _local(t: torch.Tensor) -> torch.Tensor:
    return t


class MaskedDiceBCELoss(nn.Module):
    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0):
        super().__init__()
        self.dice_weight, self.bce_weight = dice_weight, bce_weight

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, annotated: torch.Tensor | None = None,
        across: Callable[[torch.Tensor], torch.Tensor] = _local,
    ) -> torch.Tensor:
        """``logits`` and ``target`` are ``(B, C, H, W)``; ``annotated`` is ``(B, C)`` bool;
        ``across`` sums a tensor over the processes of a data-parallel run (differentiably)."""
        logits = logits.double() if logits.dtype == torch.float64 else logits.float()  # fp32 at least (AMP gives fp16/bf16)
        if annotated is None:
            annotated = torch.ones(logits.shape[:2], dtype=torch.bool, device=logits.device)
        a = annotated[:, :, None, None].to(logits.dtype)
        target = target.to(logits.dtype)
        prob, truth = torch.sigmoid(logits) * a, target * a
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        channels = logits.shape[1]
        sums = across(torch.cat([
            (prob * truth).sum((0, 2, 3)), prob.sum((0, 2, 3)), truth.sum((0, 2, 3)),
            annotated.sum(0).to(logits.dtype), (bce * a).sum().reshape(1),
        ]))
        inter, pred_sum, truth_sum, annotated_per_channel = sums[: 4 * channels].view(4, channels)
        # Means over the annotated channels by weights, not by selecting them: selecting (or
        # asking whether any is annotated) would make a GPU finish its queue before the host
        # could go on. With nothing annotated both sums are 0 and so is the loss.
        present = (annotated_per_channel > 0).to(logits.dtype)
        dice = 1.0 - (2.0 * inter + SMOOTH) / (pred_sum + truth_sum + SMOOTH)
        dice = (dice * present).sum() / present.sum().clamp_min(1.0)
        bce_mean = sums[-1] / (annotated_per_channel.sum() * logits.shape[-1] * logits.shape[-2]).clamp_min(1.0)
        return self.dice_weight * dice + self.bce_weight * bce_mean
