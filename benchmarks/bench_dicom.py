"""DICOM output figures (issue #12): on the real chest CT written as a DICOM series (512 x 512 x
133), the seconds to predict six organs and to write the result as NIfTI, DICOM-SEG and RTSTRUCT,
each as a share of the prediction time, in one run.

The model is the argmax ensemble of the shipped zoo-thorax members, the best per organ
(pip install ./plugins/zoo-thorax). The CT comes from --data (a folder with ct.nii.gz: `zoo data
sample --out DIR` builds one), by default $ZOO_SHARED/data/lidc-idri-0001 or ../shared/....

Run: python benchmarks/bench_dicom.py [--data DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, SAMPLE, best_of, machine, save_figures


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SAMPLE)
    p.add_argument("--repeat", type=int, default=3, help="writes timed this many times (the best is reported)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    if not (args.data / "ct.nii.gz").is_file():
        raise SystemExit(f"no ct.nii.gz in {args.data}: run `zoo data sample --out DIR` and pass --data DIR")

    import SimpleITK as sitk

    from zoo_ensemble.api import compose_ensemble
    sys.path.insert(0, str(REPO / "tests"))  # the tests' DICOM writer
    from dicom_writer import write_ct_series
    from zoo_ensemble.formats import write_prediction
    from zoo_ensemble.labelmaps import get_label_map
    from zoo_ensemble.volumes import read_ct

    print(machine())
    work = Path(tempfile.mkdtemp(prefix="bench-dicom-"))
    os.environ["ZOO_HOME"] = str(work / "home")
    image = sitk.ReadImage(str(args.data / "ct.nii.gz"))
    write_ct_series(sitk.Clamp(image, lowerBound=-1024), work / "series")

    started = time.perf_counter()
    volume = read_ct(work / "series")
    read_s = time.perf_counter() - started
    ens = compose_ensemble("argmax", out=work / "home" / "models" / "bench-six")
    predictor = ens.predictor("cpu", "fp32")
    started = time.perf_counter()
    masks = predictor.predict(volume).masks()
    predict_s = time.perf_counter() - started
    producer, lm = ens.producer(), get_label_map("zoo")

    print(f"CT: {volume.shape[2]} x {volume.shape[1]} x {volume.shape[0]} as a DICOM series ({len(volume.dicom_files)} files); "
          f"ensemble {ens.model_id}: {', '.join(ens.organs)}")
    print(f"read the DICOM series (headers checked): {read_s:.2f} s")
    print(f"predict ({len(ens.organs)} organs, argmax of {len(ens.config['members'])} members): {predict_s:.2f} s")
    figures = {"read_s": read_s, "predict_s": predict_s, "write": {}}
    for fmt, name in (("nifti", "x.nii.gz"), ("dicom-seg", "x.seg.dcm"), ("rtstruct", "x.rtstruct.dcm")):
        seconds = best_of(lambda: write_prediction(fmt, masks, lm, volume, work / name, producer), args.repeat)
        size = (work / name).stat().st_size / 2**20
        print(f"write {fmt:9s}: {seconds:6.2f} s ({seconds / predict_s:.3f} of the prediction), {size:.1f} MiB")
        figures["write"][fmt] = {"seconds": seconds, "share_of_prediction": seconds / predict_s, "mib": size}
    save_figures(__file__, figures, args.json)


if __name__ == "__main__":
    main()
