from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from zoo_ensemble.inference import InferenceConfig, Predictor, labels_from_probabilities
from zoo_ensemble.volumes import Geometry, Volume


def test_labels_from_probabilities():
    probs = torch.tensor([[0.2, 0.6, 0.9, 0.7], [0.1, 0.4, 0.95, 0.8]]).T.reshape(1, 4, 2, 1).permute(0, 2, 1, 3)
    # pixels: (0.2,0.1) none; (0.6,0.4) organ 1; (0.9,0.95) both -> organ 2; (0.7,0.8) both -> organ 2
    label, contested = labels_from_probabilities(probs, 0.5)
    assert label.flatten().tolist() == [0, 1, 2, 2]
    assert contested == 2


class Brightness(nn.Module):
    """A stand-in model: organ 1 where HU > 0, organ 2 where HU > 500; records its input sizes."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def forward(self, hu):
        self.sizes.append(tuple(hu.shape))
        return torch.cat([(hu > 0).float() * 20 - 10, (hu > 500).float() * 30 - 10], dim=1)


def _volume(array, spacing=(1.0, 1.0, 3.0)):
    g = Geometry(array.shape[::-1], spacing, (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    return Volume(array, spacing, (0.0, 0.0, 0.0), g.direction, g)


@pytest.mark.parametrize("shape, size", [((3, 40, 40), (32, 32)), ((1, 20, 24), (32, 32)), ((5, 50, 30), (40, 40))])
def test_crop_pad_and_paste_back(shape, size):
    arr = np.full(shape, -1000, dtype=np.int16)
    arr[:, 10:18, 12:20] = 100
    arr[:, 12:14, 14:16] = 800
    model = Brightness()
    pred = Predictor(model, InferenceConfig(("heart", "aorta"), size, "center"), batch_size=4).predict(_volume(arr), probabilities=True)
    assert pred.labels.shape == shape
    assert all(s[-2:] == size for s in model.sizes)  # every batch was cropped or padded to the input size
    assert max(s[0] for s in model.sizes) <= 4
    expected = np.zeros(shape, np.uint8)
    expected[:, 10:18, 12:20] = 1
    expected[:, 12:14, 14:16] = 2
    assert np.array_equal(pred.labels, expected)
    assert pred.contested == shape[0] * 4  # the bright core passes both channels
    assert pred.probabilities["heart"].dtype == np.float32 and pred.probabilities["heart"].shape == shape


def test_outside_the_crop_is_background():
    arr = np.full((2, 64, 64), 100, dtype=np.int16)  # everything would be "heart"
    pred = Predictor(Brightness(), InferenceConfig(("heart", "aorta"), (32, 32), "center")).predict(_volume(arr))
    assert pred.labels[:, 16:48, 16:48].min() == 1 and pred.labels.sum() == 2 * 32 * 32


def test_spacing_resamples_in_and_out():
    arr = np.full((2, 40, 60), -1000, dtype=np.int16)
    arr[:, 10:30, 20:40] = 100
    model = Brightness()
    pred = Predictor(model, InferenceConfig(("heart", "aorta"), (64, 64), "none", spacing=(2.0, 2.0))).predict(_volume(arr, (1.0, 1.0, 2.5)))
    assert model.sizes[0][-2:] == (20, 30)  # resampled to 2 mm before the model
    assert pred.labels.shape == (2, 40, 60)
    assert pred.labels[:, 12:28, 22:38].min() == 1 and pred.labels[:, :8].max() == 0


def test_largest_component_post_processing():
    from zoo_ensemble.inference import keep_largest_component

    mask = np.zeros((4, 10, 10), bool)
    mask[:, 1:5, 1:5] = True  # 64 voxels
    mask[1, 8, 8] = True  # a stray voxel
    assert keep_largest_component(mask).sum() == 64
    arr = np.full((4, 10, 10), -1000, dtype=np.int16)
    arr[mask] = 100
    plain = Predictor(Brightness(), InferenceConfig(("heart", "aorta"), (10, 10), "center")).predict(_volume(arr))
    cleaned = Predictor(Brightness(), InferenceConfig(("heart", "aorta"), (10, 10), "center", largest_component=("heart",))).predict(_volume(arr))
    assert (plain.labels == 1).sum() == 65 and (cleaned.labels == 1).sum() == 64


@pytest.mark.parametrize("channels", [1, 2, 6])
def test_labels_are_the_first_most_confident_passing_channel(channels):
    """The channel loop gives what argmax over the passing channels gives, ties to the first."""
    torch.manual_seed(channels)
    probs = torch.rand(3, channels, 40, 50)
    probs[0, :, :5, :5] = 0.7  # every channel ties here
    label, contested = labels_from_probabilities(probs, 0.5)
    passing = probs > 0.5
    want = probs.masked_fill(~passing, -1.0).argmax(dim=1).to(torch.uint8) + 1
    want.masked_fill_(passing.sum(dim=1) == 0, 0)
    assert torch.equal(label, want)
    assert contested == int((passing.sum(dim=1) > 1).sum())
    if channels > 1:
        assert (label[0, :5, :5] == 1).all()


def test_organ_masks_are_computed_from_the_label_map_when_looked_up():
    from zoo_ensemble.inference import Prediction
    from zoo_ensemble.labelmaps import get_label_map

    labels = np.array([[[0, 1, 2], [2, 3, 0]]], dtype=np.uint8)
    masks = Prediction(labels, ["heart", "trachea", "aorta"]).masks()
    assert list(masks) == ["heart", "trachea", "aorta"] and len(masks) == 3
    for i, organ in enumerate(masks):
        assert masks[organ].dtype == bool and np.array_equal(masks[organ], labels == i + 1)
    with pytest.raises(KeyError):
        masks["liver"]
    lm = get_label_map("zoo")
    assert np.array_equal(lm.encode(masks), lm.encode(dict(masks)))  # written as before


@pytest.mark.parametrize("length, spacing, model_spacing, size", [(512, 0.7, 2.2, 160), (1024, 10.0, 2.2, 160), (513, 1.0, 1.0, 320), (100, 2.0, 1.0, 320)])
def test_the_model_window_holds_the_field_of_view_and_its_margin_centred(length, spacing, model_spacing, size):
    from zoo_ensemble.preprocess import model_window

    w = model_window(length, spacing, model_spacing, size)
    fov = size * model_spacing / spacing  # input pixels the model sees
    kept = w.stop - w.start
    assert w.start >= 0 and w.stop <= length
    assert kept == length or (kept >= fov + 2 * max(1.0, model_spacing / spacing) and (length - kept) % 2 == 0)
    assert w.start == length - w.stop  # the axis' centre stays the window's centre


def test_what_lies_beyond_the_field_of_view_changes_nothing():
    """The same body padded with 400 pixels of air each way, at 10 mm: the model's input stays
    48 pixels (the window is cut before resampling), both find the organs where they are, and
    the air around stays background."""
    body = np.full((2, 60, 60), -1000, np.int16)
    body[:, 2:58, 2:58] = 100
    body[:, 12:48, 12:48] = 800
    truth = {1: (body > 0) & (body <= 500), 2: body > 500}
    padded = np.full((2, 860, 860), -1000, np.int16)
    padded[:, 400:460, 400:460] = body
    model = Brightness()
    p = Predictor(model, InferenceConfig(("a", "b"), (48, 48), spacing=(12.0, 12.0)), channels_last=False)
    small = p.predict(_volume(body, (10.0, 10.0, 5.0))).labels
    large = p.predict(_volume(padded, (10.0, 10.0, 5.0))).labels
    assert max(s[-1] for s in model.sizes) == 48
    for organ, want in truth.items():  # resampling at another phase moves an edge by a pixel at most
        a, b = small == organ, large[:, 400:460, 400:460] == organ
        assert a.sum() > 0.7 * want.sum() and 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.9, organ
    large[:, 400:460, 400:460] = 0
    assert not large.any()
