"""`zoo compose` of a learned method without --data trains on a dataset a plugin registers for
its organs (rendered once, in the zoo home) and says so; an organ none annotates is one line
naming --data; the first-party plugin registers its phantoms."""

from __future__ import annotations

import pytest

from test_plugins import _fake_plugin, site  # noqa: F401  (the fixture: a site folder for fake plugins)
from zoo_ensemble.training.trainer import TrainConfig

DATA_PLUGIN = """
from zoo_ensemble import DatasetSpec, hookimpl


def build(folder):
    from zoo_ensemble.data.phantom import write_cohort

    return write_cohort(folder, "A", 4, seed=55, scale=4.0)


@hookimpl
def register_datasets(register):
    register(DatasetSpec("tiny-phantoms", ("heart", "trachea", "lung_left", "lung_right", "esophagus", "spinal_cord"), build))
"""

HEART_ONLY = DATA_PLUGIN.replace('("heart", "trachea", "lung_left", "lung_right", "esophagus", "spinal_cord")', '("heart",)')


def test_compose_without_data_trains_on_the_registered_dataset_once(site, in_member_zoo, monkeypatch, tmp_path):
    from zoo_ensemble.compose import ComposeRequest, compose

    _fake_plugin(site, "acme-data", "acme_data", DATA_PLUGIN)
    monkeypatch.setenv("ZOO_PLUGINS", "acme_data")
    quick = TrainConfig(epochs=1, steps_per_epoch=2, batch_size=4, seed=0, augment=False)
    result = compose(ComposeRequest("logits_conv", "all", ["heart-unet", "trachea-se_resunet"], out=tmp_path / "lc", config=quick))
    assert result.notes == ["training on the registered dataset phantom-structseg-s55 (plugin acme_data); --data DIR overrides"]
    assert result.train_result is not None and result.report is not None and result.report.scores  # trained and tested on it
    rendered = in_member_zoo / "datasets" / "tiny-phantoms-1"
    stamp = (rendered / "dataset.json").stat().st_mtime_ns
    again = compose(ComposeRequest("logits_conv", "all", ["heart-unet", "trachea-se_resunet"], out=tmp_path / "lc2", config=quick))
    assert again.notes and (rendered / "dataset.json").stat().st_mtime_ns == stamp  # rendered once


def test_an_organ_no_registered_dataset_annotates_names_data(site, in_member_zoo, monkeypatch, run_cli):
    _fake_plugin(site, "acme-heart", "acme_heart", HEART_ONLY)
    monkeypatch.setenv("ZOO_PLUGINS", "acme_heart")
    code, _, err = run_cli(["compose", "--method", "logits_conv", "--models", "heart-unet,trachea-se_resunet", "--epochs", "1", "--steps", "1"])
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1
    assert lines[0] == "error: no registered dataset annotates 'trachea'; give training data with --data DIR"


def test_the_thorax_plugin_registers_its_phantoms(monkeypatch):
    pytest.importorskip("zoo_thorax", reason="the zoo-thorax plugin is not installed")
    from zoo_ensemble.registry import get_registry, reset_registry

    monkeypatch.setenv("ZOO_PLUGINS", "thorax")
    reset_registry()
    spec = get_registry().get("datasets", "thorax-phantoms")
    assert set(spec.organs) == {"lung_left", "lung_right", "heart", "trachea", "esophagus", "spinal_cord"}
    assert get_registry().source("datasets", "thorax-phantoms") == "thorax"
