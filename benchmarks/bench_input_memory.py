"""Peak memory of ``zoo predict`` when a CT's header claims large pixels, before and after
prediction cut the model's window out of each slice before resampling (#27), and what the
completeness check of input and output files costs.

The real CT (LIDC-IDRI-0001, 512 x 512 x 133) is predicted at its true spacing and relabelled
(same voxels) as 5 mm, 10 mm and 100 mm pixels, by the shipped 160 px, 2.2 mm heart U-Net.
"Before" runs the same command on another revision's code (a git worktree of ``--before``),
in the same run; each command is its own process, whose peak resident memory the kernel
reports (``wait4``). A process may use at most ``--limit-gib`` (``RLIMIT_AS``), so that the old
code's 100 mm case fails instead of the machine.

    python benchmarks/bench_input_memory.py --before 603c18b
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import SimpleITK as sitk

from common import REPO, SAMPLE, best_of, machine, remove_worktree, run_zoo, save_figures, worktree

CT = SAMPLE / "ct.nii.gz"
MODEL = REPO / "plugins" / "zoo-thorax" / "zoo_thorax" / "models" / "heart-unet"

def relabelled(tmp: Path, mm: float | None) -> Path:
    if mm is None:
        return CT
    image = sitk.ReadImage(str(CT))
    image.SetSpacing((mm, mm, image.GetSpacing()[2]))
    path = tmp / f"ct-{mm:g}mm.nii.gz"
    sitk.WriteImage(image, str(path), useCompression=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="603c18b", help="the revision to compare with (default: the one before #27)")
    parser.add_argument("--limit-gib", type=float, default=8.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not CT.is_file():
        sys.exit(f"the real CT is not at {CT}")
    print(f"{machine()}; model: {MODEL.name} (160 px at 2.2 mm); address space per run <= {args.limit_gib:g} GiB")
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        before = worktree(args.before, tmp / "before")
        try:
            print(f"\npeak resident memory of `zoo predict` (MiB), before = {args.before}, after = this tree")
            print(f"{'input pixels':<14}{'before':>10}{'after':>10}{'after/before':>14}   before: exit, last line | after: exit, last line")
            figures: dict = {"before": args.before, "spacings": {}}
            for mm in (None, 5.0, 10.0, 100.0):
                ct = relabelled(tmp, mm)
                argv = ["predict", f"local-dir:{MODEL}", str(ct), "-o", str(tmp / "labels.nii.gz")]
                b = run_zoo(before, argv, args.limit_gib)
                a = run_zoo(REPO, argv, args.limit_gib)
                name = "0.703 mm (true)" if mm is None else f"{mm:g} mm"
                print(f"{name:<14}{b['peak_mib']:>10.0f}{a['peak_mib']:>10.0f}{a['peak_mib'] / b['peak_mib']:>14.2f}   "
                      f"{b['exit']}, {b['said'] or '-'} | {a['exit']}, {a['said'] or '-'}")
                figures["spacings"][name] = {"before": b, "after": a}
            print("\ncost of the completeness check (the real CT read, the label map written), one run each")
            argv = ["predict", f"local-dir:{MODEL}", str(CT), "-o", str(tmp / "labels.nii.gz")]
            off = run_zoo(REPO, argv, args.limit_gib, "from zoo_ensemble import volumes; volumes.check_complete = lambda *a, **k: None")
            on = run_zoo(REPO, argv, args.limit_gib)
            print(f"whole command: {off['seconds']:.2f} s without, {on['seconds']:.2f} s with the check ({on['seconds'] / off['seconds']:.3f}x)")
            sys.path.insert(0, str(REPO))
            from zoo_ensemble.completeness import check_complete

            alone = best_of(lambda: check_complete(CT), 100)
            print(f"the check alone on {CT.name} ({CT.stat().st_size / 2**20:.1f} MiB): {alone * 1000:.3f} ms (best of 100)")
            figures["check"] = {"without_s": off["seconds"], "with_s": on["seconds"], "alone_s": alone}
        finally:
            remove_worktree(before)
    save_figures(__file__, figures, args.json)


if __name__ == "__main__":
    main()
