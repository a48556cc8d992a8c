"""``zoo predict``: one CT to a label map file, or a cohort of CTs to a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ZooError
from . import options as opt
from .app import app
from .console import console, err_console, progress, safe


@app.command("predict")
def predict(
    model: Annotated[str, typer.Argument(help="Model id, local-dir:PATH or a model folder.")],
    inputs: Annotated[list[Path], typer.Argument(help="A CT file or DICOM folder; several, a folder of them or a .txt/.csv list make a cohort.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="One CT: the output file (.nii.gz, .nrrd, .mha, .seg.dcm, .rtstruct.dcm; default labels.nii.gz). A cohort: the output folder.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="nifti, nrrd, mha, dicom-seg or rtstruct (default: from -o's ending, else nifti). The DICOM formats need a DICOM series as input.")] = None,
    probabilities: Annotated[bool, typer.Option("--probabilities", help="Also write one probability map per organ (one CT).")] = False,
    label_map: Annotated[str, typer.Option("--label-map", help="Values to write: zoo, structseg, segthor, ... or 1=heart,...")] = "zoo",
    organs: Annotated[str | None, typer.Option("--organs", help="Only these organs (ensembles run only the members they need).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Slices per forward pass.")] = 16,
    device: opt.Device = "auto",
    precision: opt.Precision = "auto",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Cohort: recompute cases whose label map exists (default: skip them, so a cohort resumes).")] = False,
    statistics: Annotated[bool, typer.Option("--statistics", help="Cohort: per case and organ the volume in ml and mean HU (statistics.csv, .json).")] = False,
    preview: Annotated[bool, typer.Option("--preview", help="Cohort: a PNG overlay per case.")] = False,
) -> None:
    """Segment CT volumes; label maps are written on each input's exact grid.

    A cohort loads the model once, reads the next case while the current one is computed, skips
    a failing case and goes on; the exit status is 1 when any case failed.
    """
    from ..cohort_predict import LIST_SUFFIXES
    from ..dicom.series import is_dicom_series
    from ..formats import ALL_SUFFIXES, format_for, suffix

    first = inputs[0]
    series = is_dicom_series(first)
    one = len(inputs) == 1 and (series or (not first.is_dir() and first.suffix.lower() not in LIST_SUFFIXES))
    if one and not (statistics or preview) and (out is None or out.suffix):  # a file name: one output file
        chosen = format_for(out, fmt)
        target = out or Path(f"labels{suffix(chosen)}")
        _predict_one(model, inputs[0], series, target, chosen, probabilities, label_map, organs, batch_size, device, precision)
        return
    if probabilities:
        raise ZooError("--probabilities is for one CT; a cohort writes label maps")
    if out is None or out.name.lower().endswith(ALL_SUFFIXES):
        raise ZooError("a cohort needs -o FOLDER for its outputs (one file per case)")
    _predict_cohort(model, inputs, out, format_for(None, fmt), label_map, organs, batch_size, device, precision, overwrite, statistics, preview)


def _predict_one(
    ref: str, ct: Path, series: bool, out: Path, fmt: str, probabilities: bool, label_map: str, organs: str | None, batch_size: int,
    device: str, precision: str,
) -> None:
    from ..formats import ALL_SUFFIXES, check_source, needs_series
    from ..outputs import check_output_file
    from ..volumes import WRITE_SUFFIXES, probability_path, read_ct
    from ..zoo.model import ZooModel

    check_output_file(out, [ct], ALL_SUFFIXES)
    if needs_series(fmt) and not series:
        raise ZooError(f"{ct}: {fmt} references the DICOM series the CT came from; give the DICOM folder, or write --format nifti")
    model = ZooModel.from_pretrained(ref)
    lm = model.label_map(label_map, organs)
    predictor = model.predictor(device, precision, batch_size, organs)
    for organ in predictor.organs if probabilities else ():
        check_output_file(probability_path(out, organ), [ct], WRITE_SUFFIXES)
    volume = read_ct(ct)
    check_source(fmt, volume, str(ct))  # before the model runs: the DICOM outputs' identifiers
    with progress() as bar:
        task = bar.add_task(f"{model.model_id}", total=volume.shape[0])
        seg = model.predict(
            volume, organs=predictor.organs, label_map=lm, device=device, batch_size=batch_size, precision=precision,
            probabilities=probabilities, progress=lambda i, n: bar.update(task, completed=i),
        )
    seg.save(out, fmt)
    what = f"{fmt}: {', '.join(seg.organs)}" if needs_series(fmt) else ", ".join(f"{o}={v}" for o, v in seg.values.items())
    console.print(f"wrote {safe(out)} ({what}; {seg.contested} contested voxels; {_precision(predictor)})")
    for path in seg.save_probabilities(out) if probabilities else ():
        console.print(f"wrote {safe(path)}")


def _predict_cohort(
    ref: str, inputs: list[Path], out: Path, fmt: str, label_map: str, organs: str | None, batch_size: int, device: str,
    precision: str, overwrite: bool, statistics: bool, preview: bool,
) -> None:
    from ..cohort_predict import CohortRun, gather_cases, open_output, summary
    from ..distributed import join, main_first
    from ..zoo.model import ZooModel

    cases = gather_cases(inputs)
    world, where = join(device)  # under torchrun: this process's share of the cases, on its own GPU
    model = ZooModel.from_pretrained(ref)
    lm = model.label_map(label_map, organs)
    predictor = model.predictor(str(where), precision, batch_size, organs)
    with main_first():
        if world.is_main:
            open_output(out, inputs, model.model_id, lm.name, fmt)
    with progress() as bar:
        task = bar.add_task(f"{model.model_id}: {len(cases)} cases", total=len(cases))
        slices = bar.add_task("slices of the current case", total=1)
        run = CohortRun(
            model, dict(organs=predictor.organs, label_map=lm, device=str(where), batch_size=batch_size, precision=precision), out, fmt,
            overwrite, statistics, preview, progress=lambda i, n: bar.update(task, completed=i, total=n),
            slice_progress=lambda i, n: bar.update(slices, completed=i, total=n), world=world,
        )
        results = run.run(cases)
    for r in results:
        if r.status == "failed":
            err_console.print(f"failed: {safe(r.case_id)}: {safe(r.message)}", highlight=False, soft_wrap=True)
    s = summary(results)
    processes = f", {world.size} processes" if world.active else ""
    console.print(f"{s['done']} cases segmented, {s['skipped']} already done, {s['failed']} failed; outputs in {safe(out)} ({_precision(predictor)}{processes})")
    if s["failed"]:
        raise typer.Exit(code=1)


def _precision(predictor) -> str:
    """What the networks computed in, for the result line (``--precision auto`` decides per machine)."""
    import torch

    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(predictor.precision, "fp32")
