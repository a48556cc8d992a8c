from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from zoo_ensemble.zoo.card_file import write_card
from zoo_ensemble.zoo.cards import Card
from zoo_ensemble.cli import main
from zoo_ensemble.errors import UnknownModelError
from zoo_ensemble.zoo.catalog import list_models, resolve

REPO = Path(__file__).resolve().parents[1]


def test_local_zoo_is_listed_and_resolved(in_member_zoo, capsys):
    rows = {r.model_id: r for r in list_models()}
    assert {"heart-unet", "trachea-se_resunet", "lung_left-deeplabv3"} <= set(rows)
    assert rows["heart-unet"].source == "local" and rows["heart-unet"].downloaded
    assert resolve("heart-unet") == in_member_zoo / "models" / "heart-unet"
    assert [r.model_id for r in list_models("trachea")] == ["trachea-se_resunet"]
    main(["list", "--organ", "heart"])
    out = capsys.readouterr().out
    assert "heart-unet" in out and "trachea" not in out and "350/50" in out
    main(["info", "heart-unet"])
    assert "Intended use" in capsys.readouterr().out


def test_id_resolution_errors(in_member_zoo):
    with pytest.raises(UnknownModelError, match="did you mean heart-unet"):
        resolve("heart-unte")
    with pytest.raises(UnknownModelError, match="local-dir:.*hf-hub:"):
        resolve("acme/heart")
    with pytest.raises(UnknownModelError, match="no such model folder"):
        resolve("local-dir:/nonexistent/folder")


def test_card_round_trip_keeps_unknown_keys(trained_heart, tmp_path):
    m = tmp_path / "m"
    shutil.copytree(trained_heart, m)
    text = (m / "README.md").read_text()
    text = text.replace("zoo:\n", "datasets:\n- my/data\nzoo:\n  custom_key: kept\n", 1)
    (m / "README.md").write_text(text)
    card = Card.read(m)
    assert card.extra_zoo == {"custom_key": "kept"} and card.extra_meta == {"datasets": ["my/data"]}
    write_card(card, m)
    again = ModelCard.load(m / "README.md").data.to_dict()
    assert again["zoo"]["custom_key"] == "kept" and again["datasets"] == ["my/data"]
    assert again["library_name"] == "zoo-ensemble" and again["pipeline_tag"] == "image-segmentation"
    body = (m / "README.md").read_text()
    for heading in ("## Intended use", "## Training data", "## Usage", "## Licence", "zoo predict heart-unet"):
        assert heading in body
    metrics = again["model-index"][0]["results"]
    assert any(r["metrics"][0]["type"] == "dice" for r in metrics)
    card.metrics = {}  # without metrics the front matter names the model itself; it reads back and rewrites
    write_card(card, m)
    write_card(Card.read(m), m)
    assert Card.read(m).model_id == "heart-unet" and "model_name" not in Card.read(m).extra_meta


def _card_files() -> list[Path]:
    files = sorted((REPO / "model_cards").glob("*.md"))
    files += sorted((REPO / "plugins").glob("*/*/models/*/README.md"))
    return files


@pytest.mark.parametrize("path", _card_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_first_party_card_is_what_it_ships_with(path, tmp_path):
    """A template renders back to the same card; a shipped model's card agrees with its folder's
    config and weights (the full load checks both) and with the folder's name."""
    card = Card.from_metadata(ModelCard.load(path).data.to_dict())
    write_card(card, tmp_path)
    again = Card.read(tmp_path)
    assert (again.model_id, again.organs, again.kind, again.windows, again.input_size, again.spacing) == (
        card.model_id, card.organs, card.kind, card.windows, card.input_size, card.spacing)
    if path.name == "README.md":
        from zoo_ensemble.zoo.model import ZooModel

        model = ZooModel.from_folder(path.parent)
        assert model.model_id == path.parent.name and model.weights_sha256() == card.weights_sha256
