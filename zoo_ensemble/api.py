"""The Python API, in the style of huggingface_hub and timm: load any zoo model by id, segment a
CT given as a file, a SimpleITK image or a numpy array, save or publish the model, compose an
ensemble with keyword arguments.

    import zoo_ensemble as zoo
    model = zoo.from_pretrained("heart-unet")
    seg = model.predict("ct.nii.gz")
    seg.masks["heart"], seg.save("labels.nii.gz")

Everything goes through the same checked paths as the CLI (cards, configs and weights are
verified on load; outputs are written atomically and never over an input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .dicom import Producer
from .errors import ZooError
from .formats import ALL_SUFFIXES, format_for, needs_series, write_prediction
from .labelmaps import get_label_map
from .outputs import check_output_file, check_output_folder, is_model_folder
from .volumes import Volume, ct_from_image, read_ct, write_labels
from .zoo.catalog import load_model, producer_for
from .zoo.folder import write_folder
from .zoo.loading import LoadedModel, load_folder, predictor_for

__all__ = ["Segmentation", "ZooModel", "compose_ensemble", "from_pretrained"]

ImageLike = str | Path | sitk.Image | np.ndarray


@dataclass
class Segmentation:
    """A label map on the input's exact grid and one boolean mask per organ, in the input's array
    order (SimpleITK's ``(z, y, x)`` for files and images; the given order for a numpy array)."""

    labels: np.ndarray
    masks: dict[str, np.ndarray]
    organs: list[str]
    values: dict[str, int]  # organ -> the value it has in ``labels`` (the label map's)
    volume: Volume
    canonical: np.ndarray  # the label map in the volume's canonical (LPS) order, as files are written from
    producer: Producer | None = None  # the model, as DICOM outputs record it

    def image(self) -> sitk.Image:
        """The label map as a SimpleITK image with the input's spacing, origin and direction."""
        image = sitk.GetImageFromArray(self.labels)
        return self.volume.source.apply(image)

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write the segmentation atomically, never over the input: a label map (.nii.gz, .nii,
        .nrrd, .mha), or, for a CT read from a DICOM series, DICOM-SEG (.seg.dcm) or RTSTRUCT
        (.rtstruct.dcm); ``format`` (``dicom-seg``, ``rtstruct``, ...) for other names."""
        target = Path(path)
        fmt = format_for(target, format)
        check_output_file(target, [Path(self.volume.path)] if self.volume.path else [], ALL_SUFFIXES)
        if not needs_series(fmt):
            return write_labels(self.canonical, self.volume, target)
        masks = {o: self.canonical == v for o, v in self.values.items()}
        producer = self.producer or Producer("unknown", "unknown", "unknown")
        return write_prediction(fmt, masks, None, self.volume, target, producer)


class ZooModel:
    """A loaded zoo model (binary, multiclass or ensemble) with its card."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded

    @classmethod
    def from_pretrained(cls, model: str | Path, revision: str | None = None) -> ZooModel:
        """Load by id, ``hf-hub:org/name`` (``revision``: a branch, tag or commit), ``local-dir:PATH``
        or a folder; a Hub model is pulled once and cached."""
        ref = str(model)
        if revision is not None:
            if not ref.startswith("hf-hub:") or "@" in ref:
                raise ZooError(f"revision= is for hf-hub:org/name ids without @revision (got {ref!r})")
            ref = f"{ref}@{revision}"
        return cls(load_model(ref))

    # --- what it is ---------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.loaded.card.model_id

    @property
    def organs(self) -> list[str]:
        return self.loaded.organs

    @property
    def kind(self) -> str:
        return self.loaded.card.kind

    @property
    def card(self) -> Any:
        return self.loaded.card

    @property
    def network(self) -> Any:
        """The torch module (eval mode; raw HU in, one logit channel per organ out)."""
        return self.loaded.model

    def __repr__(self) -> str:
        return f"ZooModel({self.model_id!r}, kind={self.kind!r}, organs={self.organs})"

    # --- use ----------------------------------------------------------------------------------
    def predict(
        self, image: ImageLike, spacing: Sequence[float] | None = None, organs: Sequence[str] | None = None,
        label_map: str = "zoo", device: str = "auto", batch_size: int = 16, precision: str = "auto",
    ) -> Segmentation:
        """Segment a CT in HU: a file or DICOM folder, a SimpleITK image, or a numpy array with
        ``spacing`` in mm in the array's axis order (``(z, y, x)``; identity direction).
        ``precision``: ``auto`` (fp16 autocast on a GPU, fp32 on a CPU), ``fp32``, ``bf16``
        (where the hardware has it) or ``fp16`` (GPU)."""
        volume = _volume(image, spacing)
        lm = get_label_map(label_map)
        predictor = predictor_for(self.loaded, device, batch_size, list(organs) if organs else None, precision=precision)
        missing = [o for o in predictor.organs if o not in lm.values]
        if missing:
            raise ZooError(f"label map {lm.name!r} has no value for {', '.join(missing)}; choose another label_map")
        pred = predictor.predict(volume)
        canonical = lm.encode(pred.masks())
        labels = sitk.GetArrayFromImage(volume.to_sitk(canonical))  # back on the input's grid and array order
        values = {o: lm.values[o][0] for o in pred.organs}
        masks = {o: labels == v for o, v in values.items()}
        return Segmentation(labels, masks, list(pred.organs), values, volume, canonical, producer_for(self.loaded))

    def save_pretrained(self, folder: str | Path, force: bool = False) -> Path:
        """Write ``model.safetensors``, ``config.json`` and the card to ``folder`` (atomically;
        a folder that is not a zoo model folder is replaced only with ``force``)."""
        out = Path(folder)
        check_output_folder(out, "zoo model folder", owned=is_model_folder(out), force=force)
        write_folder(out, self.loaded.model.state_dict(), dict(self.loaded.config), self.loaded.card)
        return out

    def push_to_hub(self, repo_id: str, private: bool = False, create_pr: bool = False, message: str | None = None) -> Any:
        """Publish the model folder to a Hub repo (checked first); returns the commit info."""
        from .zoo import hub

        return hub.push(self.loaded.folder, repo_id, private=private, create_pr=create_pr, message=message)


def from_pretrained(model: str | Path, revision: str | None = None) -> ZooModel:
    """Load a zoo model or ensemble by any id (see :meth:`ZooModel.from_pretrained`)."""
    return ZooModel.from_pretrained(model, revision)


def compose_ensemble(method: str, *, data: Sequence[str | Path] = (), labels: str | None = None, init: str = "members", **request: Any) -> ZooModel:
    """Compose an ensemble with keyword arguments and load it: ``models`` (member ids; default the
    best binary model per organ), ``organs``, ``data`` (dataset folders, needed by the learned
    methods), ``init`` (``members``: ours, ``paper``), ``config`` (a ``TrainConfig``), ``split``,
    ``name``, ``out``, ``push``; see :class:`zoo_ensemble.compose.ComposeRequest`."""
    from .compose import ComposeRequest
    from .compose import compose as run
    from .data.dataset import open_dataset
    from .ensembles import init_options

    options = {**init_options(method, init), **request.pop("options", {})}
    datasets = [open_dataset(p, label_map=labels) for p in data]
    result = run(ComposeRequest(method=method, data=datasets, options=options, **request))
    return ZooModel(load_folder(result.folder))


def _volume(image: ImageLike, spacing: Sequence[float] | None) -> Volume:
    if isinstance(image, (str, Path)):
        if spacing is not None:
            raise ZooError("spacing= is for numpy arrays; a file carries its own")
        return read_ct(image)
    if isinstance(image, sitk.Image):
        return ct_from_image(image)
    if isinstance(image, np.ndarray):
        return ct_from_image(_array_image(image, spacing))
    raise ZooError(f"predict takes a file path, a SimpleITK image or a numpy array, not {type(image).__name__}")


def _array_image(array: np.ndarray, spacing: Sequence[float] | None) -> sitk.Image:
    if array.ndim != 3:
        raise ZooError(f"a CT array must be 3D (z, y, x), got shape {array.shape}")
    if spacing is None or len(spacing) != 3 or not all(float(s) > 0 for s in spacing):
        raise ZooError("a numpy array needs spacing=(z, y, x): three positive numbers in mm")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    return image
