"""The member adapter hook: a plugin adds another framework the way nnU-Net v2 is added (import,
build, predict whole volumes to per-organ logits, card facts), and its models then import,
load, predict and join ensembles like any zoo model. Runs without nnU-Net installed."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from zoo_ensemble.registry import plugins

from test_plugins import _fake_plugin

#: A "framework" whose model is a HU threshold: logits (HU - level) / 10 for its one organ.
THRESHOLD_PLUGIN = """
import json
from pathlib import Path

import numpy as np
import torch

from zoo_ensemble import hookimpl, ImportedModel, MemberAdapterSpec
from zoo_ensemble.architectures.volume import VolumeNetwork


class Threshold(VolumeNetwork):
    def __init__(self, config):
        super().__init__(config["organs"])
        self.register_buffer("level", torch.zeros(()))

    def predict_volume(self, hu, spacing_zyx, source=None):
        return ((hu[None] - float(self.level)) / 10.0).astype(np.float32)


def read(folder, organs, folds=None, checkpoint="final", trust_pickle=False, mirroring=True):
    level = float(json.loads((Path(folder) / "threshold.json").read_text())["level"])
    organ = organs.partition("=")[0]
    config = {"architecture": "threshold-v1", "organs": [organ]}
    return ImportedModel({"level": torch.tensor(level)}, config, [organ], {"level": level}, f"{organ}-threshold")


@hookimpl
def register_member_adapters(register):
    register(MemberAdapterSpec("threshold", "threshold-v1", read, Threshold, "threshold-extra", "HU thresholds"))
"""


@pytest.fixture
def threshold_plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    _fake_plugin(site, "acme-threshold", "acme_threshold", THRESHOLD_PLUGIN)
    importlib.invalidate_caches()
    monkeypatch.setenv("ZOO_PLUGINS", "acme_threshold")
    plugins.reset_registry()
    yield
    plugins.reset_registry()


def test_a_plugin_adapter_imports_loads_and_predicts(threshold_plugin, tmp_path, run_cli):
    from zoo_ensemble.zoo.model import ZooModel

    assert plugins.get_registry().source("member_adapters", "threshold") == "acme_threshold"
    source = tmp_path / "thr"
    source.mkdir()
    (source / "threshold.json").write_text(json.dumps({"level": 100}))
    code, out, err = run_cli(["import", "threshold", str(source), "--organs", "heart=1", "-o", str(tmp_path / "m")])
    assert code == 0, err
    model = ZooModel.from_folder(tmp_path / "m")
    assert (model.model_id, model.card.architecture, model.card.extra_zoo["imported"]) == ("heart-threshold", "threshold-v1", {"framework": "threshold", "level": 100.0})
    ct = np.full((6, 32, 32), -1000, dtype=np.int16)
    ct[:, 8:20, 8:20] = 300  # above the level: heart
    ct[:, 22:28, 22:28] = 50  # soft tissue below it
    seg = model.predict(ct, spacing=(3.0, 1.0, 1.0), device="cpu")
    assert np.array_equal(seg.masks["heart"], ct > 100)


def test_a_plugin_adapter_model_joins_an_argmax_ensemble(threshold_plugin, tmp_path):
    from zoo_ensemble.compose import ComposeRequest, compose
    from zoo_ensemble.zoo.importing import ImportRequest, import_model

    for organ, level in (("heart", 100), ("lung_left", 400)):
        (tmp_path / organ).mkdir()
        (tmp_path / organ / "threshold.json").write_text(json.dumps({"level": level}))
        import_model(ImportRequest("threshold", tmp_path / organ, f"{organ}=1", out=tmp_path / f"{organ}-m"))
    result = compose(ComposeRequest("argmax", "all", [f"local-dir:{tmp_path / 'heart-m'}", f"local-dir:{tmp_path / 'lung_left-m'}"], [], out=tmp_path / "ens"))
    ct = np.full((4, 24, 24), -1000, dtype=np.int16)
    ct[:, :8] = 200  # only above the heart's level
    ct[:, 16:] = 900  # above both: the more confident (the heart, 80 against 50) wins
    seg = result.model.predict(ct, spacing=(3.0, 1.0, 1.0), device="cpu")
    assert np.array_equal(seg.masks["heart"], ct > 100) and not seg.masks["lung_left"].any()
