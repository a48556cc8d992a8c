"""bf16 against fp32 on trained models (issue #13): what bf16 autocast changes in the organs.

For each model (default: the 18 models of the zoo-thorax plugin, and one paper-size DeepLabV3
trained briefly here on phantoms), predicted once in fp32 and once under bf16 autocast, both
channels-last as ``zoo predict`` runs them:
- Dice of each organ against the reference in fp32 and in bf16, and the change (target: within
  0.002 per organ) of the networks' labels and after the card's post-processing, on the real CT (LIDC-IDRI-0001, 512 x 512 x 133, reference: its label map)
  and on held-out phantom CTs (source A);
- the label maps' voxel agreement: the share of all voxels with the same label, and the share
  of the voxels that either precision labels as an organ.

On a CPU without bf16 arithmetic oneDNN emulates it: inputs and weights are rounded to bf16 as
the hardware rounds them and the products are summed in fp32, as AMX and avx512_bf16 sum them,
so the accuracy figures carry over to those machines (only the order of the sums may differ);
the speed does not (see bench_precision.py). The script says which it ran.

Data: ``--data DIR`` (what ``zoo data sample --out DIR`` writes), else ``../shared/data/lidc-idri-0001``.
Run: python benchmarks/bench_bf16_accuracy.py [--models heart-unet,...] [--phantoms 4] [--paper-minutes 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import SAMPLE, dice, machine, save_figures, timed


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Share of all voxels with the same label, and of the voxels either map calls an organ."""
    same = a == b
    organ = (a > 0) | (b > 0)
    inside = float(same[organ].mean()) if organ.any() else 1.0
    return float(same.mean()), inside


def compare(name: str, model, cases: list[tuple[str, object, dict[str, np.ndarray]]], low: torch.dtype = torch.bfloat16) -> list[dict]:
    """Predict every case in fp32 and bf16 with one predictor; one row per case and organ, with
    the Dice change of the networks' own labels ("raw") and after the card's post-processing
    (keeping the largest component can turn a small change into a large one: when two pieces
    are nearly the same size, bf16 may tip which one is kept)."""
    from zoo_ensemble.inference import keep_largest_components

    rows, largest = [], list(model.inference().largest_component)
    predictor = model.predictor("cpu", "fp32", largest_component=[])  # the post-processing is applied below, to both
    for case, volume, ref in cases:
        maps, seconds = {}, {}
        for label, dtype in (("fp32", None), ("bf16", low)):
            predictor.precision = dtype  # set directly: emulated bf16 where the CPU has none
            seconds[label], maps[label] = timed(lambda: predictor.predict(volume).labels, 1)
        post = {k: keep_largest_components(v.copy(), predictor.organs, largest) for k, v in maps.items()}
        everywhere, inside = agreement(maps["fp32"], maps["bf16"])
        for i, organ in enumerate(predictor.organs):
            if organ not in ref:
                continue
            raw = [dice(maps[k] == i + 1, ref[organ]) for k in ("fp32", "bf16")]
            kept = [dice(post[k] == i + 1, ref[organ]) for k in ("fp32", "bf16")] if organ in largest else raw
            row = {"model": name, "case": case, "organ": organ, "fp32": raw[0], "bf16": raw[1], "change": raw[1] - raw[0],
                   "post_change": kept[1] - kept[0], "agree": everywhere, "agree_organ": inside, "s_fp32": seconds["fp32"], "s_bf16": seconds["bf16"]}
            rows.append(row)
            post_text = f"{row['post_change']:+.4f}" if organ in largest else "(none)"
            print(f"| {name} | {case} | {organ} | {raw[0]:.4f} | {raw[1]:.4f} | {row['change']:+.4f} | {post_text} | {everywhere:.6f} | {inside:.5f} "
                  f"| {seconds['fp32']:.1f} | {seconds['bf16']:.1f} |", flush=True)
    return rows


def real_ct(data: Path):
    from zoo_ensemble.labelmaps import get_label_map
    from zoo_ensemble.volumes import read_ct, read_labels

    volume = read_ct(data / "ct.nii.gz")
    labels = read_labels(data / "labels.nii.gz", like=volume).array
    return [("LIDC-IDRI-0001", volume, {o: labels == v[0] for o, v in get_label_map("zoo").values.items()})]


def phantoms(work: Path, count: int, seed: int):
    from zoo_ensemble.data.phantom import write_cohort

    ds = write_cohort(work / "phantoms-a", "A", count, seed)
    cases = []
    for case in ds.cases:
        volume, ref = ds.load(case, list(ds.organs))
        cases.append((f"phantom {case.case_id}", volume, ref))
    return cases


def train_paper_model(work: Path, minutes: float, seed: int) -> Path:
    """A paper-size DeepLabV3 for the heart, trained for ``minutes`` on phantoms (a briefly trained
    model's probabilities sit nearer the threshold than a converged one's: the harder case)."""
    from zoo_ensemble.data.phantom import write_cohort
    from zoo_ensemble.training.train import TrainRequest, train_model
    from zoo_ensemble.training.trainer import TrainConfig

    ds = write_cohort(work / "train-a", "A", 8, seed + 1)
    folder, result = train_model(TrainRequest(
        ["heart"], "deeplabv3", [ds], out=work / "heart-deeplabv3-paper", run_dir=work / "run", variant="paper",
        input_size=(160, 160), spacing=(2.2, 2.2),
        config=TrainConfig(epochs=100, steps_per_epoch=8, batch_size=4, max_minutes=minutes, seed=seed),
    ))
    print(f"paper-size DeepLabV3 (heart) trained {result.epochs_run} epochs in about {minutes:g} min", flush=True)
    return folder


def summary(rows: list[dict], low: str) -> None:
    print()
    for key, what in (("change", "the networks' labels"), ("post_change", "after the cards' post-processing")):
        changes = np.array([abs(r[key]) for r in rows])
        worst = max(rows, key=lambda r: abs(r[key]))
        within = int((changes <= 0.002).sum())
        print(f"{len(rows)} organ predictions, {what}: |Dice change| mean {changes.mean():.5f}, median {np.median(changes):.5f}, "
              f"max {changes.max():.4f} ({worst['model']}, {worst['case']}, {worst['organ']}); within 0.002: {within} of {len(rows)}")
    print(f"voxel agreement: all voxels >= {min(r['agree'] for r in rows):.6f}, organ voxels >= {min(r['agree_organ'] for r in rows):.5f}")
    print(f"{low} / fp32 time: {sum(r['s_bf16'] for r in rows) / sum(r['s_fp32'] for r in rows):.2f} (whole predictions, counted once per organ row)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument("--models", help="comma-separated model ids (default: the zoo-thorax plugin's 18)")
    parser.add_argument("--phantoms", type=int, default=4, help="held-out phantom CTs of source A")
    parser.add_argument("--paper-minutes", type=float, default=3.0, help="training time of the paper-size model (0: none)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--low", choices=["bf16", "fp16"], default="bf16",
                        help="the autocast type compared with fp32 (fp16: what GPUs use; the 'bf16' columns then show fp16)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from zoo_ensemble.devices import cpu_supports_bf16
    from zoo_ensemble.zoo.model import ZooModel

    if args.models:
        ids = args.models.split(",")
    else:
        from zoo_thorax.plugin import ARCHITECTURES, ORGANS

        ids = [f"{o}-{a}" for o in ORGANS for a in ARCHITECTURES]
    low = torch.bfloat16 if args.low == "bf16" else torch.float16
    native = "native" if args.low == "bf16" and cpu_supports_bf16() else "EMULATED by oneDNN (same rounding, fp32 sums; slower)"
    print(f"{machine()}; {args.low} {native}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = real_ct(args.data) + phantoms(work, args.phantoms, args.seed)
        if args.paper_minutes > 0:
            ids.append(f"local-dir:{train_paper_model(work, args.paper_minutes, args.seed)}")
        print(f"\n| model | case | organ | Dice fp32 | Dice {args.low} | change | change after post-processing | agreement, all voxels | agreement, organ voxels | fp32 s | {args.low} s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        rows = []
        for model_id in ids:
            model = ZooModel.from_pretrained(model_id)
            name = "paper deeplabv3 (heart, brief)" if model_id.startswith("local-dir:") else model_id
            rows += compare(name, model, [(c, v, {o: m for o, m in ref.items() if o in model.organs}) for c, v, ref in cases], low)
        summary(rows, args.low)
    save_figures(__file__, {"low": args.low, "native": native, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
