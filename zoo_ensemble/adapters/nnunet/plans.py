"""What an imported nnU-Net v2 model's ``plans.json`` and ``dataset.json`` may say, checked with
types and bounds before nnU-Net's code sees them.

nnU-Net trusts its plans: class names in them are imported (``pydoc.locate``) and called, and
patch sizes and feature counts are allocated as given. A plans file from a stranger's model
folder could name any importable callable or ask for terabytes, so every name here comes from an
allow-list and every number from a range; what nnU-Net resolves by name inside its own package
(normalisation, resampling, preprocessing, label handling) is allow-listed too.
"""

from __future__ import annotations

import math
from typing import Any

from ...errors import ModelFormatError

NETWORKS = (
    "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
)
#: What ``_kw_requires_import`` names may resolve to (nnU-Net imports them by name).
IMPORTABLE = {
    "conv_op": ("torch.nn.modules.conv.Conv2d", "torch.nn.modules.conv.Conv3d"),
    "norm_op": (
        "torch.nn.modules.instancenorm.InstanceNorm2d", "torch.nn.modules.instancenorm.InstanceNorm3d",
        "torch.nn.modules.batchnorm.BatchNorm2d", "torch.nn.modules.batchnorm.BatchNorm3d",
    ),
    "dropout_op": (None, "torch.nn.modules.dropout.Dropout2d", "torch.nn.modules.dropout.Dropout3d"),
    "nonlin": ("torch.nn.LeakyReLU", "torch.nn.ReLU", "torch.nn.modules.activation.LeakyReLU", "torch.nn.modules.activation.ReLU"),
}
NORMALIZATIONS = ("CTNormalization", "ZScoreNormalization", "NoNormalization", "RescaleTo01Normalization", "RGBTo01Normalization")
RESAMPLING = ("resample_data_or_seg_to_shape", "resample_data_or_seg_to_spacing", "resample_torch_fornnunet")
PREPROCESSORS = ("DefaultPreprocessor",)
#: nnU-Net's NIfTI readers and the orientation each reads an image in: None as stored in the
#: file (SimpleITKIO and NibabelIO give one array), or reoriented (NibabelIOWithReorient: RAS).
READERS = {"SimpleITKIO": None, "NibabelIO": None, "NibabelIOWithReorient": "RAS"}
LABEL_MANAGERS = ("LabelManager",)
#: What an imported nnU-Net model's card and config.json name as its architecture.
ARCHITECTURE = "nnunet-v2"
MAX_STAGES = 10
MAX_FEATURES = 2048
MAX_PATCH_VOXELS = 1 << 24
MAX_LABEL = 255
MAX_FOLDS = 10


def _int(v: Any, lo: int, hi: int, where: str) -> int:
    if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
        raise ModelFormatError(f"{where} must be a whole number in [{lo}, {hi}], got {str(v)[:40]!r}")
    return v


def _num(v: Any, lo: float, hi: float, where: str) -> float:
    if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi):
        raise ModelFormatError(f"{where} must be a number in [{lo:g}, {hi:g}], got {str(v)[:40]!r}")
    return float(v)


def _ints(v: Any, n: int | None, lo: int, hi: int, where: str) -> list[int]:
    if not isinstance(v, list) or (n is not None and len(v) != n) or not v or len(v) > 64:
        raise ModelFormatError(f"{where} must be a list of {n or 'some'} whole numbers, got {str(v)[:60]!r}")
    return [_int(x, lo, hi, where) for x in v]


def _one_of(v: Any, allowed: tuple[Any, ...], where: str) -> Any:
    if v not in allowed:
        raise ModelFormatError(f"{where} {str(v)[:80]!r} is not supported (supported: {', '.join(str(a) for a in allowed)})")
    return v


def _dict(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ModelFormatError(f"{where} must be a JSON object")
    return v


def configuration(plans: Any, name: str, where: str = "plans.json") -> dict[str, Any]:
    """The configuration ``name`` with what it inherits merged in (as nnU-Net merges it), every
    field nnU-Net reads checked; a cascade stage is refused."""
    plans = _dict(plans, where)
    configs = _dict(plans.get("configurations"), f"{where}: 'configurations'")
    chain: list[dict[str, Any]] = []
    current: Any = name
    while current is not None:
        if not isinstance(current, str) or current not in configs or len(chain) > 4:
            raise ModelFormatError(f"{where}: configuration {str(current)[:40]!r} is not in its 'configurations' (has {', '.join(map(str, configs))[:120]})")
        chain.append(_dict(configs[current], f"{where}: configuration {current!r}"))
        current = chain[-1].get("inherits_from")
    cfg: dict[str, Any] = {}
    for part in reversed(chain):
        cfg.update(part)
    if cfg.get("previous_stage") is not None:
        raise ModelFormatError(f"{where}: configuration {name!r} is a cascade stage (previous_stage {cfg['previous_stage']!r}); cascades are not supported yet")
    check_configuration(cfg, f"{where}: configuration {name!r}")
    return cfg


def check_configuration(cfg: dict[str, Any], where: str) -> None:
    patch = _ints(cfg.get("patch_size"), None, 4, 1024, f"{where}: 'patch_size'")
    if len(patch) not in (2, 3) or math.prod(patch) > MAX_PATCH_VOXELS:
        raise ModelFormatError(f"{where}: 'patch_size' {patch} must have 2 or 3 axes and at most {MAX_PATCH_VOXELS} voxels")
    spacing = cfg.get("spacing")
    if not isinstance(spacing, list) or len(spacing) != len(patch):
        raise ModelFormatError(f"{where}: 'spacing' must have as many axes as the patch ({len(patch)})")
    for s in spacing:
        _num(s, 0.01, 50.0, f"{where}: 'spacing'")
    schemes = cfg.get("normalization_schemes")
    if not isinstance(schemes, list) or len(schemes) != 1:
        raise ModelFormatError(f"{where}: 'normalization_schemes' must name one scheme (a CT model has one input channel)")
    _one_of(schemes[0], NORMALIZATIONS, f"{where}: normalisation scheme")
    _one_of(cfg.get("preprocessor_name", "DefaultPreprocessor"), PREPROCESSORS, f"{where}: preprocessor")
    for key in ("resampling_fn_data", "resampling_fn_seg", "resampling_fn_probabilities"):
        _one_of(cfg.get(key), RESAMPLING, f"{where}: {key!r}")
        kwargs = _dict(cfg.get(f"{key}_kwargs", {}), f"{where}: '{key}_kwargs'")
        for k, v in kwargs.items():
            if k in ("order", "order_z"):
                _int(v, 0, 5, f"{where}: '{key}_kwargs.{k}'")
            elif k in ("is_seg", "force_separate_z", "memefficient_seg_resampling"):
                if v is not None and not isinstance(v, bool):
                    raise ModelFormatError(f"{where}: '{key}_kwargs.{k}' must be true, false or null")
            else:
                raise ModelFormatError(f"{where}: '{key}_kwargs' has unknown key {k[:40]!r}")
    check_architecture(cfg.get("architecture"), len(patch), f"{where}: 'architecture'")


def check_architecture(arch: Any, dims: int, where: str) -> None:
    arch = _dict(arch, where)
    _one_of(arch.get("network_class_name"), NETWORKS, f"{where}: network class")
    kw = _dict(arch.get("arch_kwargs"), f"{where}: 'arch_kwargs'")
    needs_import = arch.get("_kw_requires_import", [])
    if not isinstance(needs_import, list) or any(k not in IMPORTABLE for k in needs_import):
        raise ModelFormatError(f"{where}: '_kw_requires_import' may name only {', '.join(IMPORTABLE)}")
    for key, allowed in IMPORTABLE.items():
        if key in kw:
            _one_of(kw[key], allowed, f"{where}: {key}")
    n = _int(kw.get("n_stages"), 1, MAX_STAGES, f"{where}: 'n_stages'")
    _ints(kw.get("features_per_stage"), n, 1, MAX_FEATURES, f"{where}: 'features_per_stage'")
    for key in ("kernel_sizes", "strides"):
        v = kw.get(key)
        if not isinstance(v, list) or len(v) != n:
            raise ModelFormatError(f"{where}: {key!r} must list {n} stages")
        for stage in v:
            _ints(stage if isinstance(stage, list) else [stage], dims if isinstance(stage, list) else 1, 1, 7 if key == "kernel_sizes" else 4, f"{where}: {key!r}")
    for key in ("n_conv_per_stage", "n_blocks_per_stage"):
        if key in kw:
            _ints(kw[key], n, 1, 16, f"{where}: {key!r}")
    _ints(kw.get("n_conv_per_stage_decoder"), n - 1, 1, 16, f"{where}: 'n_conv_per_stage_decoder'") if n > 1 else None
    for key in ("norm_op_kwargs", "dropout_op_kwargs", "nonlin_kwargs"):
        v = kw.get(key)
        if v is None:
            continue
        for k, x in _dict(v, f"{where}: {key!r}").items():
            if k not in ("eps", "affine", "inplace", "negative_slope", "p", "momentum") or not (isinstance(x, bool) or _num(x, 0, 1, f"{where}: '{key}.{k}'") is not None):
                raise ModelFormatError(f"{where}: {key!r} has unsupported key {k[:40]!r}")
    unknown = set(kw) - {
        "n_stages", "features_per_stage", "conv_op", "kernel_sizes", "strides", "n_conv_per_stage", "n_blocks_per_stage",
        "n_conv_per_stage_decoder", "conv_bias", "norm_op", "norm_op_kwargs", "dropout_op", "dropout_op_kwargs", "nonlin", "nonlin_kwargs",
    }
    if unknown:
        raise ModelFormatError(f"{where}: 'arch_kwargs' has unknown key {sorted(unknown)[0][:40]!r}")


def check_plans(plans: Any, where: str = "plans.json") -> dict[str, Any]:
    """The plans' top-level fields nnU-Net reads when predicting."""
    plans = _dict(plans, where)
    _one_of(plans.get("image_reader_writer", "SimpleITKIO"), tuple(READERS), f"{where}: image reader")
    _one_of(plans.get("label_manager", "LabelManager"), LABEL_MANAGERS, f"{where}: label manager")
    for key in ("transpose_forward", "transpose_backward"):
        v = plans.get(key, [0, 1, 2])
        if sorted(_ints(v, 3, 0, 2, f"{where}: {key!r}")) != [0, 1, 2]:
            raise ModelFormatError(f"{where}: {key!r} must be a permutation of 0, 1, 2")
    props = _dict(plans.get("foreground_intensity_properties_per_channel", {}), f"{where}: intensity properties")
    for channel, stats in props.items():
        for k, v in _dict(stats, f"{where}: intensity properties of channel {channel[:8]!r}").items():
            _num(v, -1e7, 1e7, f"{where}: intensity property {k[:40]!r}")
    return plans


def check_dataset(dataset: Any, where: str = "dataset.json") -> dict[str, int]:
    """Label name -> value of a single-channel, label-based (not region-based) dataset."""
    dataset = _dict(dataset, where)
    channels = _dict(dataset.get("channel_names", dataset.get("modality")), f"{where}: 'channel_names'")
    if len(channels) != 1:
        raise ModelFormatError(f"{where}: the model takes {len(channels)} input channels; a CT member takes one")
    if dataset.get("regions_class_order") is not None:
        raise ModelFormatError(f"{where}: a region-based model (regions_class_order); region-based models are not supported yet")
    labels = _dict(dataset.get("labels"), f"{where}: 'labels'")
    if len(labels) > MAX_LABEL + 1:
        raise ModelFormatError(f"{where}: more than {MAX_LABEL + 1} labels")
    out: dict[str, int] = {}
    for name, value in labels.items():
        if isinstance(value, (list, tuple)):
            raise ModelFormatError(f"{where}: label {name[:40]!r} is a region; region-based models are not supported yet")
        out[str(name)[:128]] = _int(value, 0, MAX_LABEL, f"{where}: label {name[:40]!r}")
    if sorted(out.values()) != list(range(len(out))):
        raise ModelFormatError(f"{where}: label values must be 0, 1, ... without gaps (nnU-Net's rule), got {sorted(out.values())[:12]}")
    if out.get("background") != 0:
        raise ModelFormatError(f"{where}: 'background' must be label 0")
    return out


def check_config(config: dict[str, Any], where: str = "config.json") -> dict[str, Any]:
    """An imported model's config.json, every field typed and bounded; returns its nnU-Net
    configuration resolved (what builds the network)."""
    if config.get("architecture") != ARCHITECTURE:
        raise ModelFormatError(f"{where}: architecture must be {ARCHITECTURE!r}")
    labels = check_dataset(config.get("dataset"), f"{where}: 'dataset'")
    resolved = configuration(check_plans(config.get("plans"), f"{where}: 'plans'"), config.get("configuration"), f"{where}: 'plans'")
    organs = config.get("organs")
    mapping = config.get("organ_labels")
    if not isinstance(organs, list) or not isinstance(mapping, dict) or list(mapping) != organs or not organs:
        raise ModelFormatError(f"{where}: 'organ_labels' must map each of 'organs', in order, to label values")
    for organ, values in mapping.items():
        _ints(values, None, 1, MAX_LABEL, f"{where}: labels of {organ[:40]!r}")
        if any(v not in labels.values() for v in values):
            raise ModelFormatError(f"{where}: labels of {organ[:40]!r} are not all in the dataset's labels")
    folds = config.get("folds")
    if not isinstance(folds, list) or not 1 <= len(folds) <= MAX_FOLDS or not all(f == "all" or (isinstance(f, int) and 0 <= f < 100) for f in folds):
        raise ModelFormatError(f"{where}: 'folds' must list 1 to {MAX_FOLDS} fold numbers (or 'all')")
    if config.get("mirroring_axes"):
        _ints(config["mirroring_axes"], None, 0, 2, f"{where}: 'mirroring_axes'")
    if not isinstance(config.get("mirroring", True), bool):
        raise ModelFormatError(f"{where}: 'mirroring' must be true or false")
    return resolved
