"""The one model object: a zoo model (binary, multiclass or ensemble) loaded once from its folder,
or built in memory by the composer, holding its network, card and config, where it came from,
and one predictor per device and settings. Every path that uses a model goes through it: CLI
prediction and cohorts, evaluation, ensemble members, the demo, experiments and the Python API
(as huggingface_hub's ``ModelHubMixin`` is one object that is loaded, used and saved, and
nnU-Net's predictor is initialised once from a folder, then called many times).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from ..devices import resolve_device, resolve_precision
from ..dicom import Producer
from ..errors import ZooError
from ..inference import ChannelSelect, InferenceConfig, Predictor
from ..labelmaps import check_covers, get_label_map
from ..organs import parse_organs
from ..outputs import check_output_folder, is_model_folder
from ..registry import get_registry, zoo_version
from ..specs import LabelMap
from ..volumes import Volume, ct_from_image, read_ct
from . import hub
from .cards import Card
from .catalog import HUB_PREFIX, HubRef, resolve
from .folder import WEIGHTS, sha256_file, write_folder
from .loading import forward_check, load_network
from .segmentation import Segmentation

ImageLike = str | Path | sitk.Image | np.ndarray | Volume


class ZooModel:
    """A loaded zoo model with its card: what it is (``model_id``, ``organs``, ``kind``), how it
    runs (:meth:`predictor`, :meth:`predict`), where it came from (:meth:`source`,
    :meth:`producer`, :meth:`provenance`) and how it is saved (:meth:`save_pretrained`,
    :meth:`push_to_hub`)."""

    def __init__(self, network: torch.nn.Module, card: Card, config: dict[str, Any], folder: Path | None = None):
        self.network = network.eval()
        self.card = card
        self.config = config
        self.folder = folder
        self._predictors: dict[tuple[Any, ...], Predictor] = {}
        self._source: str | None = None
        self._producer: Producer | None = None

    @classmethod
    def from_folder(cls, folder: str | Path) -> ZooModel:
        """Load a model folder of any kind with every check (card, config, weights)."""
        network, card, config = load_network(folder)
        return cls(network, card, config, Path(folder))

    @classmethod
    def from_pretrained(cls, model: str | Path, revision: str | None = None) -> ZooModel:
        """Load by id, ``hf-hub:org/name`` (``revision``: a branch, tag or commit), ``local-dir:PATH``
        or a folder; a Hub model is pulled (downloaded once, checked, recorded)."""
        ref = str(model)
        if revision is not None:
            if not ref.startswith(HUB_PREFIX) or "@" in ref:
                raise ZooError(f"revision= is for hf-hub:org/name ids without @revision (got {ref!r})")
            ref = f"{ref}@{revision}"
        target = resolve(ref)
        return pull(target.repo, target.revision) if isinstance(target, HubRef) else cls.from_folder(target)

    # --- what it is -----------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def organs(self) -> list[str]:
        return list(self.card.organs)

    @property
    def kind(self) -> str:
        return self.card.kind

    def __repr__(self) -> str:
        return f"ZooModel({self.model_id!r}, kind={self.kind!r}, organs={self.organs})"

    # --- how it runs ----------------------------------------------------------------------------
    def inference(self, organs: Sequence[str] | None = None, largest_component: Sequence[str] | None = None) -> InferenceConfig:
        """How the card says to run it: input size, crop, spacing, threshold, the post-processing
        chosen on validation (``largest_component`` overrides it; ``[]`` for none), the grids it
        was trained on; producing only ``organs`` when given."""
        card = self.card
        largest = (card.postprocess.get("largest_component") or []) if largest_component is None else list(largest_component)
        return InferenceConfig(
            tuple(organs or card.organs), tuple(card.input_size), card.crop, card.spacing, card.threshold, tuple(largest),
            card.model_id, card.trained_on,
        )

    def predictor(
        self, device: str = "auto", precision: str = "auto", batch_size: int = 16, organs: str | Sequence[str] | None = None,
        largest_component: Sequence[str] | None = None,
    ) -> Predictor:
        """The predictor for these settings, made once: the network moves to ``device`` once, and
        an ensemble asked for some ``organs`` runs only the members they need. ``precision`` is
        ``auto`` (fp16 autocast on a GPU, fp32 on a CPU), ``fp32``, ``bf16`` or ``fp16``."""
        wanted = self._wanted(organs)
        where = resolve_device(device)
        dtype = resolve_precision(precision, where)
        key = (str(where), dtype, int(batch_size), tuple(wanted), None if largest_component is None else tuple(largest_component))
        if key not in self._predictors:
            # one network: a predictor on another device would find it moved away
            self._predictors = {k: p for k, p in self._predictors.items() if k[0] == key[0]}
            config = self.inference(wanted, largest_component)
            self._predictors[key] = Predictor(self._network_for(wanted), config, where, dtype, batch_size)
        return self._predictors[key]

    def _wanted(self, organs: str | Sequence[str] | None) -> list[str]:
        if not organs:
            return self.organs
        wanted = parse_organs(organs)
        unknown = [o for o in wanted if o not in self.organs]
        if unknown:
            raise ZooError(f"model {self.model_id!r} does not segment {', '.join(unknown)} (it segments {', '.join(self.organs)})")
        return wanted

    def _network_for(self, organs: list[str]) -> torch.nn.Module:
        if organs == self.organs:
            return self.network
        if hasattr(self.network, "restricted_to"):
            return self.network.restricted_to(organs)
        return ChannelSelect(self.network, [self.organs.index(o) for o in organs])

    def label_map(self, label_map: str | LabelMap, organs: Sequence[str] | None = None) -> LabelMap:
        """``label_map`` resolved and checked to have a value for every organ it will write."""
        lm = get_label_map(label_map)
        check_covers(lm, self._wanted(organs))
        return lm

    def predict(
        self, image: ImageLike, spacing: Sequence[float] | None = None, organs: Sequence[str] | None = None,
        label_map: str | LabelMap = "zoo", device: str = "auto", batch_size: int = 16, precision: str = "auto",
        probabilities: bool = False, progress: Callable[[int, int], None] | None = None,
    ) -> Segmentation:
        """Segment a CT in HU: a file or DICOM folder, a SimpleITK image, a :class:`Volume`, or a
        numpy array with ``spacing`` in mm in the array's axis order (``(z, y, x)``; identity
        direction). ``probabilities`` keeps each organ's probability map too."""
        lm = self.label_map(label_map, organs)
        predictor = self.predictor(device, precision, batch_size, organs)
        volume = _volume(image, spacing)
        pred = predictor.predict(volume, probabilities=probabilities, progress=progress)
        canonical = lm.encode(pred.masks())
        return Segmentation(canonical, list(pred.organs), lm, volume, self.producer(), pred.probabilities, pred.contested)

    # --- where it came from ---------------------------------------------------------------------
    def source(self) -> str:
        """``hf-hub:repo@commit``, ``plugin NAME``, ``local`` or ``memory`` (never a local path:
        a card that records it is published)."""
        if self._source is None:
            self._source = _source_of(self.folder)
        return self._source

    def producer(self) -> Producer:
        """Who a segmentation comes from, as outputs record it: the model id and its revision
        (the Hub commit of a pulled model, else the sha256 of its weights)."""
        if self._producer is None:
            entry = hub.entry_for_folder(self.folder) if self.folder is not None else None
            if entry and entry.get("commit"):
                revision = f"{entry['repo']}@{entry['commit']}"
            else:
                revision = f"sha256:{self.weights_sha256()[:16]}"
            self._producer = Producer(self.model_id, revision, zoo_version())
        return self._producer

    def weights_sha256(self) -> str:
        """The weights' sha256 as the card records it, else hashed from the folder's file."""
        if self.card.weights_sha256:
            return self.card.weights_sha256
        if self.folder is None:
            return "unsaved"
        return sha256_file(self.folder / WEIGHTS)

    def provenance(self) -> dict[str, Any]:
        """What an ensemble's card records of this model as a member."""
        card = self.card
        entry: dict[str, Any] = {"model_id": card.model_id, "source": self.source(), "kind": card.kind, "organs": list(card.organs)}
        if card.architecture:
            entry["architecture"] = card.architecture
        pulled = hub.entry_for_folder(self.folder) if self.folder is not None else None
        if pulled:
            entry["repo"], entry["revision"] = pulled["repo"], pulled["commit"]
        entry["sha256"] = self.weights_sha256()
        entry["license"] = card.license
        datasets = card.training.get("datasets") or []
        if datasets:
            entry["training"] = [{"name": d.get("name"), "cases": len(d.get("cases_train", [])) + len(d.get("cases_val", []))} for d in datasets]
        return entry

    def seen_cases(self) -> set[str]:
        """Hashes of every case this model was trained or validated on (from its card)."""
        out: set[str] = set()
        for d in self.card.training.get("datasets") or []:
            out.update(d.get("cases_train", []))
            out.update(d.get("cases_val", []))
        return out

    # --- how it is saved ------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path, force: bool = False) -> Path:
        """Write ``model.safetensors``, ``config.json`` and the card to ``folder`` (atomically;
        a folder that is not a zoo model folder is replaced only with ``force``)."""
        out = Path(folder)
        check_output_folder(out, "zoo model folder", owned=is_model_folder(out), force=force)
        write_folder(out, self.network.state_dict(), dict(self.config), self.card)
        return out

    def push_to_hub(self, repo_id: str, private: bool = False, create_pr: bool = False, message: str | None = None) -> Any:
        """Publish the model folder to a Hub repo (checked first); returns the commit info."""
        if self.folder is None:
            raise ZooError(f"{self.model_id}: save the model (save_pretrained) before pushing it")
        return hub.push(self.folder, repo_id, private=private, create_pr=create_pr, message=message)


def pull(repo: str, revision: str | None = None) -> ZooModel:
    """Download (or find in the cache) a model repo, load it with every check and run one dummy
    slice (what ``zoo verify`` does), and only then record it in the pull index."""
    d = hub.download(repo, revision)
    model = ZooModel.from_folder(d.folder)
    forward_check(model.network, model.card, d.folder)
    hub.record(d, model.model_id)
    return model


def _source_of(folder: Path | None) -> str:
    if folder is None:
        return "memory"
    pulled = hub.entry_for_folder(folder)
    if pulled:
        return f"hf-hub:{pulled['repo']}@{pulled['commit']}"
    reg = get_registry()
    for model_id in reg.names("models"):
        spec = reg.get("models", model_id)
        if spec.path is not None and Path(str(spec.path)).resolve() == folder.resolve():
            return f"plugin {reg.source('models', model_id)}"
    return "local"


def _volume(image: ImageLike, spacing: Sequence[float] | None) -> Volume:
    if isinstance(image, Volume):
        return image
    if isinstance(image, (str, Path)):
        if spacing is not None:
            raise ZooError("spacing= is for numpy arrays; a file carries its own")
        return read_ct(image)
    if isinstance(image, sitk.Image):
        return ct_from_image(image)
    if isinstance(image, np.ndarray):
        return ct_from_image(_array_image(image, spacing))
    raise ZooError(f"predict takes a file path, a SimpleITK image, a Volume or a numpy array, not {type(image).__name__}")


def _array_image(array: np.ndarray, spacing: Sequence[float] | None) -> sitk.Image:
    if array.ndim != 3:
        raise ZooError(f"a CT array must be 3D (z, y, x), got shape {array.shape}")
    if spacing is None or len(spacing) != 3 or not all(float(s) > 0 for s in spacing):
        raise ZooError("a numpy array needs spacing=(z, y, x): three positive numbers in mm")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    return image
