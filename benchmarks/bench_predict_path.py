"""`zoo predict` of the real CT through a six-member ensemble: wall time and peak resident
memory of this tree against another revision (#24: one model object, one prediction path),
each command its own process, both in the same run.

The ensemble is the argmax of the first-party plugin's best model per organ, composed once
with this tree and predicted by both (its folder format is the same).

    python benchmarks/bench_predict_path.py --before d7e1db3 [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from common import SAMPLE, machine, remove_worktree, run_zoo, save_figures, worktree

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="d7e1db3", help="the revision to compare with (default: main before #24)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating; the best wall time and peak are kept")
    parser.add_argument("--limit-gib", type=float, default=8.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    ct = SAMPLE / "ct.nii.gz"
    if not ct.is_file():
        sys.exit(f"the real CT is not at {ct}")
    print(machine())
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        os.environ["ZOO_HOME"] = str(tmp / "home")
        os.environ["ZOO_PLUGINS"] = "thorax"
        made = run_zoo(REPO, ["compose", "--method", "argmax", "--organs", "all", "-o", str(tmp / "six")], args.limit_gib)
        if made["exit"] != 0:
            sys.exit(f"compose failed: {made['said']}")
        before = worktree(args.before, tmp / "before")
        try:
            runs: dict[str, list[dict]] = {"before": [], "after": []}
            for _ in range(args.repeat):
                for name, code in (("before", before), ("after", REPO)):
                    out = tmp / f"{name}.nii.gz"
                    runs[name].append(run_zoo(code, ["predict", f"local-dir:{tmp / 'six'}", str(ct), "-o", str(out), "--device", "cpu"], args.limit_gib))
        finally:
            remove_worktree(before)
    bad = [r for rs in runs.values() for r in rs if r["exit"] != 0]
    if bad:
        sys.exit(f"a prediction failed: {bad[0]['said']}")
    best = {k: (min(r["seconds"] for r in rs), min(r["peak_mib"] for r in rs)) for k, rs in runs.items()}
    print(f"zoo predict {ct.name} (512 x 512 x 133) through a six-member argmax ensemble, best of {args.repeat}, each its own process:")
    print(f"{'':8}{'wall s':>9}{'peak MiB':>10}")
    for k, (s, m) in best.items():
        print(f"{k:8}{s:9.2f}{m:10.0f}")
    print(f"after/before: wall {best['after'][0] / best['before'][0]:.3f}, peak memory {best['after'][1] / best['before'][1]:.3f} (before = {args.before})")
    save_figures(__file__, {"before": args.before, "repeat": args.repeat, "runs": runs, "best": best}, args.json)


if __name__ == "__main__":
    main()
