"""`zoo demo`'s wall time by phase (cohort, members' outputs, learned runs, evaluation), from an
empty zoo home, for each worker count asked for, in one run; the ratio of each to the first.

The defaults are the demo's own settings (25 phantoms, 3 seeds, two member sets). Smaller
settings measure the worker ratio faster; the tables they give are not the demo's.

    python benchmarks/bench_demo.py [--workers 2 1] [--cases 25] [--seeds 3] [--layer-fusion]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import machine, save_figures


def one_run(workers: int, cases: int, seeds: int, layer_fusion: bool) -> dict[str, float]:
    from zoo_ensemble.demo import DemoSettings, run_demo

    with tempfile.TemporaryDirectory() as home:
        os.environ["ZOO_HOME"] = home
        marks: dict[str, float] = {}
        started = time.perf_counter()

        def step(name: str, i: int, n: int) -> None:
            marks.setdefault(f"{name} start", time.perf_counter() - started)
            if i == n:
                marks[name] = time.perf_counter() - started

        # the demo's split: 3 training and 2 validation patients, the rest (20 of 25) test
        settings = DemoSettings(cases=cases, seeds=seeds, workers=workers, layer_fusion=layer_fusion, val_fraction=2 / cases, test_fraction=(cases - 5) / cases)
        result = run_demo(Path(home) / "demo", settings, step)
        total = time.perf_counter() - started
    phases = {"cohort": marks["cohort no member saw"], "members' outputs": marks["members' outputs"] - marks["members' outputs start"],
              "learned runs": marks["ensembles"] - marks["ensembles start"], "evaluation": marks["test patients"] - marks["test patients start"]}
    return {**phases, "total": total, "test patients": len(result.reports["best:argmax"].cases)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--cases", type=int, default=25, help="at least 8 (3 train, 2 validation, the rest test)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--layer-fusion", action="store_true")
    args = parser.parse_args()
    print(machine())
    figures = {}
    for workers in args.workers:
        figures[f"workers={workers}"] = one_run(workers, args.cases, args.seeds, args.layer_fusion)
    first = figures[f"workers={args.workers[0]}"]
    print(f"{'':12s}" + "".join(f"{k:>18s}" for k in first))
    for name, row in figures.items():
        print(f"{name:12s}" + "".join(f"{v:17.1f}{'s' if k != 'test patients' else ' '}" for k, v in row.items()))
        if row is not first:
            print(f"{'  ratio':12s}" + "".join(f"{row[k] / first[k]:17.2f}x" for k in first if k != "test patients"))
    save_figures(__file__, figures)


if __name__ == "__main__":
    main()
