"""Empirical NTK: our structured kernel against a straightforward structured kernel and torch.func.

Baselines, all on the same inputs in the same process:
- straightforward: two full (nL x m) Gram matrices (l = 1 included), elementwise product, block sum;
- jacrev: torch.func ``vmap(jacrev)`` Jacobian contraction (PyTorch's NTK tutorial, method 1);
- ntk-vp: torch.func NTK-vector products (the tutorial's method 2), one vjp + jvp per column.
A baseline that would exceed its budget (memory for the n m^2 Jacobian, or the time estimated from one
column) is marked "not run (reason)", never dropped silently.

    python -m benchmarks.ntk [--sizes 16,8,256 32,16,512 ...] [--budget-s 120] [--no-memory]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import rnn_core
from rnn_core.ntk import NTKImplementation
from rnn_core.reference import straightforward_ntk

from benchmarks.common import (
    Table, best_time, fmt_ratio, fmt_s, peak_memory_in_subprocess, peak_rss_mib, add_out_argument, save_run, size_tuple,
)

DEFAULT_SIZES = [(16, 8, 256), (32, 16, 512), (64, 32, 1024), (64, 32, 2048)]
D_IN = 4
JACOBIAN_MEMORY_LIMIT = 6 * 2**30  # bytes of n m^2 float64 Jacobian we are willing to allocate


def _method(name):
    if name == "ours":
        return lambda p, X: rnn_core.empirical_ntk(p, X)
    if name == "straightforward":
        return straightforward_ntk
    if name == "jacrev":
        return lambda p, X: rnn_core.empirical_ntk(p, X, implementation=NTKImplementation.JACOBIAN_CONTRACTION)
    if name == "ntk-vp":
        return lambda p, X: rnn_core.empirical_ntk(p, X, implementation=NTKImplementation.NTK_VECTOR_PRODUCTS)
    raise ValueError(f"method must be ours, straightforward, jacrev or ntk-vp, got {name!r}")


def _inputs(n, L, m, device, dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, L, D_IN, generator=gen, dtype=torch.float64)
    X = (X / X.norm(dim=2, keepdim=True)).to(device)
    return rnn_core.init_params(m, D_IN, seed=0, device=device, dtype=dtype), X


def _rel_err(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def _ntk_vp_estimate(p, X, device):
    """Seconds for one column of the NTK-vector-product method, times n columns."""
    t0 = time.perf_counter()
    rnn_core.empirical_ntk(p, X, X[:1], implementation=NTKImplementation.NTK_VECTOR_PRODUCTS)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * X.shape[0]


def run(sizes, device, budget_s: float, memory: bool) -> list[Table]:
    t = Table(
        f"empirical_ntk, float64, d = {D_IN}, device {device}",
        ["(n, L, m)", "ours", "straightforward", "ratio", "jacrev", "ratio", "ntk-vp", "ratio",
         "max rel. err vs baselines", "peak RSS ours / straightf. / jacrev (MiB)", "ours GFLOP/s"],
    )
    t.header()
    for n, L, m in sizes:
        p, X = _inputs(n, L, m, device)
        ours_t, H = best_time(lambda: _method("ours")(p, X), device, budget_s=budget_s)
        sf_t, Hsf = best_time(lambda: straightforward_ntk(p, X), device, budget_s=budget_s)
        errs = [_rel_err(Hsf, H)]
        jac_t = vp_t = None
        jac_note = vp_note = None
        if n * m * m * 8 * 2 > JACOBIAN_MEMORY_LIMIT:
            jac_note = f"not run (Jacobian {n * m * m * 8 / 2**30:.1f} GiB)"
        else:
            jac_t, Hj = best_time(lambda: _method("jacrev")(p, X), device, repeats=1, budget_s=budget_s)
            errs.append(_rel_err(Hj, H))
        est = _ntk_vp_estimate(p, X, device)
        if est > budget_s:
            vp_note = f"not run (est. {est:.0f} s > {budget_s:.0f} s)"
        else:
            vp_t, Hv = best_time(lambda: _method("ntk-vp")(p, X), device, repeats=1, budget_s=budget_s)
            errs.append(_rel_err(Hv, H))
        mem = ["—"] * 3
        if memory and device.type == "cpu":
            for i, name in enumerate(["ours", "straightforward", "jacrev"]):
                if name == "jacrev" and jac_note:
                    continue
                v = peak_memory_in_subprocess("benchmarks.ntk", ["--probe", name, str(n), str(L), str(m)], budget_s * 3)
                mem[i] = "timeout" if v is None else f"{v:.0f}"
        # Model flops of the structured kernel: forward and backward (2 n L m^2 each) plus the two
        # (n(L-1))^2 m Gram products, halved by symmetry. The straightforward baseline does the same
        # forward and backward and twice the Gram flops, so ratio <= (4nLm^2 + 2(nL)^2 m)/(4nLm^2 + (nL)^2 m).
        flops = 4 * n * L * m * m + 2 * (n * (L - 1)) ** 2 * m
        t.add(
            f"({n}, {L}, {m})", fmt_s(ours_t), fmt_s(sf_t), fmt_ratio(sf_t, ours_t),
            jac_note or fmt_s(jac_t), fmt_ratio(jac_t, ours_t) if jac_t else "—",
            vp_note or fmt_s(vp_t), fmt_ratio(vp_t, ours_t) if vp_t else "—",
            f"{max(errs):.1e}", " / ".join(mem), f"{flops / ours_t / 1e9:.1f}",
        )
    if device.type == "cuda":
        t32 = Table("empirical_ntk float32 network vs float64 (CUDA)", ["(n, L, m)", "float64", "float32", "speed-up", "max rel. err"])
        t32.header()
        for n, L, m in sizes:
            p64, X = _inputs(n, L, m, device)
            p32, _ = _inputs(n, L, m, device, torch.float32)
            a, H64 = best_time(lambda: rnn_core.empirical_ntk(p64, X), device)
            b, H32 = best_time(lambda: rnn_core.empirical_ntk(p32, X.float()), device)
            t32.add(f"({n}, {L}, {m})", fmt_s(a), fmt_s(b), f"{a / b:.1f}x", f"{_rel_err(H32, H64):.1e}")
        return [t, t32]
    return [t]


def _probe(name, n, L, m):
    p, X = _inputs(n, L, m, torch.device("cpu"))
    _method(name)(p, X)
    print(f"{peak_rss_mib():.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ntk", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", type=size_tuple(3, "n,L,m"), default=None,
                    help="n,L,m triples")
    ap.add_argument("--budget-s", type=float, default=120.0)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--device", default="auto")
    add_out_argument(ap)
    ap.add_argument("--probe", nargs=4, metavar=("METHOD", "N", "L", "M"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        name, n, L, m = args.probe
        _probe(name, int(n), int(L), int(m))
        return 0
    sizes = args.sizes or DEFAULT_SIZES
    device = rnn_core.resolve_device(args.device)
    tables = run(sizes, device, args.budget_s, not args.no_memory)
    print(f"\nsaved {save_run(tables, device, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
