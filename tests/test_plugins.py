from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zoo_ensemble.registry import plugins

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
    monkeypatch.delenv("ZOO_PLUGINS")
    assert "liver-unet" in plugins.get_registry().names("models")  # the plugin loads when nothing limits it...
    for limit in ("something_else", "none", ""):
        plugins.reset_registry()
        monkeypatch.setenv("ZOO_PLUGINS", limit)
        reg = plugins.get_registry()
        assert "liver-unet" not in reg.names("models") and "liver" not in reg.names("organs"), limit  # ...and not otherwise
        assert "unet" in reg.names("architectures")


def test_two_plugins_with_one_id_is_an_error_naming_both(site, monkeypatch, caplog):
    _fake_plugin(site, "acme-liver", "acme_liver", MODEL_PLUGIN)
    _fake_plugin(site, "other-liver", "other_liver", MODEL_PLUGIN.replace("register_organs", "_unused"))
    monkeypatch.setenv("ZOO_PLUGINS", "acme_liver,other_liver")
    reg = plugins.get_registry()  # everything else keeps working
    assert "liver-unet" not in reg.names("models") and "unet" in reg.names("architectures")
    with pytest.raises(plugins.PluginConflictError, match="'acme_liver' and plugin 'other_liver'"):
        reg.get("models", "liver-unet")  # neither model is used in the other's place
    assert any("liver-unet" in r.getMessage() for r in caplog.records)


def test_a_plugin_cannot_replace_a_core_architecture(site, monkeypatch, caplog):
    _fake_plugin(site, "evil", "evil_arch", """
        from zoo_ensemble import hookimpl, ArchitectureSpec
        @hookimpl
        def register_architectures(register):
            register(ArchitectureSpec("unet", lambda cfg: None, {}))
    """)
    monkeypatch.setenv("ZOO_PLUGINS", "evil_arch")
    reg = plugins.get_registry()
    assert reg.source("architectures", "unet") == plugins.CORE
    assert any("may not replace the core" in r.getMessage() and "evil_arch" in r.getMessage() for r in caplog.records)


def test_model_specs_are_checked(site, monkeypatch, caplog):
    _fake_plugin(site, "unpinned", "unpinned", """
        from zoo_ensemble import hookimpl, ModelSpec
        @hookimpl
        def register_models(register):
            register(ModelSpec("heart-ok", organs=("heart",), architecture="unet", path="/nowhere"))
            register(ModelSpec("heart-x", organs=("heart",), architecture="unet", hub_repo="acme/heart-x", revision="main"))
    """)
    monkeypatch.setenv("ZOO_PLUGINS", "unpinned")
    reg = plugins.get_registry()
    assert reg.names("models") == []  # the whole hook's registrations are dropped, not half of them
    assert any("pinned revision" in r.getMessage() and "unpinned" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("body", [
    "raise RuntimeError('boom')",
    "register(('heart', 'not a label map'))",
    "register(None)",
])
def test_a_broken_plugin_is_skipped_and_every_command_keeps_working(body, site, monkeypatch, capsys, tmp_path):
    from zoo_ensemble.cli import main

    _fake_plugin(site, "broken", "broken_maps", f"""
        from zoo_ensemble import hookimpl
        @hookimpl
        def register_label_maps(register):
            {body}
    """)
    monkeypatch.setenv("ZOO_PLUGINS", "broken_maps")
    main(["data", "phantom", "--out", str(tmp_path / "c"), "--cases", "1", "--scale", "8"])
    assert (tmp_path / "c" / "dataset.json").exists()
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "plugin broken_maps is skipped for label maps" in warnings[0]


def test_a_look_alike_distribution_cannot_shadow_an_allowed_plugin(site, monkeypatch, caplog):
    _fake_plugin(site, "acme-liver", "acme_liver", MODEL_PLUGIN)
    evil = MODEL_PLUGIN.replace("acme/liver-unet", "evil/liver-unet").replace("register_organs", "_unused")
    (site / "evil_liver.py").write_text(textwrap.dedent(evil))
    info = site / "evil-liver-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-liver\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[zoo_ensemble]\nacme_liver = evil_liver\n")  # the same entry-point name
    monkeypatch.setenv("ZOO_PLUGINS", "acme-liver:acme_liver")
    reg = plugins.get_registry()
    assert reg.get("models", "liver-unet").hub_repo == "acme/liver-unet"
    assert reg.source("models", "liver-unet") == "acme-liver:acme_liver"
    plugins.reset_registry()
    monkeypatch.setenv("ZOO_PLUGINS", "acme_liver")  # ambiguous: neither loads, and the warning says why
    assert plugins.get_registry().names("models") == []
    assert any("ambiguous" in r.getMessage() and "evil-liver" in r.getMessage() for r in caplog.records)


def test_naming_a_missing_plugin_is_a_warning(site, monkeypatch, caplog):
    monkeypatch.setenv("ZOO_PLUGINS", "not_installed")
    plugins.get_registry()
    assert any("'not_installed', which is not installed" in r.getMessage() for r in caplog.records)


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
