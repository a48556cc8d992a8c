"""Frozen members shared between ensembles that are evaluated on the same slices.

A comparison evaluates many ensembles of the same members (four methods, three seeds each) on
the same test patients. Every ensemble holds its own copy of the members, loaded from its own
folder, and would run them again on every slice. Inside :func:`sharing_members`, a member's
output for a batch is kept and reused by any later member with the same tensors fed the same
batch: the key is the sha256 of the member's parameters and buffers (what it computes, whatever
folder it came from) and the batch is compared exactly, so a reuse returns the numbers the
member would have computed. A member with a trainable tensor is never shared; layer fusion,
which trains its members' last layers, shares their frozen trunks
(:meth:`~zoo_ensemble.architectures.SegmentationModel.trunk`).

Kept per batch in memory only; the training cache (:mod:`zoo_ensemble.training.member_cache`)
is the on-disk counterpart for training slices.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class _Store:
    # (id(module), part) -> (the module, kept so that its id is not reused; the part's sha256, None if not shareable)
    digests: dict[tuple[int, str], tuple[nn.Module, str | None]] = field(default_factory=dict)
    outputs: dict[tuple[str, str], list[tuple[torch.Tensor, Any]]] = field(default_factory=dict)
    # whole-volume members: (digest, id of the volume's array) -> (the array, kept so that its id
    # is not reused; the member's logits of it)
    volumes: dict[tuple[str, int], tuple[Any, Any]] = field(default_factory=dict)
    runs: int = 0  # how many member computations actually ran (for tests and benchmarks)
    reused: int = 0


_STORE: ContextVar[_Store | None] = ContextVar("zoo_shared_members", default=None)


@contextlib.contextmanager
def sharing_members() -> Iterator[_Store]:
    """Within the block, equal frozen members fed equal batches run once."""
    store = _Store()
    token = _STORE.set(store)
    try:
        yield store
    finally:
        _STORE.reset(token)


def forget_batches() -> None:
    """Drop the kept outputs (call between cases: a case's batches never come back)."""
    store = _STORE.get()
    if store is not None:
        store.outputs.clear()
        store.volumes.clear()


def volume_output(module: nn.Module, volume: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``, a whole-volume member's logits of ``volume``, or what an equal member
    already computed of the same volume object in the current :func:`sharing_members` block
    (ensembles evaluated together that hold one imported model run it once per case)."""
    store = _STORE.get()
    if store is None:
        return compute()
    if (id(module), "volume") not in store.digests:
        store.digests[id(module), "volume"] = (module, _digest(module, "volume", ()))
    digest = store.digests[id(module), "volume"][1]
    if digest is None:
        return compute()
    key = (digest, id(volume))
    if key in store.volumes:
        store.reused += 1
        return store.volumes[key][1]
    out = compute()
    store.runs += 1
    store.volumes[key] = (volume, out)
    return out


def tensors_sha256(named: Iterable[tuple[str, torch.Tensor]], salt: str = "") -> str:
    """sha256 of named tensors (each name, dtype, shape and bytes, in name order): what a set of
    weights computes, whatever file or module it came from."""
    h = hashlib.sha256(salt.encode())
    for name, t in sorted(named, key=lambda kv: kv[0]):
        h.update(f"{name}{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _digest(module: nn.Module, part: str, leave_out: Sequence[nn.Module]) -> str | None:
    skip = {id(t) for m in leave_out for t in [*m.parameters(), *m.buffers()]}
    tensors = [(n, t) for n, t in [*module.named_parameters(), *module.named_buffers()] if id(t) not in skip]
    if any(t.requires_grad for _, t in tensors):
        return None
    return tensors_sha256(tensors, f"{type(module).__qualname__}/{part}")


def member_output(
    module: nn.Module, x: torch.Tensor, compute: Callable[[torch.Tensor], Any], part: str = "output", leave_out: Sequence[nn.Module] = (),
) -> Any:
    """``compute(x)``, or what an equal member already computed on an equal ``x`` in the current
    :func:`sharing_members` block. ``part`` names what ``compute`` returns of the member (its
    output, or its trunk); the tensors of ``leave_out`` (the parts ``compute`` does not run)
    are not part of the key, and may be trainable."""
    store = _STORE.get()
    if store is None:
        return compute(x)
    if (id(module), part) not in store.digests:
        store.digests[id(module), part] = (module, _digest(module, part, leave_out))
    digest = store.digests[id(module), part][1]
    if digest is None:
        return compute(x)
    kept = store.outputs.setdefault((digest, f"{part}{x.dtype}{tuple(x.shape)}{x.device}"), [])
    for seen, out in kept:
        if torch.equal(seen, x):
            store.reused += 1
            return out
    out = compute(x)
    store.runs += 1
    kept.append((x, out))
    return out
