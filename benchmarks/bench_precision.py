"""Precision and memory-layout figures (issue #13) for paper-size models at 320 x 320, random
weights, in one run: seconds per slice in fp32 with the plain layout (as prediction ran before),
fp32 channels-last (now) and bf16 autocast channels-last, each model's GFLOP/s as a share of the
fp32 matmul measured in the same run, and for one architecture (``--profile``) the convolution
shapes that take the time in fp32 and bf16, and which of oneDNN's implementations ran each
primitive (to find why one architecture gains less than another).

On a CPU without bf16 arithmetic (no avx512_bf16 / amx_bf16 flag) oneDNN emulates bf16, so the
bf16 column shows the emulation's cost, not what an AMX machine does; the script says which.

Run: python benchmarks/bench_precision.py [--archs unet,se_resunet,deeplabv3] [--batch 4] [--profile se_resunet]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import ctypes
import os
import sys
import tempfile
from collections import defaultdict

import torch
from common import best_of, gflops_per_slice, machine, matmul_gflops, save_figures


def seconds_per_slice(model: torch.nn.Module, x: torch.Tensor, bf16: bool, repeat: int = 2) -> float:
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(x)  # warm-up: oneDNN picks its kernels
        return best_of(lambda: model(x), repeat) / x.shape[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="unet,se_resunet,deeplabv3")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--profile", default="se_resunet", help="architecture whose bf16 operators are listed ('' for none)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()

    from zoo_ensemble.architectures import build_model, make_config
    from zoo_ensemble.devices import cpu_flags, cpu_supports_bf16

    native = cpu_supports_bf16()
    bf16_flags = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx")) or ["none"]
    print(f"{machine()}; bf16 flags: {', '.join(bf16_flags)} "
          f"({'native' if native else 'EMULATED by oneDNN: the bf16 column is not what an AMX machine does'})")
    # the matmul rate is measured again beside every model and the best kept: on a shared
    # machine one measurement can catch a slow moment and make the shares look better than they are
    peak = matmul_gflops()
    rows = []
    torch.manual_seed(0)
    for arch in args.archs.split(","):
        model = build_model(make_config(arch, ["heart"], "paper", input_size=[320, 320])).eval()
        flops = gflops_per_slice(model, 320)
        x = torch.rand(args.batch, 1, 320, 320) * 1400 - 1000
        plain = seconds_per_slice(model, x, bf16=False)
        model.to(memory_format=torch.channels_last)
        xcl = x.contiguous(memory_format=torch.channels_last)
        cl = seconds_per_slice(model, xcl, bf16=False)
        bf = seconds_per_slice(model, xcl, bf16=True)
        peak = max(peak, matmul_gflops())
        rows.append((arch, flops, plain, cl, bf))
        print(f"{arch}: fp32 channels-last {cl:.3f} s/slice", flush=True)
        if arch == args.profile:
            profile_by_shape(model, xcl)
    print(f"fp32 matmul, best over the run: {peak:.1f} GFLOP/s")
    print(f"{'model':12s} {'GFLOP/slice':>11s} {'fp32 s/slice':>12s} {'fp32 CL':>8s} {'bf16 CL':>8s} {'CL gain':>8s} {'bf16 gain':>9s} {'CL of matmul':>12s}")
    for arch, flops, plain, cl, bf in rows:
        print(f"{arch:12s} {flops:>11.1f} {plain:>12.3f} {cl:>8.3f} {bf:>8.3f} {plain / cl:>7.2f}x {cl / bf:>8.2f}x {flops / cl / peak:>12.2f}")
    save_figures(__file__, {
        "bf16_native": native, "matmul_gflops": peak,
        "rows": [{"arch": a, "gflop_per_slice": f, "fp32_s": p_, "fp32_channels_last_s": c, "bf16_channels_last_s": b} for a, f, p_, c, b in rows],
    }, args.json)


def conv_times(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> tuple[dict[str, float], float]:
    """Milliseconds per convolution shape (input, weight) and the whole forward's operator total."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            model(x)
    events = prof.key_averages(group_by_input_shape=True)
    convs = {str(e.input_shapes[:2]): e.self_cpu_time_total / 1e3 for e in events if e.key == "aten::mkldnn_convolution"}
    return convs, sum(e.self_cpu_time_total for e in events) / 1e3


def profile_by_shape(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Where an architecture's time goes, fp32 against bf16: the convolutions' share of the
    operators' time and the slowest convolution shapes with their bf16/fp32 ratio (a shape whose
    ratio stays near or above 1 on an AMX machine is what keeps a model from gaining in bf16)."""
    fp32, fp32_total = conv_times(model, x, bf16=False)
    bf16, bf16_total = conv_times(model, x, bf16=True)
    print(f"convolutions' share of the operators' time: fp32 {sum(fp32.values()) / fp32_total:.2f}, bf16 {sum(bf16.values()) / bf16_total:.2f}")
    print(f"{'convolution (input, weight)':60s} {'fp32 ms':>8s} {'bf16 ms':>8s} {'bf16/fp32':>9s}")
    for shape in sorted(fp32, key=lambda k: -fp32[k])[:12]:
        print(f"{shape:60s} {fp32[shape]:>8.1f} {bf16.get(shape, 0.0):>8.1f} {bf16.get(shape, 0.0) / max(fp32[shape], 1e-3):>9.2f}")
    for bf in (False, True):
        by_impl, slow = onednn_implementations(model, x, bf)
        print(f"oneDNN primitives in {'bf16' if bf else 'fp32'} (one forward): " + "; ".join(
            f"{kind} {impl} x{n} {ms:.0f} ms" for (kind, impl), (n, ms) in sorted(by_impl.items(), key=lambda kv: -kv[1][1])))
        for line in slow[:8]:
            print(f"  reference (slow) implementation: {line}")


def onednn_verbose_lines(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> list[str]:
    """oneDNN's own log of one forward pass (ONEDNN_VERBOSE): which implementation ran each
    primitive and for how long. oneDNN writes it to the C stdout, so that is caught at the fd."""
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as log, torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model(x)
        sys.stdout.flush()
        libc.fflush(None)
        saved = os.dup(1)
        os.dup2(log.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                model(x)
        finally:
            libc.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        return log.read().decode(errors="replace").splitlines()


def onednn_implementations(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> tuple[dict[tuple[str, str], list], list[str]]:
    """Count and milliseconds per (primitive kind, implementation), and the primitives that ran
    oneDNN's reference code (``ref``): on an AMX machine, a shape that falls back to it is the
    first suspect when a model does not gain in bf16."""
    by_impl: dict[tuple[str, str], list] = defaultdict(lambda: [0, 0.0])
    slow = []
    for line in onednn_verbose_lines(model, x, bf16):
        fields = line.split(",")
        if not line.startswith("onednn_verbose") or "exec" not in fields:
            continue
        at = fields.index("exec")
        kind, impl, ms = fields[at + 2], fields[at + 3], float(fields[-1])
        by_impl[(kind, impl)][0] += 1
        by_impl[(kind, impl)][1] += ms
        if impl.startswith("ref") or "gemm:ref" in impl:
            slow.append(f"{kind} {impl} {fields[-2]} {ms:.1f} ms")
    return by_impl, slow


if __name__ == "__main__":
    main()
