"""Training: steps per second of full-batch GD on W (structured gradient) against autograd.

Both take the same steps from the same W_0 on the same data (centered squared loss); the autograd
baseline differentiates the plain forward pass with torch.autograd.

    python -m benchmarks.training [--sizes 256,16,1024 ...]
"""

from __future__ import annotations

import argparse
import sys

import torch

import rnn_core
from rnn_core.reference import train_gd_autograd
from benchmarks.common import Table, best_time, fmt_ratio, add_out_argument, save_run, size_tuple

DEFAULT_SIZES = [(256, 16, 1024)]
D_IN = 4
STEPS = 10


def _problem(n, L, m, device):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, L, D_IN, generator=gen, dtype=torch.float64)
    X = (X / X.norm(dim=2, keepdim=True)).to(device)
    y = torch.randn(n, generator=gen, dtype=torch.float64).to(device)
    return rnn_core.init_params(m, D_IN, seed=0, device=device), X, y


def run(sizes, device, budget_s):
    t = Table(
        f"full-batch GD on W, float64, {STEPS} steps, device {device}",
        ["(n, L, m)", "ours (steps/s)", "autograd (steps/s)", "ratio", "max rel. diff of W_T"],
    )
    t.header()
    for n, L, m in sizes:
        p, X, y = _problem(n, L, m, device)
        eta = rnn_core.train.default_eta(p, X)
        ours_t, res = best_time(lambda: rnn_core.train_gd(p, X, y, eta=eta, steps=STEPS, record_every=STEPS), device, repeats=2, budget_s=budget_s)
        base_t, W_ag = best_time(lambda: train_gd_autograd(p, X, y, eta, STEPS), device, repeats=2, budget_s=budget_s)
        diff = float((res.W_T - W_ag).abs().max() / (W_ag - p.W).abs().max())
        t.add(f"({n}, {L}, {m})", f"{STEPS / ours_t:.1f}", f"{STEPS / base_t:.1f}", fmt_ratio(base_t, ours_t), f"{diff:.1e}")
    return [t]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", type=size_tuple(3, "n,L,m"), default=None,
                    help="n,L,m triples")
    ap.add_argument("--budget-s", type=float, default=120.0)
    ap.add_argument("--device", default="auto")
    add_out_argument(ap)
    args = ap.parse_args(argv)
    sizes = args.sizes or DEFAULT_SIZES
    device = rnn_core.resolve_device(args.device)
    tables = run(sizes, device, args.budget_s)
    print(f"\nsaved {save_run(tables, device, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
