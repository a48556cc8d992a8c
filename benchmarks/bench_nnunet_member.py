"""An imported nnU-Net v2 member (#26) against nnU-Net's own prediction of the same CT, same
folds, same settings, in one run; and an ensemble holding it against the sum of its members.

1. In process: ``ZooModel.predict`` (our read, nnU-Net's predictor, per-organ logits, labels)
   against ``nnUNetPredictor.predict_single_npy_array`` fed by nnU-Net's own reader. The same
   code predicts, so the ratio should be about 1.
2. As commands, start-up included: ``zoo predict`` against ``nnUNetv2_predict_from_modelfolder``.
3. An argmax ensemble of the imported model with two of the first-party plugin's models: seconds
   per CT against the sum of its members' own predictions.

Without ``--model``, the model is the tests' small nnU-Net (made by nnU-Net on phantoms,
tests/nnunet_model.py; random weights: speed only) and the CTs are its held-out phantom and one
at twice the in-plane resolution.

    python benchmarks/bench_nnunet_member.py [--model FOLDER --ct FILE] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, save_figures, timed

REPO = Path(__file__).resolve().parents[1]


def tiny_model(tmp: Path) -> Path:
    env = {**os.environ, "nnUNet_raw": str(tmp / "raw"), "nnUNet_preprocessed": str(tmp / "preprocessed"), "nnUNet_results": str(tmp / "results")}
    subprocess.run([sys.executable, str(REPO / "tests" / "nnunet_model.py"), str(tmp)], env=env, check=True, capture_output=True)
    return tmp / "model" / "nnUNetTrainer__nnUNetPlans__3d_fullres"


def larger_ct(tmp: Path) -> Path:
    import SimpleITK as sitk

    from zoo_ensemble.data.phantom.generator import generate_case

    case = generate_case("A", 901, 7, 2.0)
    image = sitk.GetImageFromArray(case.image.astype("int16"))
    image.SetSpacing(case.spacing)
    path = tmp / "ct" / "large_0000.nii.gz"
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


def nnunet_in_process(model: Path, ct: Path, folds: list[int]):  # noqa: ANN201
    import torch
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(use_mirroring=True, perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(str(model), folds, "checkpoint_final.pth")

    def run():  # noqa: ANN202
        image, props = SimpleITKIO().read_images([str(ct)])
        return predictor.predict_single_npy_array(image, props, None, None, True)

    return run


def commands(model: Path, ct: Path, folds: list[int], tmp: Path, zoo_id: str) -> dict[str, float]:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "nnUNet_raw": str(tmp / "raw"), "nnUNet_preprocessed": str(tmp / "preprocessed"), "nnUNet_results": str(tmp / "results")}
    inputs = tmp / "one-ct"
    inputs.mkdir(exist_ok=True)
    (inputs / ct.name).write_bytes(ct.read_bytes())
    out = {}
    started = time.perf_counter()
    subprocess.run([str(bin_dir / "nnUNetv2_predict_from_modelfolder"), "-i", str(inputs), "-o", str(tmp / "nnunet-out"), "-m", str(model),
                    "-f", *map(str, folds), "-device", "cpu", "-npp", "1", "-nps", "1", "--disable_progress_bar"], env=env, check=True, capture_output=True)
    out["nnUNetv2_predict_s"] = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([str(bin_dir / "zoo"), "predict", zoo_id, str(ct), "-o", str(tmp / "zoo-out.nii.gz"), "--device", "cpu"], check=True, capture_output=True)
    out["zoo_predict_s"] = time.perf_counter() - started
    out["ratio"] = out["zoo_predict_s"] / out["nnUNetv2_predict_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="an nnU-Net v2 trained-model folder (default: the tests' small one)")
    parser.add_argument("--ct", type=Path, action="append", help="a CT to predict (repeatable; default: two phantoms)")
    parser.add_argument("--organs", default="heart=1,aorta=4", help="zoo import's --organs for --model")
    parser.add_argument("--folds", default="0,1")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["ZOO_HOME"] = str(tmp / "zoo-home")
        model = args.model or tiny_model(tmp)
        cts = args.ct or [tmp / "ct" / "case_0000.nii.gz", larger_ct(tmp)]
        folds = [int(f) for f in args.folds.split(",")]
        from zoo_ensemble.volumes import read_ct
        from zoo_ensemble.zoo.importing import ImportRequest, import_model

        imported = import_model(ImportRequest("nnunet", model, args.organs, name="bench-nnunet", folds=args.folds))
        print(machine())
        figures: dict[str, dict] = {}
        for ct in cts:
            shape = read_ct(ct).shape
            theirs, _ = timed(nnunet_in_process(model, ct, folds), args.repeat)
            ours, _ = timed(lambda: imported.predict(ct, device="cpu"), args.repeat)
            row = {"shape_zyx": list(shape), "nnunet_in_process_s": theirs, "zoo_in_process_s": ours, "in_process_ratio": ours / theirs}
            row.update(commands(model, ct, folds, tmp, "bench-nnunet"))
            figures[ct.name] = row
            print(f"{ct.name} {shape}: in process zoo {ours:.2f} s / nnU-Net {theirs:.2f} s = {ours / theirs:.2f}; "
                  f"commands zoo predict {row['zoo_predict_s']:.1f} s / nnUNetv2_predict {row['nnUNetv2_predict_s']:.1f} s = {row['ratio']:.2f}")
        figures["ensemble"] = ensemble(imported, cts[-1], args.repeat)
        save_figures(__file__, figures)


def ensemble(imported, ct: Path, repeat: int) -> dict:  # noqa: ANN001
    from zoo_ensemble.compose import ComposeRequest, compose
    from zoo_ensemble.volumes import read_ct
    from zoo_ensemble.zoo.model import ZooModel

    natives = ["lung_left-unet", "trachea-unet"]
    result = compose(ComposeRequest("argmax", "all", [f"local-dir:{imported.folder}", *natives], [], name="bench-mixed"))
    volume = read_ct(ct)
    whole, _ = timed(lambda: result.model.predict(volume, device="cpu"), repeat)
    parts = {m: timed(lambda m=m: ZooModel.from_pretrained(m).predict(volume, device="cpu"), repeat)[0] for m in natives}
    parts[imported.model_id] = timed(lambda: imported.predict(volume, device="cpu"), repeat)[0]
    total = sum(parts.values())
    print(f"argmax ensemble of {', '.join(parts)}: {whole:.2f} s per CT against its members' sum {total:.2f} s = {whole / total:.2f}")
    return {"members_s": parts, "ensemble_s": whole, "members_sum_s": total, "ratio": whole / total}


if __name__ == "__main__":
    main()
