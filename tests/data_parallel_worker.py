"""One training run for the data-parallel tests: started with plain ``python`` (one process) or
under ``torchrun`` (several); the same seeded data and model either way. Rank 0 writes the epoch
losses and the final weights to OUT (json + safetensors) for the test to compare.

Run: python tests/data_parallel_worker.py COHORT_DIR OUT {binary,ensemble} [--epochs N] [--checkpoint F [--resume]]

The networks compute in float64 (the loss keeps it): in float32 a freshly initialised network's
BatchNorm backward cancels large sums, and two processes add them in another order, which moves
the gradients by ~1e-3 of their size; in float64 what is left is the method's own difference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from zoo_ensemble.architectures import build_model, make_config
from zoo_ensemble.data.dataset import open_dataset
from zoo_ensemble.data.slices import load_cases
from zoo_ensemble.distributed import current, leave
from zoo_ensemble.ensembles import get_method
from zoo_ensemble.ensembles.base import MemberRecord
from zoo_ensemble.training.trainer import TrainConfig, Trainer

ORGANS = ["heart", "trachea"]


class InDouble(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.double())


def network(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "binary":
        return build_model(make_config("unet", ["heart"], "tiny", input_size=[64, 64], spacing=[4.0, 4.0]))
    members = [build_model(make_config("unet", [o], "tiny", input_size=[64, 64], spacing=[4.0, 4.0])).eval() for o in ORGANS]
    records = [MemberRecord(f"{o}-unet", [o], {}) for o in ORGANS]
    return get_method("meta_unet").build(members, records, list(ORGANS))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("cohort")
    p.add_argument("out")
    p.add_argument("kind", choices=["binary", "ensemble"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--checkpoint", help="resumable checkpoint file")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    organs = ["heart"] if args.kind == "binary" else ORGANS
    ds = open_dataset(args.cohort)
    cases = load_cases(ds, ds.cases[:3], organs, (64, 64), (4.0, 4.0))
    model = InDouble(network(args.kind))
    config = TrainConfig(epochs=args.epochs, steps_per_epoch=args.steps, batch_size=4, val_batch_size=3, device="cpu", seed=0)
    result = Trainer(model, cases[:2], cases[2:], organs, config, checkpoint=args.checkpoint).fit(resume=args.resume)
    if current().is_main:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        history = [{k: h[k] for k in ("train_loss", "val_loss", "val_dice")} for h in result.history]
        (out / "history.json").write_text(json.dumps({"history": history, "processes": current().size}))
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "weights.safetensors"))


if __name__ == "__main__":
    try:
        main()
    finally:
        # gloo's threads must end before the interpreter does: a process group left to exit
        # aborted a run now and then ("terminate called without an active exception"), as the
        # zoo command's own leave() prevents
        leave()
