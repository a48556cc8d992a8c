from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zoo_ensemble import plugins
from zoo_ensemble.errors import ZooError

REPO = Path(__file__).resolve().parents[1]
PIN = "0123456789abcdef0123456789abcdef01234567"


def _fake_plugin(site: Path, dist: str, module: str, body: str) -> None:
    """A minimal installed distribution with a zoo_ensemble entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[zoo_ensemble]\n{module} = {module}\n")


MODEL_PLUGIN = """
from zoo_ensemble import hookimpl, ModelSpec
from zoo_ensemble.organs import Organ, Window

@hookimpl
def register_organs(register):
    register(Organ("liver", Window(400, 60), "liver"))

@hookimpl
def register_models(register):
    register(ModelSpec("liver-unet", organs=("liver",), architecture="unet", hub_repo="acme/liver-unet", revision="{pin}"))
""".replace("{pin}", PIN)


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    plugins.reset_registry()
    yield site
    plugins.reset_registry()


def test_core_registers_through_the_hooks(site, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "none")
    reg = plugins.get_registry()
    assert reg.source("architectures", "unet") == plugins.CORE
    assert {"structseg", "segthor", "totalsegmentator"} <= set(reg.names("label_maps"))
    assert set(reg.names("ensemble_methods")) == {"argmax", "logits_conv", "meta_unet", "layer_fusion"}
    assert reg.names("models") == []


def test_entry_point_plugin_adds_models_and_organs(site, monkeypatch):
    _fake_plugin(site, "acme-liver", "acme_liver", MODEL_PLUGIN)
    monkeypatch.setenv("ZOO_PLUGINS", "acme_liver")
    reg = plugins.get_registry()
    assert reg.source("models", "liver-unet") == "acme_liver"
    assert reg.source("organs", "liver") == "acme_liver"
    from zoo_ensemble.organs import default_window

    assert default_window("liver").level == 60
    info = next(p for p in reg.plugins if p.name == "acme_liver")
    assert info.distribution == "acme-liver" and info.registered["models"] == ["liver-unet"]


def test_environment_variable_limits_plugins(site, monkeypatch):
    _fake_plugin(site, "acme-liver", "acme_liver", MODEL_PLUGIN)
    monkeypatch.setenv("ZOO_PLUGINS", "something_else")
    assert "liver-unet" not in plugins.get_registry().names("models")


def test_two_plugins_with_one_id_is_an_error_naming_both(site, monkeypatch):
    _fake_plugin(site, "acme-liver", "acme_liver", MODEL_PLUGIN)
    _fake_plugin(site, "other-liver", "other_liver", MODEL_PLUGIN.replace("register_organs", "_unused"))
    monkeypatch.setenv("ZOO_PLUGINS", "acme_liver,other_liver")
    with pytest.raises(plugins.PluginConflictError, match="'acme_liver' and plugin 'other_liver'"):
        plugins.get_registry()


def test_a_plugin_cannot_replace_a_core_architecture(site, monkeypatch):
    _fake_plugin(site, "evil", "evil_arch", """
        from zoo_ensemble import hookimpl, ArchitectureSpec
        @hookimpl
        def register_architectures(register):
            register(ArchitectureSpec("unet", lambda cfg: None, {}))
    """)
    monkeypatch.setenv("ZOO_PLUGINS", "evil_arch")
    with pytest.raises(plugins.PluginConflictError, match="zoo_ensemble.core"):
        plugins.get_registry()


def test_model_specs_are_checked(site, monkeypatch):
    _fake_plugin(site, "unpinned", "unpinned", """
        from zoo_ensemble import hookimpl, ModelSpec
        @hookimpl
        def register_models(register):
            register(ModelSpec("heart-x", organs=("heart",), architecture="unet", hub_repo="acme/heart-x", revision="main"))
    """)
    monkeypatch.setenv("ZOO_PLUGINS", "unpinned")
    with pytest.raises(ZooError, match="pinned revision"):
        plugins.get_registry()


def test_plugins_command_lists_what_each_registered(site, monkeypatch, capsys):
    from zoo_ensemble.cli import main

    _fake_plugin(site, "acme-liver", "acme_liver", MODEL_PLUGIN)
    monkeypatch.setenv("ZOO_PLUGINS", "acme_liver")
    main(["plugins"])
    out = capsys.readouterr().out
    assert "acme_liver" in out and "liver-unet" in out and "zoo_ensemble.core" in out


@pytest.mark.slow
def test_installing_the_thorax_plugin_with_pip_shows_its_models(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(REPO / "plugins" / "zoo-thorax")],
        check=True, capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=str(target), ZOO_HOME=str(tmp_path / "home"), COLUMNS="200", PYTHONIOENCODING="utf-8")
    env.pop("ZOO_PLUGINS", None)
    r = subprocess.run([sys.executable, "-m", "zoo_ensemble", "list"], capture_output=True, encoding="utf-8", env=env)
    assert r.returncode == 0, r.stderr
    for model_id in ("heart-deeplabv3", "lung_left-unet", "spinal_cord-se_resunet", "trachea-unet"):
        assert model_id in r.stdout
    assert r.stdout.count("plugin thorax") == 18
    r = subprocess.run([sys.executable, "-m", "zoo_ensemble", "list", "--organ", "heart"], capture_output=True, encoding="utf-8", env=env)
    assert r.stdout.count("plugin thorax") == 3
