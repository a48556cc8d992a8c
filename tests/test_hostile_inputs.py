"""Hostile and malformed inputs: model repos (served by the test Hub), local folders and command
lines. Every one must end with exit status 2 and one ``error:`` line, no traceback, under an
address-space limit (2 GiB beyond the libraries) and with the user's files byte-identical.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hostile_runner import file_digests, run_cases



def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _edit_card(folder: Path, old: str, new: str) -> None:
    text = (folder / "README.md").read_text()
    assert old in text, old
    (folder / "README.md").write_text(text.replace(old, new, 1))


def _safetensors(tensors: dict[str, tuple[list[int], bytes]]) -> bytes:
    header, offset, blobs = {}, 0, b""
    for name, (shape, data) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs += data
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + blobs


def _local_cases(base: Path, work: Path) -> list[tuple[str, object]]:
    """(name, how to spoil a copy of the base model folder) for ``zoo verify local-dir:...``."""
    def cfg(**kw):
        return lambda f: _edit_config(f, **kw)

    def card(old, new):
        return lambda f: _edit_card(f, old, new)

    def write(name, data):
        return lambda f: (f / name).write_bytes(data)

    def drop_sha(f):
        text = (f / "README.md").read_text()
        (f / "README.md").write_text("\n".join(ln for ln in text.splitlines() if "weights_sha256" not in ln) + "\n")

    def weights(tensors):
        return lambda f: (drop_sha(f), (f / "model.safetensors").write_bytes(_safetensors(tensors)))

    def ensemble(members, options=None):
        def spoil(f):
            member = json.loads((base / "config.json").read_text())
            _edit_card(f, "kind: binary", "kind: ensemble\n  method: argmax\n  members:\n  - model_id: heart-unet")
            (f / "config.json").write_text(json.dumps({
                "format": 1, "kind": "ensemble", "method": "argmax", "organs": ["heart"], "options": options or {},
                "members": members(member), "input_size": member["input_size"], "crop": "center", "spacing": member["spacing"], "threshold": 0.5,
            }))
        return spoil

    return [
        ("widths of 100000 channels", cfg(widths=[100000] * 5)),
        ("input size of a billion", cfg(input_size=[10**9, 10**9])),
        ("input size as text", cfg(input_size="large")),
        ("threshold as text", cfg(threshold="0.5")),
        ("widths as text", cfg(widths=["a", "b"])),
        ("negative widths", cfg(widths=[-8, 16, 32, 64, 64])),
        ("a hub encoder inside the config", cfg(encoder="hf-hub:evil/encoder")),
        ("a local-dir encoder inside the config", cfg(encoder="local-dir:/etc")),
        ("output stride 3", cfg(output_stride=3)),
        ("no windows", cfg(windows=[])),
        ("a negative window width", cfg(windows=[{"width": -5, "level": 0}])),
        ("a hundred windows", cfg(windows=[{"width": 100, "level": 0}] * 100)),
        ("an unknown organ", cfg(organs=["brain"])),
        ("organs as a string", cfg(organs="heart")),
        ("an unknown config field", cfg(evil_field=1)),
        ("an unknown architecture", cfg(architecture="transformer9000")),
        ("config format 99", cfg(format=99)),
        ("config not UTF-8", write("config.json", b'{"architecture": "\xff\xfe"}')),
        ("config not JSON", write("config.json", b"{architecture: unet")),
        ("config a JSON list", write("config.json", b"[1, 2, 3]")),
        ("config deeply nested", write("config.json", b"[" * 100000 + b"]" * 100000)),
        ("config of 8 MB", write("config.json", b" " * (8 << 20) + b"{}")),
        ("no config", lambda f: (f / "config.json").unlink()),
        ("model id with markup", card("model_id: heart-unet", "model_id: '[/evil]'")),
        ("model id with an escape sequence", card("model_id: heart-unet", 'model_id: "\\e]0;pwned\\a"')),
        ("model id with a path", card("model_id: heart-unet", "model_id: ../../etc")),
        ("card spacing zero", card("    spacing:\n    - 4.0\n    - 4.0", "    spacing:\n    - 0\n    - 0")),
        ("card spacing differs from config", card("    spacing:\n    - 4.0\n    - 4.0", "    spacing:\n    - 3.5\n    - 3.5")),
        ("card threshold as text", card("threshold: 0.5", "threshold: half")),
        ("card trained_on not a mapping", card("    trained_on:\n", "    trained_on: [1, 2]\n    was_trained_on:\n")),
        ("card front matter not YAML", write("README.md", b"---\nzoo: [unclosed\n---\n")),
        ("card without a zoo section", write("README.md", b"---\nlicense: mit\n---\nhello\n")),
        ("no card", lambda f: (f / "README.md").unlink()),
        ("only pickled weights", lambda f: ((f / "model.safetensors").unlink(), (f / "pytorch_model.bin").write_bytes(b"\x80\x04evil"))),
        ("truncated weights", lambda f: (drop_sha(f), (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:1000]))),
        ("weights changed after the card", lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")),
        ("weights of another shape", weights({"head.weight": ([1, 8, 1, 1], b"\0" * 32)})),
        ("a header claiming a huge tensor", weights({"head.weight": ([100000, 100000], b"\0" * 32)})),
        ("weights header not JSON", lambda f: (drop_sha(f), (f / "model.safetensors").write_bytes(struct.pack("<Q", 10) + b"not json!!"))),
        ("weights header of 2**60 bytes", lambda f: (drop_sha(f), (f / "model.safetensors").write_bytes(struct.pack("<Q", 2**60) + b"{}"))),
        ("an ensemble of 500 members", ensemble(lambda m: [{"model_id": f"m{i}", "organs": ["heart"], "config": m} for i in range(500)])),
        ("an ensemble member without a config", ensemble(lambda m: [{"model_id": "m", "organs": ["heart"]}])),
        ("an ensemble member asking for 100000 channels", ensemble(lambda m: [{"model_id": "m", "organs": ["heart"], "config": {**m, "widths": [100000] * 5}}])),
        ("an ensemble member with a markup id", ensemble(lambda m: [{"model_id": "[/x]", "organs": ["heart"], "config": m}])),
        ("ensemble options not a mapping", ensemble(lambda m: [{"model_id": "m", "organs": ["heart"], "config": m}], options=[1, 2])),
    ]


def _ct(path: Path, array: np.ndarray) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


def _cli_cases(user: Path, model: Path, cohort: Path) -> list[tuple[str, list[str]]]:
    ct = _ct(user / "ct.nii.gz", np.full((3, 40, 40), -1000, np.int16))
    nan = np.full((3, 40, 40), -1000, np.float32)
    nan[1, 1, 1] = np.nan
    nan_ct = _ct(user / "nan.mha", nan)
    flat = _ct(user / "flat.nii.gz", np.full((40, 40), -1000, np.int16))
    (user / "thesis").mkdir()
    (user / "thesis" / "chapter1.tex").write_text("years of work")
    (user / "notes.txt").write_text("a file")
    m = f"local-dir:{model}"
    return [
        ("predict onto its own CT", ["predict", m, str(ct), "-o", str(ct)]),
        ("predict into a folder", ["predict", m, str(ct), "-o", str(user / "thesis")]),
        ("predict under a file", ["predict", m, str(ct), "-o", str(user / "notes.txt" / "x.nii.gz")]),
        ("predict to an unknown suffix", ["predict", m, str(ct), "-o", str(user / "x.docx")]),
        ("predict a CT with NaN", ["predict", m, str(nan_ct), "-o", str(user / "o.nii.gz")]),
        ("predict a 2D image", ["predict", m, str(flat), "-o", str(user / "o.nii.gz")]),
        ("predict a missing CT", ["predict", m, str(user / "missing.nii.gz"), "-o", str(user / "o.nii.gz")]),
        ("predict with an unknown label map", ["predict", m, str(ct), "-o", str(user / "o.nii.gz"), "--label-map", "nonsense"]),
        ("predict with batch size 0", ["predict", m, str(ct), "--batch-size", "0"]),
        ("preview onto its own CT", ["data", "preview", str(ct), "-o", str(ct)]),
        ("preview with 0 slices", ["data", "preview", str(ct), "--slices", "0", "-o", str(user / "p.png")]),
        ("train into a user's folder", ["train", "--organ", "heart", "--data", str(cohort), "--size", "64", "--spacing", "4,4", "-o", str(user / "thesis")]),
        ("train with a zero spacing", ["train", "--organ", "heart", "--data", str(cohort), "--spacing", "0,0"]),
        ("train with a markup name", ["train", "--organ", "heart", "--data", str(cohort), "--name", "[/x]"]),
        ("phantom over a user's folder", ["data", "phantom", "--out", str(user / "thesis"), "--cases", "1"]),
        ("evaluate without --pred", ["evaluate", "--gt", str(ct)]),
        ("evaluate with a missing --pred", ["evaluate", "--pred", str(user / "none.nii.gz"), "--gt", str(ct), "-o", str(user / "ev")]),
        ("an unknown option", ["predict", m, str(ct), "--bogus"]),
        ("an unknown command", ["segment-everything"]),
        ("a missing argument", ["verify"]),
        ("a bare name with a slash", ["verify", "evil/model"]),
        ("an unknown model", ["verify", "no-such-model"]),
    ]


def _hub_cases(hub_server, base: Path) -> list[tuple[str, list[str]]]:
    from hub_server import FileEntry, Repo

    def repo(name: str, spoil) -> str:
        folder = base.parent / f"hub-{name}"
        shutil.copytree(base, folder)
        spoil(folder)
        r = Repo(f"evil/{name}")
        r.branches["main"] = hub_server.state.new_commit(r, {p.name: FileEntry(p.read_bytes(), p.suffix == ".safetensors") for p in folder.iterdir()})
        hub_server.state.repos[r.repo_id] = r
        return f"hf-hub:{r.repo_id}"

    return [
        ("pull a repo asking for 360 GB", ["pull", repo("huge", lambda f: _edit_config(f, widths=[100000] * 5))]),
        ("pull a repo with a markup id", ["pull", repo("markup", lambda f: _edit_card(f, "model_id: heart-unet", "model_id: '[/evil]'"))]),
        ("pull a repo with a hub encoder", ["pull", repo("encoder", lambda f: _edit_config(f, encoder="hf-hub:evil/encoder"))]),
        ("pull a repo with pickles only", ["pull", repo("pickle", lambda f: ((f / "model.safetensors").rename(f / "pytorch_model.bin")))]),
        ("pull a repo that does not exist", ["pull", "hf-hub:evil/nothing-here"]),
    ]


@pytest.mark.slow
def test_hostile_inputs_fail_cleanly_within_memory(trained_heart, cohort_a, hub_server, tmp_path):
    hub_server.state.repos.clear()
    user, models = tmp_path / "user", tmp_path / "models"
    user.mkdir()
    models.mkdir()
    base = models / "base"
    shutil.copytree(trained_heart, base)
    cases: list[dict] = []
    for name, spoil in _local_cases(base, models):
        folder = models / f"case{len(cases):02d}"
        shutil.copytree(base, folder)
        spoil(folder)
        cases.append({"name": name, "argv": ["verify", f"local-dir:{folder}"]})
    cases += [{"name": n, "argv": a} for n, a in _cli_cases(user, base, cohort_a.root)]
    cases += [{"name": n, "argv": a} for n, a in _hub_cases(hub_server, base)]
    cases.append({"name": "zoo list after the hostile pulls", "argv": ["list"], "expect": 0})
    assert len(cases) >= 40
    before = file_digests(user)
    hf = tmp_path / "hf"
    env = dict(
        os.environ, ZOO_HOME=str(tmp_path / "home"), ZOO_PLUGINS="none", HF_ENDPOINT=hub_server.url, HF_HOME=str(hf),
        HF_HUB_CACHE=str(hf / "hub"), HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_TOKEN="hf_dummy", COLUMNS="200",
    )
    env.pop("HF_HUB_OFFLINE", None)
    report = run_cases(cases, tmp_path, env)
    failures = []
    for case, result in zip(cases, report["results"]):
        expect = case.get("expect", 2)
        lines = [ln for ln in result["stderr"].splitlines() if ln.strip() and not ln.startswith("warning:")]
        if expect == 0:
            ok = result["code"] in (0, None) and "Traceback" not in result["stderr"]
        else:
            ok = result["code"] == 2 and len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result["stderr"]
        ok = ok and "\x1b" not in result["stderr"] + result["stdout"]
        if not ok:
            failures.append(f"{case['name']}: exit {result['code']}, stderr {result['stderr'][-600:]!r}")
    assert not failures, "\n".join(failures)
    assert report["peak_rss"] < 2 * 2**30, f"peak resident memory {report['peak_rss'] / 2**20:.0f} MiB"
    assert file_digests(user) == before  # the user's files are byte-identical
    assert "[/evil]" not in (tmp_path / "home" / "hub-index.json").read_text() if (tmp_path / "home" / "hub-index.json").exists() else True
