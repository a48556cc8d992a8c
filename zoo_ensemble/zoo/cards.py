"""Model cards: the schema of a zoo model's ``README.md`` YAML front matter (huggingface_hub's
``ModelCard``), validated when read. What is written, the front matter with its generated prose,
is :mod:`zoo_ensemble.zoo.card_file`.

Unknown keys, in the front matter and inside the ``zoo`` section, round-trip untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..adapters import imported_architectures
from ..architectures import ModelConfig, architecture_names
from ..ensembles import method_names
from ..errors import ModelFormatError
from ..input_range import InputRange, check_field_of_view, parse_spacing
from ..organs import Window, check_organ_list
from ..specs import MODEL_ID  # noqa: F401  (re-exported)
from ..specs import check_model_id as _check_model_id

CARD_FORMAT = 1
KINDS = ("binary", "multiclass", "ensemble")
_ZOO_KEYS = {
    "format", "kind", "model_id", "organs", "architecture", "encoder", "modality", "window", "windows",
    "input", "threshold", "training", "metrics", "method", "members", "weights_sha256", "variant", "postprocess",
}
_TOP_KEYS = {"library_name", "license", "pipeline_tag", "tags", "zoo", "model-index", "model_name"}  # model_name: from model_id


def check_model_id(model_id: Any, where: str = "model id", error: type[Exception] = ModelFormatError) -> str:
    """A model id that is safe as a folder name and in a terminal (see :data:`MODEL_ID`)."""
    return _check_model_id(model_id, where, error)


@dataclass
class Card:
    model_id: str
    kind: str
    organs: list[str]
    windows: list[Window]
    architecture: str | None = None
    method: str | None = None
    encoder: str | None = None
    variant: str | None = None
    input_size: list[int] = field(default_factory=lambda: [160, 160])
    crop: str = "center"
    spacing: list[float] | None = None
    threshold: float = 0.5
    trained_on: InputRange | None = None  # grids of the training scans (zoo.input.trained_on)
    license: str = "apache-2.0"
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # {"val"|"test": {organ|"mean": {metric: value}}}
    members: list[dict[str, Any]] = field(default_factory=list)
    weights_sha256: str | None = None
    postprocess: dict[str, Any] = field(default_factory=dict)  # {"largest_component": [organs]}
    extra_zoo: dict[str, Any] = field(default_factory=dict)
    extra_meta: dict[str, Any] = field(default_factory=dict)

    # --- validation ----------------------------------------------------------------------
    def validate(self) -> None:
        """Refuse a card with a missing or wrong field; the message names the field."""
        if not self.model_id or not isinstance(self.model_id, str):
            raise ModelFormatError("card: field 'zoo.model_id' is missing")
        check_model_id(self.model_id, "card: field 'zoo.model_id'")
        if self.kind not in KINDS:
            raise ModelFormatError(f"card: field 'zoo.kind' must be one of {', '.join(KINDS)}, got {self.kind!r}")
        check_organ_list(self.organs, "card: field 'zoo.organs'", ModelFormatError)
        if self.kind == "binary" and len(self.organs) != 1:
            raise ModelFormatError(f"card: a binary model has one organ, field 'zoo.organs' has {len(self.organs)}")
        if self.kind == "ensemble":
            if self.method not in method_names():
                raise ModelFormatError(f"card: field 'zoo.method' {self.method!r} is not a registered ensemble method")
            if not self.members:
                raise ModelFormatError("card: field 'zoo.members' must list the ensemble's members")
        else:
            imported = self.architecture in imported_architectures()  # another framework's: it normalises inside
            if self.architecture not in architecture_names() and not imported:
                raise ModelFormatError(f"card: field 'zoo.architecture' {self.architecture!r} is not a registered architecture")
            if not self.windows and not imported:
                raise ModelFormatError("card: field 'zoo.window' is missing")
        size = self.input_size
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 2048 for v in size)):
            raise ModelFormatError(f"card: field 'zoo.input.size' must be [height, width], whole numbers in [16, 2048], got {size!r}")
        if self.crop not in ("center", "none"):
            raise ModelFormatError(f"card: field 'zoo.input.crop' must be 'center' or 'none', got {self.crop!r}")
        if self.spacing is not None:
            self.spacing = list(parse_spacing(self.spacing, "card: field 'zoo.input.spacing'"))
            check_field_of_view(size, self.spacing, self.crop, "card")
        if not (isinstance(self.threshold, (int, float)) and not isinstance(self.threshold, bool) and 0 < self.threshold < 1):
            raise ModelFormatError(f"card: field 'zoo.threshold' must be in (0, 1), got {self.threshold}")

    # --- conversion ----------------------------------------------------------------------
    def zoo_section(self) -> dict[str, Any]:
        z: dict[str, Any] = {"format": CARD_FORMAT, "kind": self.kind, "model_id": self.model_id, "organs": list(self.organs)}
        if self.architecture:
            z["architecture"] = self.architecture
        if self.encoder:
            z["encoder"] = self.encoder
        if self.variant:
            z["variant"] = self.variant
        z["modality"] = "CT"
        if len(self.windows) == 1:
            z["window"] = _window_dict(self.windows[0])
        elif self.windows:
            z["windows"] = [_window_dict(w) for w in self.windows]
        inp: dict[str, Any] = {"size": list(self.input_size), "crop": self.crop}
        if self.spacing:
            inp["spacing"] = list(self.spacing)
        if self.trained_on is not None:
            inp["trained_on"] = self.trained_on.to_dict()
        z["input"] = inp
        z["threshold"] = self.threshold
        if self.method:
            z["method"] = self.method
        if self.members:
            z["members"] = self.members
        if self.training:
            z["training"] = self.training
        if self.metrics:
            z["metrics"] = self.metrics
        if self.postprocess:
            z["postprocess"] = self.postprocess
        if self.weights_sha256:
            z["weights_sha256"] = self.weights_sha256
        z.update(self.extra_zoo)
        return z

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> Card:
        z = meta.get("zoo")
        if not isinstance(z, dict):
            raise ModelFormatError("card: the front matter has no 'zoo' section")
        if z.get("format") != CARD_FORMAT:
            raise ModelFormatError(f"card: field 'zoo.format' must be {CARD_FORMAT}, got {z.get('format')!r}")
        try:
            windows = [_window(w) for w in (z.get("windows") or ([z["window"]] if "window" in z else []))]
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelFormatError(f"card: field 'zoo.window' is invalid ({exc})") from None
        inp = z.get("input") or {}
        if not isinstance(inp, dict):
            raise ModelFormatError("card: field 'zoo.input' must be a mapping")
        card = cls(
            model_id=z.get("model_id", ""),
            kind=z.get("kind", ""),
            organs=z.get("organs") or [],
            windows=windows,
            architecture=z.get("architecture"),
            method=z.get("method"),
            encoder=z.get("encoder"),
            variant=z.get("variant"),
            input_size=_as_list(inp.get("size", [160, 160])),
            crop=inp.get("crop", "center"),
            spacing=inp.get("spacing"),
            trained_on=InputRange.from_dict(inp["trained_on"]) if inp.get("trained_on") is not None else None,
            threshold=z.get("threshold", 0.5),
            license=meta.get("license", "unknown"),
            training=z.get("training") or {},
            metrics=z.get("metrics") or {},
            members=z.get("members") or [],
            weights_sha256=z.get("weights_sha256"),
            postprocess=z.get("postprocess") or {},
            extra_zoo={k: v for k, v in z.items() if k not in _ZOO_KEYS},
            extra_meta={k: v for k, v in meta.items() if k not in _TOP_KEYS},
        )
        card.validate()
        return card

    # --- files ---------------------------------------------------------------------------
    @classmethod
    def read(cls, folder: str | Path) -> Card:
        from huggingface_hub import ModelCard

        path = Path(folder) / "README.md"
        if not path.is_file():
            raise ModelFormatError(f"{folder}: no README.md model card")
        try:
            card = ModelCard(path.read_text(encoding="utf-8"))
        except Exception as exc:  # huggingface_hub raises ValueError or yaml errors
            raise ModelFormatError(f"{path}: unreadable card front matter ({str(exc).splitlines()[0]})") from None
        return cls.from_metadata(card.data.to_dict())

    def headline(self, metric: str = "dice", split: str = "val") -> float | None:
        """The mean value of ``metric`` on ``split`` (e.g. validation Dice), if recorded."""
        value = (self.metrics.get(split) or {}).get("mean", {}).get(metric)
        return float(value) if isinstance(value, (int, float)) else None


def card_for(config: ModelConfig, model_id: str, **fields: Any) -> Card:
    """A card for a single (binary or multiclass) model whose build fields are derived from its
    ``config.json`` (the one source of what builds the network), as huggingface_hub's
    ModelHubMixin derives a card from its config."""
    return Card(
        model_id=model_id,
        kind=config.kind,
        organs=list(config.organs),
        windows=list(config.windows),
        architecture=config.architecture,
        encoder=config.encoder,
        variant=config.variant,
        input_size=list(config.input_size),
        crop=config.crop,
        spacing=config.spacing,
        threshold=config.threshold,
        **fields,
    )


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _window_dict(w: Window) -> dict[str, float]:
    return {"width": plain_number(w.width), "level": plain_number(w.level)}


def plain_number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def _window(d: Any) -> Window:
    if not isinstance(d, dict):
        raise TypeError("expected {width, level}")
    width = float(d["width"])
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    return Window(width, float(d["level"]))
