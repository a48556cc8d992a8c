from __future__ import annotations

import pytest
import torch

from zoo_ensemble.organs import default_window
from zoo_ensemble.preprocess import CenterCropPad, ResampleInPlane, WindowLayer, centre_box, crop_or_pad, paste_back


def test_window_maps_level_and_width():
    layer = WindowLayer.of(default_window("heart"))  # 350 / 50
    hu = torch.tensor([-1000.0, -125.0, 50.0, 225.0, 3000.0])
    assert layer(hu).tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.0])
    assert set(layer.state_dict()) == {"level", "width"}  # travels with the weights
    with pytest.raises(ValueError):
        WindowLayer(0, 10)


@pytest.mark.parametrize("h, w, size", [(10, 12, (6, 8)), (5, 7, (9, 9)), (8, 4, (6, 6)), (6, 6, (6, 6))])
def test_crop_or_pad_then_paste_back(h, w, size):
    x = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w) + 1
    box = centre_box(h, w, size)
    crop = crop_or_pad(x, box, fill=-5.0)
    assert crop.shape[-2:] == size
    back = paste_back(crop, box, fill=0.0)
    # every pixel that survived the crop comes back to its place; the rest is fill
    kept = back != 0
    assert torch.equal(back[kept], x[kept])
    if size[0] >= h and size[1] >= w:
        assert torch.equal(back, x)
        assert (crop == -5.0).sum() == size[0] * size[1] - h * w


def test_centre_crop_module_is_centred():
    x = torch.zeros(1, 1, 10, 10)
    x[..., 4:6, 4:6] = 1
    y = CenterCropPad(4)(x)
    assert y[..., 1:3, 1:3].sum() == 4


def test_resample_in_plane():
    x = torch.rand(2, 1, 20, 30)
    y = ResampleInPlane((2.0, 1.0))(x, (1.0, 1.0))
    assert y.shape == (2, 1, 10, 30)
    m = (torch.rand(1, 2, 20, 20) > 0.5).float()
    ym = ResampleInPlane((0.5, 0.5), mode="nearest")(m, (1.0, 1.0))
    assert ym.shape == (1, 2, 40, 40) and set(ym.unique().tolist()) <= {0.0, 1.0}
