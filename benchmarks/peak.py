"""The machine's measured peak, and every kernel's share of it (issue 12).

In one process: the float64 and float32 matmul peak (an s x s matmul, best of N, s = 4096 by default)
and the copy bandwidth (a large array and a cache-sized one), measured before and after the kernels;
then each kernel's best time, its achieved GFLOP/s and its share of the peak of its dtype (the larger
of the two peak measurements, so a disturbed machine makes the shares look worse, never better), and
the same kernel in the straightforward reference implementation (rnn_core.reference) run on the same
inputs, as a ratio and a max relative difference.

Flops are model flops, 2 m n k per (m x n) @ (n x k) matmul, counting only the products the result needs:
- forward: L - 1 recurrence matmuls (h_0 = 0, so step 1 is A X_1 only): 2 n (L-1) m^2;
- backward_deltas: delta_1..delta_{L-1} from delta_{l+1}: 2 n (L-1) m^2;
- empirical_ntk (X2 = X): forward 2 n (L-1) m^2, backward to delta_2 2 n (L-2) m^2, and two symmetric
  Grams of (n (L-1)) x m matrices, N^2 m each with N = n (L-1) (the symmetric half of 2 N^2 m);
- train_gd with S steps: S + 2 forwards (f(W_0), and the loss at t = 0..S), S backwards to delta_2 and
  S gradient matmuls 2 m^2 n (L-1); reported per step;
- infinite_ntk: no matmul to speak of (d is small); it is bounded by elementwise passes over
  n x n temporaries held in cache, so it is reported as bytes moved (8 bytes per entry per pass, the
  pass count of rnn_core.kernels._recursion) per second against the measured copy bandwidth.
Input projections A X (2 n L d m) and elementwise work are not counted.

    python -m benchmarks.peak [--quick] [--repeats 5] [--peak-size 4096] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

import rnn_core
from rnn_core import reference as ref
from benchmarks.common import Table, add_out_argument, save_run, sync

NTK_SIZES = [(64, 32, 1024), (64, 32, 2048)]
TRAIN_SIZES = [(256, 16, 1024)]
INF_SIZES = [(2048, 32)]
QUICK_NTK_SIZES = [(8, 4, 64), (16, 8, 128)]
QUICK_TRAIN_SIZES = [(32, 4, 128)]
QUICK_INF_SIZES = [(256, 8)]
D_IN = 4
TRAIN_STEPS = 5
#: elementwise passes over an (rows x n2) float64 temporary per step of rnn_core.kernels._recursion
#: (outer 1, addmm 2, div 3, clamp 2, arccos 2, sin 2, Kdot 4, A update 6, sin/pi 2, addcmul 4, K*norm 3)
INF_PASSES_PER_STEP = 31


def best_of(fn, device, repeats: int, warmup: int = 1):
    """(best wall time of ``repeats`` calls after ``warmup`` untimed ones, last result)."""
    result = None
    for _ in range(warmup):
        result = fn()
    best = math.inf
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        result = fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best, result


def matmul_peak(device, dtype, size: int, repeats: int) -> float:
    """GFLOP/s of the best of ``repeats`` (size x size) @ (size x size) products: 2 size^3 flops each."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen, dtype=dtype).to(device)
    b = torch.randn(size, size, generator=gen, dtype=dtype).to(device)
    c = torch.empty_like(a)
    t, _ = best_of(lambda: torch.mm(a, b, out=c), device, repeats)
    return 2.0 * size**3 / t / 1e9


def copy_bandwidth(device, nbytes: int, repeats: int) -> float:
    """GB/s of dst.copy_(src) on float64 arrays of ``nbytes``, counting the read and the write."""
    src = torch.ones(nbytes // 8, dtype=torch.float64, device=device)
    dst = torch.empty_like(src)
    inner = max(1, (64 << 20) // nbytes)  # small arrays: many copies per timing so the timer resolves them

    def run():
        for _ in range(inner):
            dst.copy_(src)

    t, _ = best_of(run, device, repeats)
    return 2.0 * nbytes * inner / t / 1e9


class Peaks:
    """The machine's peaks, measured now and again later; the larger measurement is used for shares."""

    def __init__(self, device, size: int, repeats: int):
        self.device, self.size, self.repeats = device, size, repeats
        self.runs: list[dict] = []

    def measure(self, label: str) -> dict:
        cache = 1 << 19 if self.device.type == "cpu" else 1 << 24
        row = {
            "when": label,
            "f64": matmul_peak(self.device, torch.float64, self.size, self.repeats),
            "f32": matmul_peak(self.device, torch.float32, self.size, self.repeats),
            "bw_large": copy_bandwidth(self.device, 256 << 20, self.repeats),
            "bw_cache": copy_bandwidth(self.device, cache, self.repeats),
        }
        self.runs.append(row)
        return row

    def best(self, key: str) -> float:
        return max(r[key] for r in self.runs)


def _inputs(n, L, m, device, dtype):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, L, D_IN, generator=gen, dtype=torch.float64)
    X = (X / X.norm(dim=2, keepdim=True)).to(device)
    y = torch.randn(n, generator=gen, dtype=torch.float64).to(device)
    return rnn_core.init_params(m, D_IN, seed=0, device=device, dtype=dtype), X, y


def _rel(a, b) -> float:
    a, b = a.double(), b.double()
    den = float(b.abs().max())
    return float((a - b).abs().max()) / den if den > 0 else float((a - b).abs().max())


def flops_forward(n, L, m):
    return 2 * n * (L - 1) * m * m


def flops_backward(n, L, m):
    return 2 * n * (L - 1) * m * m


def flops_ntk(n, L, m):
    N = n * (L - 1)
    return 2 * n * (L - 1) * m * m + 2 * n * max(L - 2, 0) * m * m + 2 * N * N * m


def flops_train(n, L, m, steps):
    fwd = 2 * n * (L - 1) * m * m
    step = 2 * n * max(L - 2, 0) * m * m + 2 * m * m * n * (L - 1)
    return (steps + 2) * fwd + steps * step


def _kernel_rows(sizes, train_sizes, device, dtype, repeats):
    """[(kernel, size, flops, ours_s, ref_s, rel_diff)] for one dtype."""
    rows = []
    for n, L, m in sizes:
        p, X, _ = _inputs(n, L, m, device, dtype)
        t_f, fw = best_of(lambda: rnn_core.forward(p, X), device, repeats)
        t_fr, fwr = best_of(lambda: ref.forward_reference(p, X), device, repeats)
        rows.append(("forward", (n, L, m), flops_forward(n, L, m), t_f, t_fr, _rel(fw.h_tm, fwr.h_tm)))
        t_b, dl = best_of(lambda: rnn_core.model.backward_deltas_tm(p, fw), device, repeats)
        t_br, dlr = best_of(lambda: ref.backward_deltas_reference(p, fwr), device, repeats)
        rows.append(("backward_deltas", (n, L, m), flops_backward(n, L, m), t_b, t_br, _rel(dl, dlr)))
        t_k, H = best_of(lambda: rnn_core.empirical_ntk(p, X), device, repeats)
        t_kr, Hr = best_of(lambda: ref.empirical_ntk_structured_reference(p, X), device, repeats)
        rows.append(("empirical_ntk", (n, L, m), flops_ntk(n, L, m), t_k, t_kr, _rel(H, Hr)))
    for n, L, m in train_sizes:
        p, X, y = _inputs(n, L, m, device, dtype)
        eta = 0.5 * rnn_core.train.default_eta(p, X)
        S = TRAIN_STEPS
        t_t, res = best_of(lambda: rnn_core.train_gd(p, X, y, eta=eta, steps=S, record_every=S), device, max(2, repeats // 2))
        t_tr, (W_r, _) = best_of(lambda: ref.train_gd_reference(p, X, y, eta=eta, steps=S), device, max(2, repeats // 2))
        rows.append((f"train_gd step (of {S})", (n, L, m), flops_train(n, L, m, S) / S, t_t / S, t_tr / S,
                     _rel(res.W_T - p.W, W_r - p.W)))
    return rows


def _ntk_profile(sizes, device, dtype, repeats):
    """Where empirical_ntk's time goes: the feature pass (forward + backward) and the Gram step."""
    from rnn_core import ntk as ntk_mod

    rows = []
    for n, L, m in sizes:
        p, X, _ = _inputs(n, L, m, device, dtype)
        Xv = X.to(dtype)
        N = n * (L - 1)
        f_feat = 2 * n * (L - 1) * m * m + 2 * n * max(L - 2, 0) * m * m
        f_gram = 2 * N * N * m
        t_ft, (D, Hp) = best_of(lambda: ntk_mod.ntk_features(p, Xv), device, repeats)
        t_frt, (Dr, Hpr) = best_of(lambda: ref.features_reference(p, Xv), device, repeats)
        t_g, _ = best_of(lambda: ntk_mod.gram_kernel(D, Hp, None, None, m), device, repeats)
        t_gr, _ = best_of(lambda: ref.gram_reference(Dr, Hpr, None, None, m), device, repeats)
        rows.append(((n, L, m), "features (forward + backward)", f_feat, t_ft, t_frt))
        rows.append(((n, L, m), "Gram step (two Grams, product, block sums)", f_gram, t_g, t_gr))
    return rows


def _inf_rows(sizes, device, repeats):
    rows = []
    for n, L in sizes:
        gen = torch.Generator().manual_seed(0)
        X = torch.randn(n, L, D_IN, generator=gen, dtype=torch.float64)
        X = (X / X.norm(dim=2, keepdim=True)).to(device)
        t, _ = best_of(lambda: rnn_core.infinite_ntk(X), device, max(1, repeats // 2))
        # entries computed: the upper block triangle of row blocks (block_rows rows x columns from a on)
        from rnn_core.kernels import _BLOCK_ENTRIES, _CUDA_BLOCK_ENTRIES

        entries = _CUDA_BLOCK_ENTRIES if device.type == "cuda" else _BLOCK_ENTRIES
        br = max(8, entries // n)
        computed = sum((min(n, a + br) - a) * (n - a) for a in range(0, n, br))
        nbytes = INF_PASSES_PER_STEP * 8 * computed * L
        rows.append(((n, L), t, nbytes, computed * L))
    return rows


def run(device, *, quick: bool, repeats: int, peak_size: int) -> list[Table]:
    peaks = Peaks(device, peak_size, repeats)
    tp = Table(
        f"machine peaks, device {device}, torch threads {torch.get_num_threads()}",
        ["when", f"float64 matmul {peak_size}^2 (GFLOP/s)", f"float32 matmul {peak_size}^2 (GFLOP/s)",
         "copy 256 MiB (GB/s)", "copy cache-sized (GB/s)"],
    )
    tp.header()

    def add_peak(label):
        r = peaks.measure(label)
        tp.add(label, f"{r['f64']:.1f}", f"{r['f32']:.1f}", f"{r['bw_large']:.1f}", f"{r['bw_cache']:.1f}")

    add_peak("before the kernels")
    sizes = QUICK_NTK_SIZES if quick else NTK_SIZES
    train_sizes = QUICK_TRAIN_SIZES if quick else TRAIN_SIZES
    inf_sizes = QUICK_INF_SIZES if quick else INF_SIZES
    results = {}
    for dtype in (torch.float64, torch.float32):
        results[dtype] = _kernel_rows(sizes, train_sizes, device, dtype, repeats)
    profile = _ntk_profile(sizes, device, torch.float64, repeats)
    inf = _inf_rows(inf_sizes, device, repeats)
    add_peak("after the kernels")
    spread = max(abs(peaks.runs[0][k] - peaks.runs[1][k]) / max(peaks.runs[0][k], peaks.runs[1][k]) for k in ("f64", "f32"))
    if spread > 0.1:
        print(f"\nWARNING: the two peak measurements differ by {100 * spread:.0f}%: the machine was disturbed; "
              "shares below are against the larger peak (pessimistic). Re-run on a quiet machine.", flush=True)

    tables = [tp]
    for dtype, name in ((torch.float64, "float64"), (torch.float32, "float32")):
        key = "f64" if dtype == torch.float64 else "f32"
        pk = peaks.best(key)
        t = Table(
            f"kernels, {name} network, against the measured {name} matmul peak {pk:.1f} GFLOP/s (device {device})",
            ["kernel", "(n, L, m)", "GFLOP", "ours", "GFLOP/s", f"share of {name} peak", "reference", "ref. GFLOP/s",
             "ratio (ref / ours)", "max rel. diff vs reference"],
        )
        t.header()
        for kern, size, fl, t_o, t_r, diff in results[dtype]:
            t.add(kern, str(size), f"{fl / 1e9:.2f}", f"{t_o:.4f} s", f"{fl / t_o / 1e9:.1f}",
                  f"{100 * fl / t_o / 1e9 / pk:.0f}%", f"{t_r:.4f} s", f"{fl / t_r / 1e9:.1f}",
                  f"{t_r / t_o:.2f}x", f"{diff:.1e}")
        tables.append(t)
    pk = peaks.best("f64")
    t = Table(
        f"empirical_ntk profile, float64 network, share of the float64 peak {pk:.1f} GFLOP/s",
        ["(n, L, m)", "part", "GFLOP", "ours", "GFLOP/s", "share of peak", "reference", "ref. share"],
    )
    t.header()
    for size, part, fl, t_o, t_r in profile:
        t.add(str(size), part, f"{fl / 1e9:.2f}", f"{t_o:.4f} s", f"{fl / t_o / 1e9:.1f}",
              f"{100 * fl / t_o / 1e9 / pk:.0f}%", f"{t_r:.4f} s", f"{100 * fl / t_r / 1e9 / pk:.0f}%")
    tables.append(t)
    bw_l, bw_c = peaks.best("bw_large"), peaks.best("bw_cache")
    t = Table(
        f"infinite_ntk (bandwidth-bound elementwise recursion), float64, against copy bandwidth "
        f"{bw_c:.1f} GB/s cache-sized / {bw_l:.1f} GB/s 256 MiB",
        ["(n, L)", "time", "entry-steps / s (1e9)", f"GB/s ({INF_PASSES_PER_STEP} passes / step)",
         "share of cache copy bw", "share of 256 MiB copy bw"],
    )
    t.header()
    for size, tt, nbytes, entry_steps in inf:
        gbs = nbytes / tt / 1e9
        t.add(str(size), f"{tt:.4f} s", f"{entry_steps / tt / 1e9:.2f}", f"{gbs:.1f}",
              f"{100 * gbs / bw_c:.0f}%", f"{100 * gbs / bw_l:.0f}%")
    tables.append(t)
    return tables


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.peak", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="toy sizes (a smoke test of the benchmark)")
    ap.add_argument("--repeats", type=int, default=5, help="best of this many timed calls (default 5)")
    ap.add_argument("--peak-size", type=int, default=None, help="matmul size for the peak (default 4096; 512 with --quick)")
    ap.add_argument("--device", default="auto")
    add_out_argument(ap)
    args = ap.parse_args(argv)
    device = rnn_core.resolve_device(args.device)
    size = args.peak_size or (512 if args.quick else 4096)
    tables = run(device, quick=args.quick, repeats=args.repeats, peak_size=size)
    print(f"\nsaved {save_run(tables, device, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
