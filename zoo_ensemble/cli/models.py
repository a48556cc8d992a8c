"""``zoo train``, ``zoo predict`` and model evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ZooError
from .app import app
from .console import console, progress, progress_callback, safe


def _datasets(paths: list[Path], labels: str | None) -> list:
    from ..data.dataset import open_dataset

    return [open_dataset(p, label_map=labels) for p in paths]


@app.command("train")
def train(
    organ: Annotated[list[str], typer.Option("--organ", help="Organ to segment; repeat for a multiclass model.")],
    data: Annotated[list[Path], typer.Option("--data", help="Dataset folder; repeat to pool datasets.")],
    arch: Annotated[str, typer.Option("--arch", help="unet, se_resunet or deeplabv3.")] = "unet",
    variant: Annotated[str, typer.Option(help="Model size: tiny (CPU), small, paper (GPU).")] = "tiny",
    name: Annotated[str | None, typer.Option("--name", help="Model id (default <organ>-<arch>).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Model folder (default: the local zoo).")] = None,
    size: Annotated[int | None, typer.Option(help="Crop size in pixels after resampling (default: the variant's: tiny 160, small 256, paper 320).")] = None,
    spacing: Annotated[str | None, typer.Option(help="In-plane pixel spacing X,Y in mm every slice is resampled to (default: the variant's: tiny 2.2,2.2, small 1.4,1.4, paper 1.0,1.0).")] = None,
    epochs: Annotated[int, typer.Option(min=1, max=100000, help="Maximum epochs.")] = 40,
    steps: Annotated[int, typer.Option(min=1, max=1000000, help="Batches per epoch.")] = 40,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Slices per batch.")] = 8,
    lr: Annotated[float, typer.Option(help="Initial learning rate (Adam).")] = 1e-3,
    minutes: Annotated[float | None, typer.Option(help="Wall-clock budget; stops after the epoch that crosses it.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for initialisation, sampling and augmentation.")] = 0,
    split_seed: Annotated[int, typer.Option(help="Seed of the patient-level train/val/test split.")] = 0,
    labels: Annotated[str | None, typer.Option("--labels", help="Label map override for the datasets.")] = None,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Train without augmentation.")] = False,
    workers: Annotated[int, typer.Option(help="Data-loader worker processes.")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the interrupted run of this model id.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an --out folder that is not a zoo model folder.")] = False,
) -> None:
    """Train a binary (one --organ) or multiclass (several) model and save it as a zoo model."""
    from ..input_range import parse_spacing
    from ..organs import parse_organs
    from ..outputs import check_output_folder, is_model_folder
    from ..training.fit import train_model
    from ..training.trainer import TrainConfig
    from .train_progress import RichReporter

    organs = parse_organs(organ)
    pixel = parse_spacing(spacing, "--spacing", ZooError) if spacing is not None else None
    if out is not None:
        check_output_folder(out, "zoo model folder", owned=is_model_folder(out), force=force, inputs=data)
    datasets = _datasets(data, labels)
    config = TrainConfig(
        epochs=epochs, steps_per_epoch=steps, batch_size=batch_size, lr=lr, max_minutes=minutes,
        seed=seed, device=device, augment=not no_augment, num_workers=workers,
    )
    folder, result = train_model(
        organs, arch, datasets, out=out, model_id=name, variant=variant, input_size=(size, size) if size else None, spacing=pixel, config=config,
        split_seed=split_seed, resume=resume, prepare_progress=progress_callback("prepare slices"), reporter=RichReporter(name or "/".join(organs)),
    )
    console.print(
        f"saved [b]{folder.name}[/b] to {folder} (best epoch {result.best_epoch} of {result.epochs_run}, "
        f"val loss {result.best_val_loss:.4f}, {result.stopped})"
    )


@app.command("predict")
def predict(
    model: Annotated[str, typer.Argument(help="Model id, local-dir:PATH or a model folder.")],
    ct: Annotated[Path, typer.Argument(help="CT file or DICOM folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Label map to write (.nii.gz, .nrrd, .mha).")] = Path("labels.nii.gz"),
    probabilities: Annotated[bool, typer.Option("--probabilities", help="Also write one probability map per organ.")] = False,
    label_map: Annotated[str, typer.Option("--label-map", help="Values to write: zoo, structseg, segthor, ... or 1=heart,...")] = "zoo",
    organs: Annotated[str | None, typer.Option("--organs", help="Only these organs (ensembles run only the members they need).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Slices per forward pass.")] = 16,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Segment a CT volume; the label map is written on the input's exact grid."""
    from ..io import WRITE_SUFFIXES, probability_path, read_ct, write_labels, write_volume
    from ..labelmaps import get_label_map
    from ..outputs import check_output_file
    from ..zoo.catalog import load_for_prediction

    check_output_file(out, [ct], WRITE_SUFFIXES)
    lm = get_label_map(label_map)
    predictor, loaded = load_for_prediction(model, device=device, batch_size=batch_size, organs=organs)
    missing = [o for o in predictor.organs if o not in lm.values]
    if missing:
        raise ZooError(f"label map {lm.name!r} has no value for {', '.join(missing)}; choose another --label-map")
    volume = read_ct(ct)
    prob_paths = {o: probability_path(out, o) for o in predictor.organs} if probabilities else {}
    for path in prob_paths.values():
        check_output_file(path, [ct], WRITE_SUFFIXES)
    with progress() as bar:
        task = bar.add_task(f"{loaded.card.model_id}", total=volume.shape[0])
        pred = predictor.predict(volume, probabilities=probabilities, progress=lambda i, n: bar.update(task, completed=i))
    write_labels(lm.encode(pred.masks()), volume, out)
    console.print(f"wrote {safe(out)} ({', '.join(f'{o}={lm.values[o][0]}' for o in pred.organs)}; {pred.contested} contested voxels)")
    if pred.probabilities:
        for organ, p in pred.probabilities.items():
            path = prob_paths[organ]
            write_volume(p, volume, path)
            console.print(f"wrote {safe(path)}")
