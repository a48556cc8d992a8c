"""How each learned combiner starts: the paper's (PyTorch's default initialisation, seeded; a
plain meta U-Net) or ours (at the members' average prediction), and the option checks."""

from __future__ import annotations

import pytest
import torch

from zoo_ensemble.architectures import build_model, make_config
from zoo_ensemble.ensembles import get_method, init_options
from zoo_ensemble.ensembles.base import MemberRecord, organ_channel_matrix
from zoo_ensemble.errors import ModelFormatError, UnknownModelError

ORGANS = ["heart", "trachea"]


def _members():
    torch.manual_seed(0)
    members = [build_model(make_config("unet", [o], "tiny")).eval() for o in ORGANS]
    records = [MemberRecord(f"{o}-unet", [o], {}) for o in ORGANS]
    return members, records


def _build(method: str, seed: int = 0, **options):
    members, records = _members()
    torch.manual_seed(seed)
    return get_method(method).build(members, records, list(ORGANS), **options).eval()


def _x() -> torch.Tensor:
    torch.manual_seed(3)
    return torch.randn(2, 1, 48, 48) * 300


def _argmax_logits(ens) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([m(_x()) for m in ens.members], dim=1)


def test_logits_conv_ours_starts_at_the_members_and_the_papers_at_default_init():
    ours = _build("logits_conv", init="members")
    assert torch.equal(ours.weights(), organ_channel_matrix(ours.channels, ours.organs))
    with torch.no_grad():
        assert torch.allclose(ours(_x()), _argmax_logits(ours), atol=1e-5)  # one member per organ: identity
    paper = _build("logits_conv", init="default")
    w = paper.weights()
    assert not torch.equal(w, organ_channel_matrix(paper.channels, paper.organs))
    bound = 1 / len(paper.channels) ** 0.5  # PyTorch's default: kaiming_uniform(a=sqrt(5)) -> U(-1/sqrt(fan_in), ...)
    assert w.abs().max() <= bound and paper.conv.bias.abs().max() <= bound and paper.conv.bias.abs().sum() > 0
    assert torch.equal(w, _build("logits_conv", init="default").weights())  # seeded
    assert not torch.equal(w, _build("logits_conv", seed=1, init="default").weights())


def test_layer_fusion_ours_starts_from_the_heads_and_the_papers_does_not():
    ours = _build("layer_fusion", init="members")
    head = ours.members[0].head
    width = ours.members[0].feature_channels
    assert torch.equal(ours.fuse.weight[0, :width], head.weight[0]) and torch.equal(ours.fuse.bias[0], head.bias[0])
    assert torch.count_nonzero(ours.fuse.weight[0, width:]) == 0
    with torch.no_grad():
        assert torch.allclose(ours(_x()), _argmax_logits(ours), atol=1e-4)
    paper = _build("layer_fusion", init="default")
    assert torch.count_nonzero(paper.fuse.weight[0, width:]) > 0
    with torch.no_grad():
        assert not torch.allclose(paper(_x()), _argmax_logits(paper), atol=1e-2)


def test_meta_unet_residual_is_ours_and_plain_is_the_papers():
    ours = _build("meta_unet", residual=True)
    with torch.no_grad():
        assert torch.allclose(ours(_x()), _argmax_logits(ours), atol=1e-5)
    paper = _build("meta_unet", residual=False)
    assert not hasattr(paper, "skip") and paper.out.weight.abs().sum() > 0
    with torch.no_grad():
        assert not torch.allclose(paper(_x()), _argmax_logits(paper), atol=1e-2)
    assert paper.method_config()["residual"] is False and ours.method_config()["residual"] is True


def test_the_card_level_init_names_map_to_each_methods_options():
    assert init_options("logits_conv", "paper") == {"init": "default"}
    assert init_options("layer_fusion", "members") == {"init": "members"}
    assert init_options("meta_unet", "paper") == {"residual": False}
    assert init_options("argmax", "paper") == {}
    with pytest.raises(UnknownModelError, match="init"):
        init_options("logits_conv", "identity")


@pytest.mark.parametrize(
    ("method", "options", "words"),
    [
        ("logits_conv", {"init": "zeros"}, "init='zeros' must be one of"),
        ("layer_fusion", {"nonsense": 1}, "unknown option 'nonsense'"),
        ("meta_unet", {"residual": "yes"}, "residual='yes' must be one of"),
        ("meta_unet", {"residual": 1}, "residual=1 must be one of"),
        ("meta_unet", {"variant": "huge"}, "variant='huge'"),
        ("meta_unet", {"widths": [8, -1]}, "widths=[8, -1]"),
        ("argmax", {"init": "default"}, "unknown option 'init'"),
    ],
)
def test_options_from_a_config_are_checked(method, options, words):
    with pytest.raises(ModelFormatError, match=words.replace("[", r"\[").replace("]", r"\]")):
        _build(method, **options)


def test_layer_fusion_equals_one_convolution_over_the_concatenated_features():
    ens = _build("layer_fusion", init="default")  # random fusion weights, so every member's part matters
    with torch.no_grad():
        feats = torch.cat([m.features(_x()) for m in ens.members], dim=1)
        assert torch.allclose(ens(_x()), ens.fuse(feats), atol=1e-5)
    loss = ens.train()(_x()).square().mean()
    loss.backward()  # trains through the member-by-member sum: the fusion and the members' last layers get gradients
    assert ens.fuse.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for m in ens.members for p in m.last_layer().parameters())
