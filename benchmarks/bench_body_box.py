"""What an in-plane body bounding box could save (issue #13), before anyone builds it.

Prediction already skips axial slices without body. Cropping each slice further, to the box
that holds every voxel above -500 HU in the volume (the couch included: it is above -500 HU too),
plus a margin, would shrink the networks' input. This prints, per model grid (in-plane spacing,
input size) and CT, the share of the network's input area such a box keeps: the work left.
The box is widened by ``--margin`` pixels of the model's grid on each side (context for the
convolutions at the skin) and rounded up to a multiple of ``--align`` (the networks' stride), never
beyond the input size.

A box does not give the same output inside the body: within the receptive field of its edge the
networks see zero padding instead of air, and SE blocks and DeepLabV3's image pooling average
over the whole input. Only measure the Dice change if the share below makes it worth it.

Run: python benchmarks/bench_body_box.py [--data DIR] [--phantoms 3] [--margin 16] [--align 32]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from zoo_ensemble.inference import BODY_HU

from common import SAMPLE, machine, save_figures


def body_extent(array: np.ndarray) -> tuple[int, int, int, int]:
    """Rows and columns (first, last) holding any voxel above BODY_HU in the whole volume."""
    body = array > BODY_HU
    rows, cols = np.flatnonzero(body.any(axis=(0, 2))), np.flatnonzero(body.any(axis=(0, 1)))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def kept_length(first: int, last: int, length: int, pixel_mm: float, model_mm: float, size: int, margin: int, align: int) -> int:
    """Pixels of the model's input along one axis that the box (centre crop of ``size``) keeps."""
    scale = pixel_mm / model_mm
    offset = (round(length * scale) - size) // 2  # where the centre crop starts in the model grid
    lo = max(0, math.floor(first * scale - offset - margin))
    hi = min(size, math.ceil((last + 1) * scale - offset + margin))
    return min(size, math.ceil(max(hi - lo, 1) / align) * align)


def kept_share(array: np.ndarray, pixel_mm: float, model_mm: float, size: int, margin: int, align: int) -> float:
    r0, r1, c0, c1 = body_extent(array)
    rows = kept_length(r0, r1, array.shape[1], pixel_mm, model_mm, size, margin, align)
    cols = kept_length(c0, c1, array.shape[2], pixel_mm, model_mm, size, margin, align)
    return rows * cols / (size * size)


def grids() -> list[tuple[str, float | None, int]]:
    """(name, model spacing in mm or None for the scan's own, input size) to try."""
    out = []
    try:
        from zoo_thorax.plugin import ARCHITECTURES, ORGANS
        from zoo_ensemble.zoo.model import ZooModel

        seen = set()
        for model_id in (f"{o}-{a}" for o in ORGANS for a in ARCHITECTURES):
            card = ZooModel.from_pretrained(model_id).card
            key = (float(card.spacing[0]) if card.spacing else None, int(card.input_size[0]))
            if key not in seen:
                seen.add(key)
                out.append((f"zoo-thorax ({model_id} and alike)", *key))
    except ImportError:
        pass
    out.append(("paper: native grid, 320 x 320", None, 320))
    out.append(("a wide field of view: 1.5 mm, 320 x 320", 1.5, 320))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument("--phantoms", type=int, default=3, help="phantom CTs of each source (A, B) at full size")
    parser.add_argument("--margin", type=int, default=16)
    parser.add_argument("--align", type=int, default=32)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from zoo_ensemble.data.phantom.generator import generate_case
    from zoo_ensemble.volumes import read_ct

    cts = []
    if (args.data / "ct.nii.gz").exists():
        real = read_ct(args.data / "ct.nii.gz")
        cts.append(("LIDC-IDRI-0001", real.array, float(real.spacing[0])))
    for source in ("A", "B"):
        for i in range(args.phantoms):
            case = generate_case(source, 0, i, scale=1.0)
            cts.append((f"phantom {source}{i}", case.image, float(case.spacing[0])))
    print(machine())
    print(f"share of the networks' input a body box keeps (margin {args.margin} px, sides rounded up to {args.align}):")
    print("| model grid | " + " | ".join(name for name, _, _ in cts) + " |")
    print("|---|" + "---|" * len(cts))
    rows = []
    for name, spacing, size in grids():
        shares = [kept_share(array, pixel, spacing or pixel, size, args.margin, args.align) for _, array, pixel in cts]
        print(f"| {name} | " + " | ".join(f"{s:.2f}" for s in shares) + " |", flush=True)
        rows.append({"grid": name, "kept_share": dict(zip((c for c, _, _ in cts), shares))})
    save_figures(__file__, {"margin": args.margin, "align": args.align, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
