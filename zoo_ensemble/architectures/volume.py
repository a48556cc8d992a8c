"""Members that see a whole CT at once (a 3D nnU-Net, another framework's predictor) inside the
slice-by-slice prediction path.

Such a member turns a whole volume into per-organ logits on that volume's own grid
(:meth:`VolumeNetwork.predict_volume`). The :class:`~zoo_ensemble.inference.Predictor` asks
it once per CT, then hands each batch of slices the matching part of those logits, moved
through exactly the resampling and cropping the HU slices went through (:meth:`feed`); the
member's ``forward`` returns what it was fed. Ensembles, channel selection and evaluation then
treat it as any member. The training cache calls :meth:`predict_volume` on a prepared case's
slices (the ensemble's grid).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

#: Logit of "surely not this organ", for the parts of a slice a member did not see (padding).
ABSENT_LOGIT = -30.0


class VolumeNetwork(nn.Module):
    """A member that predicts whole volumes; subclasses provide :meth:`predict_volume`."""

    organs: list[str]

    def __init__(self, organs: Sequence[str]):
        super().__init__()
        self.organs = list(organs)
        self._fed: torch.Tensor | None = None
        self._aliases: dict[str, str] | None = None
        self._register_load_state_dict_pre_hook(self._fill_aliases)

    # A framework's network may hold one tensor under several names (nnU-Net's blocks list
    # their convolution twice); safetensors stores a tensor once, so the state a zoo folder
    # holds names each tensor once (its first name, as ``named_parameters`` gives it) and the
    # other names are filled in when it is loaded.
    def aliases(self) -> dict[str, str]:
        """Second names of tensors -> their first name, relative to this module."""
        if self._aliases is None:
            first: dict[int, str] = {}
            self._aliases = {}
            for name, t in [*self.named_parameters(remove_duplicate=False), *self.named_buffers(remove_duplicate=False)]:
                if id(t) in first:
                    self._aliases[name] = first[id(t)]
                else:
                    first[id(t)] = name
        return self._aliases

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):  # type: ignore[override]  # noqa: ANN001, ANN002, ANN201
        out = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        for alias in self.aliases():
            out.pop(prefix + alias, None)
        return out

    def _fill_aliases(self, state: dict, prefix: str, *args: object) -> None:  # noqa: ANN001
        for alias, name in self.aliases().items():
            if prefix + name in state and prefix + alias not in state:
                state[prefix + alias] = state[prefix + name]

    def predict_volume(self, hu: np.ndarray, spacing_zyx: tuple[float, float, float], source: object | None = None) -> np.ndarray:
        """``(C, Z, Y, X)`` float32 logits of ``hu`` ((Z, Y, X) HU). ``source``: the CT's
        :class:`~zoo_ensemble.volumes.Volume` when the whole of it is given (a member may then
        read it in the orientation its framework reads files in)."""
        raise NotImplementedError

    def feed(self, logits: torch.Tensor | None) -> None:
        """What the next ``forward`` returns: the logits of the next batch of slices (None: nothing)."""
        self._fed = logits

    def forward(self, hu: torch.Tensor) -> torch.Tensor:
        fed, self._fed = self._fed, None
        if fed is None:
            raise RuntimeError(f"{type(self).__name__} predicts whole volumes; run it through a Predictor or the member cache")
        if fed.shape[0] != hu.shape[0] or fed.shape[-2:] != hu.shape[-2:]:
            raise RuntimeError(f"fed logits {tuple(fed.shape)} do not match the batch {tuple(hu.shape)}")
        return fed.to(hu.device)


def drop_shared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with each tensor under its first name only (tensors that share memory are one)."""
    seen: set[tuple[int, tuple[int, ...], tuple[int, ...]]] = set()
    out = {}
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr() + t.storage_offset() * t.element_size(), tuple(t.shape), tuple(t.stride()))
        if key in seen:
            continue
        seen.add(key)
        out[name] = t
    return out


def volume_networks(model: nn.Module) -> Iterator[VolumeNetwork]:
    """Every whole-volume member inside ``model`` (itself included)."""
    for module in model.modules():
        if isinstance(module, VolumeNetwork):
            yield module


def log_odds(probabilities: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``log(p / (1 - p))`` in float32, p clipped to ``[eps, 1 - eps]``: a probability as a logit."""
    p = np.clip(probabilities.astype(np.float32, copy=False), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)
