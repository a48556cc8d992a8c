"""The example plugin (plugins/example-plugin), installed the way a user installs a plugin (pip,
here into a temporary folder), registers one of everything, and each thing works: the organ
with its codes, the label map, the ensemble method (composed, saved, loaded, predicted), the
Hub ensemble entry pinned to a commit."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    pytest.importorskip("zoo_thorax", reason="the example's ensemble uses zoo-thorax members (pip install ./plugins/zoo-thorax)")
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "example-plugin"
    # built from a copy: setuptools writes build/ and egg-info next to the sources it builds
    shutil.copytree(REPO / "plugins" / "example-plugin", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
        check=True, capture_output=True,
    )
    return target


@pytest.fixture
def example(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    importlib.invalidate_caches()
    monkeypatch.setenv("ZOO_PLUGINS", "example,thorax")
    from zoo_ensemble.registry import plugins

    plugins.reset_registry()
    yield
    for name in [m for m in sys.modules if m == "zoo_example" or m.startswith("zoo_example.")]:
        del sys.modules[name]


def _row(out: str, first: str) -> str:
    """The table row whose first cell is ``first``."""
    return next(ln for ln in out.splitlines() if ln.strip("│ ").split(" ")[0] == first)


def test_the_plugin_registers_one_of_everything(example, run_cli):
    code, out, _ = run_cli(["plugins"])
    line = _row(out, "example")
    assert code == 0 and "zoo-example" in line
    for what in ("organs: liver", "label maps: example-abdomen", "ensemble methods: soft_vote", "models: thorax-soft-vote"):
        assert what in line
    from zoo_ensemble.organs import get_organ, organ_color

    liver = get_organ("liver")
    assert liver.snomed == ("10200004", "Liver") and liver.totalsegmentator == ("liver",) and organ_color("liver") == (221, 130, 101)


def test_its_label_map_writes_its_values(example, cohort_a, tmp_path, run_cli):
    out = tmp_path / "heart.nii.gz"
    code, stdout, _ = run_cli(["predict", "heart-deeplabv3", str(cohort_a.cases[0].image), "-o", str(out), "--label-map", "example-abdomen"])
    assert code == 0 and "heart=2" in stdout
    values = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(out)))).tolist())
    assert values == {0, 2}


def test_its_method_composes_saves_loads_and_averages_the_members(example, cohort_a, tmp_path):
    import zoo_ensemble as zoo

    ensemble = zoo.compose_ensemble("soft_vote", models=["heart-unet", "heart-deeplabv3"], out=str(tmp_path / "heart-vote"))
    assert ensemble.kind == "ensemble" and ensemble.organs == ["heart"]
    again = zoo.from_pretrained(f"local-dir:{tmp_path / 'heart-vote'}")  # the method is found in the registry on load
    net = again.network
    assert type(net).__name__ == "SoftVoteEnsemble"
    hu = torch.randint(-1000, 400, (2, 1, 64, 64)).float()
    with torch.no_grad():
        a, b = net.members[0](hu), net.members[1](hu)
        assert torch.allclose(net(hu), (a + b) / 2, atol=1e-5)
    seg = again.predict(cohort_a.cases[0].image)
    assert seg.masks["heart"].sum() > 100


def test_its_hub_ensemble_is_listed_and_pinned_to_a_commit(example, monkeypatch, run_cli):
    code, out, _ = run_cli(["list", "--organ", "trachea"])
    row = next(ln for ln in out.splitlines() if "thorax-soft-vote" in ln)
    assert code == 0 and "ensemble" in row
    from zoo_ensemble.zoo.catalog import pull_target

    from zoo_example.plugin import THORAX_SOFT_VOTE_COMMIT

    assert pull_target("thorax-soft-vote") == ("zoo-example/thorax-soft-vote", THORAX_SOFT_VOTE_COMMIT)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = run_cli(["pull", "thorax-soft-vote"])
    assert code == 2 and "zoo-example/thorax-soft-vote" in err and len(err.strip().splitlines()) == 1


def test_zoo_organs_shows_codes_names_and_colours(example, run_cli):
    code, out, _ = run_cli(["organs"])
    heart, liver = _row(out, "heart"), _row(out, "liver")
    assert code == 0 and "80891009 Heart" in heart and "#ce6e54" in heart and "zoo_ensemble.core" in heart
    assert "lung_upper_lobe_left, lung_lower_lobe_left" in out
    assert "10200004 Liver" in liver and "example" in liver
