"""The Python API, in the style of huggingface_hub and timm: load any zoo model by id, segment a
CT given as a file, a SimpleITK image or a numpy array, save or publish the model, compose an
ensemble with keyword arguments.

    import zoo_ensemble as zoo
    model = zoo.from_pretrained("heart-unet")
    seg = model.predict("ct.nii.gz")
    seg.masks["heart"], seg.save("labels.nii.gz")

Everything goes through the same checked paths as the CLI: the one model object
(:class:`~zoo_ensemble.zoo.model.ZooModel`) verifies cards, configs and weights on load, and
outputs are written atomically and never over an input.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .zoo.model import ImageLike, ZooModel
from .zoo.segmentation import Segmentation

__all__ = ["ImageLike", "Segmentation", "ZooModel", "compose_ensemble", "from_pretrained", "import_model"]


def from_pretrained(model: str | Path, revision: str | None = None) -> ZooModel:
    """Load a zoo model or ensemble by any id (see :meth:`ZooModel.from_pretrained`)."""
    return ZooModel.from_pretrained(model, revision)


def compose_ensemble(method: str, *, data: Sequence[str | Path] = (), labels: str | None = None, init: str = "members", **request: Any) -> ZooModel:
    """Compose an ensemble with keyword arguments: ``models`` (member ids; default the best
    binary model per organ), ``organs``, ``data`` (dataset folders, needed by the learned
    methods), ``init`` (``members``: ours, ``paper``), ``config`` (a ``TrainConfig``), ``split``,
    ``name``, ``out``, ``push``; see :class:`zoo_ensemble.compose.ComposeRequest`. The ensemble
    comes back as it was made and saved (not read again from its folder)."""
    from .compose import ComposeRequest
    from .compose import compose as run
    from .data.dataset import open_dataset
    from .ensembles import init_options

    options = {**init_options(method, init), **request.pop("options", {})}
    datasets = [open_dataset(p, label_map=labels) for p in data]
    result = run(ComposeRequest(method=method, data=datasets, options=options, **request))
    return result.model if result.model is not None else ZooModel.from_folder(result.folder)


def import_model(framework: str, folder: str | Path, organs: str, **options: Any) -> ZooModel:
    """Import another framework's trained model (``framework="nnunet"``: an nnU-Net v2
    ``Trainer__Plans__configuration`` folder) as a zoo model: ``organs`` as ``zoo import
    --organs`` takes it; ``name``, ``out``, ``folds``, ``checkpoint``, ``trust_pickle``,
    ``mirroring``, ``license``, ``force``; see :class:`zoo_ensemble.zoo.importing.ImportRequest`."""
    from .zoo.importing import ImportRequest
    from .zoo.importing import import_model as run

    return run(ImportRequest(framework, Path(folder), organs, **options))
