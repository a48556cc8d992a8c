from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per xdist worker (set before torch is imported): N workers share the
    # CPUs instead of each starting a thread per CPU and oversubscribing them
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZOO_SHARED", REPO.parent / "shared"))
LIDC = SHARED / "data" / "lidc-idri-0001"


@pytest.fixture(scope="session")
def lidc() -> Path:
    if not (LIDC / "ct.nii.gz").exists():
        pytest.skip(f"real sample CT not found at {LIDC} (set ZOO_SHARED)")
    return LIDC


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own zoo home so nothing leaks between tests or into the user's,
    sees only the plugins it installs itself, and a console wide enough for whole tables."""
    from zoo_ensemble.registry import plugins
    from zoo_ensemble.cli.console import console

    monkeypatch.setenv("ZOO_HOME", str(tmp_path_factory.mktemp("zoo-home")))
    monkeypatch.setenv("ZOO_PLUGINS", "none")
    monkeypatch.setattr(console, "_width", 200)
    plugins.reset_registry()
    yield
    plugins.reset_registry()


@pytest.fixture
def run_cli(capsys):
    """Run the zoo CLI in this process: ``run_cli(args)`` gives (exit status, stdout, stderr)."""
    from zoo_ensemble.cli import main

    def run(args: list[str]) -> tuple[int, str, str]:
        try:
            main(args)
            code = 0
        except SystemExit as stop:
            code = stop.code
        cap = capsys.readouterr()
        return code, cap.out, cap.err

    return run


@pytest.fixture(scope="session")
def cohort_a(tmp_path_factory):
    from zoo_ensemble.data.phantom import write_cohort

    return write_cohort(tmp_path_factory.mktemp("cohort-a"), "A", cases=4, seed=3, scale=4.0)


@pytest.fixture(scope="session")
def cohort_b(tmp_path_factory):
    from zoo_ensemble.data.phantom import write_cohort

    return write_cohort(tmp_path_factory.mktemp("cohort-b"), "B", cases=3, seed=3, scale=4.0)


@pytest.fixture(scope="session")
def tiny_slices(cohort_a):
    """Prepared 64 x 64 slices of cohort A (train: 2 cases, val: 1) for fast training tests."""
    from zoo_ensemble.data.slices import load_cases

    organs = ["heart", "trachea"]
    cases = load_cases(cohort_a, cohort_a.cases[:3], organs, 64)
    return cases[:2], cases[2:], organs


@contextlib.contextmanager
def zoo_home_env(path):
    """ZOO_HOME set to ``path`` for a session-scoped fixture (monkeypatch is per test)."""
    old = os.environ.get("ZOO_HOME")
    os.environ["ZOO_HOME"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("ZOO_HOME")
        else:
            os.environ["ZOO_HOME"] = old


@pytest.fixture(scope="session")
def trained_heart(cohort_a, tmp_path_factory):
    """A tiny heart model trained for a few steps and saved as a zoo model folder."""
    from zoo_ensemble.training.train import TrainRequest, train_model
    from zoo_ensemble.training.trainer import TrainConfig

    with zoo_home_env(tmp_path_factory.mktemp("trained-home")) as home:
        folder, _ = train_model(TrainRequest(
            ["heart"], "unet", [cohort_a], out=home / "heart-unet", input_size=(64, 64), spacing=(4.0, 4.0),
            config=TrainConfig(epochs=2, steps_per_epoch=3, batch_size=4, seed=0),
        ))
    return folder


@pytest.fixture(scope="session")
def hub_server():
    from hub_server import HubServer

    with HubServer() as server:
        yield server


@pytest.fixture
def hub(hub_server, tmp_path, monkeypatch):
    """huggingface_hub pointed at the local test Hub, with a fresh cache and a dummy token."""
    from huggingface_hub import constants

    hub_server.state.repos.clear()  # every test starts with an empty Hub
    hub_server.state.lfs.clear()
    hf_home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_dummy_token_for_tests")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", hub_server.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub_server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    return hub_server


@pytest.fixture(scope="session")
def member_zoo(cohort_a, tmp_path_factory):
    """A zoo home with three tiny binary members (trained a few steps on cohort A, 64 x 64)."""
    from zoo_ensemble.training.train import TrainRequest, train_model
    from zoo_ensemble.training.trainer import TrainConfig

    with zoo_home_env(tmp_path_factory.mktemp("member-zoo")) as home:
        for organ, arch in (("heart", "unet"), ("trachea", "se_resunet"), ("lung_left", "deeplabv3")):
            train_model(TrainRequest(
                [organ], arch, [cohort_a], input_size=(64, 64), spacing=(4.0, 4.0),
                config=TrainConfig(epochs=2, steps_per_epoch=2, batch_size=4, seed=0),
            ))
    return home


@pytest.fixture
def in_member_zoo(member_zoo, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(member_zoo))
    return member_zoo


@pytest.fixture(scope="session")
def nnunet_model(tmp_path_factory):
    """A small nnU-Net v2 trained-model folder made by nnU-Net itself (tests/nnunet_model.py),
    and nnU-Net's own prediction of its held-out CT (both folds, mirroring, probabilities)."""
    pytest.importorskip("nnunetv2", reason="the nnunet extra is not installed")
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("nnunet")
    env = {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "preprocessed"), "nnUNet_results": str(root / "results")}
    subprocess.run([sys.executable, str(Path(__file__).parent / "nnunet_model.py"), str(root)], env=env, check=True, capture_output=True)
    folder = root / "model" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    predict = Path(sys.executable).parent / "nnUNetv2_predict_from_modelfolder"
    subprocess.run(
        [str(predict), "-i", str(root / "ct"), "-o", str(root / "reference"), "-m", str(folder), "-f", "0", "1", "-device", "cpu",
         "--save_probabilities", "-npp", "1", "-nps", "1", "--disable_progress_bar"],
        env=env, check=True, capture_output=True,
    )
    return folder
