"""Ensemble figures (issue #5), on the real 512 x 512 x 133 CT, six tiny binary members.

For each method:
- seconds per volume (320 x 320 centre crops) and peak resident memory above the start;
- ensemble inference time / the sum of the members' bare forward passes over the same crops
  (channels-last, inference mode, as the Predictor runs them), plus, for the meta U-Net and layer
  fusion, the combiner's own forward over the members' outputs; all in the same run (targets:
  <= 1.05 for argmax and logits convolution, <= 1.10 for the others). Air slices are not skipped
  here, so that both sides see the same slices.

Run: python benchmarks/bench_ensembles.py [--slices 133] [--variant tiny] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from common import SAMPLE, PeakRSS, first_slices, machine, save_figures

ORGANS = ("lung_left", "lung_right", "heart", "esophagus", "trachea", "spinal_cord")
ARCHS = ("se_resunet", "se_resunet", "deeplabv3", "se_resunet", "deeplabv3", "se_resunet")  # the paper's picks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--slices", type=int, default=133)
    p.add_argument("--variant", default="tiny")
    p.add_argument("--repeat", type=int, default=2, help="each timing is the best of this many (the machine is shared and noisy)")
    p.add_argument("--data", type=Path, default=SAMPLE, help="the sample CT's folder")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    from zoo_ensemble.architectures import build_model, make_config
    from zoo_ensemble.ensembles.base import MemberRecord
    from zoo_ensemble.zoo.ensemble_folder import build_ensemble
    from zoo_ensemble.inference import InferenceConfig, Predictor
    from zoo_ensemble.volumes import read_ct
    from zoo_ensemble.preprocess import AIR_HU, centre_box, crop_or_pad

    torch.manual_seed(0)
    volume = first_slices(read_ct(args.data / "ct.nii.gz"), args.slices)
    size = (320, 320)
    members, infos = [], []
    for organ, arch in zip(ORGANS, ARCHS):
        cfg = make_config(arch, [organ], args.variant, input_size=list(size))
        members.append(build_model(cfg).eval())
        infos.append(MemberRecord(f"{organ}-{arch}", [organ], cfg.to_dict()))
    box = centre_box(*volume.shape[1:], size)
    crops = [crop_or_pad(torch.from_numpy(volume.array[z : z + 8].astype(np.float32))[:, None], box, AIR_HU) for z in range(0, volume.shape[0], 8)]

    members = [m.to(memory_format=torch.channels_last) for m in members]  # as the Predictor runs them
    crops = [x.contiguous(memory_format=torch.channels_last) for x in crops]

    def bare_members() -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            for x in crops:
                for m in members:
                    m(x)
        return time.perf_counter() - t

    def combiner_alone(ens) -> float:
        """The combiner's own forward over the members' outputs, computed first and not timed."""
        if ens.method not in ("meta_unet", "layer_fusion"):
            return 0.0
        total = 0.0
        everyone = list(range(len(members)))
        with torch.inference_mode():
            for x in crops:
                if ens.method == "meta_unet":
                    outputs = [m(x) for m in members]
                    ens.member_logits = lambda hu, idx=None, o=outputs: o
                else:
                    for m in ens.members:
                        m.features = lambda hu, f=m.features(x): f
                t = time.perf_counter()
                ens.forward_members(x, everyone)
                total += time.perf_counter() - t
                for m in ens.members:
                    m.__dict__.pop("features", None)
                ens.__dict__.pop("member_logits", None)
        return total

    bare_members()  # warm-up
    print(machine())
    rows = []
    print(f"six {args.variant} members, {volume.shape[0]} slices of 512 x 512, 320 x 320 crops, {torch.get_num_threads()} threads, channels-last")
    print(f"{'method':14s} {'s/volume':>9s} {'members bare s':>14s} {'combiner s':>10s} {'ratio':>6s} {'target':>6s} {'peak MiB':>9s}")
    for method in ("argmax", "logits_conv", "meta_unet", "layer_fusion"):
        ens = build_ensemble(method, members, infos, list(ORGANS)).eval()
        predictor = Predictor(ens, InferenceConfig(tuple(ORGANS), size, "center"), batch_size=8, skip_air=False)
        predictor.predict(first_slices(volume, 4))
        t_bare, t_comb, t_ens = float("inf"), float("inf"), float("inf")
        for _ in range(args.repeat):  # interleaved, so that a slow spell of the machine hits both sides
            t_bare = min(t_bare, bare_members())
            t_comb = min(t_comb, combiner_alone(ens))
            with PeakRSS() as mem:
                t = time.perf_counter()
                predictor.predict(volume)
                t_ens = min(t_ens, time.perf_counter() - t)
        target = 1.05 if method in ("argmax", "logits_conv") else 1.10
        ratio = t_ens / (t_bare + t_comb)
        print(f"{method:14s} {t_ens:>9.2f} {t_bare:>14.2f} {t_comb:>10.2f} {ratio:>6.2f} {target:>6.2f} {mem.peak:>9.0f}", flush=True)
        rows.append({"method": method, "seconds": t_ens, "members_bare_s": t_bare, "combiner_s": t_comb, "ratio": ratio, "target": target, "peak_mib": mem.peak})
    save_figures(__file__, {"variant": args.variant, "slices": int(volume.shape[0]), "repeat": args.repeat, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
