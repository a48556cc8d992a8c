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


def test_dice_term_is_monai_batch_dice_and_bce_is_the_masked_mean():
    from monai.losses import DiceLoss

    torch.manual_seed(1)
    logits = torch.randn(4, 3, 16, 16)
    target = (torch.rand(4, 3, 16, 16) > 0.6).float()
    monai_dice = DiceLoss(sigmoid=True, batch=True, smooth_nr=1e-5, smooth_dr=1e-5)(logits, target)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    dice_only = MaskedDiceBCELoss(bce_weight=0.0)(logits, target)
    bce_only = MaskedDiceBCELoss(dice_weight=0.0)(logits, target)
    assert torch.allclose(dice_only, monai_dice, atol=1e-6)
    assert torch.allclose(bce_only, bce, atol=1e-6)


def test_loss_of_two_halves_summed_across_equals_the_whole_batch():
    """What a two-process run computes: each half's sums added up give the whole batch's loss."""
    torch.manual_seed(2)
    logits = torch.randn(6, 2, 8, 8)
    target = (torch.rand(6, 2, 8, 8) > 0.5).float()
    annotated = torch.tensor([[True, False], [True, True], [False, True], [True, True], [True, False], [False, False]])
    loss = MaskedDiceBCELoss()
    whole = loss(logits, target, annotated)
    halves = []
    loss(logits[3:], target[3:], annotated[3:], across=lambda t: halves.append(t) or t)
    other = halves[0]
    first = loss(logits[:3], target[:3], annotated[:3], across=lambda t: t + other)
    assert torch.allclose(first, whole, atol=1e-6)


def test_a_batch_with_nothing_annotated_has_zero_loss_and_zero_gradient():
    logits = torch.randn(3, 2, 8, 8, requires_grad=True)
    value = MaskedDiceBCELoss()(logits, torch.ones(3, 2, 8, 8), torch.zeros(3, 2, dtype=torch.bool))
    value.backward()
    assert value.item() == 0.0 and logits.grad.abs().sum() == 0


def test_the_dice_term_averages_the_annotated_channels_only():
    torch.manual_seed(1)
    logits, target = torch.randn(2, 3, 8, 8), (torch.rand(2, 3, 8, 8) > 0.5).float()
    annotated = torch.tensor([[True, False, True], [True, False, False]])
    dice_only = MaskedDiceBCELoss(bce_weight=0.0)(logits, target, annotated)
    a = annotated[:, :, None, None].float()
    prob, truth = torch.sigmoid(logits) * a, target * a
    per_channel = 1 - (2 * (prob * truth).sum((0, 2, 3)) + 1e-5) / (prob.sum((0, 2, 3)) + truth.sum((0, 2, 3)) + 1e-5)
    assert torch.allclose(dice_only, per_channel[[0, 2]].mean())
