"""The folder one experiment run lives in, and the small JSON files that make it resumable.

    run.json                    preset, its fingerprint, data sources (a folder is continued
                                only with the same preset and data)
    data/<source>/              phantom cohorts (absent when --data names real folders)
    models/<id>/, runs/<id>/    trained networks (zoo model folders) and their checkpoints
    ensembles/<exp>/<method>/   composed ensembles, runs/<exp>-<method>/ their checkpoints
    results/<exp>/<entry>.json  each entry's evaluation on the test patients
    overlays/                   the overlay case's slices and each entry's prediction on them
    timings.json                seconds spent per step (summed over interrupted sessions)
    report/                     tables, plots and overlays (unless --report names another folder)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..atomic import write_text
from .settings import ExperimentError, Preset

FORMAT = 1


class Workspace:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # --- paths ---------------------------------------------------------------------------
    def data(self, source: str) -> Path:
        return self.root / "data" / source

    def model(self, model_id: str) -> Path:
        return self.root / "models" / model_id

    def run_dir(self, key: str) -> Path:
        return self.root / "runs" / key

    def ensemble(self, experiment: str, slug: str) -> Path:
        return self.root / "ensembles" / experiment / slug

    def result(self, experiment: str, slug: str) -> Path:
        return self.root / "results" / experiment / f"{slug}.json"

    def overlay(self, name: str) -> Path:
        return self.root / "overlays" / f"{name}.npz"

    # --- run.json ------------------------------------------------------------------------
    def open(self, preset: Preset, data: dict[str, str]) -> dict[str, Any]:
        """Create the folder, or check that it belongs to this preset and these data."""
        meta = {"format": FORMAT, "preset": preset.name, "fingerprint": preset.fingerprint(), "seed": preset.seed, "data": data}
        path = self.root / "run.json"
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ExperimentError(f"{path}: unreadable ({exc}); choose another --out") from None
            for key in ("fingerprint", "data"):
                if old.get(key) != meta[key]:
                    raise ExperimentError(
                        f"{self.root} holds a run with another {'preset' if key == 'fingerprint' else 'data'} "
                        f"({old.get('preset')!r}); choose another --out or delete that folder"
                    )
            return old
        self.root.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(meta, indent=2) + "\n")
        return meta

    # --- results and timings --------------------------------------------------------------
    def read_json(self, path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # missing, or damaged (rare: writes are atomic): recomputed

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        write_text(path, json.dumps(data, indent=2, allow_nan=True) + "\n")

    def timings(self) -> dict[str, float]:
        return self.read_json(self.root / "timings.json") or {}

    def add_time(self, key: str, seconds: float) -> None:
        t = self.timings()
        t[key] = round(t.get(key, 0.0) + seconds, 1)
        self.write_json(self.root / "timings.json", t)
