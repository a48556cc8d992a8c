from __future__ import annotations

import torch

from zoo_ensemble.training.losses import MaskedDiceBCELoss


def test_unannotated_channels_do_not_count():
    torch.manual_seed(0)
    loss = MaskedDiceBCELoss()
    target = (torch.rand(4, 2, 16, 16) > 0.7).float()
    logits = torch.randn(4, 2, 16, 16)
    annotated = torch.tensor([[True, False]] * 4)
    other = logits.clone()
    other[:, 1] = torch.randn(4, 16, 16) * 10
    assert torch.allclose(loss(logits, target, annotated), loss(other, target, annotated))
    # with everything annotated the second channel matters
    full = torch.ones(4, 2, dtype=torch.bool)
    assert not torch.allclose(loss(logits, target, full), loss(other, target, full))


def test_perfect_prediction_has_low_loss_and_wrong_has_high():
    loss = MaskedDiceBCELoss()
    target = torch.zeros(2, 1, 8, 8)
    target[:, :, 2:6, 2:6] = 1
    good = (target * 2 - 1) * 20
    assert loss(good, target).item() < 0.01
    assert loss(-good, target).item() > 1.5


def test_gradient_flows_only_to_annotated_samples():
    logits = torch.zeros(2, 1, 8, 8, requires_grad=True)
    target = torch.ones(2, 1, 8, 8)
    annotated = torch.tensor([[True], [False]])
    MaskedDiceBCELoss()(logits, target, annotated).backward()
    assert logits.grad[0].abs().sum() > 0 and logits.grad[1].abs().sum() == 0
