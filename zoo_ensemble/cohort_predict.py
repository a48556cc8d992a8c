"""Cohort prediction: many CTs through one model loaded once.

Inputs are files, folders of images, folders of DICOM studies (a folder holding a DICOM series is
one case; a folder of such folders is a cohort) or a text/CSV list of paths. The next case is
read in a background thread while the current one is computed, and the previous one is written
in another, so reading and writing overlap the networks. A case that fails (unreadable, not CT)
is reported and skipped; the others go on. A case whose label map exists is skipped unless
``overwrite``: outputs are written atomically, so an existing one is complete, and an
interrupted cohort resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_text
from .dicom.series import is_dicom_series
from .distributed import World, gather_to_main
from .errors import ZooError
from .formats import check_source, suffix
from .spreadsheet import csv_text
from .volumes import IMAGE_SUFFIXES, Volume, read_ct, strip_image_suffix
from .zoo.model import ZooModel
from .zoo.segmentation import Segmentation

MARKER = "cohort.json"
LIST_SUFFIXES = (".txt", ".csv")


class CohortError(ZooError):
    """The cohort as a whole cannot be run (no cases, an output folder that is not a cohort's)."""


@dataclass(frozen=True)
class CohortCase:
    case_id: str
    source: Path


@dataclass
class CaseResult:
    case_id: str
    status: str  # "done", "skipped" (output already there) or "failed"
    message: str = ""
    seconds: float = 0.0


def gather_cases(inputs: Sequence[Path]) -> list[CohortCase]:
    """Every case the inputs name, in order; a missing path is kept, to fail as its own case."""
    cases: list[CohortCase] = []
    for path in inputs:
        cases += _expand(Path(path))
    if not cases:
        raise CohortError(f"no CT images found in {', '.join(map(str, inputs))}")
    seen: dict[str, Path] = {}
    for case in cases:
        if case.case_id in seen and seen[case.case_id] != case.source:
            raise CohortError(f"two inputs give the case name {case.case_id!r}: {seen[case.case_id]} and {case.source}")
        seen[case.case_id] = case.source
    return list({c.case_id: c for c in cases}.values())


def _expand(path: Path) -> list[CohortCase]:
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        return [c for p in _listed(path) for c in (_expand(p) if p.is_dir() else [_case(p)])]
    if path.is_dir() and not is_dicom_series(path):
        images = [p for p in sorted(path.iterdir()) if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES)]
        studies = [p for p in sorted(path.iterdir()) if p.is_dir() and is_dicom_series(p)]
        return [_case(p) for p in images + studies]
    return [_case(path)]


def _case(path: Path) -> CohortCase:
    return CohortCase(strip_image_suffix(path.name), path)


def _listed(path: Path) -> list[Path]:
    """Paths in a list file: one per line (CSV: the first column; a header row naming a column is skipped)."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    out = []
    for i, row in enumerate(rows):
        cell = row[0].strip() if row else ""
        if not cell or cell.startswith("#") or (i == 0 and cell.lower() in ("path", "image", "ct", "file")):
            continue
        p = Path(cell).expanduser()
        out.append(p if p.is_absolute() else path.parent / p)
    return out


def output_for(out_dir: Path, case: CohortCase, fmt: str = "nifti") -> Path:
    return out_dir / f"{case.case_id}{suffix(fmt)}"


def open_output(out_dir: Path, inputs: Sequence[Path], model_id: str, label_map: str, fmt: str = "nifti") -> None:
    """Claim ``out_dir`` for this cohort: new, or a cohort folder of the same model, label map
    and format."""
    for source in inputs:
        src = Path(source).resolve()
        if src.is_dir() and (out_dir.resolve() == src or src in out_dir.resolve().parents):
            raise CohortError(f"-o {out_dir} is inside the input folder {source}; write the outputs elsewhere")
    marker = out_dir / MARKER
    want = {"model": model_id, "label_map": label_map, "format": fmt}
    if marker.is_file():
        have = {"format": "nifti", **json.loads(marker.read_text(encoding="utf-8"))}  # folders of 0.1.0.dev0 runs hold NIfTI
        if {k: have.get(k) for k in want} != want:
            raise CohortError(
                f"{out_dir} holds the {have.get('format')} outputs of {have.get('model')!r} ({have.get('label_map')}); use another -o"
            )
        return
    if out_dir.exists() and any(out_dir.iterdir()):
        raise CohortError(f"{out_dir} is not empty and not a cohort output folder; use another -o")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(marker, json.dumps(want, indent=2) + "\n")


def statistics(volume: Volume, masks: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per organ: volume in ml and mean HU inside the mask (NaN for an empty mask)."""
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    out = {}
    for organ, mask in masks.items():
        n = int(np.count_nonzero(mask))
        out[organ] = {"volume_ml": n * voxel_ml, "mean_hu": float(volume.array[mask].mean()) if n else float("nan"), "voxels": n}
    return out


@dataclass
class CohortRun:
    """Every case through ``model.predict(volume, **settings)`` (organs, label map, device, batch
    size, precision): the one prediction path, with the model's one predictor for them."""

    model: ZooModel
    settings: dict[str, Any]
    out_dir: Path
    fmt: str = "nifti"
    overwrite: bool = False
    with_statistics: bool = False
    with_preview: bool = False
    progress: Callable[[int, int], None] | None = None  # (cases done, cases to do)
    slice_progress: Callable[[int, int], None] | None = None  # (slices done, slices) of the current case
    world: World = field(default_factory=World)  # under torchrun: this process's share of the cases

    def run(self, cases: Sequence[CohortCase]) -> list[CaseResult]:
        """Predict every case not done yet; reading, computing and writing overlap. Under
        torchrun each process takes every ``size``-th case from its rank on, and rank 0 gathers
        the results (returned there for all cases) and writes the summary."""
        mine = [cases[i] for i in self.world.share(len(cases))]
        results = self._run(mine)
        if self.world.active:
            # our own processes' plain dicts (gather_object pickles them between us)
            parts = gather_to_main([asdict(results[c.case_id]) for c in mine])
            if parts is None:
                return [results[c.case_id] for c in mine]
            results = {r["case_id"]: CaseResult(**r) for part in parts for r in part}
        self._summarise(cases)
        return [results[c.case_id] for c in cases]

    def _run(self, cases: Sequence[CohortCase]) -> dict[str, CaseResult]:
        todo = [c for c in cases if self.overwrite or not output_for(self.out_dir, c, self.fmt).is_file()]
        results = {c.case_id: CaseResult(c.case_id, "skipped", "output exists") for c in cases if c not in todo}
        with ThreadPoolExecutor(1, "zoo-read") as reader, ThreadPoolExecutor(1, "zoo-write") as writer:
            pending: list[tuple[CohortCase, Future, float]] = []
            for i, (case, loaded) in enumerate(self._read_ahead(todo, reader)):
                started = time.monotonic()
                try:
                    volume = loaded.result()
                    check_source(self.fmt, volume, str(case.source))
                    seg = self.model.predict(volume, progress=self.slice_progress, **self.settings)
                    pending.append((case, writer.submit(self._write, case, seg), started))
                except ZooError as exc:
                    results[case.case_id] = CaseResult(case.case_id, "failed", str(exc).splitlines()[0])
                results.update(self._collect(pending, block=False))
                if self.progress:
                    self.progress(i + 1, len(todo))
            results.update(self._collect(pending, block=True))
        return results

    def _read_ahead(self, cases: Sequence[CohortCase], reader: ThreadPoolExecutor) -> Iterator[tuple[CohortCase, Future]]:
        """Each case with its read in flight, the next one's started; a future is let go once
        handed out, so that no finished case's volume stays in memory."""
        ahead = reader.submit(read_ct, cases[0].source) if cases else None
        for i, case in enumerate(cases):
            current, ahead = ahead, reader.submit(read_ct, cases[i + 1].source) if i + 1 < len(cases) else None
            yield case, current

    def _write(self, case: CohortCase, seg: Segmentation) -> None:
        if self.with_statistics or self.with_preview:
            masks = dict(seg.canonical_masks())  # read several times there: computed once
            if self.with_statistics:
                stats = {"case": case.case_id, "source": str(case.source), "organs": statistics(seg.volume, masks)}
                write_text(self.out_dir / f"{case.case_id}.statistics.json", json.dumps(stats, indent=2) + "\n")
            if self.with_preview:
                from .data.preview import render_preview

                render_preview(seg.volume, masks, self.out_dir / f"{case.case_id}.png", title=case.case_id)
        # the segmentation last: its presence says the case is complete
        seg.save(output_for(self.out_dir, case, self.fmt), self.fmt)

    def _collect(self, pending: list[tuple[CohortCase, Future, float]], block: bool) -> dict[str, CaseResult]:
        done = {}
        for item in list(pending):
            case, future, started = item
            if not block and not future.done():
                continue
            pending.remove(item)
            try:
                future.result()
                done[case.case_id] = CaseResult(case.case_id, "done", "", time.monotonic() - started)
            except (ZooError, OSError) as exc:
                done[case.case_id] = CaseResult(case.case_id, "failed", str(exc).splitlines()[0])
        return done

    def _summarise(self, cases: Sequence[CohortCase]) -> None:
        """statistics.csv and statistics.json over every finished case (also those of earlier runs)."""
        if not self.with_statistics:
            return
        found = [p for c in cases if (p := self.out_dir / f"{c.case_id}.statistics.json").is_file()]
        records = [json.loads(p.read_text(encoding="utf-8")) for p in found]
        write_text(self.out_dir / "statistics.json", json.dumps(records, indent=2) + "\n")
        rows = (
            [r["case"], organ, f"{s['volume_ml']:.3f}", f"{s['mean_hu']:.1f}", s["voxels"]] for r in records for organ, s in r["organs"].items()
        )
        write_text(self.out_dir / "statistics.csv", csv_text(["case", "organ", "volume_ml", "mean_hu", "voxels"], rows))


def summary(results: Sequence[CaseResult]) -> dict[str, Any]:
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    return {**counts, "failures": [asdict(r) for r in results if r.status == "failed"]}
