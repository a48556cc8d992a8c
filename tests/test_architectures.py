from __future__ import annotations

import pytest
import torch
from torch import nn

from zoo_ensemble.architectures import ModelConfig, architecture_names, build_model, make_config
from zoo_ensemble.errors import ModelFormatError, UnknownModelError


@pytest.mark.parametrize("arch", ["unet", "se_resunet", "deeplabv3"])
def test_binary_model_shapes_and_head(arch):
    torch.manual_seed(0)
    model = build_model(make_config(arch, ["heart"], "tiny")).eval()
    x = torch.full((2, 1, 72, 88), -1000.0)
    x[:, :, 20:50, 30:60] = 40.0
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)
    assert logits.shape == (2, 1, 72, 88)
    assert feats.shape[0] == 2 and feats.shape[-2:] == (72, 88)  # full resolution
    assert isinstance(model.head, nn.Conv2d) and model.head.kernel_size == (1, 1)
    assert model.head.in_channels == feats.shape[1] == model.feature_channels
    assert torch.allclose(model.head(feats), logits, atol=1e-5)


@pytest.mark.parametrize("arch", ["unet", "se_resunet", "deeplabv3"])
def test_model_applies_its_own_window(arch):
    model = build_model(make_config(arch, ["heart"], "tiny")).eval()  # window 350 / 50: [-125, 225]
    x = torch.randn(1, 1, 64, 64) * 50
    below = x.clone()
    below[x < 0] = -3000.0
    clipped = x.clone()
    clipped[x < 0] = -200.0  # also below the window: identical after windowing
    with torch.no_grad():
        assert torch.equal(model(below), model(clipped))
        assert not torch.equal(model(x), model(x + 500))


def test_multiclass_stacks_distinct_windows():
    cfg = make_config("unet", ["lung_left", "lung_right", "heart", "trachea"], "tiny")
    assert [(w.width, w.level) for w in cfg.windows] == [(1500, -600), (350, 50), (1200, -440)]
    model = build_model(cfg)
    assert model.in_channels == 3 and cfg.kind == "multiclass"
    assert model(torch.zeros(1, 1, 48, 48)).shape == (1, 4, 48, 48)


def test_config_round_trip_and_bad_fields():
    cfg = make_config("deeplabv3", ["aorta"], "tiny", input_size=[96, 96])
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg
    bad = cfg.to_dict() | {"colour": "blue"}
    with pytest.raises(ModelFormatError, match="unknown field"):
        ModelConfig.from_dict(bad)
    with pytest.raises(ModelFormatError, match="'organs'"):
        ModelConfig.from_dict(cfg.to_dict() | {"organs": ["spleenn"]})
    with pytest.raises(ModelFormatError, match="'windows'"):
        ModelConfig.from_dict(cfg.to_dict() | {"windows": [{"width": -1, "level": 0}]})
    with pytest.raises(UnknownModelError, match="did you mean unet"):
        make_config("unett", ["heart"])
    with pytest.raises(UnknownModelError, match="no variant"):
        make_config("unet", ["heart"], "huge")
    assert set(architecture_names()) >= {"unet", "se_resunet", "deeplabv3"}


def test_paper_sizes_are_paper_sized():
    unet = build_model(make_config("unet", ["heart"], "paper"))
    dl = build_model(make_config("deeplabv3", ["heart"], "paper"))
    assert unet.feature_channels == 64 and dl.feature_channels == 256
    assert sum(p.numel() for p in dl.parameters()) > 20e6


@pytest.mark.parametrize("cin,bias", [(1, False), (1, True), (3, True)])
def test_pointwise_conv_computes_what_conv2d_does_with_the_same_weights(cin, bias):
    from zoo_ensemble.architectures.base import PointwiseConv

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(cin, 8, 1, bias=bias)
    pointwise = PointwiseConv(cin, 8, bias=bias)
    pointwise.load_state_dict(conv.state_dict())  # same parameter names and shapes
    x = torch.randn(2, cin, 5, 7).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(pointwise(x), conv(x), rtol=1e-5, atol=1e-5)
