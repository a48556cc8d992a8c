from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from zoo_ensemble.zoo.card_file import write_card
from zoo_ensemble.zoo.cards import Card
from zoo_ensemble.errors import ModelFormatError
from zoo_ensemble.zoo.model import ZooModel


def _copy(src, tmp_path, name="m"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def test_saved_model_loads_back_with_identical_outputs(trained_heart):
    a, b = ZooModel.from_folder(trained_heart), ZooModel.from_folder(trained_heart)
    x = torch.randn(2, 1, 64, 64) * 300
    with torch.no_grad():
        assert torch.equal(a.network(x), b.network(x))
    card = a.card
    assert card.kind == "binary" and card.organs == ["heart"] and card.architecture == "unet"
    assert (card.windows[0].width, card.windows[0].level) == (350, 50)
    assert card.training["cases_train"] >= 1 and card.training["datasets"][0]["cases_val"]
    assert "dice" in card.metrics["val"]["heart"]
    assert len(card.weights_sha256) == 64


def test_a_loaded_network_holds_its_files_weights_without_being_built_twice(trained_heart, monkeypatch):
    """The network is built once, on the meta device without random init, then given memory
    that the weights fill: every tensor is the file's, and torch's initialisers are restored."""
    from zoo_ensemble.zoo import folder

    inits = dict(vars(torch.nn.init))
    saved = load_file(str(trained_heart / "model.safetensors"))
    built = []
    monkeypatch.setattr(folder, "_filled_by_its_weights", lambda m: built.append(m) or True)
    network = ZooModel.from_folder(trained_heart).network
    assert len(built) == 1
    state = network.state_dict()
    assert set(state) == set(saved) and all(torch.equal(state[k], saved[k]) for k in saved)
    assert all(p.device.type == "cpu" for p in network.parameters())
    assert dict(vars(torch.nn.init)) == inits


def test_a_network_whose_weights_do_not_set_every_tensor_is_built_again():
    from zoo_ensemble.zoo.folder import _filled_by_its_weights

    assert _filled_by_its_weights(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)))
    buffered = torch.nn.Linear(2, 2)
    buffered.register_buffer("table", torch.zeros(3), persistent=False)
    plain = torch.nn.Linear(2, 2)
    plain.scale = torch.ones(1)
    shared = torch.nn.Linear(2, 2)
    tied = torch.nn.Sequential(shared, shared)
    assert not any(_filled_by_its_weights(m) for m in (buffered, plain, tied))


def test_initialisers_are_skipped_on_the_meta_device_only():
    from zoo_ensemble.zoo.folder import _NoRandomFillOnMeta

    with _NoRandomFillOnMeta():
        real = torch.zeros(64)
        torch.nn.init.kaiming_uniform_(real[None])
        filled = torch.zeros(64).normal_()
        with torch.device("meta"):
            skeleton = torch.nn.Conv2d(3, 4, 3)
    assert real.abs().sum() > 0 and filled.abs().sum() > 0  # tensors with memory are initialised as ever
    assert skeleton.weight.is_meta and skeleton.weight.shape == (4, 3, 3, 3)


def test_missing_and_pickled_weights(trained_heart, tmp_path):
    m = _copy(trained_heart, tmp_path)
    (m / "model.safetensors").unlink()
    with pytest.raises(ModelFormatError, match="no model.safetensors"):
        ZooModel.from_folder(m)
    torch.save({"w": torch.zeros(1)}, m / "pytorch_model.bin")
    with pytest.raises(ModelFormatError, match="only pickled weights"):
        ZooModel.from_folder(m)


def test_truncated_weights(trained_heart, tmp_path):
    m = _copy(trained_heart, tmp_path)
    data = (m / "model.safetensors").read_bytes()
    (m / "model.safetensors").write_bytes(data[: len(data) // 2])
    card = Card.read(m)
    card.weights_sha256 = None  # without the hash check the damage must still be caught
    write_card(card, m)
    with pytest.raises(ModelFormatError, match="damaged or truncated"):
        ZooModel.from_folder(m)


def test_tampered_weights_fail_the_hash(trained_heart, tmp_path):
    m = _copy(trained_heart, tmp_path)
    state = load_file(str(m / "model.safetensors"))
    state["head.bias"] = state["head.bias"] + 1
    save_file(state, str(m / "model.safetensors"))
    with pytest.raises(ModelFormatError, match="sha256"):
        ZooModel.from_folder(m)


def test_wrong_shape_and_missing_tensor(trained_heart, tmp_path):
    m = _copy(trained_heart, tmp_path)
    config = json.loads((m / "config.json").read_text())
    config["widths"] = [4, 8, 16, 32, 32]
    (m / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="has shape"):
        ZooModel.from_folder(m)
    m2 = _copy(trained_heart, tmp_path, "m2")
    state = load_file(str(m2 / "model.safetensors"))
    del state["head.weight"]
    save_file(state, str(m2 / "model.safetensors"))
    card = Card.read(m2)
    card.weights_sha256 = None
    write_card(card, m2)
    with pytest.raises(ModelFormatError, match="missing 1 tensor"):
        ZooModel.from_folder(m2)


def test_card_and_config_must_agree(trained_heart, tmp_path):
    m = _copy(trained_heart, tmp_path)
    config = json.loads((m / "config.json").read_text())
    config["organs"] = ["aorta"]
    (m / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="disagree"):
        ZooModel.from_folder(m)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("kind: binary", "kind: trinary"), "zoo.kind"),
        (lambda t: t.replace("- heart\n  architecture", "- hearts\n  architecture"), "zoo.organs"),
        (lambda t: t.replace("width: 350", "width: 0"), "zoo.window"),
        (lambda t: t.replace("architecture: unet", "architecture: resnet"), "zoo.architecture"),
        (lambda t: t.replace("format: 1", "format: 7"), "zoo.format"),
    ],
)
def test_bad_cards_name_the_field(trained_heart, tmp_path, edit, message):
    m = _copy(trained_heart, tmp_path)
    text = (m / "README.md").read_text()
    (m / "README.md").write_text(edit(text))
    with pytest.raises(ModelFormatError, match=message.replace(".", r"\.")):
        ZooModel.from_folder(m)


class _Blobs(torch.nn.Module):
    """Logits: the heart where HU > 0 (a big blob and a stray speck in the test slices)."""

    def forward(self, hu):
        return (hu > 0).float() * 20 - 10


def _case(ref):
    import numpy as np

    from zoo_ensemble.data.slices import CaseSlices

    image = np.full((4, 32, 32), -1000, np.int16)
    image[:, 4:20, 4:20] = 40
    image[1, 28, 28] = 40  # a speck of false positive
    return CaseSlices("d", "c", image, ref[:, None].astype(np.uint8), np.array([True]), (1.0, 1.0, 1.0))


def test_largest_component_is_kept_only_where_it_helps_validation_dice():
    import numpy as np

    from zoo_ensemble.training.train import choose_largest_component

    blob = np.zeros((4, 32, 32), bool)
    blob[:, 4:20, 4:20] = True
    assert choose_largest_component(_Blobs(), [_case(blob)], ["heart"]) == ["heart"]
    both = blob.copy()
    both[1, 28, 28] = True  # the speck is really heart: removing it would cost Dice
    assert choose_largest_component(_Blobs(), [_case(both)], ["heart"]) == []


def test_card_records_the_post_processing_choice(trained_heart, tmp_path):
    m = _copy(trained_heart, tmp_path)
    card = ZooModel.from_folder(m).card
    card.postprocess = {"largest_component": ["heart"]}
    write_card(card, m)
    assert ZooModel.from_folder(m).card.postprocess == {"largest_component": ["heart"]}
    assert "largest connected component kept for heart" in (m / "README.md").read_text()
