from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from zoo_ensemble.zoo import hub as zhub
from zoo_ensemble.errors import HubError, ModelFormatError, UnknownModelError
from zoo_ensemble.zoo.catalog import HubRef, resolve
from zoo_ensemble.zoo.model import ZooModel, pull


def _outputs(folder):
    torch.manual_seed(0)
    x = torch.randn(2, 1, 64, 64) * 300
    with torch.no_grad():
        return ZooModel.from_folder(folder).network(x)


def test_push_then_pull_gives_identical_outputs(hub, trained_heart):
    info = zhub.push(trained_heart, "zoo-test/heart-unet")
    assert info.oid
    pulled = pull("zoo-test/heart-unet")
    assert pulled.source() == f"hf-hub:zoo-test/heart-unet@{info.oid}" and len(info.oid) == 40
    assert torch.equal(_outputs(pulled.folder), _outputs(trained_heart))
    assert zhub.index()["zoo-test/heart-unet"]["commit"] == info.oid
    assert zhub.index()["zoo-test/heart-unet"]["model_id"] == "heart-unet"
    # the pulled model is listed and resolvable by id and by hf-hub: prefix
    assert resolve("hf-hub:zoo-test/heart-unet") == HubRef("zoo-test/heart-unet")  # pulled (checked) again when loaded
    assert ZooModel.from_pretrained("hf-hub:zoo-test/heart-unet").folder == pulled.folder
    assert resolve("heart-unet") == pulled.folder
    found = zhub.search()
    assert [m["repo"] for m in found] == ["zoo-test/heart-unet"] and found[0]["zoo"]["organs"] == ["heart"]
    assert zhub.search(organ="aorta") == []
    from zoo_ensemble.cli import main
    from zoo_ensemble.cli.console import console

    with console.capture() as shown:
        main(["list", "--hub"])
    row = next(line for line in shown.get().splitlines() if "zoo-test/heart-unet" in line)
    assert "binary" in row and "heart" in row and "unet" in row and "350/50" in row and info.oid[:10] in row
    with console.capture() as shown:
        main(["list", "--hub", "--organ", "aorta"])
    assert "no zoo-ensemble models found" in shown.get()


def test_pull_a_pinned_revision_and_offline_cache(hub, trained_heart, monkeypatch):
    first = zhub.push(trained_heart, "zoo-test/heart-pinned")
    zhub.push(trained_heart, "zoo-test/heart-pinned", message="again")
    pulled = pull("zoo-test/heart-pinned", revision=first.oid)
    assert pulled.source() == f"hf-hub:zoo-test/heart-pinned@{first.oid}"

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.state.requests.clear()
    again = pull("zoo-test/heart-pinned", revision=first.oid)
    assert again.folder == pulled.folder and hub.state.requests == []  # nothing went over the network
    with pytest.raises(HubError, match="not in the local cache"):
        pull("zoo-test/never-pulled")


def test_tampered_weights_are_refused(hub, trained_heart, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(trained_heart, bad)
    state = load_file(str(bad / "model.safetensors"))
    state["head.bias"] += 1.0
    save_file(state, str(bad / "model.safetensors"))  # the card still records the old sha256
    with pytest.raises(ModelFormatError, match="sha256"):
        zhub.push(bad, "zoo-test/tampered")  # refused before upload
    # a repo whose weights were swapped on the server side is refused at pull
    zhub.push(trained_heart, "zoo-test/swapped")
    repo = hub.state.repos["zoo-test/swapped"]
    files = dict(repo.commits[repo.branches["main"]])
    from hub_server import FileEntry

    files["model.safetensors"] = FileEntry((bad / "model.safetensors").read_bytes(), True)
    repo.branches["main"] = hub.state.new_commit(repo, files)
    with pytest.raises(ModelFormatError, match="sha256"):
        pull("zoo-test/swapped")


def test_pickle_only_and_missing_repos(hub, trained_heart, tmp_path):
    from hub_server import FileEntry, Repo

    repo = Repo("zoo-test/pickled")
    repo.branches["main"] = hub.state.new_commit(repo, {
        "README.md": FileEntry((trained_heart / "README.md").read_bytes(), False),
        "config.json": FileEntry((trained_heart / "config.json").read_bytes(), False),
        "pytorch_model.bin": FileEntry(b"\x80\x04not really a pickle", True),
    })
    hub.state.repos[repo.repo_id] = repo
    with pytest.raises(ModelFormatError, match="only pickled weights"):
        pull("zoo-test/pickled")
    with pytest.raises(UnknownModelError, match="not found"):
        pull("zoo-test/does-not-exist")
    with pytest.raises(UnknownModelError, match="no revision"):
        zhub.push(trained_heart, "zoo-test/revs") and pull("zoo-test/revs", revision="v9")


def test_network_failure_mid_download_leaves_a_consistent_cache(hub, trained_heart):
    zhub.push(trained_heart, "zoo-test/flaky")
    hub.state.break_next.add("model.safetensors")
    try:
        pull("zoo-test/flaky")
    except (HubError, ModelFormatError):
        pass  # the cut may surface as an error, or huggingface_hub may have retried by itself
    pulled = pull("zoo-test/flaky")  # a retry works
    assert torch.equal(_outputs(pulled.folder), _outputs(trained_heart))


def test_push_refuses_an_invalid_card_and_can_open_a_pr(hub, trained_heart, tmp_path):
    bad = tmp_path / "badcard"
    shutil.copytree(trained_heart, bad)
    (bad / "README.md").write_text((bad / "README.md").read_text().replace("kind: binary", "kind: nonsense"))
    with pytest.raises(ModelFormatError, match="zoo.kind"):
        zhub.push(bad, "zoo-test/badcard")
    assert "zoo-test/badcard" not in hub.state.repos
    zhub.push(trained_heart, "zoo-test/pr-target")
    info = zhub.push(trained_heart, "zoo-test/pr-target", create_pr=True)
    assert info.pr_url and "discussions/1" in info.pr_url
    assert "refs/pr/1" in hub.state.repos["zoo-test/pr-target"].branches


def test_unreachable_hub_is_one_clear_error(hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")
    with pytest.raises(HubError, match="cannot reach the Hub"):
        pull("zoo-test/anything")


def test_a_pulled_card_cannot_take_over_another_models_id(hub, trained_heart, tmp_path, monkeypatch):
    """A repo whose card calls itself like a local model is listed under its repo and never
    shadows the local one."""
    from zoo_ensemble.zoo.catalog import list_models

    local = tmp_path / "home" / "models" / "heart-unet"
    shutil.copytree(trained_heart, local)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    zhub.push(trained_heart, "evil/heart-unet")
    pulled = pull("evil/heart-unet")
    assert resolve("heart-unet") == local
    ids = {r.model_id: r for r in list_models()}
    assert ids["heart-unet"].folder == local and ids["hf-hub:evil/heart-unet"].folder == pulled.folder


def test_credentials_in_the_endpoint_never_reach_a_message(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://alice:s3cret@127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert zhub.endpoint() == "http://***@127.0.0.1:9"
    with pytest.raises((HubError, UnknownModelError)) as exc:
        pull("zoo-test/anything")
    assert "s3cret" not in str(exc.value) and "alice" not in str(exc.value)
