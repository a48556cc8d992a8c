"""What a prediction gives a caller: one label map on the input's exact grid, the organs' masks
derived from it when asked for, and the ways to write it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..dicom import Producer
from ..formats import ALL_SUFFIXES, format_for, needs_series, write_prediction
from ..labelmaps import LabelMap
from ..outputs import check_output_file
from ..volumes import WRITE_SUFFIXES, Volume, probability_path, write_labels, write_volume


class ValueMasks(Mapping[str, np.ndarray]):
    """Each organ's boolean mask, computed from a label map when it is looked up (one mask at a
    time in memory); take ``dict(masks)`` to read each several times."""

    def __init__(self, labels: np.ndarray, values: Mapping[str, int]):
        self._labels, self._values = labels, dict(values)

    def __getitem__(self, organ: str) -> np.ndarray:
        return self._labels == self._values[organ]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@dataclass
class Segmentation:
    """One CT's organs: ``canonical`` holds each organ's value in ``label_map`` in the volume's
    canonical (LPS) order, which files are written from. ``labels`` and ``masks`` give the same
    in the input's own array order (SimpleITK's ``(z, y, x)`` for files and images; the given
    order for a numpy array), computed when asked for."""

    canonical: np.ndarray
    organs: list[str]
    label_map: LabelMap
    volume: Volume
    producer: Producer
    probabilities: dict[str, np.ndarray] | None = field(default=None, repr=False)  # organ -> canonical float32
    contested: int = 0

    @property
    def values(self) -> dict[str, int]:
        """Organ -> its value in the label map."""
        return {o: self.label_map.values[o][0] for o in self.organs}

    @property
    def labels(self) -> np.ndarray:
        """The label map in the input's array order (computed on each access: keep it)."""
        return sitk.GetArrayFromImage(self.image())

    @property
    def masks(self) -> Mapping[str, np.ndarray]:
        """Each organ's mask in the input's array order, computed when looked up."""
        return ValueMasks(self.labels, self.values)

    def canonical_masks(self) -> Mapping[str, np.ndarray]:
        """Each organ's mask in the canonical order (what statistics and previews read)."""
        return ValueMasks(self.canonical, self.values)

    def image(self) -> sitk.Image:
        """The label map as a SimpleITK image on the input's grid (spacing, origin, direction)."""
        return self.volume.to_sitk(self.canonical)

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write the segmentation atomically, never over the input: a label map (.nii.gz, .nii,
        .nrrd, .mha), or, for a CT read from a DICOM series, DICOM-SEG (.seg.dcm) or RTSTRUCT
        (.rtstruct.dcm); ``format`` (``dicom-seg``, ``rtstruct``, ...) for other names."""
        target = Path(path)
        fmt = format_for(target, format)
        check_output_file(target, [Path(self.volume.path)] if self.volume.path else [], ALL_SUFFIXES)
        if not needs_series(fmt):
            return write_labels(self.canonical, self.volume, target)
        return write_prediction(fmt, self.canonical_masks(), None, self.volume, target, self.producer)

    def save_probabilities(self, labels_path: str | Path) -> list[Path]:
        """Write each organ's probability map beside a label map (``labels_prob_heart.nii.gz``)."""
        if self.probabilities is None:
            raise ValueError("this segmentation was predicted without probabilities")
        paths = {o: probability_path(labels_path, o) for o in self.probabilities}
        for path in paths.values():
            check_output_file(path, [Path(self.volume.path)] if self.volume.path else [], WRITE_SUFFIXES)
        return [write_volume(p, self.volume, paths[o]) for o, p in self.probabilities.items()]
