"""Infinite-width NTK: our one-pass, row-blocked recursion against the textbook two-pass form.

The baseline stores K_l and Kdot_l for every l (O(L n^2) memory) and then sums
H_inf = sum_l P_l K_{l-1} with P_l = (1/2) prod_{k>=l} Kdot_k (SPEC section 2 as written). It is
run only where its L n^2 float64 arrays fit the stated memory budget.

    python -m benchmarks.infinite [--sizes 1024,16 4096,64 ...] [--no-memory]
"""

from __future__ import annotations

import argparse
import sys

import torch

import rnn_core
from rnn_core.reference import two_pass_ntk
from benchmarks.common import (
    Table, best_time, fmt_ratio, fmt_s, peak_memory_in_subprocess, peak_rss_mib, add_out_argument, save_run, size_tuple,
)

DEFAULT_SIZES = [(1024, 16), (2048, 32), (4096, 64)]
D_IN = 4
BASELINE_MEMORY_LIMIT = 4 * 2**30


def _inputs(n, L, device):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, L, D_IN, generator=gen, dtype=torch.float64)
    return (X / X.norm(dim=2, keepdim=True)).to(device)


def run(sizes, device, budget_s, memory):
    t = Table(
        f"infinite_ntk, float64, d = {D_IN}, unit-norm steps, device {device}",
        ["(n, L)", "ours", "two-pass", "ratio", "max rel. err", "peak RSS ours / two-pass (MiB)"],
    )
    t.header()
    for n, L in sizes:
        X = _inputs(n, L, device)
        ours_t, H = best_time(lambda: rnn_core.infinite_ntk(X), device, repeats=2, budget_s=budget_s)
        base_t = err = None
        note = None
        if 3 * L * n * n * 8 > BASELINE_MEMORY_LIMIT:
            note = f"not run ({3 * L * n * n * 8 / 2**30:.1f} GiB)"
        else:
            base_t, Hb = best_time(lambda: two_pass_ntk(X), device, repeats=1, budget_s=budget_s)
            err = float((H - Hb).abs().max() / Hb.abs().max())
        mem = ["—", "—"]
        if memory and device.type == "cpu":
            for i, name in enumerate(["ours", "two-pass"]):
                if name == "two-pass" and note:
                    continue
                v = peak_memory_in_subprocess("benchmarks.infinite", ["--probe", name, str(n), str(L)], 10 * budget_s)
                mem[i] = "timeout" if v is None else f"{v:.0f}"
        t.add(f"({n}, {L})", fmt_s(ours_t), note or fmt_s(base_t), fmt_ratio(base_t, ours_t),
              "—" if err is None else f"{err:.1e}", " / ".join(mem))
    return [t]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.infinite", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", type=size_tuple(2, "n,L"), default=None,
                    help="n,L pairs")
    ap.add_argument("--budget-s", type=float, default=120.0)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--device", default="auto")
    add_out_argument(ap)
    ap.add_argument("--probe", nargs=3, metavar=("METHOD", "N", "L"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.probe:
        name, n, L = args.probe
        X = _inputs(int(n), int(L), torch.device("cpu"))
        (rnn_core.infinite_ntk if name == "ours" else two_pass_ntk)(X)
        print(f"{peak_rss_mib():.1f}")
        return 0
    sizes = args.sizes or DEFAULT_SIZES
    device = rnn_core.resolve_device(args.device)
    tables = run(sizes, device, args.budget_s, not args.no_memory)
    print(f"\nsaved {save_run(tables, device, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
