"""float32 networks against float64 over the quick grid: the errors a claim would inherit.

For every cell (m, L, regime) and seed, the same network is built twice from the same seed
(init_params draws in float64; the float32 network holds the same numbers rounded to float32) and run
on the same inputs (rnn_core.data.make_inputs, d = 4). Errors of the float32 network against float64:

- ntk (f32 Gram), ntk (f64 Gram): max_ij |H32_ij - H64_ij| / max_ij |H64_ij| for the empirical NTK
  with the Gram matmuls in float32 (the default for a float32 network) or in float64 (gram_dtype);
- lambda_min: |lambda_min(H32) - lambda_min(H64)| / lambda_min(H64) (f32 Grams; eigenvalues in float64),
  shown next to kappa = lambda_max / lambda_min of H64: the error grows like kappa times the entry error;
- ||h_l||^2, ||delta_l||^2: max over l and sequences of the relative error of the squared norms
  (forward hidden states l = 1..L, backward deltas l = 1..L);
- ||grad||^2: max over sequences of the relative error of ||grad_W f(x)||_F^2 = sum_{l,l'}
  <delta_l, delta_l'> <h_{l-1}, h_{l'-1}>, with per-sequence Grams in the network's dtype (as claims do);
- training: full-batch GD (rnn_core.train_gd) for the same number of steps with the same step eta
  (0.5 / (m lambda_max(H_m(W_0))), from the float64 network) on standardized labels of an additive
  target (f = z^2 at the last position L, which varies in every regime); then the centered predictions f_c(W_T, x) on the training inputs and
  on independent test inputs: RMS(f32 - f64) / RMS(f64); and ||W_T - W_0||_F's relative error;
- control "pred. test, f64 W_0 +- 1e-7": the same float64 training from W_0 (1 + 1e-7 z), z ~ N(0, 1)
  entrywise, against the unperturbed one. GD is discontinuous in W_0 (relu' jumps at the kinks), so
  where this control is large the trained predictions are that sensitive to ANY perturbation of the
  size of float32 rounding, and float32's prediction error there is not a defect of float32.

Denominators are guarded: a zero float64 value makes the row's entry "n/a". Every kernel, eigenvalue
and norm is evaluated in float64 from the float32 network's outputs.

    python -m benchmarks.precision [--quick] [--seeds 1] [--n 32] [--steps 50] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

import rnn_core
from rnn_core.data import Recipe, TargetSpec, make_dataset
from rnn_core.ntk import ntk_features
from benchmarks.common import Table, add_out_argument, save_run

WIDTHS = (128, 512, 2048)
LENGTHS = (2, 4, 8, 16)
REGIMES = ("normalized", "unit", "unnormalized")
QUICK_WIDTHS, QUICK_LENGTHS = (32,), (2, 4)
D_IN = 4
N_TEST = 64

COLUMNS = [
    "ntk (f32 Gram)", "ntk (f64 Gram)", "lambda_min", "kappa(H64)", "||h_l||^2", "||delta_l||^2",
    "||grad||^2", "pred. train", "pred. test", "pred. test, f64 W_0 +- 1e-7", "||W_T - W_0||",
]


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (NaN when b is all zero)."""
    a, b = a.double(), b.double()
    den = float(b.abs().max())
    return float((a - b).abs().max()) / den if den > 0 else math.nan


def _max_rel_entrywise(a: torch.Tensor, b: torch.Tensor) -> float:
    """max over entries with b != 0 of |a - b| / |b| (NaN when every b is zero)."""
    a, b = a.double().flatten(), b.double().flatten()
    keep = b != 0
    if not bool(keep.any()):
        return math.nan
    return float(((a[keep] - b[keep]).abs() / b[keep].abs()).max())


def _rms_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    den = float(b.pow(2).mean().sqrt())
    return float((a - b).pow(2).mean().sqrt()) / den if den > 0 else math.nan


def _grad_sq_norms(p, X) -> torch.Tensor:
    """||grad_W f(x)||_F^2 per sequence from per-sequence (L-1) x (L-1) Grams in the network's dtype."""
    deltas, h_prev = ntk_features(p, X)
    gram_deltas = torch.bmm(deltas, deltas.transpose(1, 2)).double()
    gram_h = torch.bmm(h_prev, h_prev.transpose(1, 2)).double()
    return (gram_deltas * gram_h).sum(dim=(1, 2))


def measure_cell(m: int, L: int, regime: str, seed: int, n: int, steps: int, device) -> dict:
    recipe = Recipe(n=n, L=L, d=D_IN, regime=regime, target=TargetSpec(family="additive", f="z2", positions=(L,)),
                    data_seed=seed, init_seed=seed)
    X, y_raw = make_dataset(recipe)
    Xt, yt_raw = make_dataset(recipe, "test", n=N_TEST)
    mu, sd = float(y_raw.mean()), float(y_raw.std())
    y = (y_raw - mu) / (sd if sd > 0 else 1.0)
    X, Xt, y = X.to(device), Xt.to(device), y.to(device)
    p64 = rnn_core.init_params(m, D_IN, seed=seed, device=device, dtype=torch.float64)
    p32 = rnn_core.init_params(m, D_IN, seed=seed, device=device, dtype=torch.float32)
    out: dict = {}
    if L >= 2:
        H64 = rnn_core.empirical_ntk(p64, X)
        H32 = rnn_core.empirical_ntk(p32, X)
        H32g = rnn_core.empirical_ntk(p32, X, gram_dtype=torch.float64)
        out["ntk (f32 Gram)"] = _max_rel(H32, H64)
        out["ntk (f64 Gram)"] = _max_rel(H32g, H64)
        ev64 = torch.linalg.eigvalsh(H64)
        ev32 = torch.linalg.eigvalsh(H32)
        lam64 = float(ev64[0])
        out["lambda_min"] = abs(float(ev32[0]) - lam64) / lam64 if lam64 > 0 else math.nan
        out["kappa(H64)"] = float(ev64[-1]) / lam64 if lam64 > 0 else math.inf
    else:  # L = 1: W never acts, every kernel is 0
        for key in ("ntk (f32 Gram)", "ntk (f64 Gram)", "lambda_min", "kappa(H64)"):
            out[key] = math.nan
    fw64, fw32 = rnn_core.forward(p64, X), rnn_core.forward(p32, X)
    out["||h_l||^2"] = _max_rel_entrywise(fw32.hidden_states().double().pow(2).sum(2),
                                          fw64.hidden_states().pow(2).sum(2))
    d64, d32 = rnn_core.backward_deltas(p64, fw64), rnn_core.backward_deltas(p32, fw32)
    out["||delta_l||^2"] = _max_rel_entrywise(d32.double().pow(2).sum(2), d64.pow(2).sum(2))
    out["||grad||^2"] = _max_rel_entrywise(_grad_sq_norms(p32, X), _grad_sq_norms(p64, X)) if L >= 2 else math.nan
    if L >= 2 and steps > 0:
        eta = 0.5 * rnn_core.train.default_eta(p64, X, H0=H64)
        r64 = rnn_core.train_gd(p64, X, y, eta=eta, steps=steps, record_every=steps)
        r32 = rnn_core.train_gd(p32, X, y, eta=eta, steps=steps, record_every=steps)
        out["pred. train"] = _rms_rel(rnn_core.predict_centered(p32, r32.W_T, X), rnn_core.predict_centered(p64, r64.W_T, X))
        out["pred. test"] = _rms_rel(rnn_core.predict_centered(p32, r32.W_T, Xt), rnn_core.predict_centered(p64, r64.W_T, Xt))
        d64w = float(torch.linalg.norm(r64.W_T - p64.W))
        d32w = float(torch.linalg.norm(r32.W_T.double() - p32.W.double()))
        out["||W_T - W_0||"] = abs(d32w - d64w) / d64w if d64w > 0 else math.nan
        # control: the same float64 training from W_0 (1 + 1e-7 z), z ~ N(0, 1) entrywise (a perturbation of
        # the size of float32 rounding, in float64): GD is discontinuous in W_0 where relu' jumps, so this
        # is the error any 1e-7 perturbation causes, float32 or not
        z = torch.randn(m, m, generator=torch.Generator().manual_seed(seed + 1000), dtype=torch.float64).to(device)
        pz = p64.with_W(p64.W * (1.0 + 1e-7 * z))
        rz = rnn_core.train_gd(pz, X, y, eta=eta, steps=steps, record_every=steps)
        out["pred. test, f64 W_0 +- 1e-7"] = _rms_rel(rnn_core.predict_centered(pz, rz.W_T, Xt),
                                                       rnn_core.predict_centered(p64, r64.W_T, Xt))
        out["loss_T / loss_0 (f64)"] = r64.losses[-1] / r64.losses[0] if r64.losses[0] > 0 else math.nan
    else:
        for key in ("pred. train", "pred. test", "pred. test, f64 W_0 +- 1e-7", "||W_T - W_0||", "loss_T / loss_0 (f64)"):
            out[key] = math.nan
    return out


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "inf"
    return f"{v:.1e}"


def run(device, *, quick: bool, seeds: int, n: int, steps: int) -> list[Table]:
    widths, lengths = (QUICK_WIDTHS, QUICK_LENGTHS) if quick else (WIDTHS, LENGTHS)
    cells = Table(
        f"float32 network vs float64, max over {seeds} seed(s), n = {n}, d = {D_IN}, GD {steps} steps, device {device}",
        ["m", "L", "regime", *COLUMNS, "loss_T / loss_0 (f64)", "time (s)"],
    )
    cells.header()
    worst: dict[tuple, dict] = {}
    for m in widths:
        for L in lengths:
            for regime in REGIMES:
                t0 = time.perf_counter()
                agg: dict = {}
                for s in range(seeds):
                    res = measure_cell(m, L, regime, s, n, steps, device)
                    for k, v in res.items():  # the worst seed (NaN = not defined, e.g. L = 1)
                        agg[k] = v if math.isnan(agg.get(k, math.nan)) else max(agg[k], v)
                cells.add(m, L, regime, *[_fmt(agg[c]) for c in COLUMNS], _fmt(agg["loss_T / loss_0 (f64)"]),
                          f"{time.perf_counter() - t0:.1f}")
                w = worst.setdefault((m,), {})
                for c in COLUMNS:
                    v = agg[c]
                    if not math.isnan(v):
                        w[c] = max(w.get(c, -math.inf), v)
    summary = Table("float32 vs float64: worst over L and regimes, per width", ["m", *COLUMNS])
    summary.header()
    for (m,), w in sorted(worst.items()):
        summary.add(m, *[_fmt(w.get(c, math.nan)) for c in COLUMNS])
    return [cells, summary]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="toy grid (a smoke test of the measurement)")
    ap.add_argument("--seeds", type=int, default=1, help="seeds per cell; the table shows the worst (default 1)")
    ap.add_argument("--n", type=int, default=32, help="training sequences per cell (default 32)")
    ap.add_argument("--steps", type=int, default=50, help="GD steps of the training comparison (default 50)")
    ap.add_argument("--device", default="auto")
    add_out_argument(ap)
    args = ap.parse_args(argv)
    for name in ("seeds", "n"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be an integer >= 1")
    if args.steps < 0:
        ap.error("--steps must be an integer >= 0")
    device = rnn_core.resolve_device(args.device)
    tables = run(device, quick=args.quick, seeds=args.seeds, n=args.n, steps=args.steps)
    print(f"\nsaved {save_run(tables, device, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
